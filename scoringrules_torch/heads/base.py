"""The protocol every predictive head follows, and the checks they share.

A head turns a hidden state ``z`` of an autoregressive model into a predictive distribution over the next
continuous token, and knows how to train itself under a scoring rule. Because all heads expose the same
methods, a model swaps heads with one line::

    head = ImplicitGeneratorHead(token_dim, cond_dim)      # or GaussianHead(...), DiffusionHead(...), ...
    loss = head.loss(z, target, mask)                      # training
    tokens = head.sample(z, temperature=0.7)               # generation: one draw per position
    draws = head.sample(z, num_samples=100)                # (100, *positions, token_dim)
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from scoringrules_torch._internal.checks import check_floating, compute_dtype

__all__ = ["PredictiveHead", "ExplicitHead"]

Temperature = float | torch.Tensor


@runtime_checkable
class PredictiveHead(Protocol):
    """What every head provides: the source of truth for the head protocol.

    Attributes:
        token_dim: size ``d`` of one continuous token (the last dimension of ``target``).
        cond_dim: size ``D`` of the hidden state ``z`` that conditions the head.

    Methods:
        ``loss(z, target, mask=None, reduction="mean") -> Tensor``: the head's training loss. The
            per-position loss ``l`` is the head's scoring rule (negatively oriented) of its predictive law at
            the observed token. With weights ``w = mask`` (bool, 0/1 or float weights; all ones when ``mask`` is
            ``None``):

            - ``"mean"``: ``sum(l * w) / sum(w)``, a scalar (0 when every weight is 0);
            - ``"sum"``: ``sum(l * w)``, a scalar;
            - ``"none"``: ``l * w`` per position, shape ``(*positions)`` (0 where the weight is 0).

            Positions whose weight is 0 never influence the result or the gradients, even when ``z`` or
            ``target`` hold NaN or Inf there (padding). The loss is accumulated in float32 or wider.
        ``sample(z, temperature=1.0, *, num_samples=None) -> Tensor``: draws from the predictive law.
            Without ``num_samples``, one draw per position, ``(*positions, token_dim)``; with
            ``num_samples=m``, ``m`` independent draws per position, sample-first:
            ``(m, *positions, token_dim)`` (``m = 1`` keeps the leading dimension). ``temperature`` is a
            finite number ``>= 0`` or a tensor of such numbers broadcastable to ``positions`` (one temperature
            per position); ``temperature = 1`` samples the trained model. What the temperature scales is the
            head's own choice and is documented on each head. Draws are in ``z``'s dtype and device.

    Zero positions (``z`` of shape ``(0, cond_dim)`` and the like) raise a ``ValueError`` in both methods:
    a mean over no positions is undefined and an empty draw is almost always an indexing mistake.

    Shape:
        - z: ``(*positions, cond_dim)``
        - target: ``(*positions, token_dim)``
        - mask: ``(*positions)``, bool or 0/1 (float weights also work)
        - temperature: a number or a tensor broadcastable to ``(*positions)``
        - loss: ``()`` for ``"mean"``/``"sum"``, ``(*positions)`` for ``"none"``
        - sample: ``(*positions, token_dim)``, or ``(m, *positions, token_dim)`` with ``num_samples=m``

    Examples:
        >>> import torch
        >>> from scoringrules_torch.heads import GaussianHead, PredictiveHead
        >>> head = GaussianHead(2, 8)
        >>> isinstance(head, PredictiveHead)
        True
        >>> z, y = torch.randn(4, 3, 8), torch.randn(4, 3, 2)
        >>> head.loss(z, y, reduction="none").shape
        torch.Size([4, 3])
        >>> head.sample(z, num_samples=5, temperature=torch.full((4, 1), 0.5)).shape
        torch.Size([5, 4, 3, 2])
    """

    token_dim: int
    cond_dim: int

    def loss(
        self,
        z: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        reduction: str = "mean",
    ) -> torch.Tensor: ...

    def sample(
        self,
        z: torch.Tensor,
        temperature: Temperature = 1.0,
        *,
        num_samples: int | None = None,
    ) -> torch.Tensor: ...


@runtime_checkable
class ExplicitHead(PredictiveHead, Protocol):
    """A head with a tractable predictive law: also ``distribution(z)``.

    ``distribution(z)`` returns a ``torch.distributions.Distribution`` with batch shape ``z.shape[:-1]`` and
    event shape ``(token_dim,)``, the law that ``sample(z)`` draws from at ``temperature=1``.

    Examples:
        >>> from scoringrules_torch.heads import ExplicitHead, GaussianMixtureHead, ImplicitGeneratorHead
        >>> isinstance(GaussianMixtureHead(2, 8), ExplicitHead)
        True
        >>> isinstance(ImplicitGeneratorHead(2, 8, width=16, depth=1), ExplicitHead)
        False
    """

    def distribution(self, z: torch.Tensor) -> torch.distributions.Distribution: ...


# -- argument validation shared by the constructors ---------------------------------------------------------
def check_int(name: str, value: object, low: int) -> int:
    """``TypeError`` unless ``value`` is an int (not a bool); ``ValueError`` unless ``value >= low``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {low}; got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
    return value


def check_optional_int(name: str, value: object, low: int) -> int | None:
    """Like :func:`check_int`, with ``None`` allowed (meaning "pick the default")."""
    return None if value is None else check_int(name, value, low)


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``TypeError`` unless ``value`` is a real number; ``ValueError`` unless finite and within the bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {value!r}")
    value = float(value)
    lo = "-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "inf" if high is None else f"{high:g}" + (")" if high_open else "]")
    interval = f"{lo if low is not None else '(-inf'}, {hi if high is not None else 'inf)'}"
    ok = math.isfinite(value)
    if low is not None:
        ok = ok and (value > low if low_open else value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{name} must be a finite number in {interval}; got {value!r}")
    return value


class HeadBase(nn.Module):
    """Shared input checks, temperatures and the masked reduction (private base class of the heads)."""

    token_dim: int
    cond_dim: int

    def __init__(self, token_dim: int, cond_dim: int) -> None:
        super().__init__()
        self.token_dim = check_int("token_dim", token_dim, 1)
        self.cond_dim = check_int("cond_dim", cond_dim, 1)

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
        if z.numel() == 0:
            raise ValueError(
                f"z has zero positions (shape {tuple(z.shape)}); a head needs at least one position "
                f"(check the slicing that produced z)"
            )

    def _flatten(
        self, z: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Size]:
        """Check shapes and flatten positions: ``z (N, D)``, ``target (N, d)``, ``mask (N,)`` or None, and
        the position shape.

        Where the mask is 0, ``z`` and ``target`` are replaced by zeros, so padding that holds NaN or Inf
        cannot reach the loss or its gradients.
        """
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
        positions = z.shape[:-1]
        z = z.reshape(-1, self.cond_dim)
        target = target.reshape(-1, self.token_dim)
        if mask is not None:
            if not isinstance(mask, torch.Tensor):
                raise TypeError(f"mask must be a torch.Tensor or None; got {type(mask).__name__}")
            if mask.shape != positions:
                raise ValueError(
                    f"mask must have shape (*positions) = {tuple(positions)}; got "
                    f"{tuple(mask.shape)}"
                )
            mask = mask.reshape(-1)
            keep = (mask != 0)[:, None]
            z = torch.where(keep, z, torch.zeros((), dtype=z.dtype, device=z.device))
            target = torch.where(keep, target, torch.zeros((), dtype=target.dtype, device=z.device))
        return z, target, mask, positions

    def _reduce(
        self,
        values: torch.Tensor,
        mask: torch.Tensor | None,
        reduction: str,
        positions: torch.Size | tuple[int, ...],
    ) -> torch.Tensor:
        """Per-position ``values (N,)`` -> the protocol's ``reduction`` with the mask's weights."""
        if reduction == "mean":
            return self._masked_mean(values, mask)
        weighted = values if mask is None else self._weighted(values, mask)
        if reduction == "sum":
            return weighted.sum()
        return weighted.reshape(tuple(positions))

    @staticmethod
    def _weighted(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``values * mask`` with exact zeros (not NaN) where the mask is 0."""
        weights = mask.to(values.dtype)
        return torch.where(weights != 0, values * weights, torch.zeros_like(values))

    @classmethod
    def _masked_mean(cls, values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``sum(values * mask) / sum(mask)`` (plain mean if ``mask`` is None; 0 if the mask is empty).

        NaN or Inf in ``values`` where the mask is 0 are ignored.
        """
        if mask is None:
            return values.mean()
        weighted = cls._weighted(values, mask)
        total = mask.to(values.dtype).sum().clamp_min(torch.finfo(values.dtype).tiny)
        return weighted.sum() / total

    @staticmethod
    def _loss_dtype(z: torch.Tensor) -> torch.dtype:
        """Losses are accumulated in float32 or wider (float64 stays float64)."""
        return compute_dtype(z)

    @staticmethod
    def _check_num_samples(num_samples: int | None) -> int | None:
        if num_samples is None:
            return None
        if isinstance(num_samples, bool) or not isinstance(num_samples, int):
            raise TypeError(
                f"num_samples must be None or an int >= 1; got {type(num_samples).__name__} "
                f"{num_samples!r}"
            )
        if num_samples < 1:
            raise ValueError(f"num_samples must be None or an int >= 1; got {num_samples!r}")
        return num_samples

    @staticmethod
    def _check_temperature(
        temperature: Temperature,
        positions: torch.Size | tuple[int, ...] = (),
        *,
        name: str = "temperature",
    ) -> Temperature:
        """A finite number ``>= 0`` (returned as float) or a tensor broadcastable to ``positions``
        (returned broadcast to ``positions``)."""
        if isinstance(temperature, torch.Tensor):
            if not (temperature.is_floating_point() or temperature.dtype in _INT_DTYPES):
                raise TypeError(
                    f"{name} must be a number or a real tensor; got a tensor of dtype "
                    f"{temperature.dtype}"
                )
            try:
                shape = torch.broadcast_shapes(temperature.shape, tuple(positions))
            except RuntimeError:
                shape = None
            if shape != tuple(positions):
                raise ValueError(
                    f"{name} must be a number or a tensor broadcastable to the positions "
                    f"{tuple(positions)}; got a tensor of shape {tuple(temperature.shape)}"
                )
            if not torch.compiler.is_compiling() and temperature.device.type != "meta":
                if not bool(torch.all(torch.isfinite(temperature) & (temperature >= 0))):
                    raise ValueError(
                        f"{name} must be finite and >= 0 everywhere; got a tensor with entries "
                        "that are negative, NaN or infinite"
                    )
            return temperature.expand(tuple(positions))
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise TypeError(
                f"{name} must be a number or a tensor; got {type(temperature).__name__}"
            )
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"{name} must be a finite number >= 0; got {temperature!r}")
        return float(temperature)

    @staticmethod
    def _per_position(temperature: Temperature, like: torch.Tensor) -> Temperature:
        """A checked temperature as a float, or as a ``(*positions, 1)`` tensor in ``like``'s dtype."""
        if isinstance(temperature, torch.Tensor):
            return temperature.to(device=like.device, dtype=like.dtype)[..., None]
        return temperature


_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
