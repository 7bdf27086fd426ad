r"""Two-piece (split) normal and exponential distributions: a different scale on each side of the mode."""

from __future__ import annotations

import math

import torch
from torch.distributions import constraints

from ._base import ParametricDistribution

__all__ = ["TwoPieceExponential", "TwoPieceNormal"]

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2_OVER_PI = 0.5 * math.log(2.0 / math.pi)


class TwoPieceNormal(ParametricDistribution):
    r"""Two-piece normal: half-normals of scales :math:`\sigma_1` (left of :math:`\mu`) and :math:`\sigma_2` (right).

    .. math::

        p(x) = \frac{2}{\sqrt{2\pi}(\sigma_1+\sigma_2)}\exp\!\Big(-\frac{(x-\mu)^2}{2\sigma_i^2}\Big),
        \quad i = 1 \text{ for } x < \mu,\ i = 2 \text{ otherwise}.

    :math:`F(\mu) = \sigma_1/(\sigma_1+\sigma_2)`; mean :math:`\mu + \sqrt{2/\pi}(\sigma_2-\sigma_1)`, variance
    :math:`(1-2/\pi)(\sigma_2-\sigma_1)^2 + \sigma_1\sigma_2`. Reparameterised sampling by the inverse CDF.
    scoringrules' ``crps_2pnormal(obs, scale1, scale2, location)`` / ``logs_2pnormal``.

    Args:
        loc: the mode :math:`\mu`.
        scale1: scale :math:`\sigma_1 > 0` left of the mode.
        scale2: scale :math:`\sigma_2 > 0` right of the mode.
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import TwoPieceNormal
        >>> d = TwoPieceNormal(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(3.0))
        >>> d.cdf(torch.tensor(0.0))
        tensor(0.2500)
    """

    arg_constraints = {
        "loc": constraints.real,
        "scale1": constraints.positive,
        "scale2": constraints.positive,
    }
    support = constraints.real
    has_rsample = True
    _param_names = ("loc", "scale1", "scale2")

    def __init__(self, loc, scale1, scale2, validate_args=None):
        self._init_params((loc, scale1, scale2), validate_args)

    def _side(self, value):
        left = value < self.loc
        return left, torch.where(left, self.scale1, self.scale2)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        _, s = self._side(value)
        z = (value - self.loc) / s
        return _LOG_SQRT_2_OVER_PI - torch.log(self.scale1 + self.scale2) - 0.5 * z * z

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        left, s = self._side(value)
        total = self.scale1 + self.scale2
        z = (value - self.loc) / s
        lower = 2.0 * self.scale1 / total * torch.special.ndtr(z)
        upper = self.scale1 / total + 2.0 * self.scale2 / total * (torch.special.ndtr(z) - 0.5)
        return torch.where(left, lower, upper)

    def icdf(self, value):
        total = self.scale1 + self.scale2
        p0 = self.scale1 / total
        left = value < p0
        q_left = self.loc + self.scale1 * torch.special.ndtri(
            torch.where(left, value * total / (2.0 * self.scale1), 0.25)
        )
        q_right = self.loc + self.scale2 * torch.special.ndtri(
            torch.where(left, 0.75, 0.5 + (value - p0) * total / (2.0 * self.scale2))
        )
        return torch.where(left, q_left, q_right)

    @property
    def mean(self):
        return self.loc + math.sqrt(2.0 / math.pi) * (self.scale2 - self.scale1)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        d = self.scale2 - self.scale1
        return (1.0 - 2.0 / math.pi) * d * d + self.scale1 * self.scale2


class TwoPieceExponential(ParametricDistribution):
    r"""Two-piece exponential (asymmetric Laplace in the scale parametrisation).

    .. math::

        p(x) = \frac{1}{\sigma_1+\sigma_2}\exp\!\Big(-\frac{|x-\mu|}{\sigma_i}\Big),
        \quad i = 1 \text{ for } x < \mu,\ i = 2 \text{ otherwise}.

    :math:`F(\mu) = \sigma_1/(\sigma_1+\sigma_2)`; mean :math:`\mu + \sigma_2 - \sigma_1`, variance
    :math:`2(\sigma_1^3+\sigma_2^3)/(\sigma_1+\sigma_2) - (\sigma_2-\sigma_1)^2`. Reparameterised sampling by
    the inverse CDF. scoringrules' ``crps_2pexponential(obs, scale1, scale2, location)`` /
    ``logs_2pexponential``.

    Args:
        loc: the mode :math:`\mu`.
        scale1: scale :math:`\sigma_1 > 0` left of the mode.
        scale2: scale :math:`\sigma_2 > 0` right of the mode.
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import TwoPieceExponential
        >>> d = TwoPieceExponential(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(3.0))
        >>> d.mean
        tensor(2.)
    """

    arg_constraints = TwoPieceNormal.arg_constraints
    support = constraints.real
    has_rsample = True
    _param_names = ("loc", "scale1", "scale2")

    def __init__(self, loc, scale1, scale2, validate_args=None):
        self._init_params((loc, scale1, scale2), validate_args)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        s = torch.where(value < self.loc, self.scale1, self.scale2)
        return -torch.log(self.scale1 + self.scale2) - (value - self.loc).abs() / s

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        total = self.scale1 + self.scale2
        left = value < self.loc
        d = value - self.loc
        lower = self.scale1 / total * torch.exp(torch.where(left, d, 0.0) / self.scale1)
        upper = 1.0 - self.scale2 / total * torch.exp(-torch.where(left, 0.0, d) / self.scale2)
        return torch.where(left, lower, upper)

    def icdf(self, value):
        total = self.scale1 + self.scale2
        p0 = self.scale1 / total
        left = value < p0
        q_left = self.loc + self.scale1 * torch.log(torch.where(left, value, p0) / p0)
        q_right = self.loc - self.scale2 * torch.log(
            torch.where(left, 1.0 - p0, 1.0 - value) * total / self.scale2
        )
        return torch.where(left, q_left, q_right)

    @property
    def mean(self):
        return self.loc + self.scale2 - self.scale1

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        s1, s2 = self.scale1, self.scale2
        d = s2 - s1
        return 2.0 * (s1**3 + s2**3) / (s1 + s2) - d * d
