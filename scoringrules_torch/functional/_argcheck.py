"""Value checks of the quantile, categorical, Dawid-Sebastiani, ensemble-log and weighted scores (private).

Each check names the argument, what it received and what was expected. Checks that read tensor values are skipped
while ``torch.compile`` traces (they would need a host synchronisation and a graph break); eager calls run them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def _tracing() -> bool:
    return torch.compiler.is_compiling()


def _show(t: torch.Tensor, mask: torch.Tensor) -> str:
    """The first offending value of ``t`` (where ``mask``), for an error message."""
    bad = t.detach()[mask.detach()]
    return f"{bad.flatten()[0].item()!r}" + (f" (and {bad.numel() - 1} more)" if bad.numel() > 1 else "")


def as_tensor_param(
    name: str, value, like: torch.Tensor, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Convert a float, a sequence of floats or a tensor to a floating tensor on ``like``'s device."""
    dtype = like.dtype if dtype is None else dtype
    if isinstance(value, torch.Tensor):
        if not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name} must be a floating-point tensor, a float or a sequence; got dtype {value.dtype}")
        return value.to(device=like.device, dtype=dtype)
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{name} must be a float, a sequence of floats or a tensor; got {value!r}")
    if isinstance(value, (int, float)):
        return torch.tensor(float(value), dtype=dtype, device=like.device)
    if isinstance(value, Sequence) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        if len(value) == 0:
            raise ValueError(f"{name} must not be empty")
        return torch.tensor([float(v) for v in value], dtype=dtype, device=like.device)
    try:  # numpy arrays and other array-likes
        return torch.as_tensor(value, dtype=dtype, device=like.device)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"{name} must be a float, a sequence of floats or a tensor; got {type(value).__name__}"
        ) from None


def check_open_unit(name: str, t: torch.Tensor) -> torch.Tensor:
    """Raise ``ValueError`` unless every entry of ``t`` lies in the open interval (0, 1)."""
    if not _tracing():
        bad = ~((t > 0) & (t < 1))
        if bool(bad.any()):
            raise ValueError(f"{name} must lie in the open interval (0, 1); got {_show(t, bad)}")
    return t


def check_positive(name: str, t: torch.Tensor) -> torch.Tensor:
    """Raise ``ValueError`` unless every entry of ``t`` is positive and finite."""
    if not _tracing():
        bad = ~((t > 0) & torch.isfinite(t))
        if bool(bad.any()):
            raise ValueError(f"{name} must be positive and finite; got {_show(t, bad)}")
    return t


def check_nonnegative(name: str, t: torch.Tensor, *, what: str = "") -> torch.Tensor:
    """Raise ``ValueError`` unless every entry of ``t`` is non-negative and finite."""
    if not _tracing():
        bad = ~((t >= 0) & torch.isfinite(t))
        if bool(bad.any()):
            raise ValueError(f"{name}{what} must be non-negative and finite; got {_show(t, bad)}")
    return t


def check_probabilities(name: str, p: torch.Tensor, *, dim: int | None = -1) -> torch.Tensor:
    """Raise ``ValueError`` unless ``p`` is in [0, 1] and (``dim`` given) sums to one along ``dim``.

    The sum tolerance grows with the number of classes and the precision of ``p``:
    ``max(1e-6, 100 eps) * sqrt(K)``.
    """
    if _tracing():
        return p
    bad = ~((p >= 0) & (p <= 1))
    if bool(bad.any()):
        raise ValueError(f"{name} must be probabilities in [0, 1]; got {_show(p, bad)}")
    if dim is not None:
        k = p.shape[dim]
        tol = max(1e-6, 100 * torch.finfo(p.dtype).eps) * math.sqrt(max(k, 1))
        s = p.sum(dim, dtype=torch.float64 if p.dtype == torch.float64 else torch.float32)
        off = (s - 1).abs() > tol
        if bool(off.any()):
            raise ValueError(
                f"{name} must sum to 1 over its class axis (K={k}); got a sum of {_show(s, off)}"
            )
    return p


def check_class_index(name: str, target: torch.Tensor, k: int) -> torch.Tensor:
    """Raise ``ValueError`` unless an integer class index ``target`` lies in ``[0, k)``."""
    if not _tracing():
        bad = (target < 0) | (target >= k)
        if bool(bad.any()):
            raise ValueError(
                f"{name} must hold class indices in [0, {k}) (0-based, as torch.nn.functional.cross_entropy); "
                f"got {_show(target, bad)}"
            )
    return target


def check_interval(a: float, b: float) -> tuple[float, float]:
    """Validate threshold bounds ``a < b`` (floats, possibly infinite)."""
    for name, v in (("a", a), ("b", b)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise TypeError(f"{name} must be a float (possibly infinite); got {v!r}")
    if not a < b:
        raise ValueError(f"the threshold interval needs a < b; got a={a!r}, b={b!r}")
    return float(a), float(b)
