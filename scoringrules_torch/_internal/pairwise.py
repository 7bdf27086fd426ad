"""The one pairwise-distance engine behind the energy, kernel and variogram scores (private).

Everything sample-based reduces to a few kinds of distances between ensemble members and the target:

* ``sq_dist_to_target(x, y)``: ``||x_i - y||^2`` for every member, shape ``(m, B)``;
* ``pairwise_sq_dist(x)``: ``||x_i - x_j||^2`` for every pair of members, shape ``(B, m, m)``;
* ``shifted_sq_dist(x, shift)``: ``||x_i - x_{i - shift}||^2`` (circular), shape ``(m, B)``;
* ``safe_pow(s, q)``: ``s ** q`` with a zero (not NaN) gradient where ``s == 0``.

Numerics, by construction:

* **Every pair exact to float rounding.** The *direct* path uses the fused exact-difference kernel of
  ``torch.cdist`` (mode ``donot_use_mm_for_euclid_dist``: no ``(B, m, m, d)`` intermediate) on the members as
  given, so every difference ``x_i - x_j`` is rounded once. The *Gram* path (fast for large ``m * d``) centres each
  ensemble on its mean and takes ``|c_i|^2 + |c_j|^2 - 2 c_i . c_j`` from one batched matrix product; its rounding
  error is a few ulps of ``|c_i|^2 + |c_j|^2``, so pairs whose distance is not large against that (*close* pairs:
  ``s_ij < 2 * _CLOSE * max_k |c_k|^2``, e.g. a tight pair inside a wide ensemble, or coincident members) are
  recomputed from exact differences. Nothing is rounded to zero by a threshold: a genuine distance is never lost.
* **Exact zeros.** Coincident members have squared distance exactly 0 on both paths, and the diagonal is exactly 0;
  their gradient contribution is exactly 0 whatever ``phi'(0)`` is (even infinite, e.g. the Laplacian kernel or
  ``r^beta`` with ``beta < 2``): a zero-initialised generator emits identical samples at step 0 and its first
  gradient must be finite.
* **Accurate backward.** ``dL/dx_i = 4 sum_j G_ij (x_i - x_j)``, ``G_ij = g w_i w_j phi'(s_ij)``. Far pairs go
  through one batched product ``G [c, 1]`` (``sum_j G_ij c_j`` and ``sum_j G_ij`` at once); close pairs, where
  ``G_ij`` may grow like ``1 / r_ij`` and that form would cancel, use exact differences.
* **torch.compile.** Finding close pairs is data-dependent indexing, which a full graph cannot hold, so under
  ``torch.compile`` (and on ``meta`` tensors) the engine takes the direct path and ATen's fused ``cdist``
  backward, both exact differences for every pair.
* **Precision.** Half-precision inputs are promoted to float32 by the callers; autocast is disabled inside, so the
  matrix product runs in the input's (promoted) precision.
* **Bounded memory.** Nothing larger than ``(B, m, m)`` is ever allocated (the dense ``(B, m, m, d)`` difference
  tensor of naive implementations is 32 GiB at B=512, m=256, d=256); close pairs are processed in chunks of about
  one block.
* **Memory-light backward.** ``pairwise_radial_sum`` is an ``autograd.Function`` that keeps ``phi'(s)`` per block
  (up to ``_SAVE_ELEMENTS``; above it the backward recomputes block by block). Double backward differentiates a
  plain-autograd recomputation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import NamedTuple

import torch

from .blocks import BLOCK_ELEMENTS, blocks


def no_autocast(device: torch.device):
    """A context that disables autocast on ``device`` (a no-op where autocast does not exist, e.g. ``meta``)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


# Use the Gram path when the event dimension is at least this large (below it, the fused direct kernel is as fast).
_GRAM_MIN_DIM = 8

# CPU block of the pairwise sums: about 4 MiB of (b, m, m) in float32 (few passes per block, so larger blocks
# amortise the per-block overhead better than the default of blocks.py).
_PAIR_BLOCK = 1 << 20

# Pairs with s_ij < 2 * _CLOSE * max_k |c_k|^2 (c: centred members) are computed from exact differences.
_CLOSE = 1.0 / 16.0


class _SafePow(torch.autograd.Function):
    """``s ** q`` (``s >= 0``) whose gradient is 0 where ``s == 0`` instead of ``inf * 0 = nan`` (for ``q < 1``)."""

    @staticmethod
    def forward(s: torch.Tensor, q: float) -> torch.Tensor:  # type: ignore[override]
        return s.sqrt() if q == 0.5 else s.pow(q)

    @staticmethod
    def setup_context(ctx, inputs, output):  # type: ignore[override]
        s, q = inputs
        ctx.save_for_backward(s, output)
        ctx.q = q

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        s, out = ctx.saved_tensors
        # q * s^(q-1) = q * out / s; where s == 0 also out == 0, so the clamped ratio is exactly 0 there
        # (a finite subgradient; valid for q >= 1/2). Differentiable, so double backward works.
        ratio = out / s.clamp_min(torch.finfo(s.dtype).tiny)
        return grad * (ctx.q * ratio), None


def safe_pow(s: torch.Tensor, q: float) -> torch.Tensor:
    """``s ** q`` for ``s >= 0`` with value 0 and gradient 0 where ``s == 0`` (also for ``q < 1``)."""
    if q == 1.0:
        return s
    return _SafePow.apply(s, q)


class _SqDistToTarget(torch.autograd.Function):
    """``||x_i - y||^2`` with a one-pass backward ``2 g (x_i - y)`` (written with differentiable operations)."""

    @staticmethod
    def forward(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        diff = x - y.unsqueeze(0)
        return (diff * diff).sum(-1)

    @staticmethod
    def setup_context(ctx, inputs, output):  # type: ignore[override]
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        x, y = ctx.saved_tensors
        gx = (x - y.unsqueeze(0)).mul_(2.0 * grad.unsqueeze(-1)) if not torch.is_grad_enabled() else (
            2.0 * grad.unsqueeze(-1) * (x - y.unsqueeze(0))
        )
        gy = -gx.sum(0) if ctx.needs_input_grad[1] else None
        return (gx if ctx.needs_input_grad[0] else None), gy


def sq_dist_to_target(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared distances from each member to the target: ``x (m, B, d)``, ``y (B, d)`` -> ``(m, B)``."""
    if x.requires_grad or y.requires_grad:
        return _SqDistToTarget.apply(x, y)
    diff = x - y.unsqueeze(0)
    return (diff * diff).sum(-1)


def shifted_sq_dist(x: torch.Tensor, shift: int) -> torch.Tensor:
    """``||x_i - x_{(i - shift) mod m}||^2`` for ``x (m, B, d)`` -> ``(m, B)``."""
    diff = x - torch.roll(x, shifts=shift, dims=0)
    return (diff * diff).sum(-1)


def choose_method(m: int, d: int) -> str:
    """The path ``pairwise_sq_dist`` takes for ``method="auto"``."""
    if torch.compiler.is_compiling():
        # The Gram path refines close pairs with data-dependent indexing, which a full graph cannot hold.
        return "direct"
    return "gram" if d >= _GRAM_MIN_DIM and m > 2 else "direct"


def _direct_forward(x: torch.Tensor) -> torch.Tensor:
    # Fused exact-difference kernel on the members as given: every difference x_i - x_j is rounded once (exact for
    # members within a factor of two of each other, e.g. far from the origin), coincident members give exactly 0.
    r = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    return r.mul_(r)


def _exact_mode(x: torch.Tensor) -> bool:
    """No data-dependent indexing: under ``torch.compile`` (a full graph cannot hold it) and on ``meta`` tensors."""
    return torch.compiler.is_compiling() or x.is_meta


def _centered(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Members minus their ensemble mean, their squared norms and the close-pair threshold ``(b, 1, 1)``.

    A pair is *close* when ``s_ij < 2 * _CLOSE * max_k |c_k|^2`` (``c`` the centred members): there the Gram
    formula's rounding error (a few ulps of ``|c_i|^2 + |c_j|^2``) is not small against ``s_ij``, and so is the
    rounding error of ``(sum_j G_ij) c_i - sum_j G_ij c_j`` in the backward when ``G_ij`` grows like ``1/r_ij``.
    Close pairs are computed from exact differences of the members instead.
    """
    c = x - x.mean(1, keepdim=True)
    sq = (c * c).sum(-1)  # (b, m)
    return c, sq, sq.amax(-1).mul_(2.0 * _CLOSE).reshape(-1, 1, 1)


def _close_pairs(s: torch.Tensor, thr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices ``(b, i, j)`` (both orders, no diagonal) of the pairs with ``s_ij < thr``; leaves ``s`` as it was.

    One read-only pass (the per-observation minimum off the diagonal) finds the observations that have any; only
    those are searched.
    """
    if _exact_mode(s):
        empty = torch.empty(0, dtype=torch.long, device=s.device)
        return empty, empty, empty
    diag = s.diagonal(dim1=-2, dim2=-1)
    saved = diag.clone()
    diag.fill_(float("inf"))
    obs = (s.amin((-2, -1)) < thr.reshape(-1)).nonzero().reshape(-1)
    if obs.numel():
        bi, ii, jj = (s[obs] < thr[obs]).nonzero(as_tuple=True)
        bi = obs[bi]
    else:
        bi = ii = jj = obs
    diag.copy_(saved)
    return bi, ii, jj


def _pair_chunks(n: int, d: int) -> list[slice]:
    """Slices over ``n`` pairs so that their ``(pairs, d)`` differences stay within about one block."""
    step = max(1, BLOCK_ELEMENTS // max(1, d))
    return [slice(k, k + step) for k in range(0, n, step)]


def _sq_dist_block(x: torch.Tensor, use_gram: bool):
    """Squared distances of ``x (b, m, d)``, exact to rounding for every pair, diagonal 0.

    Returns ``(s, c, thr, close)``: the distances ``(b, m, m)``, the centred members, the close-pair threshold and
    the close pairs ``(b, i, j)``. The Gram path is one batched product of the centred members augmented with their
    squared norms, ``[c_i, |c_i|^2, 1] . [-2 c_j, 1, |c_j|^2]``; its far pairs carry at most a few ulps of
    ``s_ij / (2 _CLOSE)``, and its close pairs (numerically coincident members included) are recomputed from the
    exact differences ``x_i - x_j``, so truly coincident members get exactly 0 and a tight pair inside a wide
    ensemble keeps its distance. The direct path is exact everywhere (fused exact-difference kernel).
    """
    c, sq, thr = _centered(x)
    if use_gram:
        sqc = sq.unsqueeze(-1)
        ones = torch.ones_like(sqc)
        s = torch.bmm(torch.cat([c, sqc, ones], -1), torch.cat([-2.0 * c, ones, sqc], -1).transpose(1, 2))
    else:
        s = _direct_forward(x)
    close = _close_pairs(s, thr)
    if use_gram:
        bi, ii, jj = close
        for sl in _pair_chunks(bi.numel(), x.shape[-1]):
            b, i, j = bi[sl], ii[sl], jj[sl]
            diff = x[b, i] - x[b, j]
            s[b, i, j] = (diff * diff).sum(-1)
        if _exact_mode(x):  # no refinement possible: at least clear the rounding noise of coincident members
            s.clamp_min_(0.0)
    s.diagonal(dim1=-2, dim2=-1).zero_()
    return s, c, thr, close


def _gram_forward(x: torch.Tensor) -> torch.Tensor:
    """``s_ij`` of ``x (b, m, d)`` on the Gram path (see :func:`_sq_dist_block`)."""
    return _sq_dist_block(x, True)[0]


def pairwise_sq_dist(x: torch.Tensor, *, method: str = "auto") -> torch.Tensor:
    """Squared Euclidean distances between all members (no gradient): ``x (m, B, d)`` -> ``(B, m, m)``.

    The diagonal is exactly zero and coincident members give exactly zero on both paths; every entry is exact to
    float rounding on both paths (the Gram path recomputes close pairs from exact differences).

    Args:
        x: ensemble with the sample axis first.
        method: ``"direct"`` (exact differences, fused kernel), ``"gram"`` (matrix product of centred members, close
            pairs exact) or ``"auto"`` (Gram when the event dimension is large enough for it to pay off).
    """
    m, b, d = x.shape
    if method == "auto":
        method = choose_method(m, d)
    if method not in ("direct", "gram"):
        raise ValueError(f"method must be 'auto', 'direct' or 'gram'; got {method!r}")
    with torch.no_grad(), no_autocast(x.device):
        xb = x.detach().transpose(0, 1).contiguous()  # (B, m, d)
        if method == "direct":
            return _direct_forward(xb)
        out = xb.new_empty(b, m, m)
        for start, stop in blocks(b, m * m, x.device, _PAIR_BLOCK):
            out[start:stop] = _gram_forward(xb[start:stop])
        return out


class Radial(NamedTuple):
    """A function of the squared distance, ``phi(s)``, with its derivative for the fused backward.

    ``value(s, h)`` must be autograd-safe on its own (it is also used on small tensors with plain autograd);
    ``deriv(s, value, h)`` returns ``dphi/ds`` given ``s`` and ``value(s, h)`` (it may overwrite ``value``); it is
    only used in the fused backward of :func:`pairwise_radial_sum`, and its value where ``s == 0`` does not
    matter (the engine sets those contributions to exactly 0; it may even be inf or NaN there). ``h`` is an
    optional per-observation parameter (e.g. a bandwidth) that broadcasts against ``s``, or ``None``.
    """

    value: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
    deriv: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
    #: ``True`` when ``deriv`` does not read ``s``: the engine may then compute ``value`` in place of ``s``
    #: (``value_(s)``, a method of the tensor named by ``inplace``), saving one ``(b, m, m)`` allocation.
    inplace: str | None = None


def power_radial(q: float) -> Radial:
    """``phi(s) = s^q`` (distance to the power ``2q``)."""

    def value(s: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if torch.is_grad_enabled():
            return safe_pow(s, q)
        return s.sqrt() if q == 0.5 else (s.clone() if q == 1.0 else s.pow(q))

    def deriv(s: torch.Tensor, v: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if q == 1.0:
            return torch.ones_like(s)
        if q == 0.5:  # (1/2) / r, one pass
            return torch.div(torch.full((), 0.5, dtype=v.dtype, device=v.device), v, out=v)
        return v.div_(s).mul_(q)

    return Radial(value, deriv, "sqrt_" if q == 0.5 else None)


# Keep phi'(s) (and phi(s) when member weights need a gradient) for the backward when it needs at most this many
# elements (512 MiB in float32); above it the backward recomputes it block by block, so extra memory stays at one
# block.
_SAVE_ELEMENTS = 1 << 27


class _Block(NamedTuple):
    """What the backward needs of one block of observations."""

    s: torch.Tensor | None  # squared distances (kept in exact mode only)
    v: torch.Tensor | None  # phi(s), when member weights need a gradient
    d: torch.Tensor | None  # phi'(s), zero on the diagonal, at coincident members and at close pairs
    close: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # close pairs (b, i, j), b local to the block
    d_close: torch.Tensor | None  # phi'(s) of the close pairs (0 where s == 0)


def _block_forward(x, w, h, radial: Radial, diagonal: bool, use_gram: bool, need_d: bool, need_v: bool):
    """Per-observation totals of one block and what its backward needs."""
    s, _, thr, close = _sq_dist_block(x, use_gram)
    exact = _exact_mode(x)
    bi, ii, jj = close
    close_zero = None if exact or not need_d else s[bi, ii, jj] == 0
    if radial.inplace is not None and not (exact and need_d):
        v = getattr(s, radial.inplace)()  # s is not needed any more
    else:
        v = radial.value(s, h)
    if not diagonal:
        v.diagonal(dim1=-2, dim2=-1).zero_()
    total = v.sum((-2, -1)) if w is None else torch.einsum("bi,bij,bj->b", w, v, w)
    v_keep = v.clone() if need_v and need_d else (v if need_v else None)
    d = d_close = None
    if need_d:
        d = radial.deriv(s, v, h)  # may overwrite v
        d.diagonal(dim1=-2, dim2=-1).zero_()
        if exact:
            d.masked_fill_(s == 0, 0.0)
        else:
            # Coincident members contribute exactly 0 whatever phi'(0) is (even inf); they are close pairs, or
            # every member of the observation coincides (threshold 0).
            flat = thr.reshape(-1) == 0
            if flat.any():
                d[flat] = 0.0
            d_close = d[bi, ii, jj].masked_fill_(close_zero, 0.0)
            d[bi, ii, jj] = 0.0
    return total, _Block(s if need_d and exact else None, v_keep, d, close, d_close)


def _block_grad_x(x: torch.Tensor, w: torch.Tensor | None, gc: torch.Tensor, blk: _Block) -> torch.Tensor:
    """``dL/dx_i = 4 g_b sum_j w_i w_j phi'(s_ij) (x_i - x_j)`` for one block.

    Far pairs: one batched product of ``phi'`` with the centred members augmented by a ones column, which gives
    ``sum_j phi'_ij w_j c_j`` and ``sum_j phi'_ij w_j`` together. Close pairs (where ``phi'`` may grow like
    ``1 / r_ij`` and that difference would cancel) use the exact differences. In exact mode every pair uses ATen's
    fused ``cdist`` backward (exact differences, no data-dependent indexing).
    """
    d = blk.d
    if _exact_mode(x):
        g = d * gc.reshape(-1, 1, 1)
        if w is not None:
            g = g * w.unsqueeze(-1) * w.unsqueeze(-2)
        r = blk.s.sqrt()
        return 2.0 * torch.ops.aten._cdist_backward((2.0 * g * r).contiguous(), x, x, 2.0, r.contiguous())
    c = x - x.mean(1, keepdim=True)
    ones = torch.ones_like(c[..., :1])
    if w is None:
        t = torch.bmm(d, torch.cat([c, ones], -1))
        out = torch.addcmul(t[..., :-1], t[..., -1:], c, value=-1.0)  # sum_j d_ij c_j - (sum_j d_ij) c_i
    else:
        wu = w.unsqueeze(-1)
        t = torch.bmm(d, torch.cat([wu * c, wu], -1))
        out = torch.addcmul(t[..., :-1], t[..., -1:], c, value=-1.0).mul_(wu)
    out.neg_()
    bi, ii, jj = blk.close
    for sl in _pair_chunks(bi.numel(), x.shape[-1]):
        b, i, j = bi[sl], ii[sl], jj[sl]
        coef = blk.d_close[sl] if w is None else blk.d_close[sl] * w[b, i] * w[b, j]
        out.index_put_((b, i), coef.unsqueeze(-1) * (x[b, i] - x[b, j]), accumulate=True)
    return out.mul_(4.0 * gc.reshape(-1, 1, 1))


class _RadialPairSum(torch.autograd.Function):
    """``total_b = sum_{i,j} w_i w_j phi(||x_i - x_j||^2)`` with a fused, memory-light backward.

    Observations are processed in cache-sized blocks. The forward keeps ``phi'(s)`` (with the close pairs apart);
    the backward is then one batched matrix product per block (see :func:`_block_grad_x`). Above
    ``_SAVE_ELEMENTS`` nothing of size ``(B, m, m)`` is kept and the backward recomputes block by block.
    """

    @staticmethod
    def forward(ctx, x, w, h, radial: Radial, diagonal: bool, use_gram: bool):  # type: ignore[override]
        b, m, _ = x.shape
        need_x, need_w = ctx.needs_input_grad[0], w is not None and ctx.needs_input_grad[1]
        keep = (need_x or need_w) and (b * m * m <= _SAVE_ELEMENTS or _exact_mode(x))
        total = x.new_empty(b)
        saved, saved_tensors = [], []
        for start, stop in blocks(b, m * m, x.device, _PAIR_BLOCK):
            total[start:stop], blk = _block_forward(
                x[start:stop], None if w is None else w[start:stop], _rows(h, start, stop), radial, diagonal,
                use_gram, need_d=keep and need_x, need_v=keep and need_w,
            )
            if keep:
                saved.append(start)
                saved_tensors.extend((blk.s, blk.v, blk.d, *blk.close, blk.d_close))
        ctx.radial, ctx.diagonal, ctx.use_gram, ctx.h, ctx.starts = radial, diagonal, use_gram, h, saved
        ctx.save_for_backward(x, w, *saved_tensors)
        return total

    @staticmethod
    def backward(ctx, grad_total):  # type: ignore[override]
        x, w, *rest = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph=True (double backward): differentiate a plain-autograd recomputation instead.
            return _differentiable_backward(ctx, x, w, grad_total)
        need_x = ctx.needs_input_grad[0]
        need_w = w is not None and ctx.needs_input_grad[1]
        b, m, _ = x.shape
        grad_x = torch.empty_like(x) if need_x else None
        grad_w = torch.empty_like(w) if need_w else None
        saved = {
            start: _Block(*rest[7 * k : 7 * k + 3], tuple(rest[7 * k + 3 : 7 * k + 6]), rest[7 * k + 6])
            for k, start in enumerate(ctx.starts)
        }
        for start, stop in blocks(b, m * m, x.device, _PAIR_BLOCK):
            xc, gc = x[start:stop], grad_total[start:stop]
            wc = None if w is None else w[start:stop]
            blk = saved.get(start)
            if blk is None:
                _, blk = _block_forward(xc, wc, _rows(ctx.h, start, stop), ctx.radial, ctx.diagonal, ctx.use_gram,
                                        need_d=need_x, need_v=need_w)
            if need_w:
                grad_w[start:stop] = 2.0 * gc.unsqueeze(-1) * torch.bmm(blk.v, wc.unsqueeze(-1)).squeeze(-1)
            if need_x:
                grad_x[start:stop] = _block_grad_x(xc, wc, gc, blk)
        return grad_x, grad_w, None, None, None, None


def _rows(h: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    """The per-observation parameter of observations ``start:stop``, shaped to broadcast over ``(b, m, m)``."""
    return None if h is None else h[start:stop].reshape(-1, 1, 1)


def _differentiable_backward(ctx, x, w, grad_total):
    """Gradients of ``_RadialPairSum`` built with plain autograd (dense ``(B, m, m, d)``), for double backward."""
    inputs = [t for t, need in zip((x, w), ctx.needs_input_grad[:2], strict=False) if need and t is not None]
    diff = x.unsqueeze(2) - x.unsqueeze(1)
    v = ctx.radial.value((diff * diff).sum(-1), _rows(ctx.h, 0, x.shape[0]))
    if not ctx.diagonal:
        v = v * (1.0 - torch.eye(v.shape[-1], dtype=v.dtype, device=v.device))
    total = v.sum((-2, -1)) if w is None else torch.einsum("bi,bij,bj->b", w, v, w)
    grads = iter(torch.autograd.grad(total, inputs, grad_total, create_graph=True))
    grad_x = next(grads) if ctx.needs_input_grad[0] else None
    grad_w = next(grads) if w is not None and ctx.needs_input_grad[1] else None
    return grad_x, grad_w, None, None, None, None


def pairwise_radial_sum(
    x: torch.Tensor,
    w: torch.Tensor | None,
    radial: Radial,
    *,
    diagonal: bool,
    h: torch.Tensor | None = None,
    method: str = "auto",
) -> torch.Tensor:
    """``sum_{i,j} w_i w_j phi(||x_i - x_j||^2)`` per observation, over all pairs or pairs ``i != j``.

    Args:
        x: ensemble ``(m, B, d)``.
        w: normalised member weights ``(m, B)``, or ``None`` for the plain (unweighted, un-normalised) sum.
        radial: the function ``phi`` and its derivative.
        diagonal: include the ``i == j`` terms (``phi(0)``).
        h: optional per-observation parameter of ``phi`` (``(B,)``, no gradient), e.g. a bandwidth.
        method: ``"auto"`` | ``"direct"`` | ``"gram"`` (see :func:`pairwise_sq_dist`).

    Returns:
        ``(B,)``. Differentiable in ``x`` and ``w``; double backward uses a dense plain-autograd recomputation.
    """
    m, _, d = x.shape
    if method == "auto":
        method = choose_method(m, d)
    xb = x.transpose(0, 1)  # (B, m, d), a view: every block is centred (copied) anyway
    wb = None if w is None else w.transpose(0, 1).contiguous()
    with no_autocast(x.device):
        return _RadialPairSum.apply(xb, wb, None if h is None else h.detach(), radial, diagonal, method == "gram")
