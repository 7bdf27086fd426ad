"""Thin ``nn.Module`` wrappers of the sample-based scores (energy, CRPS, kernel, variogram).

Each ``forward`` is one call of the functional with the stored settings.

Hyperparameters are validated when the module is built, so a typo fails at construction, not at the first batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._internal.checks import (
    check_choice,
    check_floating,
    check_nonneg_weights,
    check_positive_number,
)
from .._internal.ensemble_ext import check_alpha
from .._internal.nan_policy import check_nan_policy
from .._internal.reduction import reduce
from ..functional.crps_closed import crps
from ..functional.crps_sample import CRPS_ESTIMATORS, crps_ensemble
from ..functional.energy import ENERGY_ESTIMATORS, check_beta, energy_score
from ..functional.kernel import KERNEL_ESTIMATORS, KERNELS, KernelFn, check_bandwidth, kernel_score
from ..functional.variogram import VARIOGRAM_ESTIMATORS, variogram_score
from ._base import _Score

__all__ = ["CRPS", "EnergyScore", "KernelScore", "VariogramScore"]


class EnergyScore(_Score):
    r"""Energy score loss, :math:`\mathbb{E}\|X - y\|^\beta - \tfrac12\mathbb{E}\|X - X'\|^\beta`.

    See :func:`scoringrules_torch.functional.energy_score` for the definition, estimators and numerics.

    Args:
        beta: exponent in :math:`(0, 2]` (strictly proper below 2).
        estimator: ``"fair"`` | ``"nrg"`` | ``"pairs"`` | ``"akr"`` | ``"akr_circperm"`` | ``"afes"``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        alpha, nan_policy, process_group: as in :func:`scoringrules_torch.functional.energy_score`.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch import EnergyScore
        >>> loss_fn = EnergyScore(estimator="pairs")
        >>> samples = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]]], requires_grad=True)
        >>> loss = loss_fn(samples, torch.zeros(1, 2))
        >>> loss.backward()
        >>> loss
        tensor(0., grad_fn=<MeanBackward0>)
    """

    def __init__(
        self,
        *,
        beta: float = 1.0,
        estimator: str = "fair",
        sample_dim: int = 0,
        reduction: str = "mean",
        alpha: float | None = None,
        nan_policy: str = "propagate",
        process_group=None,
    ) -> None:
        super().__init__(sample_dim=sample_dim, reduction=reduction)
        self.beta = check_beta(beta)
        self.estimator = check_choice("estimator", estimator, ENERGY_ESTIMATORS)
        self.alpha = check_alpha(alpha, estimator, "afes")
        self.nan_policy = check_nan_policy(nan_policy)
        self.process_group = process_group

    def forward(
        self, samples: torch.Tensor, target: torch.Tensor, member_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return energy_score(
            samples,
            target,
            beta=self.beta,
            estimator=self.estimator,
            member_weights=member_weights,
            sample_dim=self.sample_dim,
            reduction=self.reduction,
            alpha=self.alpha,
            nan_policy=self.nan_policy,
            process_group=self.process_group,
        )

    def extra_repr(self) -> str:
        return f"beta={self.beta}, estimator={self.estimator!r}, reduction={self.reduction!r}"


class CRPS(_Score):
    r"""Continuous ranked probability score loss for univariate forecasts.

    ``forward(prediction, target)`` takes either an ensemble ``(m, *batch)`` (see
    :func:`scoringrules_torch.functional.crps_ensemble`) or a ``torch.distributions.Distribution`` with batch shape
    ``batch`` (closed form from the registry, see :func:`scoringrules_torch.functional.crps`). A univariate head's
    ``Independent(base, 1)`` with event shape ``(1,)`` is accepted with a target ``(*batch, 1)``: its CRPS is the
    CRPS of ``base``, with output ``(*batch)``.

    Args:
        estimator: ensemble estimator, ``"fair"`` | ``"nrg"`` | ``"pwm"`` | ``"int"`` | ``"qd"`` | ``"akr"`` |
            ``"akr_circperm"`` | ``"afcrps"`` (ignored for distributions).
        sample_dim: the axis of an ensemble that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        alpha, nan_policy, process_group: as in :func:`scoringrules_torch.functional.crps_ensemble` (ensembles
            only).

    Shape:
        - prediction: :math:`(m, *\text{batch})` or a Distribution with batch shape :math:`(*\text{batch})`
        - target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch import CRPS
        >>> CRPS()(torch.tensor([[0.0], [1.0]]), torch.tensor([0.0]))
        tensor(0.)
        >>> normal = torch.distributions.Normal(torch.tensor([0.0]), torch.tensor([1.0]))
        >>> CRPS()(normal, torch.tensor([0.0]))  # (sqrt(2) - 1) / sqrt(pi)
        tensor(0.2337)
    """

    def __init__(
        self,
        *,
        estimator: str = "fair",
        sample_dim: int = 0,
        reduction: str = "mean",
        alpha: float | None = None,
        nan_policy: str = "propagate",
        process_group=None,
    ) -> None:
        super().__init__(sample_dim=sample_dim, reduction=reduction)
        self.estimator = check_choice("estimator", estimator, CRPS_ESTIMATORS)
        self.alpha = check_alpha(alpha, estimator, "afcrps")
        self.nan_policy = check_nan_policy(nan_policy)
        self.process_group = process_group

    def forward(self, prediction, target: torch.Tensor, member_weights: torch.Tensor | None = None):
        if isinstance(prediction, torch.distributions.Distribution):
            base = _univariate_base(prediction)
            if base is not None:  # a head's univariate distribution: event shape (1,), target (..., 1)
                if not isinstance(target, torch.Tensor) or target.dim() < 1 or target.shape[-1] != 1:
                    got = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
                    raise ValueError(
                        f"target must have shape (*batch, 1) for a distribution with event shape (1,); got {got}"
                    )
                return reduce(crps(base, target, reduction="none").squeeze(-1), self.reduction)
            return crps(prediction, target, reduction=self.reduction)
        return crps_ensemble(
            prediction,
            target,
            estimator=self.estimator,
            member_weights=member_weights,
            sample_dim=self.sample_dim,
            reduction=self.reduction,
            alpha=self.alpha,
            nan_policy=self.nan_policy,
            process_group=self.process_group,
        )

    def extra_repr(self) -> str:
        return f"estimator={self.estimator!r}, reduction={self.reduction!r}"


def _univariate_base(dist: torch.distributions.Distribution) -> torch.distributions.Distribution | None:
    """The scalar distribution inside ``Independent(base, 1)`` with event shape ``(1,)`` (as univariate heads
    return), or ``None``."""
    if (
        isinstance(dist, torch.distributions.Independent)
        and dist.reinterpreted_batch_ndims == 1
        and tuple(dist.event_shape) == (1,)
        and tuple(dist.base_dist.event_shape) == ()
    ):
        return dist.base_dist
    return None


class KernelScore(_Score):
    r"""Kernel score loss, :math:`\tfrac12\mathbb{E}k(X,X') + \tfrac12 k(y,y) - \mathbb{E}k(X,y)`.

    See :func:`scoringrules_torch.functional.kernel_score`.

    Args:
        kernel: ``"gaussian"`` | ``"laplacian"`` | ``"inverse_multiquadric"`` | ``"energy"`` or a callable.
        bandwidth: positive float, ``"median"``, or a sequence of positive floats (multi-scale).
        beta: exponent of the ``"energy"`` kernel.
        estimator: ``"fair"`` | ``"nrg"`` | ``"akr"`` | ``"akr_circperm"``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        nan_policy, process_group: as in :func:`scoringrules_torch.functional.kernel_score`.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch import KernelScore
        >>> KernelScore(bandwidth=[0.5, 1.0, 2.0])(torch.zeros(4, 1, 3), torch.zeros(1, 3))
        tensor(0.)
    """

    def __init__(
        self,
        *,
        kernel: str | KernelFn = "gaussian",
        bandwidth: float | str | Sequence[float] = 1.0,
        beta: float = 1.0,
        estimator: str = "fair",
        sample_dim: int = 0,
        reduction: str = "mean",
        nan_policy: str = "propagate",
        process_group=None,
    ) -> None:
        super().__init__(sample_dim=sample_dim, reduction=reduction)
        self.nan_policy = check_nan_policy(nan_policy)
        self.process_group = process_group
        # Validated here without calling the kernel (a user's kernel may be expensive or stateful).
        if not callable(kernel):
            check_choice("kernel", kernel, KERNELS)
        self.kernel = kernel
        check_bandwidth(bandwidth)
        self.bandwidth = bandwidth
        self.beta = check_beta(beta) if kernel == "energy" else beta
        self.estimator = check_choice("estimator", estimator, KERNEL_ESTIMATORS)

    def forward(
        self, samples: torch.Tensor, target: torch.Tensor, member_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return kernel_score(
            samples,
            target,
            kernel=self.kernel,
            bandwidth=self.bandwidth,
            beta=self.beta,
            estimator=self.estimator,
            member_weights=member_weights,
            sample_dim=self.sample_dim,
            reduction=self.reduction,
            nan_policy=self.nan_policy,
            process_group=self.process_group,
        )

    def extra_repr(self) -> str:
        return f"kernel={self.kernel!r}, bandwidth={self.bandwidth!r}, estimator={self.estimator!r}"


class VariogramScore(_Score):
    r"""Variogram score loss of order :math:`p` (proper, not strictly proper).

    See :func:`scoringrules_torch.functional.variogram_score`.

    Args:
        p: order :math:`p > 0`.
        weights: optional pair weights ``(d, d)`` (registered as a buffer, so it follows ``.to(device)``).
        estimator: ``"nrg"`` | ``"fair"``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        nan_policy, process_group: as in :func:`scoringrules_torch.functional.variogram_score`.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch import VariogramScore
        >>> VariogramScore(p=1.0)(torch.zeros(2, 1, 2), torch.tensor([[0.0, 1.0]]))
        tensor(2.)
    """

    weights: torch.Tensor | None

    def __init__(
        self,
        *,
        p: float = 0.5,
        weights: torch.Tensor | None = None,
        estimator: str = "nrg",
        sample_dim: int = 0,
        reduction: str = "mean",
        nan_policy: str = "propagate",
        process_group=None,
    ) -> None:
        super().__init__(sample_dim=sample_dim, reduction=reduction)
        self.nan_policy = check_nan_policy(nan_policy)
        self.process_group = process_group
        self.p = check_positive_number("p", p)
        self.estimator = check_choice("estimator", estimator, VARIOGRAM_ESTIMATORS)
        if weights is not None:
            check_floating("weights", weights)
            if weights.dim() < 2 or weights.shape[-1] != weights.shape[-2]:
                raise ValueError(
                    f"weights must have shape (d, d) or (*batch, d, d); got {tuple(weights.shape)}"
                )
            check_nonneg_weights("weights", weights)
        self.register_buffer("weights", weights)

    def forward(
        self, samples: torch.Tensor, target: torch.Tensor, member_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return variogram_score(
            samples,
            target,
            p=self.p,
            weights=self.weights,
            estimator=self.estimator,
            member_weights=member_weights,
            sample_dim=self.sample_dim,
            reduction=self.reduction,
            nan_policy=self.nan_policy,
            process_group=self.process_group,
        )

    def extra_repr(self) -> str:
        return f"p={self.p}, estimator={self.estimator!r}, reduction={self.reduction!r}"
