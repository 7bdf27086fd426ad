"""Argument and shape checking shared by every score (private).

Every message names the argument, what it got and what was expected: ``TypeError`` for a wrong type,
``ValueError`` for a wrong value or shape. A tensor of the wrong dtype raises :class:`DTypeError`, which is both
(a ``TypeError`` by the convention, and a ``ValueError`` as it was before that convention was settled).

Checks that read tensor values (member weights finite and non-negative, levels in (0, 1), ...) need a host
synchronisation; like the rest of the package they are skipped while ``torch.compile`` traces (the eager call
of the same code checks them), so ``torch.compile(fullgraph=True)`` keeps working.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

__all__ = [
    "DTypeError",
    "check_choice",
    "check_event_size",
    "check_floating",
    "check_member_weights",
    "check_nonneg_weights",
    "check_open_unit_interval",
    "check_positive_number",
    "check_real_number",
    "compute_dtype",
    "flatten_multivariate",
    "flatten_univariate",
    "move_sample_dim",
    "normalise_weights",
    "tracing",
]


class DTypeError(TypeError, ValueError):
    """A tensor has the wrong dtype (e.g. integer or complex where a real floating tensor is needed)."""


def tracing() -> bool:
    """True while ``torch.compile`` traces: value checks that need a host synchronisation are skipped then."""
    return torch.compiler.is_compiling()


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (message lists them)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}"
        )
    return value


def check_floating(name: str, x: torch.Tensor) -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a real floating-point tensor (:class:`DTypeError` for a bad dtype)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if x.is_complex():
        raise DTypeError(
            f"{name} must be a real floating-point tensor; got complex dtype {x.dtype} (score the real and "
            f"imaginary parts as two event components instead, e.g. torch.view_as_real({name}))"
        )
    if not x.is_floating_point():
        raise DTypeError(
            f"{name} must have a floating-point dtype (float16, bfloat16, float32 or float64); "
            f"got {x.dtype}. Convert it first, e.g. {name}.float()"
        )
    return x


def _is_real_scalar(value) -> bool:
    if isinstance(value, (bool, torch.Tensor)):
        return False
    if isinstance(value, numbers.Real):  # int, float and the numpy integer/floating scalars
        return not type(value).__name__.startswith("bool")
    return False


def check_real_number(name: str, value) -> float:
    """``value`` as a Python float: a real number, a numpy real scalar or a 0-d real tensor (``TypeError`` else).

    A tensor is read with ``.item()`` (a host synchronisation): pass Python numbers in a compiled hot path.
    """
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            raise ValueError(
                f"{name} must be a number or a 0-d tensor; got a tensor of shape {tuple(value.shape)}"
            )
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name} must be a real number; got a tensor of dtype {value.dtype}")
        return float(value.item())
    if not _is_real_scalar(value):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {value!r}")
    return float(value)


def check_positive_number(name: str, value, *, allow_inf: bool = False) -> float:
    """``value`` as a float, checked ``> 0`` and finite (a scale, a bandwidth, an order ``p``, ...)."""
    v = check_real_number(name, value)
    if not v > 0 or (v == float("inf") and not allow_inf):
        raise ValueError(f"{name} must be a positive number (finite, > 0); got {value!r}")
    return v


def check_open_unit_interval(name: str, value):
    """Check levels in the open interval (0, 1) (quantile levels, interval alphas).

    ``value`` may be a number (returned as a float), a non-empty sequence of numbers (returned as a list of floats)
    or a floating tensor (returned unchanged; its values are checked outside ``torch.compile`` tracing).
    """
    if isinstance(value, torch.Tensor):
        check_floating(name, value)
        if value.numel() == 0:
            raise ValueError(f"{name} must not be empty; got a tensor of shape {tuple(value.shape)}")
        if not tracing():
            bad = ~((value > 0) & (value < 1))
            if bool(bad.any()):
                raise ValueError(
                    f"{name} must lie in the open interval (0, 1); got {value[bad].flatten()[0].item()!r} "
                    f"among {tuple(value.shape)} values"
                )
        return value
    if isinstance(value, (str, bytes)) or not (isinstance(value, Sequence) or _is_real_scalar(value)):
        raise TypeError(
            f"{name} must be a number, a sequence of numbers or a tensor in (0, 1); got {type(value).__name__}"
        )
    values = [check_real_number(name, v) for v in value] if isinstance(value, Sequence) else None
    if values is not None and not values:
        raise ValueError(f"{name} must not be empty")
    for v in values if values is not None else [float(value)]:
        if not 0.0 < v < 1.0:
            raise ValueError(f"{name} must lie in the open interval (0, 1); got {v!r}")
    return values if values is not None else float(value)


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype scores accumulate in: the promoted input dtype, at least float32."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    return dtype


def move_sample_dim(samples: torch.Tensor, sample_dim: int) -> torch.Tensor:
    """Return ``samples`` with its sample axis moved to position 0."""
    if not isinstance(sample_dim, int) or isinstance(sample_dim, bool):
        raise TypeError(f"sample_dim must be an int; got {type(sample_dim).__name__}")
    nd = samples.dim()
    if not -nd <= sample_dim < nd:
        raise ValueError(
            f"sample_dim={sample_dim} is out of range for samples of shape {tuple(samples.shape)}"
        )
    return samples if sample_dim in (0, -nd) else samples.movedim(sample_dim, 0)


def check_event_size(name: str, x: torch.Tensor) -> None:
    """Raise ``ValueError`` if the event (last) dimension of ``x`` has size 0."""
    if x.dim() >= 1 and x.shape[-1] == 0:
        raise ValueError(
            f"{name} has an event dimension of size 0 (shape {tuple(x.shape)}); a multivariate score needs "
            f"d >= 1 components"
        )


def check_sample_target(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    event_rank: int,
    min_members: int = 1,
    samples_name: str = "samples",
    target_name: str = "target",
) -> None:
    """Check that ``samples`` is ``(m, *target.shape)`` after moving the sample axis first.

    Args:
        event_rank: 1 for multivariate scores (target ``(*batch, d)``), 0 for univariate.
        min_members: the smallest ensemble size the estimator accepts.
    """
    check_floating(samples_name, samples)
    check_floating(target_name, target)
    if event_rank == 1 and target.dim() < 2:
        # (m, B) samples with a (B,) target would silently be ONE observation with B components.
        raise ValueError(
            f"{target_name} must have shape (*batch, d) with at least one batch dimension for a multivariate "
            f"score; got shape {tuple(target.shape)}, which is ambiguous: for one d-dimensional observation "
            f"pass {target_name}[None] (shape (1, d)) and samples (m, 1, d); for B univariate observations use "
            f"the CRPS, or {target_name}[:, None] (shape (B, 1)) and samples (m, B, 1)"
        )
    if samples.dim() != target.dim() + 1 or samples.shape[1:] != target.shape:
        expected = "(m, *batch, d)" if event_rank == 1 else "(m, *batch)"
        raise ValueError(
            f"{samples_name} must have shape {expected} = (m, *{target_name}.shape) with the sample "
            f"axis first (see sample_dim); got {samples_name} shape {tuple(samples.shape)} and "
            f"{target_name} shape {tuple(target.shape)}"
        )
    if event_rank == 1:
        check_event_size(target_name, target)
    if samples.device != target.device:
        raise ValueError(
            f"{samples_name} and {target_name} must be on the same device; got "
            f"{samples.device} and {target.device}"
        )
    m = samples.shape[0]
    if m < min_members:
        raise ValueError(
            f"this estimator needs at least {min_members} samples along the sample axis; "
            f"got m={m} ({samples_name} shape {tuple(samples.shape)})"
        )


def _index(mask: torch.Tensor) -> tuple[int, ...]:
    """The index of the first ``True`` in ``mask`` (``()`` for a 0-d mask)."""
    return tuple(int(i) for i in mask.nonzero()[0]) if mask.dim() else ()


def _first_bad(t: torch.Tensor, bad: torch.Tensor) -> str:
    return repr(t[bad].flatten()[0].item())


def check_nonneg_weights(name: str, weights: torch.Tensor) -> None:
    """Value checks of a weight tensor: finite and non-negative (skipped while tracing)."""
    if tracing():
        return
    w = weights.detach()
    finite = torch.isfinite(w)
    if not bool(finite.all()):
        raise ValueError(f"{name} must be finite; got {_first_bad(w, ~finite)} (shape {tuple(w.shape)})")
    neg = w < 0
    if bool(neg.any()):
        raise ValueError(
            f"{name} must be non-negative; got {_first_bad(w, neg)} (shape {tuple(w.shape)})"
        )


def check_member_weights(
    weights: torch.Tensor,
    samples: torch.Tensor,
    *,
    event_rank: int,
    sample_dim: int = 0,
    min_positive: int = 1,
    name: str = "member_weights",
) -> torch.Tensor:
    """Validate member weights against ``samples`` as the user passed them; return them sample-first.

    Accepted shapes: ``(m,)`` (one weight per member, shared by every observation), or the shape of ``samples``
    without its ``event_rank`` trailing event dimensions, with the member axis at the same position as in
    ``samples`` (``sample_dim``). Values must be finite and non-negative with a positive sum per observation, and
    at least ``min_positive`` positive weights per observation (the ``"fair"`` estimators divide by
    ``1 - sum w_i^2``, which is 0 when one member carries all the weight); checked outside ``torch.compile``
    tracing. Returns ``(m, *batch)`` (expanded for ``(m,)``), not normalised.
    """
    check_floating(name, weights)
    nd = samples.dim()
    sd = sample_dim % nd if -nd <= sample_dim < nd else sample_dim
    m = samples.shape[sd]
    lead = tuple(samples.shape[: nd - event_rank])  # the shape the weights follow
    batch_shape = lead[:sd] + lead[sd + 1 :]
    if weights.device != samples.device:
        raise ValueError(
            f"{name} must be on the device of samples ({samples.device}); got {weights.device}"
        )
    if weights.dim() == 1 and weights.shape[0] == m and len(lead) > 1:
        weights = weights.reshape((m,) + (1,) * len(batch_shape)).expand((m, *batch_shape))
    elif tuple(weights.shape) == lead:
        weights = weights if sd == 0 else weights.movedim(sd, 0)
    else:
        where = "first" if sd == 0 else f"at sample_dim={sample_dim}"
        raise ValueError(
            f"{name} must have shape (m,) or (m, *batch) laid out like samples without the event "
            f"dimension(s), i.e. ({m},) or {lead} with the member axis {where}; got {tuple(weights.shape)} "
            f"for samples of shape {tuple(samples.shape)}"
        )
    check_nonneg_weights(name, weights)
    if not tracing():
        w = weights.detach()
        total = w.sum(0)
        zero = ~(total > 0)
        if bool(zero.any()):
            raise ValueError(
                f"{name} must have a positive sum over the members of every observation; the weights of "
                f"observation {_index(zero)} sum to {total[zero].flatten()[0].item()!r}"
            )
        if min_positive > 1:
            count = (w > 0).sum(0)
            few = count < min_positive
            if bool(few.any()):
                raise ValueError(
                    f"this estimator needs at least {min_positive} members with a positive weight in every "
                    f"observation ({name}); observation {_index(few)} has {int(count[few].flatten()[0])}"
                )
    return weights


def normalise_weights(
    weights: torch.Tensor | None, samples: torch.Tensor, *, event_rank: int, dtype: torch.dtype
) -> torch.Tensor | None:
    """Validate sample-first member weights ``(m,)`` or ``(m, *batch)`` and normalise them to sum 1.

    ``samples`` must already have its sample axis first.  Returns ``None`` for ``None``.
    """
    if weights is None:
        return None
    weights = check_member_weights(weights, samples, event_rank=event_rank, sample_dim=0)
    weights = weights.to(dtype)
    return weights / weights.sum(dim=0, keepdim=True)


def _prepare(samples, target, member_weights, *, sample_dim: int, event_rank: int, min_members: int):
    check_floating("samples", samples)
    w = None
    moved = move_sample_dim(samples, sample_dim)
    check_sample_target(moved, target, event_rank=event_rank, min_members=min_members)
    if member_weights is not None:
        w = check_member_weights(
            member_weights, samples, event_rank=event_rank, sample_dim=sample_dim, min_positive=min_members
        )
    dtype = compute_dtype(moved, target)
    if w is not None:
        w = w.to(dtype)
        w = w / w.sum(dim=0, keepdim=True)
    return moved, w, dtype


def flatten_multivariate(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    sample_dim: int,
    min_members: int,
    member_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Size]:
    """Check and flatten a multivariate ensemble.

    Returns ``x (m, B, d)``, ``y (B, d)`` and normalised weights ``(m, B)`` (or ``None``) in the compute dtype,
    plus the batch shape to restore with ``values.reshape(batch_shape)``. Member weights follow ``sample_dim``
    (see :func:`check_member_weights`).
    """
    samples, w, dtype = _prepare(
        samples, target, member_weights, sample_dim=sample_dim, event_rank=1, min_members=min_members
    )
    batch_shape = target.shape[:-1]
    m, d = samples.shape[0], target.shape[-1]
    x = samples.to(dtype).reshape(m, -1, d)
    y = target.to(dtype).reshape(-1, d)
    if w is not None:
        w = w.reshape(m, -1)
    return x, y, w, batch_shape


def flatten_univariate(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    sample_dim: int,
    min_members: int,
    member_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Size]:
    """Check and flatten a univariate ensemble: ``x (m, B)``, ``y (B,)``, weights ``(m, B)`` or ``None``."""
    samples, w, dtype = _prepare(
        samples, target, member_weights, sample_dim=sample_dim, event_rank=0, min_members=min_members
    )
    batch_shape = target.shape
    m = samples.shape[0]
    x = samples.to(dtype).reshape(m, -1)
    y = target.to(dtype).reshape(-1)
    if w is not None:
        w = w.reshape(m, -1)
    return x, y, w, batch_shape
