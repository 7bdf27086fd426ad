"""Diagonal Gaussian head: an explicit predictive law trained by the log score, the CRPS or the energy score."""

from __future__ import annotations

import torch
from torch import distributions as D
from torch.nn import functional as F

from scoringrules_torch._internal.checks import check_choice
from scoringrules_torch._internal.reduction import check_reduction
from scoringrules_torch.functional.crps_closed import crps
from scoringrules_torch.functional.energy import ENERGY_ESTIMATORS, energy_score
from scoringrules_torch.functional.log import log_score
from scoringrules_torch.heads._layers import ResidualMLP, zero_init
from scoringrules_torch.heads.base import (
    HeadBase,
    Temperature,
    check_int,
    check_optional_int,
    check_real,
)

__all__ = ["GaussianHead"]

_SCORES = ("log", "crps", "energy")
_MIN_STD = 1e-4


class GaussianHead(HeadBase):
    r"""Diagonal Gaussian head ``N(mu(z), diag(sigma(z)^2))``.

    ``mu`` (and ``sigma`` when learned) are read out of ``z`` by a linear layer (``hidden=None``, as GIVT does)
    or by a residual MLP of width ``hidden`` and ``depth`` blocks. The read-out layer starts at zero, so the
    initial law is ``N(0, diag(softplus(0)^2))`` for a learned std.
    ``sigma = softplus(raw) + 1e-4`` when learned, or the fixed value ``std``.

    **Training** (negatively oriented, mean over the masked positions):

    - ``score="log"``: the log score ``-log N(y; mu, sigma^2)``
      (:func:`scoringrules_torch.functional.log.log_score`);
    - ``score="crps"``: the closed-form Gaussian CRPS of each dimension
      (:func:`scoringrules_torch.functional.crps_closed.crps`), summed (proper; strictly proper for the
      marginals only);
    - ``score="energy"``: the energy score (``beta``, ``estimator``) of ``num_samples`` reparameterised draws
      ``mu + sigma * eps`` — the same training signal as the implicit generator, for a fair comparison.

    **Sampling.** ``temperature`` (a number, or a tensor broadcastable to the positions) multiplies the
    standard deviation: ``mu + temperature * sigma * eps``; ``num_samples=m`` draws ``m`` per position.

    Args:
        token_dim: token size ``d``.
        cond_dim: hidden-state size ``D``.
        std: ``"learned"`` (default) or a positive float (fixed standard deviation).
        score: ``"log"`` (default), ``"crps"`` or ``"energy"``.
        num_samples: reparameterised draws per position for ``score="energy"`` (``m >= 2``).
        beta: energy-score exponent for ``score="energy"``, in ``(0, 2]`` (validated for every score).
        estimator: energy-score estimator for ``score="energy"`` (default ``"fair"``; validated for every
            score).
        hidden: width of a residual MLP read-out, or None for a linear read-out.
        depth: residual blocks of the MLP read-out (ignored when ``hidden`` is None).

    Shape:
        - z: ``(*positions, cond_dim)``; target: ``(*positions, token_dim)``; mask: ``(*positions)``
        - ``distribution(z)``: batch shape ``positions``, event shape ``(token_dim,)``, parameters in
          float32 or wider; ``sample``: ``(*positions, token_dim)`` in ``z``'s dtype

    Examples:
        >>> import torch
        >>> from scoringrules_torch.heads import GaussianHead
        >>> head = GaussianHead(2, 8, score="crps")
        >>> z, y = torch.randn(4, 8), torch.randn(4, 2)
        >>> head.distribution(z).event_shape
        torch.Size([2])
        >>> head.loss(z, y).shape
        torch.Size([])
        >>> GaussianHead(2, 8, std=0.5).distribution(z).stddev[0]
        tensor([0.5000, 0.5000])

    References:
        Gneiting & Raftery, "Strictly Proper Scoring Rules, Prediction, and Estimation", JASA 2007 (CRPS of
        the normal distribution, eq. 21).
        Tschannen, Eastwood & Mentzer, "GIVT: Generative Infinite-Vocabulary Transformers", ECCV 2024.
    """

    def __init__(
        self,
        token_dim: int,
        cond_dim: int,
        *,
        std: str | float = "learned",
        score: str = "log",
        num_samples: int = 2,
        beta: float = 1.0,
        estimator: str = "fair",
        hidden: int | None = None,
        depth: int = 2,
    ) -> None:
        super().__init__(token_dim, cond_dim)
        if isinstance(std, str):
            check_choice("std", std, ("learned",))
            self.fixed_std: float | None = None
        elif isinstance(std, (int, float)) and not isinstance(std, bool):
            self.fixed_std = check_real("std", std, low=0.0, low_open=True)
        else:
            raise TypeError(
                f"std must be 'learned' or a positive float; got {type(std).__name__} {std!r}"
            )
        check_choice("score", score, _SCORES)
        check_int("num_samples", num_samples, 2 if score == "energy" else 1)
        beta = check_real("beta", beta, low=0.0, high=2.0, low_open=True)
        check_choice("estimator", estimator, ENERGY_ESTIMATORS)
        check_optional_int("hidden", hidden, 1)
        check_int("depth", depth, 0)
        self.score = score
        self.num_samples = num_samples
        self.beta = beta
        self.estimator = estimator
        self.hidden = hidden
        self.depth = depth
        out = token_dim if self.fixed_std is not None else 2 * token_dim
        self.readout = ResidualMLP(cond_dim, out, hidden, depth)
        zero_init(self.readout.output)

    def extra_repr(self) -> str:
        std = "learned" if self.fixed_std is None else self.fixed_std
        return f"{super().extra_repr()}, std={std!r}, score={self.score!r}"

    def parameters_of(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)``, each ``(*positions, token_dim)`` in float32 or wider."""
        self._check_z(z)
        out = self.readout(z).to(self._loss_dtype(z))
        d = self.token_dim
        mean = out[..., :d]
        if self.fixed_std is None:
            std = F.softplus(out[..., d:]) + _MIN_STD
        else:
            std = torch.full_like(mean, self.fixed_std)
        return mean, std

    def distribution(self, z: torch.Tensor) -> D.Independent:
        """``Independent(Normal(mean, std), 1)``: batch shape ``positions``, event shape ``(token_dim,)``."""
        return self._law(*self.parameters_of(z))

    @staticmethod
    def _law(mean: torch.Tensor, std: torch.Tensor) -> D.Independent:
        return D.Independent(D.Normal(mean, std, validate_args=False), 1, validate_args=False)

    def sample(
        self,
        z: torch.Tensor,
        temperature: Temperature = 1.0,
        *,
        num_samples: int | None = None,
    ) -> torch.Tensor:
        """``mean + temperature * std * eps``: ``(*positions, token_dim)``, or ``(m, *positions, token_dim)``
        with ``num_samples=m``, in ``z``'s dtype (the protocol of :class:`PredictiveHead`)."""
        self._check_z(z)
        temperature = self._check_temperature(temperature, z.shape[:-1])
        m = self._check_num_samples(num_samples)
        with torch.no_grad():
            mean, std = self.parameters_of(z)
            shape = mean.shape if m is None else (m, *mean.shape)
            eps = torch.randn(shape, dtype=mean.dtype, device=mean.device)
            scale = self._per_position(temperature, mean) * std
            return (mean + scale * eps).to(z.dtype)

    def loss(
        self,
        z: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        reduction: str = "mean",
    ) -> torch.Tensor:
        """The chosen score per position, reduced as the protocol says (see :class:`PredictiveHead`)."""
        check_reduction(reduction)
        z, target, mask, positions = self._flatten(z, target, mask)
        mean, std = self.parameters_of(z)
        target = target.to(mean.dtype)
        if self.score == "log":
            values = log_score(self._law(mean, std), target, reduction="none")
        elif self.score == "crps":
            marginals = D.Normal(mean, std, validate_args=False)
            values = crps(marginals, target, reduction="none").sum(-1)
        else:
            eps = torch.randn((self.num_samples, *mean.shape), dtype=mean.dtype, device=mean.device)
            samples = mean + std * eps
            values = energy_score(
                samples, target, beta=self.beta, estimator=self.estimator, reduction="none"
            )
        return self._reduce(values, mask, reduction, positions)
