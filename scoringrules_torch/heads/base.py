"""The protocol every predictive head follows, and the checks they share.

A head turns a hidden state ``z`` of an autoregressive model into a predictive distribution over the next
continuous token, and knows how to train itself under a scoring rule. Because all heads expose the same two
methods, a model swaps heads with one line::

    head = ImplicitGeneratorHead(token_dim, cond_dim)      # or GaussianHead(...), DiffusionHead(...), ...
    loss = head.loss(z, target, mask)                      # training
    tokens = head.sample(z, temperature=0.7)               # generation
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from scoringrules_torch._internal.checks import check_floating, compute_dtype

__all__ = ["PredictiveHead", "ExplicitHead"]


@runtime_checkable
class PredictiveHead(Protocol):
    """What every head provides (see the Architecture page of the docs, "Conventions for heads").

    Attributes:
        token_dim: size ``d`` of one continuous token (the last dimension of ``target``).
        cond_dim: size ``D`` of the hidden state ``z`` that conditions the head.

    Methods:
        ``loss(z, target, mask=None) -> Tensor``: the head's training loss, a scalar: the per-position loss
            (the head's scoring rule, negatively oriented) averaged over the positions where ``mask`` is
            nonzero, ``sum(l * mask) / sum(mask)``; all positions when ``mask`` is ``None``.
        ``sample(z, temperature=1.0) -> Tensor``: one draw per position, shaped like the target. What the
            temperature scales is the head's own choice and is documented on each head.

    Shape:
        - z: ``(*positions, cond_dim)``
        - target: ``(*positions, token_dim)``
        - mask: ``(*positions)``, bool or 0/1 (float weights also work)
        - sample output: ``(*positions, token_dim)``, dtype and device of ``z``

    Examples:
        >>> from scoringrules_torch.heads import GaussianHead, PredictiveHead
        >>> isinstance(GaussianHead(2, 8), PredictiveHead)
        True
    """

    token_dim: int
    cond_dim: int

    def loss(
        self, z: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor: ...

    def sample(self, z: torch.Tensor, temperature: float = 1.0) -> torch.Tensor: ...


@runtime_checkable
class ExplicitHead(PredictiveHead, Protocol):
    """A head with a tractable predictive law: also ``distribution(z)``.

    ``distribution(z)`` returns a ``torch.distributions.Distribution`` with batch shape ``z.shape[:-1]`` and
    event shape ``(token_dim,)``.

    Examples:
        >>> from scoringrules_torch.heads import ExplicitHead, GaussianMixtureHead, ImplicitGeneratorHead
        >>> isinstance(GaussianMixtureHead(2, 8), ExplicitHead)
        True
        >>> isinstance(ImplicitGeneratorHead(2, 8, width=16, depth=1), ExplicitHead)
        False
    """

    def distribution(self, z: torch.Tensor) -> torch.distributions.Distribution: ...


class HeadBase(nn.Module):
    """Shared input checks and the masked mean (private base class of the library's heads)."""

    token_dim: int
    cond_dim: int

    def __init__(self, token_dim: int, cond_dim: int) -> None:
        super().__init__()
        for name, value in (("token_dim", token_dim), ("cond_dim", cond_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        self.token_dim = token_dim
        self.cond_dim = cond_dim

    def extra_repr(self) -> str:
        return f"token_dim={self.token_dim}, cond_dim={self.cond_dim}"

    # -- checks ---------------------------------------------------------------------------------------
    def _check_z(self, z: torch.Tensor) -> None:
        check_floating("z", z)
        if z.dim() < 1 or z.shape[-1] != self.cond_dim:
            raise ValueError(
                f"z must have shape (*positions, cond_dim) with cond_dim={self.cond_dim} as the head was "
                f"built; got z shape {tuple(z.shape)}"
            )

    def _flatten(
        self, z: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Check shapes and flatten positions: ``z (N, D)``, ``target (N, d)``, ``mask (N,)`` or None."""
        self._check_z(z)
        check_floating("target", target)
        if target.dim() < 1 or target.shape[-1] != self.token_dim:
            raise ValueError(
                f"target must have shape (*positions, token_dim) with token_dim={self.token_dim} as the "
                f"head was built; got target shape {tuple(target.shape)} (last dimension "
                f"{target.shape[-1] if target.dim() else None}, expected {self.token_dim})"
            )
        if target.shape[:-1] != z.shape[:-1]:
            raise ValueError(
                f"target and z must share their position dimensions: target (*positions, "
                f"{self.token_dim}) and z (*positions, {self.cond_dim}); got target shape "
                f"{tuple(target.shape)} and z shape {tuple(z.shape)}"
            )
        if target.device != z.device:
            raise ValueError(
                f"target and z must be on the same device; got {target.device} and {z.device}"
            )
        if mask is not None:
            if not isinstance(mask, torch.Tensor):
                raise TypeError(f"mask must be a torch.Tensor or None; got {type(mask).__name__}")
            if mask.shape != z.shape[:-1]:
                raise ValueError(
                    f"mask must have shape (*positions) = {tuple(z.shape[:-1])}; got "
                    f"{tuple(mask.shape)}"
                )
            mask = mask.reshape(-1)
        return z.reshape(-1, self.cond_dim), target.reshape(-1, self.token_dim), mask

    @staticmethod
    def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``sum(values * mask) / sum(mask)`` (plain mean if ``mask`` is None; 0 if the mask is empty)."""
        if mask is None:
            return values.mean()
        weights = mask.to(values.dtype)
        weighted = torch.where(weights != 0, values * weights, torch.zeros_like(values))
        total = weights.sum().clamp_min(torch.finfo(values.dtype).tiny)
        return weighted.sum() / total

    @staticmethod
    def _loss_dtype(z: torch.Tensor) -> torch.dtype:
        """Losses are accumulated in float32 or wider (float64 stays float64)."""
        return compute_dtype(z)

    @staticmethod
    def _check_temperature(temperature: float) -> None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise TypeError(f"temperature must be a number; got {type(temperature).__name__}")
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0; got {temperature!r}")
