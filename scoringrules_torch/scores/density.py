"""Thin ``nn.Module`` wrappers of the density-based scores (logarithmic, Hyvärinen).

Each ``forward`` is one call of the functional with the stored settings.

Hyperparameters are validated when the module is built, so a typo fails at construction, not at the first batch.
"""

from __future__ import annotations

import torch

from ..functional.hyvarinen import check_event_dims, check_hyvarinen_settings, hyvarinen_score
from ..functional.log import log_score
from ._base import _Score

__all__ = ["HyvarinenScore", "LogScore"]


class LogScore(_Score):
    r"""Logarithmic score loss, :math:`-\log p(y)` (negative log-likelihood, event dimensions summed).

    See :func:`scoringrules_torch.functional.log_score`. ``forward(dist, target)`` takes a
    ``torch.distributions.Distribution`` or a log-density callable ``target -> log p(target)``.

    Args:
        event_dims: for a log-density callable, the number of trailing event dimensions of ``target``
            (default 1; the callable returns one joint log-density per observation); ``None`` for Distributions.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - dist: batch shape :math:`(*\text{batch})`, any event shape; target :math:`(*\text{batch}, *\text{event})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch import LogScore
        >>> LogScore()(torch.distributions.Normal(0.0, 1.0), torch.tensor([0.0]))  # log(2 pi) / 2
        tensor(0.9189)
    """

    def __init__(self, *, event_dims: int | None = None, reduction: str = "mean") -> None:
        super().__init__(sample_dim=0, reduction=reduction)
        self.event_dims = check_event_dims(event_dims)

    def forward(self, dist, target: torch.Tensor) -> torch.Tensor:
        return log_score(dist, target, event_dims=self.event_dims, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"event_dims={self.event_dims!r}, reduction={self.reduction!r}"


class HyvarinenScore(_Score):
    r"""Hyvärinen score loss, :math:`2\Delta_y \log p(y) + \|\nabla_y \log p(y)\|^2`.

    See :func:`scoringrules_torch.functional.hyvarinen_score` for the model kinds (Distribution, log-density or
    score callable) and the ``"exact"``, ``"hutchinson"`` and ``"sliced"`` methods.

    Args:
        method: ``"exact"`` | ``"hutchinson"`` | ``"sliced"``.
        kind: for callables, ``"log_prob"`` (``x -> log p(x)``) or ``"score"`` (``x -> grad log p(x)``).
        event_dims: number of trailing event dimensions of a callable's input (default 1).
        num_probes: random probes per observation for the stochastic methods.
        probe: ``"rademacher"`` | ``"gaussian"``.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - target: :math:`(*\text{batch}, *\text{event})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch import HyvarinenScore
        >>> HyvarinenScore()(torch.distributions.Normal(0.0, 1.0), torch.tensor([2.0]))  # -2 + 2^2
        tensor(2.)
    """

    def __init__(
        self,
        *,
        method: str = "exact",
        kind: str = "log_prob",
        event_dims: int | None = None,
        num_probes: int = 1,
        probe: str = "rademacher",
        reduction: str = "mean",
    ) -> None:
        super().__init__(sample_dim=0, reduction=reduction)
        check_hyvarinen_settings(
            method=method, kind=kind, event_dims=event_dims, num_probes=num_probes, probe=probe
        )
        self.method = method
        self.kind = kind
        self.event_dims = event_dims
        self.num_probes = num_probes
        self.probe = probe

    def forward(self, model, target: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return hyvarinen_score(
            model,
            target,
            method=self.method,
            kind=self.kind,
            event_dims=self.event_dims,
            num_probes=self.num_probes,
            probe=self.probe,
            generator=generator,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"method={self.method!r}, kind={self.kind!r}, event_dims={self.event_dims!r}, "
            f"num_probes={self.num_probes}, probe={self.probe!r}, reduction={self.reduction!r}"
        )
