r"""Truncated and censored distributions: normal, logistic and Student t with bounds and point masses at the
bounds (scoringrules' ``gtc*``, ``t*``, ``c*`` families), the uniform with point masses, and the censored
shifted gamma distribution.

The generalized truncated/censored law of a location-scale base :math:`G` (standardised CDF) with bounds
:math:`l < u` and masses :math:`L, U \ge 0`, :math:`L + U < 1`, at them has the CDF

.. math::

    F(x) = \begin{cases} 0 & x < l \\
    L + (1 - L - U)\,\dfrac{G(z) - G(z_l)}{G(z_u) - G(z_l)} & l \le x < u \\
    1 & x \ge u \end{cases}, \qquad z = \frac{x - \mu}{\sigma},

so the interior is the base truncated to :math:`[l, u]` and rescaled to mass :math:`1 - L - U`.
*Truncated*: :math:`L = U = 0`. *Censored*: :math:`L = G(z_l)`, :math:`U = 1 - G(z_u)` (the base's tail mass
piled onto each bound, :math:`F = G` inside).

``log_prob`` of a law with point masses is the log-density with respect to Lebesgue measure plus unit atoms at
the bounds (the Tobit likelihood): :math:`\log L` at :math:`x = l` when :math:`L > 0`, :math:`\log U` at
:math:`x = u` when :math:`U > 0`, and the log of the interior density elsewhere in :math:`[l, u]`. Its negative
is a strictly proper logarithmic score for this mixed dominating measure.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Gamma, constraints

from .._internal.special import betainc, gammainc, log_beta
from ._base import ParametricDistribution, require, safe_log

__all__ = [
    "CensoredLogistic",
    "CensoredNormal",
    "CensoredShiftedGamma",
    "CensoredStudentT",
    "GeneralizedTruncatedCensoredLogistic",
    "GeneralizedTruncatedCensoredNormal",
    "GeneralizedTruncatedCensoredStudentT",
    "TruncatedLogistic",
    "TruncatedNormal",
    "TruncatedStudentT",
    "UniformWithMasses",
]

_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _softplus(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


def standardise_bound(bound: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(bound - loc) / scale``, kept at ``+-inf`` for infinite bounds without a ``nan`` gradient."""
    fin = torch.isfinite(bound)
    z = (torch.where(fin, bound, 0.0) - loc) / scale
    return torch.where(fin, z, bound)


def _finite_eval(fn, z: torch.Tensor, at_minus_inf: float, at_plus_inf: float) -> torch.Tensor:
    """``fn(z)`` where ``z`` is finite, the given limits at ``-inf``/``+inf`` (no ``nan`` in any gradient)."""
    fin = torch.isfinite(z)
    value = fn(torch.where(fin, z, 0.0))
    limit = torch.where(z > 0, at_plus_inf, at_minus_inf).to(value.dtype)
    return torch.where(fin, value, limit)


class _TruncatedCensoredBase(ParametricDistribution):
    """The generalized truncated/censored law of a standardised symmetric base (see the module docstring).

    Subclasses implement the base: ``_cdf_std`` :math:`G`, ``_log_pdf_std`` :math:`\\log g`, ``_icdf_std``,
    and for the CRPS ``_int1_std`` :math:`A_1(z) = \\int_{-\\infty}^z G`, ``_int2_std``
    :math:`A_2(z) = \\int_{-\\infty}^z G^2`, and ``_partial_mean_std`` :math:`H(z) = -\\int_{-\\infty}^z t g(t) dt`.
    All take finite standardised arguments.
    """

    has_rsample = True
    _loc_params = ("loc", "scale", "lower", "upper", "lmass", "umass")
    _loc_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "lower": constraints.real,
        "upper": constraints.real,
        "lmass": constraints.unit_interval,
        "umass": constraints.unit_interval,
    }

    def _check_joint(self) -> None:
        require(self.lower < self.upper, f"{type(self).__name__}: lower must be < upper")
        require(
            self.lmass + self.umass < 1,
            f"{type(self).__name__}: lmass + umass must be < 1 (some mass must remain between the bounds)",
        )
        require(
            (self.lmass == 0) | torch.isfinite(self.lower),
            f"{type(self).__name__}: lmass > 0 needs a finite lower bound",
        )
        require(
            (self.umass == 0) | torch.isfinite(self.upper),
            f"{type(self).__name__}: umass > 0 needs a finite upper bound",
        )

    # -- the base (overridden) ------------------------------------------------------------------------------
    def _cdf_std(self, z):
        raise NotImplementedError

    def _log_pdf_std(self, z):
        raise NotImplementedError

    def _icdf_std(self, p):
        raise NotImplementedError

    def _int1_std(self, z):
        raise NotImplementedError

    def _int2_std(self, z):
        raise NotImplementedError

    def _partial_mean_std(self, z):
        raise NotImplementedError

    # -- derived ---------------------------------------------------------------------------------------------
    def _std(self, x):
        return (x - self.loc) / self.scale

    def _G(self, z):
        return _finite_eval(self._cdf_std, z, 0.0, 1.0)

    def _core(self):
        """``(a, b, c)``: :math:`G(z_l)`, :math:`G(z_u)` and the interior factor :math:`(1-L-U)/(b-a)`."""
        a = self._G(standardise_bound(self.lower, self.loc, self.scale))
        b = self._G(standardise_bound(self.upper, self.loc, self.scale))
        return a, b, (1.0 - self.lmass - self.umass) / (b - a)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.lower, self.upper)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a, _, c = self._core()
        inner = self.lmass + c * (self._G(self._std(value)) - a)
        one = torch.ones_like(inner)
        return torch.where(value < self.lower, 0.0, torch.where(value >= self.upper, one, inner))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        _, _, c = self._core()
        z = self._std(value)
        fin = torch.isfinite(z)
        inner = torch.log(c) + self._log_pdf_std(torch.where(fin, z, 0.0)) - torch.log(self.scale)
        inner = torch.where(fin, inner, -torch.inf)
        at_l = (value == self.lower) & (self.lmass > 0)
        at_u = (value == self.upper) & (self.umass > 0)
        lp = torch.where(at_l, safe_log(self.lmass), torch.where(at_u, safe_log(self.umass), inner))
        inside = (value >= self.lower) & (value <= self.upper)
        return torch.where(inside, lp, -torch.inf)

    def icdf(self, value):
        a, _, c = self._core()
        lm, um = self.lmass, self.umass
        interior = (value > lm) & (value < 1.0 - um)
        p = torch.where(interior, value, lm + 0.5 * (1.0 - lm - um))
        q = (a + (p - lm) / c).clamp(
            min=torch.finfo(p.dtype).tiny, max=1.0 - torch.finfo(p.dtype).eps
        )
        x = self.loc + self.scale * self._icdf_std(q)
        x = torch.minimum(torch.maximum(x, self.lower), self.upper)
        return torch.where(value <= lm, self.lower, torch.where(value >= 1.0 - um, self.upper, x))

    @property
    def mean(self):
        a, b, c = self._core()
        zl = standardise_bound(self.lower, self.loc, self.scale)
        zu = standardise_bound(self.upper, self.loc, self.scale)
        h_l = _finite_eval(self._partial_mean_std, zl, 0.0, 0.0)
        h_u = _finite_eval(self._partial_mean_std, zu, 0.0, 0.0)
        inner = c * (self.loc * (b - a) + self.scale * (h_l - h_u))
        lo = torch.where(self.lmass > 0, self.lmass * self.lower, 0.0)
        hi = torch.where(self.umass > 0, self.umass * self.upper, 0.0)
        return inner + lo + hi


# ------------------------------------------------------------------------------------------------------------
# Normal
# ------------------------------------------------------------------------------------------------------------
class _NormalBase:
    def _cdf_std(self, z):
        return torch.special.ndtr(z)

    def _log_pdf_std(self, z):
        return -0.5 * z * z - _HALF_LOG_2PI

    def _icdf_std(self, p):
        return torch.special.ndtri(p)

    def _int1_std(self, z):
        return z * torch.special.ndtr(z) + _INV_SQRT_2PI * torch.exp(-0.5 * z * z)

    def _int2_std(self, z):
        cdf = torch.special.ndtr(z)
        pdf = _INV_SQRT_2PI * torch.exp(-0.5 * z * z)
        return z * cdf * cdf + 2.0 * pdf * cdf - _INV_SQRT_PI * torch.special.ndtr(_SQRT2 * z)

    def _partial_mean_std(self, z):
        return _INV_SQRT_2PI * torch.exp(-0.5 * z * z)


class GeneralizedTruncatedCensoredNormal(_NormalBase, _TruncatedCensoredBase):
    r"""Normal law truncated to :math:`[l, u]` with point masses :math:`L, U` at the bounds (see the module).

    scoringrules' ``crps_gtcnormal(obs, location=loc, scale=scale, lower, upper, lmass, umass)``.
    ``log_prob`` at an atom is the log of its mass (module docstring); ``mean`` is exact, ``variance`` is not
    provided. Reparameterised sampling by the inverse CDF.

    Args:
        loc: location :math:`\mu` of the untruncated normal.
        scale: scale :math:`\sigma > 0` of the untruncated normal.
        lower: lower bound :math:`l` (``-inf`` for none).
        upper: upper bound :math:`u > l` (``inf`` for none).
        lmass: point mass :math:`L \ge 0` at :math:`l`.
        umass: point mass :math:`U \ge 0` at :math:`u`, :math:`L + U < 1`.
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import GeneralizedTruncatedCensoredNormal
        >>> d = GeneralizedTruncatedCensoredNormal(0.0, 1.0, lower=0.0, upper=2.0, lmass=0.3, umass=0.1)
        >>> d.cdf(torch.tensor([0.0, 1.0, 2.0]))  # masses 0.3 at 0 and 0.1 at 2
        tensor([0.3000, 0.7291, 1.0000])
    """

    arg_constraints = _TruncatedCensoredBase._loc_constraints
    _param_names = _TruncatedCensoredBase._loc_params

    def __init__(
        self, loc, scale, lower=-math.inf, upper=math.inf, lmass=0.0, umass=0.0, validate_args=None
    ):
        self._init_params((loc, scale, lower, upper, lmass, umass), validate_args)


class TruncatedNormal(GeneralizedTruncatedCensoredNormal):
    r"""Normal law truncated to :math:`[l, u]` (renormalised; no mass outside).

    scoringrules' ``crps_tnormal`` / ``logs_tnormal(obs, location=loc, scale=scale, lower, upper)``.

    Args:
        loc: location of the untruncated normal.
        scale: scale :math:`> 0` of the untruncated normal.
        lower: lower bound (``-inf`` for none).
        upper: upper bound (``inf`` for none).
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import TruncatedNormal
        >>> d = TruncatedNormal(0.0, 1.0, lower=0.0)  # the half-normal
        >>> round(d.mean.item(), 6)  # sqrt(2 / pi)
        0.797885
    """

    def __init__(self, loc, scale, lower=-math.inf, upper=math.inf, validate_args=None):
        super().__init__(loc, scale, lower, upper, 0.0, 0.0, validate_args=validate_args)


class CensoredNormal(GeneralizedTruncatedCensoredNormal):
    r"""Normal law censored at :math:`l` and :math:`u`: :math:`\max(l, \min(u, X))`, :math:`X \sim N(\mu, \sigma^2)`.

    The masses are :math:`L = \Phi(z_l)`, :math:`U = 1 - \Phi(z_u)` (functions of ``loc`` and ``scale``, so
    gradients flow through them). scoringrules' ``crps_cnormal(obs, location=loc, scale=scale, lower, upper)``.

    Args:
        loc: location of the latent normal.
        scale: scale :math:`> 0` of the latent normal.
        lower: censoring point below (``-inf`` for none).
        upper: censoring point above (``inf`` for none).
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import CensoredNormal
        >>> d = CensoredNormal(0.0, 1.0, lower=0.0)  # max(0, X): half the mass at 0
        >>> d.cdf(torch.tensor(0.0)), d.log_prob(torch.tensor(0.0)).exp()
        (tensor(0.5000), tensor(0.5000))
    """

    def __init__(self, loc, scale, lower=-math.inf, upper=math.inf, validate_args=None):
        lmass, umass = _censoring_masses(self, loc, scale, lower, upper)
        super().__init__(loc, scale, lower, upper, lmass, umass, validate_args=validate_args)


def _censoring_masses(inst, loc, scale, lower, upper):
    loc, scale, lower, upper = (torch.as_tensor(t) for t in (loc, scale, lower, upper))
    lmass = _finite_eval(inst._cdf_std, standardise_bound(lower, loc, scale), 0.0, 1.0)
    umass = 1.0 - _finite_eval(inst._cdf_std, standardise_bound(upper, loc, scale), 0.0, 1.0)
    return lmass, umass


# ------------------------------------------------------------------------------------------------------------
# Logistic
# ------------------------------------------------------------------------------------------------------------
class _LogisticBase:
    def _cdf_std(self, z):
        return torch.sigmoid(z)

    def _log_pdf_std(self, z):
        return -z.abs() - 2.0 * torch.log1p(torch.exp(-z.abs()))

    def _icdf_std(self, p):
        return torch.logit(p)

    def _int1_std(self, z):
        return _softplus(z)

    def _int2_std(self, z):
        return _softplus(z) - torch.sigmoid(z)

    def _partial_mean_std(self, z):
        a = z.abs()
        return _softplus(-a) + a * torch.sigmoid(-a)


class GeneralizedTruncatedCensoredLogistic(_LogisticBase, _TruncatedCensoredBase):
    r"""Logistic law truncated to :math:`[l, u]` with point masses :math:`L, U` at the bounds (see the module).

    scoringrules' ``crps_gtclogistic(obs, location=loc, scale=scale, lower, upper, lmass, umass)``.

    Args:
        loc: location of the untruncated logistic.
        scale: scale :math:`> 0` of the untruncated logistic.
        lower: lower bound :math:`l` (``-inf`` for none).
        upper: upper bound :math:`u > l` (``inf`` for none).
        lmass: point mass :math:`L \ge 0` at :math:`l`.
        umass: point mass :math:`U \ge 0` at :math:`u`, :math:`L + U < 1`.
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import GeneralizedTruncatedCensoredLogistic
        >>> d = GeneralizedTruncatedCensoredLogistic(0.0, 1.0, lower=-1.0, upper=1.0, lmass=0.2, umass=0.2)
        >>> d.cdf(torch.tensor(0.0))
        tensor(0.5000)
    """

    arg_constraints = _TruncatedCensoredBase._loc_constraints
    _param_names = _TruncatedCensoredBase._loc_params

    def __init__(
        self, loc, scale, lower=-math.inf, upper=math.inf, lmass=0.0, umass=0.0, validate_args=None
    ):
        self._init_params((loc, scale, lower, upper, lmass, umass), validate_args)


class TruncatedLogistic(GeneralizedTruncatedCensoredLogistic):
    r"""Logistic law truncated to :math:`[l, u]`. scoringrules' ``crps_tlogistic`` / ``logs_tlogistic``.

    Args:
        loc: location of the untruncated logistic.
        scale: scale :math:`> 0` of the untruncated logistic.
        lower: lower bound (``-inf`` for none).
        upper: upper bound (``inf`` for none).
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import TruncatedLogistic
        >>> TruncatedLogistic(0.0, 1.0, lower=0.0).cdf(torch.tensor(0.0))
        tensor(0.)
    """

    def __init__(self, loc, scale, lower=-math.inf, upper=math.inf, validate_args=None):
        super().__init__(loc, scale, lower, upper, 0.0, 0.0, validate_args=validate_args)


class CensoredLogistic(GeneralizedTruncatedCensoredLogistic):
    r"""Logistic law censored at :math:`l` and :math:`u`. scoringrules' ``crps_clogistic``.

    Args:
        loc: location of the latent logistic.
        scale: scale :math:`> 0` of the latent logistic.
        lower: censoring point below (``-inf`` for none).
        upper: censoring point above (``inf`` for none).
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import CensoredLogistic
        >>> CensoredLogistic(0.0, 1.0, upper=0.0).log_prob(torch.tensor(0.0)).exp()
        tensor(0.5000)
    """

    def __init__(self, loc, scale, lower=-math.inf, upper=math.inf, validate_args=None):
        lmass, umass = _censoring_masses(self, loc, scale, lower, upper)
        super().__init__(loc, scale, lower, upper, lmass, umass, validate_args=validate_args)


# ------------------------------------------------------------------------------------------------------------
# Student t
# ------------------------------------------------------------------------------------------------------------
def _t_cdf(nu: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Standard Student-t CDF by the regularised incomplete beta function (differentiable in ``nu``)."""
    nu, z = torch.broadcast_tensors(nu, z)
    r = z * z / nu  # finite z only (callers replace infinite bounds)
    x = 1.0 / (1.0 + r)
    y = r / (1.0 + r)
    tail = 0.5 * betainc(0.5 * nu, torch.full_like(nu, 0.5), x, y)  # P(T > |z|)
    return torch.where(z > 0, 1.0 - tail, tail)


def _t_log_pdf(nu: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return (
        torch.lgamma(0.5 * (nu + 1.0))
        - torch.lgamma(0.5 * nu)
        - 0.5 * torch.log(nu * math.pi)
        - 0.5 * (nu + 1.0) * torch.log1p(z * z / nu)
    )


def _t_icdf(nu: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    r"""Standard Student-t quantile: bisection on :math:`\theta = \arctan x` (64 rounds), then one Newton step
    written so that autograd gives the implicit-function derivatives in ``p`` and ``nu``."""
    nu, p = torch.broadcast_tensors(nu, p)
    with torch.no_grad():
        lo = torch.full_like(p, -0.5 * math.pi)
        hi = torch.full_like(p, 0.5 * math.pi)
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            below = _t_cdf(nu, torch.tan(mid)) < p
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        x0 = torch.tan(0.5 * (lo + hi))
    return x0 - (_t_cdf(nu, x0) - p) / torch.exp(_t_log_pdf(nu, x0))


def _t_int1(nu: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r""":math:`\int_{-\infty}^z G_\nu = z G_\nu(z) + (\nu + z^2) g_\nu(z)/(\nu - 1)` (:math:`\nu > 1`)."""
    return z * _t_cdf(nu, z) + (nu + z * z) / (nu - 1.0) * torch.exp(_t_log_pdf(nu, z))


def _t_int2(nu: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r""":math:`\int_{-\infty}^z G_\nu^2` (:math:`\nu > 1`), by parts: :math:`(\nu + t^2) g_\nu(t)^2` is a
    multiple of the :math:`t_{2\nu-1}` density at :math:`t\sqrt{(2\nu-1)/\nu}`."""
    cdf = _t_cdf(nu, z)
    pdf = torch.exp(_t_log_pdf(nu, z))
    half = torch.full_like(nu, 0.5)
    const = (
        2.0
        * torch.sqrt(nu)
        / (nu - 1.0)
        * torch.exp(log_beta(half, nu - 0.5) - 2.0 * log_beta(half, 0.5 * nu))
    )
    nu2 = 2.0 * nu - 1.0
    return (
        z * cdf * cdf
        + 2.0 * cdf * (nu + z * z) / (nu - 1.0) * pdf
        - const * _t_cdf(nu2, z * torch.sqrt(nu2 / nu))
    )


class _StudentTBase:
    def _cdf_std(self, z):
        return _t_cdf(self.df, z)

    def _log_pdf_std(self, z):
        return _t_log_pdf(self.df, z)

    def _icdf_std(self, p):
        return _t_icdf(self.df, p)

    def _int1_std(self, z):
        return _t_int1(self.df, z)

    def _int2_std(self, z):
        return _t_int2(self.df, z)

    def _partial_mean_std(self, z):
        nu = self.df
        return (nu + z * z) / (nu - 1.0) * torch.exp(_t_log_pdf(nu, z))


_T_CONSTRAINTS = {"df": constraints.positive, **_TruncatedCensoredBase._loc_constraints}
_T_PARAMS = ("df", *_TruncatedCensoredBase._loc_params)


class GeneralizedTruncatedCensoredStudentT(_StudentTBase, _TruncatedCensoredBase):
    r"""Student t law truncated to :math:`[l, u]` with point masses :math:`L, U` at the bounds (see the module).

    scoringrules' ``crps_gtct(obs, df, location=loc, scale=scale, lower, upper, lmass, umass)``. The closed
    CRPS needs ``df > 1``; ``mean`` needs ``df > 1`` too. Sampling inverts the CDF by bisection (64 rounds of
    the incomplete beta function), reparameterised through an implicit Newton step.

    Args:
        df: degrees of freedom :math:`\nu > 0`.
        loc: location of the untruncated t.
        scale: scale :math:`> 0` of the untruncated t.
        lower: lower bound :math:`l` (``-inf`` for none).
        upper: upper bound :math:`u > l` (``inf`` for none).
        lmass: point mass :math:`L \ge 0` at :math:`l`.
        umass: point mass :math:`U \ge 0` at :math:`u`, :math:`L + U < 1`.
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import GeneralizedTruncatedCensoredStudentT
        >>> d = GeneralizedTruncatedCensoredStudentT(3.0, 0.0, 1.0, lower=-1.0, upper=1.0, lmass=0.1, umass=0.1)
        >>> round(d.cdf(torch.tensor(0.0)).item(), 6)
        0.5
    """

    arg_constraints = _T_CONSTRAINTS
    _param_names = _T_PARAMS

    def __init__(
        self,
        df,
        loc=0.0,
        scale=1.0,
        lower=-math.inf,
        upper=math.inf,
        lmass=0.0,
        umass=0.0,
        validate_args=None,
    ):
        self._init_params((df, loc, scale, lower, upper, lmass, umass), validate_args)


class TruncatedStudentT(GeneralizedTruncatedCensoredStudentT):
    r"""Student t law truncated to :math:`[l, u]`. scoringrules' ``crps_tt`` / ``logs_tt``.

    Args:
        df: degrees of freedom :math:`\nu > 0` (the closed CRPS needs :math:`\nu > 1`).
        loc: location of the untruncated t.
        scale: scale :math:`> 0` of the untruncated t.
        lower: lower bound (``-inf`` for none).
        upper: upper bound (``inf`` for none).
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import TruncatedStudentT
        >>> TruncatedStudentT(4.0, 0.0, 1.0, lower=0.0).cdf(torch.tensor(0.0))
        tensor(0.)
    """

    def __init__(self, df, loc=0.0, scale=1.0, lower=-math.inf, upper=math.inf, validate_args=None):
        super().__init__(df, loc, scale, lower, upper, 0.0, 0.0, validate_args=validate_args)


class CensoredStudentT(GeneralizedTruncatedCensoredStudentT):
    r"""Student t law censored at :math:`l` and :math:`u`. scoringrules' ``crps_ct``.

    Args:
        df: degrees of freedom :math:`\nu > 0` (the closed CRPS needs :math:`\nu > 1`).
        loc: location of the latent t.
        scale: scale :math:`> 0` of the latent t.
        lower: censoring point below (``-inf`` for none).
        upper: censoring point above (``inf`` for none).
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import CensoredStudentT
        >>> CensoredStudentT(4.0, 0.0, 1.0, lower=0.0).cdf(torch.tensor(0.0))
        tensor(0.5000)
    """

    def __init__(self, df, loc=0.0, scale=1.0, lower=-math.inf, upper=math.inf, validate_args=None):
        self.df = torch.as_tensor(df)
        lmass, umass = _censoring_masses(self, loc, scale, lower, upper)
        super().__init__(df, loc, scale, lower, upper, lmass, umass, validate_args=validate_args)


# ------------------------------------------------------------------------------------------------------------
# Uniform with point masses
# ------------------------------------------------------------------------------------------------------------
class UniformWithMasses(ParametricDistribution):
    r"""Uniform law on :math:`[a, b]` with point masses :math:`L` at :math:`a` and :math:`U` at :math:`b`.

    .. math::

        F(x) = L + (1 - L - U)\,\frac{x - a}{b - a}, \qquad a \le x < b.

    scoringrules' ``crps_uniform(obs, min=low, max=high, lmass, umass)``. ``log_prob`` at an atom is the log of
    its mass (see the module docstring). Reparameterised sampling by the inverse CDF.

    Args:
        low: lower end :math:`a`.
        high: upper end :math:`b > a`.
        lmass: point mass :math:`L \ge 0` at :math:`a`.
        umass: point mass :math:`U \ge 0` at :math:`b`, :math:`L + U < 1`.
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import UniformWithMasses
        >>> UniformWithMasses(0.0, 1.0, lmass=0.2, umass=0.3).mean  # 0.3 * 1 + 0.5 * 0.5
        tensor(0.5500)
    """

    arg_constraints = {
        "low": constraints.real,
        "high": constraints.real,
        "lmass": constraints.unit_interval,
        "umass": constraints.unit_interval,
    }
    has_rsample = True
    _param_names = ("low", "high", "lmass", "umass")

    def __init__(self, low, high, lmass=0.0, umass=0.0, validate_args=None):
        self._init_params((low, high, lmass, umass), validate_args)

    def _check_joint(self) -> None:
        require(self.low < self.high, "UniformWithMasses: low must be < high")
        require(self.lmass + self.umass < 1, "UniformWithMasses: lmass + umass must be < 1")

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.low, self.high)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        w = 1.0 - self.lmass - self.umass
        inner = self.lmass + w * (value - self.low) / (self.high - self.low)
        return torch.where(value < self.low, 0.0, torch.where(value >= self.high, 1.0, inner))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        w = 1.0 - self.lmass - self.umass
        inner = torch.log(w) - torch.log(self.high - self.low)
        inner = inner.expand(torch.broadcast_shapes(inner.shape, torch.as_tensor(value).shape))
        at_l = (value == self.low) & (self.lmass > 0)
        at_u = (value == self.high) & (self.umass > 0)
        lp = torch.where(at_l, safe_log(self.lmass), torch.where(at_u, safe_log(self.umass), inner))
        return torch.where((value >= self.low) & (value <= self.high), lp, -torch.inf)

    def icdf(self, value):
        w = 1.0 - self.lmass - self.umass
        x = self.low + (value - self.lmass) / w * (self.high - self.low)
        x = torch.minimum(torch.maximum(x, self.low), self.high)
        return x

    @property
    def mean(self):
        w = 1.0 - self.lmass - self.umass
        return self.lmass * self.low + self.umass * self.high + 0.5 * w * (self.low + self.high)

    @property
    def variance(self):
        w = 1.0 - self.lmass - self.umass
        a, b = self.low, self.high
        second = self.lmass * a * a + self.umass * b * b + w * (a * a + a * b + b * b) / 3.0
        return second - self.mean.pow(2)


# ------------------------------------------------------------------------------------------------------------
# Censored shifted gamma
# ------------------------------------------------------------------------------------------------------------
class CensoredShiftedGamma(ParametricDistribution):
    r"""Censored, shifted gamma law (Scheuerer & Hamill 2015): :math:`X = \max(0, Z - \delta)`,
    :math:`Z \sim \mathrm{Gamma}(\alpha, \beta)` (shape :math:`\alpha`, rate :math:`\beta`).

    .. math::

        F(x) = F_{\alpha,\beta}(x + \delta), \quad x \ge 0, \qquad P(X = 0) = F_{\alpha,\beta}(\delta).

    scoringrules' ``crps_csg0(obs, shape=concentration, rate=rate, shift=shift)``. ``log_prob(0)`` is the log
    of the mass at zero (see the module docstring). Reparameterised sampling through torch's ``Gamma``.

    Args:
        concentration: shape :math:`\alpha > 0`.
        rate: rate :math:`\beta > 0` (scale :math:`1/\beta`).
        shift: shift :math:`\delta \ge 0`.
        validate_args: as in :class:`torch.distributions.Distribution`.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.distributions import CensoredShiftedGamma
        >>> d = CensoredShiftedGamma(1.0, 1.0, shift=0.5)  # exponential minus 0.5, censored at 0
        >>> round(d.cdf(torch.tensor(0.0)).item(), 6)  # 1 - exp(-0.5)
        0.393469
    """

    arg_constraints = {
        "concentration": constraints.positive,
        "rate": constraints.positive,
        "shift": constraints.nonnegative,
    }
    support = constraints.nonnegative
    has_rsample = True
    _param_names = ("concentration", "rate", "shift")

    def __init__(self, concentration, rate, shift=0.0, validate_args=None):
        self._init_params((concentration, rate, shift), validate_args)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        x = (self.rate * (value + self.shift)).clamp(min=0.0)
        return torch.where(value < 0, 0.0, gammainc(self.concentration, x))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        alpha, beta = self.concentration, self.rate
        pos = value > 0
        v = torch.where(pos, value, 1.0) + self.shift
        dens = (
            alpha * torch.log(beta) + (alpha - 1.0) * torch.log(v) - beta * v - torch.lgamma(alpha)
        )
        atom = torch.log(gammainc(alpha, beta * self.shift))
        return torch.where(pos, dens, torch.where(value == 0, atom, -torch.inf))

    def rsample(self, sample_shape=()):
        z = Gamma(self.concentration, self.rate).rsample(sample_shape)
        return (z - self.shift).clamp(min=0.0)

    def _upper_moments(self):
        r""":math:`E[Z^k; Z > \delta]` for :math:`k = 0, 1, 2`."""
        alpha, beta, delta = self.concentration, self.rate, self.shift
        x = beta * delta
        m0 = 1.0 - gammainc(alpha, x)
        m1 = alpha / beta * (1.0 - gammainc(alpha + 1.0, x))
        m2 = alpha * (alpha + 1.0) / (beta * beta) * (1.0 - gammainc(alpha + 2.0, x))
        return m0, m1, m2

    @property
    def mean(self):
        m0, m1, _ = self._upper_moments()
        return m1 - self.shift * m0

    @property
    def variance(self):
        m0, m1, m2 = self._upper_moments()
        delta = self.shift
        second = m2 - 2.0 * delta * m1 + delta * delta * m0
        return second - (m1 - delta * m0).pow(2)
