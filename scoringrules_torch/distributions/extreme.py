r"""Extreme-value families with a shape parameter :math:`\xi`: GEV, and the generalized Pareto and exponential
distributions with a point mass at their lower bound.

The shape maps :math:`\log(1+\xi z)/\xi` and :math:`(e^{\xi w}-1)/\xi` are evaluated by series near
:math:`\xi z = 0`, so every method is continuous, with its derivatives, through :math:`\xi = 0` (Gumbel,
exponential).
"""

from __future__ import annotations

import math

import torch
from torch.distributions import constraints

from .._internal.special import EULER_GAMMA, expm1_div, log1p_div
from ._base import ParametricDistribution, safe_log

__all__ = ["ExponentialWithMass", "GeneralizedExtremeValue", "GeneralizedParetoWithMass"]

_ZETA2 = math.pi**2 / 6.0
_ZETA3 = 1.2020569031595942853997381615114499907649862923405
_SMALL_XI = 1e-5


def _gamma_ratio_terms(xi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`\log\Gamma(1-\xi)/\xi` and :math:`(\log\Gamma(1-2\xi) - 2\log\Gamma(1-\xi))/\xi^2`, series near 0."""
    small = xi.abs() < _SMALL_XI
    xs = torch.where(small, 1.0, xi)
    lg1 = torch.lgamma(1.0 - xs)
    lg2 = torch.lgamma(1.0 - 2.0 * xs)
    a = torch.where(small, EULER_GAMMA + 0.5 * _ZETA2 * xi + _ZETA3 / 3.0 * xi * xi, lg1 / xs)
    b = torch.where(small, _ZETA2 + 2.0 * _ZETA3 * xi, (lg2 - 2.0 * lg1) / (xs * xs))
    return a, b


class GeneralizedExtremeValue(ParametricDistribution):
    r"""Generalized extreme value distribution with location :math:`\mu`, scale :math:`\sigma` and shape :math:`\xi`.

    .. math::

        F(x) = \exp\!\big(-(1 + \xi z)^{-1/\xi}\big), \qquad z = \frac{x - \mu}{\sigma},\quad 1 + \xi z > 0,

    the Gumbel law :math:`\exp(-e^{-z})` at :math:`\xi = 0` (continuously). Support
    :math:`[\mu - \sigma/\xi, \infty)` for :math:`\xi > 0` (Fréchet type), :math:`(-\infty, \mu - \sigma/\xi]`
    for :math:`\xi < 0` (Weibull type), the real line at :math:`\xi = 0`. Mean
    :math:`\mu + \sigma(\Gamma(1-\xi) - 1)/\xi` (:math:`\xi < 1`), variance
    :math:`\sigma^2(\Gamma(1-2\xi) - \Gamma(1-\xi)^2)/\xi^2` (:math:`\xi < 1/2`). Note the sign convention:
    scipy's ``genextreme`` uses :math:`c = -\xi`. Reparameterised sampling by the inverse CDF.
    scoringrules' ``crps_gev(obs, shape=concentration, location=loc, scale=scale)`` / ``logs_gev``.

    Args:
        loc: location :math:`\mu`.
        scale: scale :math:`\sigma > 0`.
        concentration: shape :math:`\xi` (scoringrules' ``shape``).
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import GeneralizedExtremeValue
        >>> d = GeneralizedExtremeValue(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(0.2))
        >>> round(d.cdf(torch.tensor(0.0)).item(), 6)  # exp(-1) at the location
        0.367879
    """

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "concentration": constraints.real,
    }
    has_rsample = True
    _param_names = ("loc", "scale", "concentration")

    def __init__(self, loc, scale, concentration, validate_args=None):
        self._init_params((loc, scale, concentration), validate_args)

    def _endpoint(self) -> tuple[torch.Tensor, torch.Tensor]:
        xi = self.concentration
        end = self.loc - self.scale / torch.where(xi == 0, 1.0, xi)
        low = torch.where(xi > 0, end, -torch.inf)
        high = torch.where(xi < 0, end, torch.inf)
        return low, high

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(*self._endpoint())

    def _log_t(self, value):
        """``(L, inside)`` with :math:`L = \\log(1+\\xi z)/\\xi` (0 outside the support) and the mask."""
        xi = self.concentration
        z = (value - self.loc) / self.scale
        inside = 1.0 + xi * z > 0
        return log1p_div(xi, torch.where(inside, z, 0.0)), inside

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        lt, inside = self._log_t(value)
        lp = -torch.log(self.scale) - (1.0 + self.concentration) * lt - torch.exp(-lt)
        return torch.where(inside, lp, -torch.inf)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        lt, inside = self._log_t(value)
        outside = (self.concentration < 0).to(
            lt.dtype
        )  # above the upper end: 1; below the lower end: 0
        return torch.where(inside, torch.exp(-torch.exp(-lt)), outside)

    def icdf(self, value):
        w = -torch.log(-torch.log(value))
        return self.loc + self.scale * expm1_div(self.concentration, w)

    @property
    def mean(self):
        xi = self.concentration
        a, _ = _gamma_ratio_terms(xi)
        value = self.loc + self.scale * expm1_div(xi, a)
        return torch.where(xi < 1, value, torch.inf)

    @property
    def variance(self):
        xi = self.concentration
        a, b = _gamma_ratio_terms(xi)
        g1sq = torch.exp(2.0 * xi * a)
        value = self.scale.pow(2) * g1sq * expm1_div(xi * xi, b)
        return torch.where(xi < 0.5, value, torch.inf)


class GeneralizedParetoWithMass(ParametricDistribution):
    r"""Generalized Pareto distribution with a point mass :math:`M` at its lower bound :math:`\mu`.

    .. math::

        F(x) = M + (1 - M)\big(1 - (1 + \xi z)^{-1/\xi}\big), \qquad z = \frac{x-\mu}{\sigma} \ge 0,

    (:math:`1 - e^{-z}` at :math:`\xi = 0`, continuously); support :math:`[\mu, \infty)`, or
    :math:`[\mu, \mu - \sigma/\xi]` for :math:`\xi < 0`. With ``mass=0`` this is
    ``torch.distributions.GeneralizedPareto``. scoringrules' ``crps_gpd(obs, shape=concentration,
    location=loc, scale=scale, mass=mass)``.

    ``log_prob`` is the log-density with respect to Lebesgue measure plus a unit atom at :math:`\mu`: at
    :math:`x = \mu` it is :math:`\log M` when :math:`M > 0`, elsewhere in the support
    :math:`\log(1-M) + \log p_\text{GPD}(x)`; its negative is a strictly proper (mixed) logarithmic score.
    Sampling is reparameterised by the inverse CDF (draws at the atom carry no gradient to the shape or scale).

    Args:
        loc: location (lower bound) :math:`\mu`.
        scale: scale :math:`\sigma > 0`.
        concentration: shape :math:`\xi` (scoringrules' ``shape``).
        mass: point mass :math:`M \in [0, 1)` at :math:`\mu`.
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import GeneralizedParetoWithMass
        >>> d = GeneralizedParetoWithMass(0.0, 1.0, 0.25, mass=0.2)
        >>> d.cdf(torch.tensor(0.0)), d.mean
        (tensor(0.2000), tensor(1.0667))
    """

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "concentration": constraints.real,
        "mass": constraints.half_open_interval(0.0, 1.0),
    }
    has_rsample = True
    _param_names = ("loc", "scale", "concentration", "mass")

    def __init__(self, loc, scale, concentration, mass=0.0, validate_args=None):
        self._init_params((loc, scale, concentration, mass), validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        xi = self.concentration
        end = self.loc - self.scale / torch.where(xi == 0, -1.0, xi)
        return constraints.interval(self.loc, torch.where(xi < 0, end, torch.inf))

    def _log_t(self, value):
        xi = self.concentration
        z = (value - self.loc) / self.scale
        inside = (z >= 0) & (1.0 + xi * z > 0)
        return log1p_div(xi, torch.where(inside, z, 0.0)), inside, z

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        lt, inside, z = self._log_t(value)
        m = self.mass
        lp = torch.log1p(-m) - torch.log(self.scale) - (1.0 + self.concentration) * lt
        lp = torch.where((z == 0) & (m > 0), safe_log(m), lp)
        return torch.where(inside, lp, -torch.inf)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        lt, inside, z = self._log_t(value)
        m = self.mass
        value_in = m + (1.0 - m) * -torch.expm1(-lt)
        return torch.where(inside, value_in, (z > 0).to(lt.dtype))

    def icdf(self, value):
        m = self.mass
        atom = value <= m
        q = torch.where(atom, 0.0, (value - m) / (1.0 - m))
        z = expm1_div(self.concentration, -torch.log1p(-q))
        return self.loc + self.scale * z

    @property
    def mean(self):
        xi = self.concentration
        xs = torch.where(xi < 1, xi, 0.0)
        value = self.loc + (1.0 - self.mass) * self.scale / (1.0 - xs)
        return torch.where(xi < 1, value, torch.inf)

    @property
    def variance(self):
        xi, m = self.concentration, self.mass
        xs = torch.where(xi < 0.5, xi, 0.0)
        mu1 = self.scale / (1.0 - xs)
        var = self.scale.pow(2) / ((1.0 - xs).pow(2) * (1.0 - 2.0 * xs))
        value = (1.0 - m) * var + m * (1.0 - m) * mu1 * mu1
        return torch.where(xi < 0.5, value, torch.inf)


class ExponentialWithMass(GeneralizedParetoWithMass):
    r"""Exponential distribution on :math:`[\mu, \infty)` with a point mass :math:`M` at :math:`\mu`.

    .. math::

        F(x) = M + (1 - M)\big(1 - e^{-(x-\mu)/\sigma}\big), \qquad x \ge \mu,

    the generalized Pareto law of :class:`GeneralizedParetoWithMass` with :math:`\xi = 0` (``concentration``
    is fixed to zero). scoringrules' ``crps_exponentialM(obs, mass, location=loc, scale=scale)``;
    ``log_prob`` is as in :class:`GeneralizedParetoWithMass`.

    Args:
        loc: location (lower bound) :math:`\mu`.
        scale: scale :math:`\sigma > 0` (the mean of the continuous part above :math:`\mu`).
        mass: point mass :math:`M \in [0, 1)` at :math:`\mu`.
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import ExponentialWithMass
        >>> ExponentialWithMass(0.0, 2.0, mass=0.5).mean
        tensor(1.)
    """

    def __init__(self, loc, scale, mass=0.0, validate_args=None):
        super().__init__(loc, scale, 0.0, mass, validate_args=validate_args)
