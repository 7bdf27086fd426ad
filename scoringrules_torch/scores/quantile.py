"""Thin ``nn.Module`` wrappers of the quantile and interval scores (the quantile-regression training losses)."""

from __future__ import annotations

import torch

from ..functional._argcheck import as_tensor_param, check_open_unit
from ..functional.quantile import crps_quantile, interval_score, quantile_score
from ._base import _Score

__all__ = ["IntervalScore", "QuantileScore"]


def _levels_buffer(name: str, values) -> torch.Tensor:
    t = as_tensor_param(name, values, torch.empty(()), dtype=torch.get_default_dtype())
    if t.dim() > 1:
        raise ValueError(f"{name} must be a float or a 1-d sequence; got shape {tuple(t.shape)}")
    return check_open_unit(name, t)


class QuantileScore(_Score):
    r"""Quantile (pinball) loss at fixed levels, the quantile-regression training loss.

    See :func:`scoringrules_torch.functional.quantile.quantile_score`. With ``crps=True`` the loss is
    :func:`~scoringrules_torch.functional.quantile.crps_quantile` instead (twice the mean over the levels, one value
    per observation with ``reduction="none"``).

    Args:
        levels: the quantile levels in (0, 1), a float or a 1-d sequence (stored as a buffer, so it follows
            ``.to(device)``).
        quantile_dim: the axis of the prediction that indexes the levels.
        crps: return the quantile-approximated CRPS rather than the per-level scores.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - quantiles: :math:`(*\text{batch}, q)`; target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch}, q)` (:math:`(*\text{batch})` with ``crps=True``) with
          ``reduction="none"``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.scores.quantile import QuantileScore
        >>> loss_fn = QuantileScore(levels=[0.1, 0.5, 0.9])
        >>> q = torch.tensor([[0.5, 1.0, 2.0]], requires_grad=True)
        >>> loss = loss_fn(q, torch.tensor([1.5]))  # mean of 0.1, 0.25, 0.05
        >>> loss.backward()
        >>> loss
        tensor(0.1333, grad_fn=<MeanBackward0>)
    """

    levels: torch.Tensor

    def __init__(
        self, *, levels, quantile_dim: int = -1, crps: bool = False, reduction: str = "mean"
    ) -> None:
        super().__init__(sample_dim=0, reduction=reduction)
        self.register_buffer("levels", _levels_buffer("levels", levels))
        self.quantile_dim = quantile_dim
        self.crps = bool(crps)

    def forward(self, quantiles: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fn = crps_quantile if self.crps else quantile_score
        return fn(
            quantiles,
            target,
            levels=self.levels,
            quantile_dim=self.quantile_dim,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"levels={self.levels.tolist()}, crps={self.crps}, reduction={self.reduction!r}"


class IntervalScore(_Score):
    r"""Interval (Winkler) score loss of central :math:`(1-\alpha)` prediction intervals.

    See :func:`scoringrules_torch.functional.quantile.interval_score`.

    Args:
        alpha: the interval levels in (0, 1): a float, or a 1-d sequence for ``k`` intervals per observation.
        interval_dim: the axis of ``lower``/``upper`` that indexes the intervals.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - lower, upper: :math:`(*\text{batch})` or :math:`(*\text{batch}, k)`; target: :math:`(*\text{batch})`
        - output: scalar, or the intervals' shape with ``reduction="none"``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.scores.quantile import IntervalScore
        >>> IntervalScore(alpha=0.2)(torch.tensor([0.0]), torch.tensor([1.0]), torch.tensor([1.5]))
        tensor(6.)
    """

    alpha: torch.Tensor

    def __init__(self, *, alpha, interval_dim: int = -1, reduction: str = "mean") -> None:
        super().__init__(sample_dim=0, reduction=reduction)
        self.register_buffer("alpha", _levels_buffer("alpha", alpha))
        self.interval_dim = interval_dim

    def forward(self, lower: torch.Tensor, upper: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return interval_score(
            lower, upper, target, alpha=self.alpha, interval_dim=self.interval_dim, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha.tolist()}, reduction={self.reduction!r}"
