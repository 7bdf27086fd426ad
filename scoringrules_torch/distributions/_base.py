"""Shared machinery of the distribution classes (private): parameter broadcasting, ``expand``, checks."""

from __future__ import annotations

import torch
from torch.distributions import Distribution
from torch.distributions.utils import broadcast_all


class ParametricDistribution(Distribution):
    """A univariate distribution whose state is the tensors named in ``_param_names`` (all of batch shape).

    Subclasses call :meth:`_init_params` from ``__init__``; ``expand`` then works for every subclass.
    """

    _param_names: tuple[str, ...] = ()

    def _init_params(self, values, validate_args) -> None:
        tensors = broadcast_all(*values)
        floats = [t for t in tensors if t.is_floating_point()]
        dtype = floats[0].dtype if floats else torch.get_default_dtype()
        for t in floats[1:]:
            dtype = torch.promote_types(dtype, t.dtype)
        for name, t in zip(self._param_names, tensors, strict=True):
            setattr(self, name, t.to(dtype))
        Distribution.__init__(self, tensors[0].shape, validate_args=validate_args)
        if self._validate_args:
            self._check_joint()

    def _check_joint(self) -> None:
        """Constraints that involve several parameters (``ValueError``); only with ``validate_args``."""

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(type(self), _instance)
        batch_shape = torch.Size(batch_shape)
        for name in self._param_names:
            setattr(new, name, getattr(self, name).expand(batch_shape))
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def _first(self) -> torch.Tensor:
        return getattr(self, self._param_names[0])

    def _uniform(self, sample_shape) -> torch.Tensor:
        """Uniform draws on the open interval (0, 1), shaped ``sample_shape + batch_shape``."""
        shape = self._extended_shape(torch.Size(sample_shape))
        ref = self._first
        finfo = torch.finfo(ref.dtype)
        u = torch.rand(shape, dtype=ref.dtype, device=ref.device)
        return u.clamp(min=finfo.tiny, max=1.0 - finfo.eps)

    def sample(self, sample_shape=()):
        with torch.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        return self.icdf(self._uniform(sample_shape))


def require(condition: torch.Tensor, message: str) -> None:
    """Raise ``ValueError(message)`` unless every element of ``condition`` holds (validation only)."""
    if not bool(torch.as_tensor(condition).all()):
        raise ValueError(message)


def safe_log(x: torch.Tensor) -> torch.Tensor:
    """``log(x)`` where ``x > 0`` and 0 elsewhere (for masked branches: no ``nan`` gradient)."""
    return torch.log(torch.where(x > 0, x, 1.0))


MAX_SUPPORT_ELEMENTS = 2**25
"""The most ``batch x support`` elements a summation over a discrete support may allocate (about 33.5 million:
256 MiB per float64 array). Larger requests raise a ``ValueError`` instead of exhausting memory."""


def check_support_size(name: str, batch_numel: int, support_size: int) -> None:
    """Raise a ``ValueError`` naming the distribution when ``batch_numel * support_size`` exceeds the cap."""
    need = int(batch_numel) * int(support_size)
    if need > MAX_SUPPORT_ELEMENTS:
        raise ValueError(
            f"{name}: the closed form sums over a support of {int(support_size):,} points for "
            f"{int(batch_numel):,} observations ({need:,} elements), above the cap of "
            f"{MAX_SUPPORT_ELEMENTS:,} elements. Score samples instead (crps_ensemble(dist.sample((m,)), "
            f"target)), or split the batch."
        )
