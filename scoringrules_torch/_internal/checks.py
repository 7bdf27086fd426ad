"""Argument and shape checking shared by every score (private).

Every message names the argument, what it got and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (message lists them)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}"
        )
    return value


def check_floating(name: str, x: torch.Tensor) -> torch.Tensor:
    """Raise ``TypeError``/``ValueError`` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if not (x.is_floating_point()):
        raise ValueError(
            f"{name} must have a floating-point dtype (float16, bfloat16, float32 or float64); "
            f"got {x.dtype}. Convert it first, e.g. {name}.float()"
        )
    return x


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
    if target.dim() < event_rank:
        raise ValueError(
            f"{target_name} must have at least {event_rank} dimension(s) (shape (*batch, d) for a "
            f"multivariate score); got shape {tuple(target.shape)}"
        )
    if samples.dim() != target.dim() + 1 or samples.shape[1:] != target.shape:
        expected = "(m, *batch, d)" if event_rank == 1 else "(m, *batch)"
        raise ValueError(
            f"{samples_name} must have shape {expected} = (m, *{target_name}.shape) with the sample "
            f"axis first (see sample_dim); got {samples_name} shape {tuple(samples.shape)} and "
            f"{target_name} shape {tuple(target.shape)}"
        )
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


def normalise_weights(
    weights: torch.Tensor | None, samples: torch.Tensor, *, event_rank: int, dtype: torch.dtype
) -> torch.Tensor | None:
    """Validate member weights of shape ``(m, *batch)`` (or ``(m,)``) and normalise them to sum 1.

    ``samples`` must already have its sample axis first.  Returns ``None`` for ``None``.
    """
    if weights is None:
        return None
    check_floating("weights", weights)
    batch_shape = samples.shape[1 : samples.dim() - event_rank]
    m = samples.shape[0]
    if weights.dim() == 1 and weights.shape[0] == m:
        weights = weights.reshape((m,) + (1,) * len(batch_shape)).expand((m, *batch_shape))
    if weights.shape != (m, *batch_shape):
        raise ValueError(
            f"weights must have shape (m,) or (m, *batch) = {(m, *batch_shape)} with the sample axis "
            f"first; got {tuple(weights.shape)}"
        )
    weights = weights.to(dtype)
    return weights / weights.sum(dim=0, keepdim=True)


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
    plus the batch shape to restore with ``values.reshape(batch_shape)``.
    """
    samples = move_sample_dim(check_floating("samples", samples), sample_dim)
    check_sample_target(samples, target, event_rank=1, min_members=min_members)
    dtype = compute_dtype(samples, target)
    batch_shape = target.shape[:-1]
    m, d = samples.shape[0], target.shape[-1]
    w = normalise_weights(member_weights, samples, event_rank=1, dtype=dtype)
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
    samples = move_sample_dim(check_floating("samples", samples), sample_dim)
    check_sample_target(samples, target, event_rank=0, min_members=min_members)
    dtype = compute_dtype(samples, target)
    batch_shape = target.shape
    m = samples.shape[0]
    w = normalise_weights(member_weights, samples, event_rank=0, dtype=dtype)
    x = samples.to(dtype).reshape(m, -1)
    y = target.to(dtype).reshape(-1)
    if w is not None:
        w = w.reshape(m, -1)
    return x, y, w, batch_shape
