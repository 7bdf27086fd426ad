"""Mixture of diagonal Gaussians head (GIVT-like), trained by the log score."""

from __future__ import annotations

import torch
from torch import distributions as D
from torch.nn import functional as F

from scoringrules_torch.functional.log import log_score
from scoringrules_torch.heads._layers import ResidualMLP
from scoringrules_torch.heads.base import HeadBase

__all__ = ["GaussianMixtureHead"]

_MIN_STD = 1e-4


class GaussianMixtureHead(HeadBase):
    r"""Mixture of ``k`` diagonal Gaussians, ``sum_j pi_j(z) N(mu_j(z), diag(sigma_j(z)^2))``.

    The read-out (linear, or a residual MLP with ``hidden``) emits ``k`` logits, ``k * d`` means and ``k * d``
    raw scales; ``sigma = softplus(raw) + 1e-4``. Unlike the other heads its output layer is *not* zero
    initialised: identical components would receive identical gradients and never separate.

    **Training**: the log score (:func:`scoringrules_torch.functional.log.log_score`; the mixture's
    ``log_prob`` is a ``logsumexp`` over components), masked mean over positions. The log score is the only one of the library's scores with a closed form for
    a mixture that stays cheap; a GMM trained this way is GIVT's head.

    **Sampling**: a component is drawn from ``pi``, then ``mu_j + temperature * sigma_j * eps``:
    ``temperature`` scales every component's standard deviation and leaves the weights alone.

    Args:
        token_dim: token size ``d``.
        cond_dim: hidden-state size ``D``.
        num_components: ``k``.
        hidden: width of a residual MLP read-out, or None for a linear read-out.
        depth: residual blocks of the MLP read-out (ignored when ``hidden`` is None).

    Shape:
        - z: ``(*positions, cond_dim)``; target: ``(*positions, token_dim)``; mask: ``(*positions)``
        - ``distribution(z)``: ``MixtureSameFamily`` with batch shape ``positions`` and event shape
          ``(token_dim,)``; ``sample``: ``(*positions, token_dim)`` in ``z``'s dtype

    Examples:
        >>> import torch
        >>> from scoringrules_torch.heads import GaussianMixtureHead
        >>> head = GaussianMixtureHead(2, 8, num_components=3)
        >>> z = torch.randn(4, 8)
        >>> head.distribution(z).event_shape, head.distribution(z).batch_shape
        (torch.Size([2]), torch.Size([4]))
        >>> head.sample(z).shape
        torch.Size([4, 2])

    References:
        Tschannen, Eastwood & Mentzer, "GIVT: Generative Infinite-Vocabulary Transformers", ECCV 2024.
        Bishop, "Mixture Density Networks", 1994.
    """

    def __init__(
        self,
        token_dim: int,
        cond_dim: int,
        *,
        num_components: int = 8,
        hidden: int | None = None,
        depth: int = 2,
    ) -> None:
        super().__init__(token_dim, cond_dim)
        if (
            not isinstance(num_components, int)
            or isinstance(num_components, bool)
            or num_components < 1
        ):
            raise ValueError(f"num_components must be a positive int; got {num_components!r}")
        if hidden is not None and (not isinstance(hidden, int) or hidden < 1):
            raise ValueError(f"hidden must be a positive int or None; got {hidden!r}")
        self.num_components = num_components
        k, d = num_components, token_dim
        self.readout = ResidualMLP(cond_dim, k + 2 * k * d, hidden, depth)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_components={self.num_components}"

    def parameters_of(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits (*positions, k), means (*positions, k, d), stds (*positions, k, d))``, float32+."""
        self._check_z(z)
        out = self.readout(z).to(self._loss_dtype(z))
        k, d = self.num_components, self.token_dim
        logits = out[..., :k]
        means = out[..., k : k + k * d].unflatten(-1, (k, d))
        stds = F.softplus(out[..., k + k * d :].unflatten(-1, (k, d))) + _MIN_STD
        return logits, means, stds

    def distribution(self, z: torch.Tensor) -> D.MixtureSameFamily:
        """The mixture law: batch shape ``positions``, event shape ``(token_dim,)``."""
        return self._law(*self.parameters_of(z))

    @staticmethod
    def _law(logits: torch.Tensor, means: torch.Tensor, stds: torch.Tensor) -> D.MixtureSameFamily:
        return D.MixtureSameFamily(
            D.Categorical(logits=logits, validate_args=False),
            D.Independent(D.Normal(means, stds, validate_args=False), 1, validate_args=False),
            validate_args=False,
        )

    def sample(self, z: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """One draw per position with component stds scaled by ``temperature``."""
        self._check_temperature(temperature)
        with torch.no_grad():
            logits, means, stds = self.parameters_of(z)
            idx = torch.distributions.Categorical(logits=logits, validate_args=False).sample()
            idx = idx[..., None, None].expand(*idx.shape, 1, self.token_dim)
            mu = means.gather(-2, idx).squeeze(-2)
            sd = stds.gather(-2, idx).squeeze(-2)
            return (mu + temperature * sd * torch.randn_like(mu)).to(z.dtype)

    def loss(
        self, z: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Masked mean over positions of ``-log p(target)``."""
        z, target, mask = self._flatten(z, target, mask)
        logits, means, stds = self.parameters_of(z)
        values = log_score(self._law(logits, means, stds), target.to(means.dtype), reduction="none")
        return self._masked_mean(values, mask)
