"""The keywords the ensemble scores share beyond the plain score (private).

``alpha`` (almost-fair estimators), ``nan_policy`` and ``process_group`` are handled here, so that each score
function only forwards them: :func:`ensemble_extensions` gathers the members of a distributed ensemble, applies
the NaN policy on the full ensemble, calls the score once with ``reduction="none"`` and reduces.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .checks import move_sample_dim
from .distributed import (
    exchange_header,
    gather_members,
    variogram_by_moments,
    variogram_moments_cost,
)
from .nan_policy import check_nan_policy, finish, omit_members, raise_on_nan
from .reduction import reduce

__all__ = ["afcrps_values", "almost_fair_factor", "check_alpha", "ensemble_extensions"]

#: ``"auto"``: the variogram score exchanges moments when they are fewer bytes than the members; ``"always"``
#: forces the moments (used by the tests to exercise both paths).
MOMENTS_EXCHANGE = "auto"

#: The AIFS-CRPS default (Lang et al. 2024).
DEFAULT_ALPHA = 0.95


def check_alpha(alpha: float | None, estimator: str, names: str | tuple[str, ...]) -> float | None:
    """``alpha`` for the almost-fair estimators ``names``: in (0, 1], default 0.95; refused for the others."""
    names = (names,) if isinstance(names, str) else names
    if estimator not in names:
        if alpha is not None:
            raise ValueError(
                f"alpha is the weight of the almost-fair estimator {' / '.join(map(repr, names))}; "
                f"it is not used by estimator={estimator!r}"
            )
        return None
    if alpha is None:
        return DEFAULT_ALPHA
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be a number in (0, 1] (1 is the fair estimator); got {alpha!r}")
    return float(alpha)


def almost_fair_factor(alpha: float, m: int, w: torch.Tensor | None) -> torch.Tensor | float:
    """Factor of the plain (V-statistic) pair sum: ``alpha / (1 - sum w^2) + 1 - alpha``.

    With equal weights this is ``(m - 1 + alpha) / (m - 1) = (1 - eps) m / (m - 1)``, ``eps = (1 - alpha) / m``.
    """
    if w is None:
        return alpha * m / (m - 1) + (1.0 - alpha)
    return alpha / (1.0 - (w * w).sum(0)) + (1.0 - alpha)


def afcrps_values(nrg: torch.Tensor, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, alpha: float):
    """Almost-fair CRPS from the ``"nrg"`` values: ``acc - (acc - nrg) * factor``; ``x (m, B)``, ``y (B,)``."""
    err = (x - y.unsqueeze(0)).abs()
    acc = err.mean(0) if w is None else (w * err).sum(0)
    return acc - (acc - nrg) * almost_fair_factor(alpha, x.shape[0], w)


def ensemble_extensions(
    fn: Callable[..., torch.Tensor],
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    event_rank: int,
    sample_dim: int,
    member_weights: torch.Tensor | None,
    reduction: str,
    nan_policy: str,
    process_group,
    min_members: int = 1,
    moments: bool = False,
    **kwargs,
) -> torch.Tensor:
    """Score ``fn(samples, target, **kwargs)`` with ``nan_policy`` and/or ``process_group``.

    ``fn`` is the public score itself; it is called once, on the full (gathered) ensemble, with
    ``nan_policy="propagate"``, ``process_group=None``, ``sample_dim=0`` and ``reduction="none"``.
    With ``moments=True`` (the variogram score) and ``nan_policy="propagate"``, the ranks exchange the moments the
    score needs instead of the members when that is fewer bytes (see ``docs/distributed.md``).
    """
    check_nan_policy(nan_policy)
    if not isinstance(samples, torch.Tensor):
        raise TypeError(f"samples must be a torch.Tensor; got {type(samples).__name__}")
    x = move_sample_dim(samples, sample_dim)
    w = member_weights
    if isinstance(w, torch.Tensor) and w.dim() > 1:
        # laid out like the samples without the event dims (member axis at sample_dim): sample-first, as x.
        # Values are checked by the score on the whole (gathered) ensemble: a rank's shard may hold no member.
        w = w.movedim(sample_dim % samples.dim(), 0)
    if process_group is not None:
        counts = exchange_header(x, w, process_group)
        if moments and nan_policy == "propagate" and x.dim() >= 2:
            b = math.prod(x.shape[1:-1])
            by_members, by_moments = variogram_moments_cost(b, x.shape[-1], max(counts))
            if by_moments < by_members or MOMENTS_EXCHANGE == "always":
                values = variogram_by_moments(x, target, w, counts, process_group, **kwargs)
                return reduce(values, reduction)
        x, w, _ = gather_members(x, w, process_group, counts)
    estimator = kwargs.get("estimator")
    ok = None
    if nan_policy == "raise":
        raise_on_nan(x, target)
    elif nan_policy == "omit":
        if isinstance(target, torch.Tensor) and target.dim() >= event_rank and x.shape[1:] == target.shape:
            x, target, w, ok = omit_members(
                x, target, w, event_rank=event_rank, min_members=min_members, estimator=estimator
            )
    values = fn(x, target, member_weights=w, sample_dim=0, reduction="none", **kwargs)
    return reduce(values, reduction) if ok is None else finish(values, ok, reduction)
