"""Ensembles whose members live on several processes (private; see ``docs/distributed.md``).

Every rank of a ``torch.distributed`` process group passes its *local* members ``(m_r, *batch, *event)`` for the
*same* targets. :func:`gather_members` returns on every rank the full ensemble ``(sum_r m_r, *batch, *event)``
(members in rank order), identical on every rank, in which the rank's own slice is its live (differentiable)
input and the other ranks' slices are constants. Every rank then computes the same score ``L`` of the full
ensemble; differentiating it gives each rank exactly ``dL/d(own members)``:

* no backward communication at all. The autograd-aware ``torch.distributed.nn.functional.all_gather`` would send
  in the backward an all-to-all of ``W`` identical copies of the cotangent and sum them (``W`` times the gradient);
  since every rank already holds the same ``dL/dx`` for its own slice, that exchange is pure overhead, and the
  forward uses the plain collective ``torch.distributed.all_gather`` instead;
* under DDP (which averages parameter gradients over the ``W`` ranks) multiply the gradient by ``W``:
  :func:`scale_grad_for_ddp` does this without changing the value, so that after DDP's all-reduce the parameter
  gradients equal those of one process scoring the concatenated ensemble.

Communication per call and rank (``s`` bytes per element, ``m_max = max_r m_r``, ``N = B * d`` elements per
member, ``K = B`` extra per member with member weights, ``L = 4 + 2 * 16`` int64 header entries):
each rank contributes ``8 L + s * m_max * (N + K)`` bytes and receives ``(W - 1)`` times that; never an
``O(m^2)`` object. :data:`LAST_EXCHANGE` records the numbers of the last call.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "LAST_EXCHANGE",
    "exchange_header",
    "gather_members",
    "scale_grad_for_ddp",
    "variogram_by_moments",
    "world_size",
]

_MAX_DIMS = 16
_HEADER_LEN = 4 + 2 * _MAX_DIMS
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

#: Bytes of the last :func:`gather_members` call on this rank: ``{"sent": ..., "received": ..., "world_size": ...}``
#: (the tensors handed to the collectives; how a backend routes them, e.g. a ring, is not counted).
LAST_EXCHANGE: dict[str, int] = {}


def _dist():
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "process_group was given but torch.distributed is not initialised; call "
            "torch.distributed.init_process_group first (e.g. under torchrun), or pass process_group=None"
        )
    return dist


def world_size(process_group) -> int:
    """The number of ranks of ``process_group`` (``torch.distributed.group.WORLD`` for the default group)."""
    return _dist().get_world_size(process_group)


def _header(x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    rest = tuple(x.shape[1:])
    wrest = () if w is None else tuple(w.shape[1:])
    if len(rest) > _MAX_DIMS or len(wrest) > _MAX_DIMS:
        raise ValueError(f"process_group supports at most {_MAX_DIMS} non-sample dimensions; got {len(rest)}")
    dtype_code = _DTYPES.index(x.dtype) if x.dtype in _DTYPES else -1
    h = [x.shape[0], len(rest), -1 if w is None else w.dim(), dtype_code]
    h += list(rest) + [-1] * (_MAX_DIMS - len(rest)) + list(wrest) + [-1] * (_MAX_DIMS - len(wrest))
    return torch.tensor(h, dtype=torch.int64, device=x.device)


def _describe(h: list[int]) -> str:
    nd = h[1]
    shape = tuple(h[4 : 4 + nd])
    weights = "no member_weights" if h[2] < 0 else f"member_weights of rank {h[2]}"
    dtype = _DTYPES[h[3]] if 0 <= h[3] < len(_DTYPES) else "?"
    return f"(m={h[0]}, *{shape}) {dtype}, {weights}"


def exchange_header(x: torch.Tensor, w: torch.Tensor | None, process_group) -> list[int]:
    """Check that the ranks agree on everything but the member count; return every rank's member count.

    One ``all_gather`` of ``4 + 2 * 16`` int64 per rank. Raises ``ValueError`` on every rank alike when the
    ranks disagree on the shape after the sample axis, the dtype, or whether member weights are given.
    """
    dist = _dist()
    world = dist.get_world_size(process_group)
    header = _header(x, w)
    headers = [torch.empty_like(header) for _ in range(world)]
    dist.all_gather(headers, header, group=process_group)
    rows = [h.tolist() for h in headers]
    if any(r[1:] != rows[0][1:] for r in rows):
        per_rank = "; ".join(f"rank {i}: {_describe(r)}" for i, r in enumerate(rows))
        raise ValueError(
            "with process_group every rank must pass members of the same batch/event shape, dtype and "
            f"member_weights layout (only the member count may differ); got {per_rank}"
        )
    return [r[0] for r in rows]


def gather_members(
    x: torch.Tensor, w: torch.Tensor | None, process_group, counts: list[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor | None, list[int]]:
    """All members of the ensemble split over ``process_group``, identical on every rank.

    Args:
        x: local members, sample axis first ``(m_r, *rest)``.
        w: local member weights ``(m_r, ...)`` (sample axis first) or ``None``; they must be ``None`` on every
            rank or given on every rank with the same shape after the sample axis.
        process_group: the group (``torch.distributed.group.WORLD`` for all processes).
        counts: the member counts from :func:`exchange_header`, if it was already called.

    Returns:
        ``(x_full, w_full, counts)``: ``x_full (sum m_r, *rest)`` in rank order with this rank's slice
        differentiable (the others constant), the same for the weights, and the member count of every rank.

    Raises:
        ValueError: on every rank alike, when the ranks disagree on the shape after the sample axis, the dtype,
            or whether member weights are given (checked with one small all_gather of a header).
    """
    dist = _dist()
    world = dist.get_world_size(process_group)
    rank = dist.get_rank(process_group)
    if counts is None:
        counts = exchange_header(x, w, process_group)
    m_max = max(counts)
    m = x.shape[0]
    dtype = x.dtype if w is None else torch.promote_types(x.dtype, w.dtype)
    n_x = math.prod(x.shape[1:])
    parts = [x.reshape(m, n_x).to(dtype)]  # explicit sizes: a rank may hold no member
    if w is not None:
        parts.append(w.reshape(m, math.prod(w.shape[1:])).to(dtype))
    local = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
    width = local.shape[1]
    buf = local.detach().new_zeros(m_max, width)
    buf[:m] = local.detach()
    received = [torch.empty_like(buf) for _ in range(world)]
    dist.all_gather(received, buf, group=process_group)
    pieces = [local if r == rank else received[r][: counts[r]] for r in range(world)]
    full = torch.cat(pieces, dim=0)
    _record("all_gather", buf.numel() * buf.element_size(), world)
    total = full.shape[0]
    x_full = full[:, :n_x].to(x.dtype).reshape(total, *x.shape[1:])
    w_full = None if w is None else full[:, n_x:].to(w.dtype).reshape(total, *w.shape[1:])
    return x_full, w_full, counts


def _record(collective: str, payload: int, world: int) -> None:
    header = 8 * _HEADER_LEN
    if collective == "all_gather":  # every rank needs the (W - 1) other buffers: exact for any algorithm
        sent, received = header + payload, (world - 1) * (header + payload)
    else:  # all_reduce: a ring sends and receives 2 (W - 1) / W of the buffer per rank
        ring = 2 * (world - 1) * payload // world
        sent, received = header + ring, (world - 1) * header + ring
    LAST_EXCHANGE.clear()
    LAST_EXCHANGE.update(collective=collective, payload=payload, sent=sent, received=received, world_size=world)


def variogram_moments_cost(b: int, d: int, m_max: int) -> tuple[int, int]:
    """Elements each rank hands to the collective: ``(members, moments)`` = ``(m_max B d, B (2 d^2 + 2))``."""
    return m_max * b * d, b * (2 * d * d + 2)


def variogram_by_moments(x, target, w, counts, process_group, *, p, weights, estimator, sample_dim=0):
    """The variogram score of the distributed ensemble from all-reduced moments (``(*batch)``, not reduced).

    The score depends on the members only through ``sum_i w_i g_i``, ``sum_i w_i g_i^2`` (``(B, d, d)`` each) and
    ``sum_i w_i``, ``sum_i w_i^2`` (``(B,)``) with ``g_i = |x_ik - x_il|^p``: every rank sums its own members and one
    ``all_reduce`` adds them up, ``B (2 d^2 + 2)`` elements whatever the number of members. The local sums enter
    the score with gradient 1 (the others as constants), so each rank gets the gradient w.r.t. its own members.
    """
    from ..functional.variogram import _increments, _VariogramMoments
    from .checks import check_floating, check_sample_target, compute_dtype
    from .pairwise import no_autocast, safe_pow

    dist = _dist()
    world = dist.get_world_size(process_group)
    check_sample_target(x, target, event_rank=1, min_members=0)
    dtype = compute_dtype(x, target)
    batch_shape = target.shape[:-1]
    m, b, d = x.shape[0], math.prod(batch_shape), target.shape[-1]
    xl, y = x.to(dtype).reshape(m, b, d), target.to(dtype).reshape(b, d)  # explicit sizes: m may be 0
    total = sum(counts)
    if total < (2 if estimator == "fair" else 1):
        raise ValueError(f"estimator={estimator!r} needs at least 2 members in all; got {total} over {world} ranks")
    if weights is None:
        pair_w = None
    else:
        check_floating("weights", weights)
        if weights.shape[-2:] != (d, d) or weights.shape[:-2] not in (torch.Size(), batch_shape):
            raise ValueError(
                f"weights must have shape (d, d) = {(d, d)} or (*batch, d, d) = {(*batch_shape, d, d)}; "
                f"got {tuple(weights.shape)}"
            )
        pair_w = weights.to(xl.dtype).reshape(-1, d, d)
    if w is None:
        raw = xl.new_ones(m, b)
    else:
        raw = (w.reshape((m,) + (1,) * len(batch_shape)) if w.dim() == 1 else w).expand((m, *batch_shape))
        raw = raw.to(xl.dtype).reshape(m, b)
    with no_autocast(xl.device):
        first, second = _VariogramMoments.apply(xl, raw, float(p))
    local = torch.cat([first.reshape(b, -1), second.reshape(b, -1), raw.sum(0)[:, None],
                       (raw * raw).sum(0)[:, None]], dim=1)
    summed = local.detach().clone()
    dist.all_reduce(summed, group=process_group)
    _record("all_reduce", summed.numel() * summed.element_size(), world)
    full = summed + (local - local.detach())  # the value of the sum, the gradient of the local part
    first = full[:, : d * d].reshape(b, d, d)
    second = full[:, d * d : 2 * d * d].reshape(b, d, d)
    w1, w2 = full[:, -2], full[:, -1]
    first, second = first / w1.reshape(-1, 1, 1), second / w1.reshape(-1, 1, 1)
    gy = safe_pow(_increments(y).abs(), p)
    if estimator == "nrg":
        sq = (gy - first) ** 2
    else:
        norm = (1.0 - w2 / (w1 * w1)).reshape(-1, 1, 1)
        sq = gy * gy - 2.0 * gy * first + second - (second - first * first) / norm
    values = sq.sum((-2, -1)) if pair_w is None else (pair_w * sq).sum((-2, -1))
    return values.reshape(batch_shape)


def scale_grad_for_ddp(loss: torch.Tensor, process_group=None) -> torch.Tensor:
    r"""``loss`` with the same value and ``W`` times its gradient, for DDP (``W``: the group's world size).

    A score computed with ``process_group`` gives every rank the exact gradient of the full-ensemble score with
    respect to its own members. When the members come from one model wrapped in
    ``DistributedDataParallel``, each rank's parameter gradient is then the part of the full gradient that flows
    through its own members, and DDP *averages* these over the ``W`` ranks, i.e. divides the sum by ``W``.
    Back-propagating ``scale_grad_for_ddp(loss)`` instead makes DDP's average equal to the gradient of one process
    scoring the concatenated ensemble. The value is unchanged (``loss + (W - 1) * (loss - loss.detach())``).

    Args:
        loss: a score computed with ``process_group``.
        process_group: the same group (``None``: the default group).

    Returns:
        A tensor equal to ``loss`` whose gradient is ``W`` times larger.
    """
    dist = _dist()
    world = dist.get_world_size(process_group)
    if world == 1:
        return loss
    return loss + (world - 1) * (loss - loss.detach())
