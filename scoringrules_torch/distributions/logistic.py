r"""The logistic distribution and the two log-transformed families of scoringrules (log-logistic, log-Laplace)."""

from __future__ import annotations

import math

import torch
from torch.distributions import (
    Distribution,
    ExpTransform,
    Laplace,
    TransformedDistribution,
    constraints,
)
from torch.distributions.utils import broadcast_all

__all__ = ["LogLaplace", "LogLogistic", "Logistic"]


class Logistic(Distribution):
    r"""Logistic distribution with location ``loc`` and scale ``scale``.

    .. math::

        F(x) = \sigma\!\left(\frac{x - \mu}{s}\right), \qquad
        \log p(x) = -|z| - 2\log\big(1 + e^{-|z|}\big) - \log s, \quad z = \frac{x-\mu}{s}.

    Mean and mode :math:`\mu`, variance :math:`s^2\pi^2/3`. Reparameterised sampling by the inverse CDF.

    Args:
        loc: location :math:`\mu`.
        scale: scale :math:`s > 0`.
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import Logistic
        >>> d = Logistic(torch.tensor(0.0), torch.tensor(1.0))
        >>> d.cdf(torch.tensor(0.0))
        tensor(0.5000)
        >>> round(d.log_prob(torch.tensor(0.0)).item(), 4)  # -2 log 2
        -1.3863
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Logistic, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        super(Logistic, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self.scale.pow(2) * (math.pi**2 / 3.0)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(torch.Size(sample_shape))
        finfo = torch.finfo(self.loc.dtype)
        u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
        u = u.clamp(min=finfo.tiny, max=1.0 - finfo.eps)
        return self.loc + self.scale * (torch.log(u) - torch.log1p(-u))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -z.abs() - 2.0 * torch.log1p(torch.exp(-z.abs())) - torch.log(self.scale)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return torch.sigmoid((value - self.loc) / self.scale)

    def icdf(self, value):
        return self.loc + self.scale * torch.logit(value)

    def entropy(self):
        return torch.log(self.scale) + 2.0


class _LogOf(TransformedDistribution):
    """``exp`` of a location-scale base; ``log_prob`` is ``-inf`` (not ``nan``) at non-positive values."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True
    _base_cls: type = Distribution

    def __init__(self, loc, scale, validate_args=None):
        base = self._base_cls(loc, scale, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(type(self), _instance)
        return super().expand(batch_shape, _instance=new)

    @property
    def loc(self):
        return self.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.scale

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        pos = value > 0
        safe = torch.where(pos, value, 1.0)
        lp = self.base_dist.log_prob(torch.log(safe)) - torch.log(safe)
        return torch.where(pos, lp, -torch.inf)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        pos = value > 0
        safe = torch.where(pos, value, 1.0)
        return torch.where(pos, self.base_dist.cdf(torch.log(safe)), 0.0)


class LogLaplace(_LogOf):
    r"""Log-Laplace distribution: :math:`X = e^{W}` with :math:`W \sim \mathrm{Laplace}(\mu, b)`.

    .. math::

        F(x) = \tfrac12 e^{z} \ (z < 0), \qquad 1 - \tfrac12 e^{-z} \ (z \ge 0), \qquad
        z = \frac{\log x - \mu}{b},\ x > 0.

    Mean :math:`e^\mu/(1-b^2)` for :math:`b < 1`; the CRPS is finite for :math:`b < 1` only. scoringrules'
    ``crps_loglaplace(obs, locationlog=loc, scalelog=scale)``.

    Args:
        loc: location of :math:`\log X` (``locationlog``).
        scale: scale :math:`b > 0` of :math:`\log X` (``scalelog``).
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import LogLaplace
        >>> LogLaplace(torch.tensor(0.0), torch.tensor(0.5)).cdf(torch.tensor(1.0))
        tensor(0.5000)
    """

    _base_cls = Laplace

    @property
    def mean(self):
        b = self.scale
        return torch.where(b < 1, torch.exp(self.loc) / (1.0 - b * b), torch.inf)


class LogLogistic(_LogOf):
    r"""Log-logistic distribution: :math:`X = e^{W}` with :math:`W \sim \mathrm{Logistic}(\mu, s)`.

    .. math::

        F(x) = \frac{1}{1 + e^{-z}}, \qquad z = \frac{\log x - \mu}{s},\ x > 0.

    Mean :math:`e^\mu B(1+s, 1-s) = e^\mu \pi s/\sin(\pi s)` for :math:`s < 1`; the CRPS is finite for
    :math:`s < 1` only. scoringrules' ``crps_loglogistic(obs, mulog=loc, sigmalog=scale)``.

    Args:
        loc: location of :math:`\log X` (``mulog``).
        scale: scale :math:`s > 0` of :math:`\log X` (``sigmalog``).
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import LogLogistic
        >>> LogLogistic(torch.tensor(0.0), torch.tensor(0.5)).icdf(torch.tensor(0.5))
        tensor(1.)
    """

    _base_cls = Logistic

    @property
    def mean(self):
        s = self.scale
        s_safe = torch.where(s < 1, s, 0.5)
        value = torch.exp(self.loc + torch.lgamma(1.0 + s_safe) + torch.lgamma(1.0 - s_safe))
        return torch.where(s < 1, value, torch.inf)
