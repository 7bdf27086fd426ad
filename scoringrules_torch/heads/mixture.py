"""Mixture of diagonal Gaussians head (GIVT-like), trained by the log score."""

from __future__ import annotations

import torch
from torch import distributions as D
from torch.nn import functional as F

from scoringrules_torch._internal.reduction import check_reduction
from scoringrules_torch.functional.log import log_score
from scoringrules_torch.heads._layers import ResidualMLP
from scoringrules_torch.heads.base import HeadBase, Temperature, check_int, check_optional_int

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
    ``temperature`` (a number, or a tensor broadcastable to the positions) scales every component's standard
    deviation and leaves the weights alone; ``num_samples=m`` draws ``m`` per position.

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
        check_int("num_components", num_components, 1)
        check_optional_int("hidden", hidden, 1)
        check_int("depth", depth, 0)
        self.hidden = hidden
        self.depth = depth
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

    def sample(
        self,
        z: torch.Tensor,
        temperature: Temperature = 1.0,
        *,
        num_samples: int | None = None,
    ) -> torch.Tensor:
        """Draws with component stds scaled by ``temperature``: ``(*positions, token_dim)``, or
        ``(m, *positions, token_dim)`` with ``num_samples=m`` (the protocol of :class:`PredictiveHead`)."""
        self._check_z(z)
        temperature = self._check_temperature(temperature, z.shape[:-1])
        m = self._check_num_samples(num_samples)
        with torch.no_grad():
            logits, means, stds = self.parameters_of(z)
            sample_shape = () if m is None else (m,)
            idx = D.Categorical(logits=logits, validate_args=False).sample(sample_shape)
            idx = idx[..., None, None].expand(*idx.shape, 1, self.token_dim)
            expand = (*sample_shape, *means.shape)
            mu = means.expand(expand).gather(-2, idx).squeeze(-2)
            sd = stds.expand(expand).gather(-2, idx).squeeze(-2)
            scale = self._per_position(temperature, mu) * sd
            return (mu + scale * torch.randn_like(mu)).to(z.dtype)

    def loss(
        self,
        z: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        reduction: str = "mean",
    ) -> torch.Tensor:
        """``-log p(target)`` per position, reduced as the protocol says (see :class:`PredictiveHead`)."""
        check_reduction(reduction)
        z, target, mask, positions = self._flatten(z, target, mask)
        logits, means, stds = self.parameters_of(z)
        values = log_score(self._law(logits, means, stds), target.to(means.dtype), reduction="none")
        return self._reduce(values, mask, reduction, positions)
