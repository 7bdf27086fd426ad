"""The one pairwise-distance engine behind the energy, kernel and variogram scores (private).

Everything sample-based reduces to a few kinds of distances between ensemble members and the target:

* ``sq_dist_to_target(x, y)``: ``||x_i - y||^2`` for every member, shape ``(m, B)``;
* ``pairwise_sq_dist(x)``: ``||x_i - x_j||^2`` for every pair of members, shape ``(B, m, m)``;
* ``shifted_sq_dist(x, shift)``: ``||x_i - x_{i - shift}||^2`` (circular), shape ``(m, B)``;
* ``safe_pow(s, q)``: ``s ** q`` with a zero (not NaN) gradient where ``s == 0``.

Numerics, by construction:

* **Exact zeros.** A pair of coincident members has squared distance exactly 0 on both paths, and the diagonal
  is exactly 0, so ``safe_pow`` gives them a zero gradient (a zero-initialised generator emits identical samples at
  step 0: its first gradient must be finite).
* **Two paths.** The *direct* path forms differences ``x_i - x_j`` chunk by chunk (exact; extra memory bounded by
  ``_CHUNK_ELEMENTS``).  The *Gram* path uses ``|a|^2 + |b|^2 - 2 a.b`` with one batched matrix product (fast for
  large ``m * d``).  It first translates every ensemble so that its first member is the origin (distances are
  translation invariant, and this removes the cancellation that ruins ``torch.cdist`` far from the origin), and it
  sets to exactly zero any squared distance below the rounding level of the Gram formula, so numerically coincident
  members do not get spurious non-zero distances.
* **Precision.** Half-precision inputs are promoted to float32 by the callers; autocast is disabled inside, so the
  matrix product runs in the input's (promoted) precision.
* **Memory-light backward.** ``pairwise_sq_dist`` is an ``autograd.Function`` whose backward is the exact
  analytic gradient ``dL/dx_i = 2 sum_j (G_ij + G_ji)(x_i - x_j)``; it saves only ``x``.  The backward is written with
  differentiable operations, so double backward works too.
"""

from __future__ import annotations

import torch

# Largest number of elements of one (B, chunk, m, d) difference block on the direct path (64 MiB in float32).
_CHUNK_ELEMENTS = 1 << 24
# Use the Gram path when the event dimension is at least this large (the direct path costs m^2 d elementwise work).
_GRAM_MIN_DIM = 8


def safe_pow(s: torch.Tensor, q: float) -> torch.Tensor:
    """``s ** q`` for ``s >= 0`` with value 0 and gradient 0 where ``s == 0`` (also for ``q < 1``)."""
    if q == 1.0:
        return s
    positive = s > 0
    safe = torch.where(positive, s, torch.ones_like(s))
    if q == 0.5:
        powered = safe.sqrt()
    else:
        powered = safe.pow(q)
    return torch.where(positive, powered, torch.zeros_like(s))


def sq_dist_to_target(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared distances from each member to the target: ``x (m, B, d)``, ``y (B, d)`` -> ``(m, B)``."""
    diff = x - y.unsqueeze(0)
    return (diff * diff).sum(-1)


def shifted_sq_dist(x: torch.Tensor, shift: int) -> torch.Tensor:
    """``||x_i - x_{(i - shift) mod m}||^2`` for ``x (m, B, d)`` -> ``(m, B)``."""
    diff = x - torch.roll(x, shifts=shift, dims=0)
    return (diff * diff).sum(-1)


def choose_method(m: int, d: int) -> str:
    """The path ``pairwise_sq_dist`` takes for ``method="auto"``."""
    return "gram" if d >= _GRAM_MIN_DIM and m > 2 else "direct"


def _direct_forward(x: torch.Tensor) -> torch.Tensor:
    b, m, d = x.shape
    rows = max(1, min(m, _CHUNK_ELEMENTS // max(1, b * m * d)))
    out = []
    for start in range(0, m, rows):
        diff = x[:, start : start + rows, None, :] - x[:, None, :, :]
        out.append((diff * diff).sum(-1))
    return torch.cat(out, dim=1)


def _direct_backward(x: torch.Tensor, gs: torch.Tensor) -> torch.Tensor:
    b, m, d = x.shape
    rows = max(1, min(m, _CHUNK_ELEMENTS // max(1, b * m * d)))
    out = []
    for start in range(0, m, rows):
        diff = x[:, start : start + rows, None, :] - x[:, None, :, :]
        out.append(2.0 * (gs[:, start : start + rows, :, None] * diff).sum(2))
    return torch.cat(out, dim=1)


def _gram_forward(x: torch.Tensor) -> torch.Tensor:
    m = x.shape[1]
    sq = (x * x).sum(-1)
    s = sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2.0 * torch.bmm(x, x.transpose(1, 2))
    # Rounding level of the Gram formula: a few ulps of |a|^2 + |b|^2 per summed coordinate.
    tol = (4.0 * torch.finfo(x.dtype).eps * (x.shape[-1] + 2)) * (sq.unsqueeze(-1) + sq.unsqueeze(-2))
    s = torch.where(s > tol, s, torch.zeros_like(s))
    eye = torch.eye(m, dtype=torch.bool, device=x.device)
    return s.masked_fill(eye, 0.0)


def _gram_backward(x: torch.Tensor, gs: torch.Tensor) -> torch.Tensor:
    return 2.0 * (gs.sum(-1, keepdim=True) * x - torch.bmm(gs, x))


class _PairwiseSqDist(torch.autograd.Function):
    @staticmethod
    def forward(x: torch.Tensor, use_gram: bool) -> torch.Tensor:  # type: ignore[override]
        with torch.no_grad():
            return _gram_forward(x) if use_gram else _direct_forward(x)

    @staticmethod
    def setup_context(ctx, inputs, output):  # type: ignore[override]
        x, use_gram = inputs
        ctx.save_for_backward(x)
        ctx.use_gram = use_gram

    @staticmethod
    def backward(ctx, grad_s: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        gs = grad_s + grad_s.transpose(1, 2)
        grad_x = _gram_backward(x, gs) if ctx.use_gram else _direct_backward(x, gs)
        return grad_x, None


def pairwise_sq_dist(x: torch.Tensor, *, method: str = "auto") -> torch.Tensor:
    """Squared Euclidean distances between all members: ``x (m, B, d)`` -> ``(B, m, m)``.

    The diagonal is exactly zero and coincident members give exactly zero on both paths.

    Args:
        x: ensemble with the sample axis first.
        method: ``"direct"`` (exact differences, chunked), ``"gram"`` (matrix product on translated members) or
            ``"auto"`` (Gram when the event dimension is large enough for it to pay off).
    """
    m, _, d = x.shape
    if method == "auto":
        method = choose_method(m, d)
    if method not in ("direct", "gram"):
        raise ValueError(f"method must be 'auto', 'direct' or 'gram'; got {method!r}")
    xb = x.transpose(0, 1)  # (B, m, d)
    # Translate each ensemble so that its first member is the origin (exact for identical members).
    xb = xb - xb[:, :1, :].detach()
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _PairwiseSqDist.apply(xb, method == "gram")


def pairwise_sum(values: torch.Tensor, w: torch.Tensor | None, *, diagonal: bool) -> torch.Tensor:
    """``sum_{i,j} w_i w_j v_ij`` over all pairs (``diagonal=True``) or pairs ``i != j``.

    ``values (B, m, m)``; ``w (m, B)`` normalised member weights or ``None`` for equal weights (then the plain sum
    is returned, without the ``1/m^2`` factor).  Returns ``(B,)``.
    """
    if not diagonal:
        m = values.shape[-1]
        eye = torch.eye(m, dtype=torch.bool, device=values.device)
        values = values.masked_fill(eye, 0.0)
    if w is None:
        return values.sum((-2, -1))
    wb = w.transpose(0, 1)  # (B, m)
    return torch.einsum("bi,bij,bj->b", wb, values, wb)
