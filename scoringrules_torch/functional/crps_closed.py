r"""Closed-form CRPS of parametric ``torch.distributions``, looked up in a registry keyed by type.

The continuous ranked probability score of a univariate predictive distribution :math:`F` at an observation
:math:`y` is

.. math::

    \mathrm{CRPS}(F, y) = \int_{-\infty}^{\infty} \big(F(z) - \mathbf 1\{z \ge y\}\big)^2\,dz
    = \mathbb{E}|X - y| - \tfrac12\,\mathbb{E}|X - X'|, \qquad X, X' \overset{iid}{\sim} F,

negatively oriented (lower is better) and strictly proper relative to the distributions with a finite mean.
:func:`crps` evaluates it exactly for the families registered here; :func:`register_crps` adds more (in the
spirit of :func:`torch.distributions.kl.register_kl`: the most specific registered class in the MRO wins).

Numerics: every constant is a Python float, so it is exact in the input dtype (no float32 :math:`\pi` in
float64); half-precision inputs are evaluated in float32; the incomplete gamma and beta functions that torch
lacks gradients for (shape parameters of ``Gamma``, ``Beta``, ``StudentT``) are evaluated by continued fractions
written in differentiable torch operations, so gradients of every order flow to all parameters and the target.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.distributions import (
    AffineTransform,
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    ComposeTransform,
    Distribution,
    Exponential,
    ExpTransform,
    Gamma,
    GeneralizedPareto,
    Geometric,
    Gumbel,
    HalfNormal,
    Independent,
    Laplace,
    LogNormal,
    MixtureSameFamily,
    MultivariateNormal,
    NegativeBinomial,
    Normal,
    Pareto,
    Poisson,
    SigmoidTransform,
    StudentT,
    TransformedDistribution,
    Uniform,
)
from torch.distributions.transforms import _InverseTransform

from .._internal.checks import check_floating, compute_dtype
from .._internal.reduction import check_reduction, reduce
from .._internal.registry import TypeRegistry
from .._internal.special import EULER_GAMMA, betainc, exp1_of_exp, gammainc, log1p_div, log_beta
from ..distributions import (
    CensoredShiftedGamma,
    GeneralizedExtremeValue,
    GeneralizedParetoWithMass,
    GeneralizedTruncatedCensoredLogistic,
    GeneralizedTruncatedCensoredNormal,
    GeneralizedTruncatedCensoredStudentT,
    Hypergeometric,
    Logistic,
    LogLaplace,
    LogLogistic,
    TwoPieceExponential,
    TwoPieceNormal,
    UniformWithMasses,
)
from ..distributions import _base as _dist_base
from ..distributions.censored import _t_cdf, _t_int1, _t_int2, standardise_bound

__all__ = ["Logistic", "crps", "register_crps", "registered_crps_types"]

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_LGAMMA_HALF = 0.5 * math.log(math.pi)  # log Gamma(1/2)

CrpsFn = Callable[[Distribution, torch.Tensor], torch.Tensor]
_CRPS_REGISTRY: TypeRegistry[CrpsFn] = TypeRegistry("register_crps")


# --------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------
def register_crps(type_p: type) -> Callable[[CrpsFn], CrpsFn]:
    r"""Decorator registering a closed-form CRPS for a distribution class (and, by MRO, its subclasses).

    The decorated function receives ``(dist, target)``, where ``target`` is a floating tensor that broadcasts
    with ``dist.batch_shape``, and returns the per-observation CRPS with the broadcast shape. The most specific
    registered class in ``type(dist).__mro__`` is used, so registering a subclass overrides its parent.

    Args:
        type_p: a subclass of :class:`torch.distributions.Distribution`.

    Returns:
        The decorator (it returns the function unchanged).

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> from scoringrules_torch.functional.crps_closed import crps, register_crps
        >>> class Shifted(Normal):
        ...     pass
        >>> @register_crps(Shifted)
        ... def _crps_shifted(dist, target):
        ...     return (target - dist.loc).abs()  # a (wrong on purpose) stand-in
        >>> crps(Shifted(torch.tensor([0.0]), torch.tensor([1.0])), torch.tensor([2.0]))
        tensor(2.)
    """
    return _CRPS_REGISTRY.register(type_p)


def registered_crps_types() -> tuple[type, ...]:
    """The distribution classes that have a registered closed-form CRPS (subclasses are covered too).

    Examples:
        >>> from torch.distributions import Normal
        >>> from scoringrules_torch.functional.crps_closed import registered_crps_types
        >>> Normal in registered_crps_types()
        True
    """
    return _CRPS_REGISTRY.types()


def _not_implemented(dist: Distribution, detail: str = "") -> NotImplementedError:
    name = type(dist).__name__
    return NotImplementedError(
        f"crps has no closed form for {name}{detail}. Draw samples and use the ensemble estimator instead, "
        f"e.g. crps_ensemble(dist.sample((m,)), target) (dist.rsample((m,)) to keep gradients), or register a "
        f"closed form with @register_crps({name})."
    )


# --------------------------------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------------------------------
def crps(dist: Distribution, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    r"""Closed-form CRPS of a univariate ``torch.distributions.Distribution``; lower is better.

    .. math::

        \mathrm{CRPS}(F, y) = \int_{-\infty}^{\infty} \big(F(z) - \mathbf 1\{z \ge y\}\big)^2\,dz
        = \mathbb{E}|X - y| - \tfrac12\,\mathbb{E}|X - X'|.

    Negatively oriented: the positively oriented score of Gneiting & Raftery (2007) is :math:`-\mathrm{CRPS}`.
    Same units as :math:`y`; strictly proper relative to distributions with a finite first moment.

    Registered families (subclasses are covered through the MRO; add more with :func:`register_crps`):

    * continuous: ``Normal``, ``LogNormal``, :class:`Logistic` (also the pattern
      ``TransformedDistribution(Uniform(0, 1), [SigmoidTransform().inv, AffineTransform(loc, scale)])``),
      ``Laplace``, ``Uniform``, ``Exponential``, ``Gamma`` (hence ``Chi2``), ``Beta``, ``Gumbel``, ``StudentT``
      (:math:`\nu > 1`; ``inf`` otherwise), ``HalfNormal``, ``Pareto`` (:math:`\alpha > 1`; ``inf``
      otherwise), ``MixtureSameFamily`` of ``Normal`` components, and any ``TransformedDistribution`` made of a
      registered base followed only by affine maps (:math:`\mathrm{CRPS}(aX+b, y) = |a|\,\mathrm{CRPS}(X,
      (y-b)/a)`);
    * from :mod:`scoringrules_torch.distributions` (the families torch lacks): ``GeneralizedExtremeValue``,
      ``GeneralizedParetoWithMass`` (and torch's ``GeneralizedPareto``), ``ExponentialWithMass``, the
      generalized truncated/censored ``Normal``, ``Logistic`` and ``StudentT`` laws with their truncated and
      censored subclasses, ``TwoPieceNormal``, ``TwoPieceExponential``, ``LogLaplace``, ``LogLogistic``,
      ``UniformWithMasses``, ``CensoredShiftedGamma``, ``Hypergeometric``;
    * discrete: ``Poisson``, ``Binomial``, ``Bernoulli``, ``Geometric`` (failures before the first success, as in
      torch), ``NegativeBinomial`` (successes before ``total_count`` failures, as in torch), ``Categorical``
      (as a distribution on :math:`\{0, \dots, K-1\}`).

    ``Binomial`` and ``Categorical`` sum over the support (``total_count.max() + 1`` or ``K`` points; one
    host synchronisation for ``Binomial``); ``NegativeBinomial`` sums over :math:`\{0, \dots, K\}` with
    :math:`K` a Chernoff bound beyond which the tail mass is below :math:`\epsilon^2` of the dtype (one host
    synchronisation for the largest :math:`K` in the batch; memory ``batch x (K + 1)``); ``Gamma``, ``Beta`` and ``StudentT`` iterate a continued fraction
    until convergence. Everything else is a fixed expression without data-dependent control flow.

    Summations over a discrete support (``Binomial``, ``NegativeBinomial``, ``Hypergeometric``) raise a
    ``ValueError`` naming the distribution, the support size and the cap when ``batch x support`` would exceed
    :math:`2^{25}` elements, instead of exhausting memory. A distribution with ``event_shape == (1,)`` (a
    univariate head's ``Independent(Normal(loc, scale), 1)``, or a 1-d ``MultivariateNormal``) is scored per
    position: the target is ``(*batch, 1)`` and the size-1 event is squeezed from the result.

    Args:
        dist: a univariate distribution (``event_shape == ()``, or ``(1,)`` as above) of a registered type.
        target: observations; any real value is allowed (also outside the support).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - dist: ``batch_shape`` :math:`(*B_d)`, ``event_shape`` ``()``
        - target: :math:`(*B_t)`, broadcastable with :math:`(*B_d)`
        - output: scalar, or the broadcast shape with ``reduction="none"``.

    Returns:
        The CRPS, in the promoted dtype of target and parameters (at least float32).

    Raises:
        NotImplementedError: no closed form is registered for ``type(dist)``; draw samples and use
            ``crps_ensemble`` instead.
        ValueError: a multivariate distribution, or shapes that do not broadcast.

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal, Poisson
        >>> from scoringrules_torch.functional.crps_closed import crps
        >>> y = torch.tensor([0.0, 1.0], dtype=torch.float64)
        >>> crps(Normal(torch.tensor(0.0, dtype=torch.float64), 1.0), y, reduction="none")
        tensor([0.2337, 0.6024], dtype=torch.float64)
        >>> round(crps(Poisson(torch.tensor(2.0)), torch.tensor(3.0)).item(), 4)
        0.6645

    References:
        Matheson, J. E. & Winkler, R. L. (1976). Scoring rules for continuous probability distributions.
        Management Science 22(10).
        Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and estimation. JASA 102.
        Jordan, A., Krüger, F. & Lerch, S. (2019). Evaluating probabilistic forecasts with scoringRules.
        Journal of Statistical Software 90(12).
    """
    check_reduction(reduction)
    if not isinstance(dist, Distribution):
        raise TypeError(
            f"dist must be a torch.distributions.Distribution; got {type(dist).__name__}. For samples use "
            f"crps_ensemble(samples, target)."
        )
    check_floating("target", target)
    if tuple(dist.event_shape) == (1,):
        return reduce(_crps_unit_event(dist, target), reduction)
    if len(dist.event_shape) != 0:
        raise ValueError(
            f"crps needs a univariate distribution (event_shape == ()); got {type(dist).__name__} with "
            f"event_shape {tuple(dist.event_shape)}. For a multivariate distribution use the energy score on "
            f"samples, or score each margin separately."
        )
    try:
        torch.broadcast_shapes(dist.batch_shape, target.shape)
    except RuntimeError:
        raise ValueError(
            f"target shape {tuple(target.shape)} does not broadcast with the distribution's batch_shape "
            f"{tuple(dist.batch_shape)}"
        ) from None
    fn = _CRPS_REGISTRY.dispatch(type(dist))
    if fn is None:
        raise _not_implemented(dist)
    return reduce(fn(dist, target), reduction)


def _crps_unit_event(dist: Distribution, target: torch.Tensor) -> torch.Tensor:
    """CRPS per position of a distribution with event shape ``(1,)`` (a univariate head's law), squeezed."""
    if target.dim() == 0 or target.shape[-1] != 1:
        raise ValueError(
            f"{type(dist).__name__} has event_shape (1,), so target must end in that event dimension: "
            f"(*batch, 1); got target shape {tuple(target.shape)}"
        )
    if isinstance(dist, Independent) and dist.reinterpreted_batch_ndims == 1:
        inner = dist.base_dist  # batch (*B, 1), event ()
        if len(inner.event_shape) != 0:
            raise ValueError(
                f"crps needs a univariate law; got Independent of {type(inner).__name__} with event_shape "
                f"{tuple(inner.event_shape)}"
            )
        return crps(inner, target, reduction="none").squeeze(-1)
    if isinstance(dist, MultivariateNormal):
        inner = Normal(
            dist.loc[..., 0], dist.covariance_matrix[..., 0, 0].sqrt(), validate_args=False
        )
        return crps(inner, target[..., 0], reduction="none")
    raise ValueError(
        f"crps handles event_shape (1,) for Independent(univariate, 1) and 1-d MultivariateNormal; got "
        f"{type(dist).__name__}. Pass its univariate margin instead."
    )


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------
def _cast(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Cast to the common compute dtype (promoted, at least float32)."""
    ts = [t if isinstance(t, torch.Tensor) else torch.as_tensor(t) for t in tensors]
    floats = [t for t in ts if t.is_floating_point()]
    dtype = compute_dtype(*floats) if floats else torch.get_default_dtype()
    return [t.to(dtype) for t in ts]


def _norm_cdf(z: torch.Tensor) -> torch.Tensor:
    return torch.special.ndtr(z)


def _norm_pdf(z: torch.Tensor) -> torch.Tensor:
    return _INV_SQRT_2PI * torch.exp(-0.5 * z * z)


def _softplus(x: torch.Tensor) -> torch.Tensor:
    """Exact softplus (torch's default switches to the identity above 20)."""
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


def _abs_normal_mean(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathbb{E}|Z|` for :math:`Z \sim N(\mu, \sigma^2)`: :math:`\mu\,\mathrm{erf}(\mu/\sigma\sqrt2) + 2\sigma\varphi(\mu/\sigma)`."""
    z = mu / sigma
    return mu * torch.erf(z / _SQRT2) + 2.0 * sigma * _norm_pdf(z)


# --------------------------------------------------------------------------------------------------------------
# Closed forms (kept as plain functions of tensors, then registered)
# --------------------------------------------------------------------------------------------------------------
def _crps_normal(loc: torch.Tensor, scale: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    z = (y - loc) / scale
    return scale * (z * torch.erf(z / _SQRT2) + 2.0 * _norm_pdf(z) - _INV_SQRT_PI)


def _crps_lognormal(mulog: torch.Tensor, sigmalog: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    pos = y > 0
    w = (torch.log(torch.where(pos, y, 1.0)) - mulog) / sigmalog
    cdf_w = torch.where(pos, _norm_cdf(w), 0.0)
    cdf_ws = torch.where(pos, _norm_cdf(w - sigmalog), 0.0)
    mean2 = 2.0 * torch.exp(mulog + 0.5 * sigmalog * sigmalog)
    return y * (2.0 * cdf_w - 1.0) - mean2 * (cdf_ws + _norm_cdf(sigmalog / _SQRT2) - 1.0)


def _crps_logistic(loc: torch.Tensor, scale: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    z = (y - loc) / scale
    return scale * (z + 2.0 * _softplus(-z) - 1.0)


@register_crps(Normal)
def _normal(dist: Normal, target: torch.Tensor) -> torch.Tensor:
    y, loc, scale = _cast(target, dist.loc, dist.scale)
    return _crps_normal(loc, scale, y)


@register_crps(LogNormal)
def _lognormal(dist: LogNormal, target: torch.Tensor) -> torch.Tensor:
    y, mu, sigma = _cast(target, dist.loc, dist.scale)
    return _crps_lognormal(mu, sigma, y)


@register_crps(Logistic)
def _logistic(dist: Logistic, target: torch.Tensor) -> torch.Tensor:
    y, loc, scale = _cast(target, dist.loc, dist.scale)
    return _crps_logistic(loc, scale, y)


@register_crps(Laplace)
def _laplace(dist: Laplace, target: torch.Tensor) -> torch.Tensor:
    y, loc, scale = _cast(target, dist.loc, dist.scale)
    az = ((y - loc) / scale).abs()
    return scale * (az + torch.exp(-az) - 0.75)


@register_crps(Uniform)
def _uniform(dist: Uniform, target: torch.Tensor) -> torch.Tensor:
    y, low, high = _cast(target, dist.low, dist.high)
    width = high - low
    z = (y - low) / width
    f = z.clamp(0.0, 1.0)
    return width * ((z - f).abs() + f * f - f + 1.0 / 3.0)


@register_crps(Exponential)
def _exponential(dist: Exponential, target: torch.Tensor) -> torch.Tensor:
    y, rate = _cast(target, dist.rate)
    cdf = -torch.expm1(-rate * y.clamp(min=0.0))
    return y.abs() - 2.0 * cdf / rate + 0.5 / rate


@register_crps(Gamma)
def _gamma(dist: Gamma, target: torch.Tensor) -> torch.Tensor:
    y, alpha, beta = _cast(target, dist.concentration, dist.rate)
    x = (beta * y).clamp(min=0.0)
    f_a = gammainc(alpha, x)
    f_a1 = gammainc(alpha + 1.0, x)
    inv_b_half = torch.exp(
        torch.lgamma(alpha + 0.5) - _LGAMMA_HALF - torch.lgamma(alpha)
    )  # 1/B(1/2, a)
    return y * (2.0 * f_a - 1.0) - (alpha / beta) * (2.0 * f_a1 - 1.0) - inv_b_half / beta


@register_crps(Beta)
def _beta(dist: Beta, target: torch.Tensor) -> torch.Tensor:
    y, a, b = _cast(target, dist.concentration1, dist.concentration0)
    x = y.clamp(0.0, 1.0)
    f_ab = betainc(a, b, x, 1.0 - x)
    f_a1b = betainc(a + 1.0, b, x, 1.0 - x)
    ratio = 2.0 * torch.exp(log_beta(2.0 * a, 2.0 * b) - 2.0 * log_beta(a, b)) / a
    return y * (2.0 * f_ab - 1.0) + a / (a + b) * (1.0 - 2.0 * f_a1b - ratio)


@register_crps(StudentT)
def _student_t(dist: StudentT, target: torch.Tensor) -> torch.Tensor:
    y, nu, loc, scale = _cast(target, dist.df, dist.loc, dist.scale)
    finite = nu > 1.0
    nu_s = torch.where(finite, nu, 2.0)
    z = (y - loc) / scale
    z2 = z * z
    denom = nu_s + z2
    inc = betainc(0.5 * nu_s, torch.full_like(nu_s, 0.5), nu_s / denom, z2 / denom)  # P(|T| > |z|)
    log_pdf = (
        torch.lgamma(0.5 * (nu_s + 1.0))
        - torch.lgamma(0.5 * nu_s)
        - 0.5 * torch.log(nu_s * math.pi)
        - 0.5 * (nu_s + 1.0) * torch.log1p(z2 / nu_s)
    )
    const = (
        2.0
        * torch.sqrt(nu_s)
        / (nu_s - 1.0)
        * torch.exp(
            log_beta(torch.full_like(nu_s, 0.5), nu_s - 0.5)
            - 2.0 * log_beta(torch.full_like(nu_s, 0.5), 0.5 * nu_s)
        )
    )
    value = scale * (
        z.abs() * (1.0 - inc) + 2.0 * torch.exp(log_pdf) * denom / (nu_s - 1.0) - const
    )
    return torch.where(finite, value, torch.inf)


@register_crps(HalfNormal)
def _half_normal(dist: HalfNormal, target: torch.Tensor) -> torch.Tensor:
    y, scale = _cast(target, dist.scale)
    t = y / scale
    pos = t >= 0
    tp = t.clamp(min=0.0)
    inside = tp * (2.0 * torch.erf(tp / _SQRT2) - 1.0) + 4.0 * _norm_pdf(tp) - 2.0 * _INV_SQRT_PI
    outside = -t + 2.0 * (_SQRT2 - 1.0) * _INV_SQRT_PI
    return scale * torch.where(pos, inside, outside)


@register_crps(Gumbel)
def _gumbel(dist: Gumbel, target: torch.Tensor) -> torch.Tensor:
    # GEV with shape 0: CRPS = mu - y + beta (gamma - log 2) - 2 beta Ei(log F(y)), Ei(-u) = -E1(u)
    y, loc, scale = _cast(target, dist.loc, dist.scale)
    z = (y - loc) / scale
    return loc - y + scale * (EULER_GAMMA - math.log(2.0)) + 2.0 * scale * exp1_of_exp(z)


@register_crps(Pareto)
def _pareto(dist: Pareto, target: torch.Tensor) -> torch.Tensor:
    y, xm, alpha = _cast(target, dist.scale, dist.alpha)
    finite = alpha > 1.0
    a = torch.where(finite, alpha, 2.0)
    t = y / xm
    above = t >= 1
    ts = torch.where(above, t, 1.0)
    mean = a / (a - 1.0)
    half_spread = a / ((a - 1.0) * (2.0 * a - 1.0))
    lower_part = torch.where(
        above, (ts - 1.0) + torch.expm1((1.0 - a) * torch.log(ts)) / (a - 1.0), 0.0
    )
    value = xm * (mean - t + 2.0 * lower_part - half_spread)
    return torch.where(finite, value, torch.inf)


@register_crps(MixtureSameFamily)
def _mixture(dist: MixtureSameFamily, target: torch.Tensor) -> torch.Tensor:
    comp = dist.component_distribution
    if type(comp) is not Normal:
        raise _not_implemented(
            dist, f" with {type(comp).__name__} components (only Normal components)"
        )
    y, m, s, w = _cast(target, comp.loc, comp.scale, dist.mixture_distribution.probs)
    acc = (w * _abs_normal_mean(y.unsqueeze(-1) - m, s)).sum(-1)
    dm = m.unsqueeze(-1) - m.unsqueeze(-2)
    ds = torch.sqrt(s.unsqueeze(-1) ** 2 + s.unsqueeze(-2) ** 2)
    spread = (w.unsqueeze(-1) * w.unsqueeze(-2) * _abs_normal_mean(dm, ds)).sum((-1, -2))
    return acc - 0.5 * spread


@register_crps(Poisson)
def _poisson(dist: Poisson, target: torch.Tensor) -> torch.Tensor:
    y, lam = _cast(target, dist.rate)
    k = torch.floor(y).clamp(min=-1.0)
    nonneg = k >= 0
    ks = k.clamp(min=0.0)
    cdf = torch.where(nonneg, 1.0 - gammainc(ks + 1.0, lam), 0.0)
    pmf = torch.where(nonneg, torch.exp(ks * torch.log(lam) - lam - torch.lgamma(ks + 1.0)), 0.0)
    bessel = torch.special.i0e(2.0 * lam) + torch.special.i1e(2.0 * lam)  # e^{-2l}(I0 + I1)(2l)
    return (y - lam) * (2.0 * cdf - 1.0) + 2.0 * lam * pmf - lam * bessel


@register_crps(Geometric)
def _geometric(dist: Geometric, target: torch.Tensor) -> torch.Tensor:
    y, p = _cast(target, dist.probs)
    log_q = torch.log1p(-p)
    q = 1.0 - p
    nonneg = y >= 0
    k = torch.floor(y.clamp(min=0.0))
    # E(y - X)_+ = int_{-inf}^y F = K - q (1 - q^K)/p + (y - K)(1 - q^{K+1}) for y >= 0
    lower = k + q * torch.expm1(k * log_q) / p - (y - k) * torch.expm1((k + 1.0) * log_q)
    lower = torch.where(nonneg, lower, 0.0)
    return q / p - y + 2.0 * lower - q / (p * (1.0 + q))


def _check_support(name: str, y: torch.Tensor, param: torch.Tensor, size: int) -> None:
    if not torch.compiler.is_compiling():
        batch = torch.broadcast_shapes(y.shape, param.shape).numel()
        _dist_base.check_support_size(name, max(batch, 1), size)


def _crps_finite_support(support: torch.Tensor, pmf: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""CRPS of a distribution on sorted points ``support`` (last axis) with masses ``pmf`` (last axis).

    :math:`2\sum_k f_k\,(\mathbf 1\{y < x_k\} - F_k + f_k/2)(x_k - y)`, the quantile-decomposition form.
    """
    cdf = torch.cumsum(pmf, dim=-1)
    yk = y.unsqueeze(-1)
    return 2.0 * (pmf * ((yk < support).to(pmf.dtype) - cdf + 0.5 * pmf) * (support - yk)).sum(-1)


@register_crps(Binomial)
def _binomial(dist: Binomial, target: torch.Tensor) -> torch.Tensor:
    y, n, logits = _cast(target, dist.total_count, dist.logits)
    n_max = int(n.detach().max().item())
    _check_support("Binomial", y, n, n_max + 1)
    support = torch.arange(n_max + 1, dtype=y.dtype, device=y.device)
    nn = n.unsqueeze(-1)
    inside = support <= nn
    ks = torch.where(inside, support, 0.0)
    # log pmf = log C(n, k) + k log p + (n - k) log(1 - p), with log p = -softplus(-logits)
    lg = logits.unsqueeze(-1)
    log_pmf = (
        torch.lgamma(nn + 1.0)
        - torch.lgamma(ks + 1.0)
        - torch.lgamma(nn - ks + 1.0)
        - ks * _softplus(-lg)
        - (nn - ks) * _softplus(lg)
    )
    pmf = torch.where(inside, torch.exp(log_pmf), 0.0)
    return _crps_finite_support(support, pmf, y)


def _negbinom_tail_bound(
    n: torch.Tensor, log_p: torch.Tensor, log_q: torch.Tensor, log_tol: float
) -> torch.Tensor:
    r"""A :math:`K` with :math:`P(X \ge K) \le e^{\text{log_tol}}` for :math:`X \sim \mathrm{NB}(n, p)` (no host sync).

    Chernoff: :math:`\log P(X \ge k) \le g(k) = n\log\frac{p(n+k)}{n} + k\log\frac{q(n+k)}{k}` for :math:`k`
    above the mean, with :math:`g'(k) = \log\frac{q(n+k)}{k} < 0` and :math:`g'' < 0`. Newton's method for
    :math:`g(k) = \text{log_tol}` on a concave decreasing :math:`g` started right of the mean lands at or right of
    the root after the first step and then decreases monotonically to it, so every iterate is a valid bound.
    """
    n = n.detach()
    log_p, log_q = log_p.detach(), log_q.detach()
    n_safe = torch.where(n > 0, n, 1.0)
    k0 = (
        n_safe * torch.exp(log_q - log_p)
        + torch.sqrt(n_safe) * torch.exp(0.5 * log_q - log_p)
        + 1.0
    )
    k = k0
    for _ in range(30):
        log_nk = torch.log(n_safe + k)
        g = n_safe * (log_p + log_nk - torch.log(n_safe)) + k * (log_q + log_nk - torch.log(k))
        dg = log_q + log_nk - torch.log(k)
        k_new = k - (g - log_tol) / dg
        k = torch.where(torch.isfinite(k_new), torch.maximum(k_new, k0), k0)
    return k


@register_crps(NegativeBinomial)
def _negative_binomial(dist: NegativeBinomial, target: torch.Tensor) -> torch.Tensor:
    # torch: X = successes (probability probs) before total_count failures, P(X = k) = C(n+k-1, k) q^k p^n with
    # q = probs, p = 1 - probs; this is scoringrules' crps_negbinom(obs, n=total_count, prob=1 - probs).
    y, n, logits = _cast(target, dist.total_count, dist.logits)
    log_q = -_softplus(-logits)  # log probs
    log_p = -_softplus(logits)  # log(1 - probs)
    log_tol = 2.0 * math.log(torch.finfo(y.dtype).eps)
    k_max = int(math.ceil(_negbinom_tail_bound(n, log_p, log_q, log_tol).max().item()))
    _check_support("NegativeBinomial", y, n, k_max + 1)
    support = torch.arange(k_max + 1, dtype=y.dtype, device=y.device)
    nn, lp, lq = n.unsqueeze(-1), log_p.unsqueeze(-1), log_q.unsqueeze(-1)
    log_pmf = (
        torch.lgamma(nn + support)
        - torch.lgamma(nn)
        - torch.lgamma(support + 1.0)
        + support * lq
        + nn * lp
    )
    log_pmf = torch.where(support > 0, log_pmf, nn * lp)  # k = 0 exactly (also where log q = -inf)
    pmf = torch.exp(log_pmf)
    # Renormalise the truncated pmf (mass deficit < eps^2): the CRPS of the truncated law then differs from the
    # exact one by at most 2 E(X - K)_+, for every y.
    pmf = pmf / pmf.sum(-1, keepdim=True)
    return _crps_finite_support(support, pmf, y)


@register_crps(Bernoulli)
def _bernoulli(dist: Bernoulli, target: torch.Tensor) -> torch.Tensor:
    y, p = _cast(target, dist.probs)
    support = torch.tensor([0.0, 1.0], dtype=y.dtype, device=y.device)
    pmf = torch.stack([1.0 - p, p], dim=-1)
    return _crps_finite_support(support, pmf, y)


@register_crps(Categorical)
def _categorical(dist: Categorical, target: torch.Tensor) -> torch.Tensor:
    y, probs = _cast(target, dist.probs)
    support = torch.arange(probs.shape[-1], dtype=y.dtype, device=y.device)
    return _crps_finite_support(support, probs, y)


def _flatten_transforms(transforms) -> list:
    out = []
    for t in transforms:
        if isinstance(t, ComposeTransform):
            out.extend(_flatten_transforms(t.parts))
        else:
            out.append(t)
    return out


@register_crps(TransformedDistribution)
def _transformed(dist: TransformedDistribution, target: torch.Tensor) -> torch.Tensor:
    transforms = _flatten_transforms(dist.transforms)
    # Peel trailing scalar affine maps: X -> a X + b, composed right to left.
    scale: torch.Tensor | float = 1.0
    shift: torch.Tensor | float = 0.0
    while (
        transforms and isinstance(transforms[-1], AffineTransform) and transforms[-1].event_dim == 0
    ):
        t = transforms.pop()
        # a (s X + c) + b  ->  (a s) X + (a c + b)
        shift = t.loc + t.scale * shift
        scale = t.scale * scale
    y, scale_t, shift_t = _cast(target, torch.as_tensor(scale), torch.as_tensor(shift))
    y_inner = (y - shift_t) / scale_t
    base = dist.base_dist
    if not transforms:
        inner = crps(base, y_inner, reduction="none")
    elif len(transforms) == 1 and isinstance(transforms[0], ExpTransform) and type(base) is Normal:
        yi, mu, sigma = _cast(y_inner, base.loc, base.scale)
        inner = _crps_lognormal(mu, sigma, yi)
    elif (
        len(transforms) == 1
        and isinstance(transforms[0], _InverseTransform)
        and isinstance(transforms[0].inv, SigmoidTransform)
        and type(base) is Uniform
    ):
        if not torch.compiler.is_compiling() and not (
            bool((base.low == 0).all()) and bool((base.high == 1).all())
        ):
            raise _not_implemented(dist, " (logit of a Uniform other than Uniform(0, 1))")
        yi = _cast(y_inner, base.low)[0]
        inner = _crps_logistic(torch.zeros_like(yi), torch.ones_like(yi), yi)
    else:
        names = ", ".join(type(t).__name__ for t in transforms)
        raise _not_implemented(
            dist,
            f" (base {type(base).__name__} with transforms [{names}] before the final affine maps)",
        )
    return scale_t.abs() * inner


# --------------------------------------------------------------------------------------------------------------
# Families of scoringrules_torch.distributions
# --------------------------------------------------------------------------------------------------------------
_LOG2 = math.log(2.0)


def _crps_gev_general(xi: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""CRPS of the standard GEV for :math:`0 \ne \xi < 1` (Friederichs & Thorarinsdottir 2012):
    :math:`-z(1-2F) - \xi^{-1}[(1-2F) + 2^\xi\Gamma(1-\xi) - 2\gamma(1-\xi, -\log F)]`."""
    inside = 1.0 + xi * z > 0
    lt = log1p_div(xi, torch.where(inside, z, 0.0))
    u = torch.where(inside, torch.exp(-lt).clamp(max=1e6), torch.where(xi > 0, 1e6, 0.0))
    cdf = torch.exp(-u)
    a = 1.0 - xi
    lg = torch.lgamma(a)
    lower_inc = gammainc(a, u) * torch.exp(lg)
    bracket = (1.0 - 2.0 * cdf) + torch.exp(xi * _LOG2 + lg) - 2.0 * lower_inc
    return -z * (1.0 - 2.0 * cdf) - bracket / xi


def _crps_gev_std(xi: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""CRPS of the standard GEV, continuous with its derivatives through :math:`\xi = 0`; ``inf`` for
    :math:`\xi \ge 1`.

    The bracket of the general formula vanishes at :math:`\xi = 0` (cancellation of order
    :math:`\epsilon/|\xi|`), so for :math:`|\xi| < \delta = \epsilon^{1/4}` the CRPS is the quadratic in
    :math:`\xi` through the Gumbel value :math:`-z + \gamma_E - \log 2 + 2E_1(e^{-z})` at 0 and the general
    formula at :math:`\pm\delta` (error :math:`O(\delta^3 + \epsilon/\delta)`, about :math:`10^{-12}` in
    float64); its slope in :math:`\xi` at 0 is the central difference, not 0.
    """
    finite = xi < 1.0
    delta = torch.finfo(z.dtype).eps ** 0.25
    near0 = xi.abs() < delta
    general = _crps_gev_general(torch.where(finite & ~near0, xi, 0.5), z)
    dpos = torch.full_like(general, delta)
    f_plus = _crps_gev_general(dpos, z)
    f_minus = _crps_gev_general(-dpos, z)
    f_zero = -z + (EULER_GAMMA - _LOG2) + 2.0 * exp1_of_exp(z)
    xn = torch.where(near0, xi, 0.0)
    slope = (f_plus - f_minus) / (2.0 * delta)
    curve = (f_plus - 2.0 * f_zero + f_minus) / (2.0 * delta * delta)
    small = f_zero + xn * (slope + xn * curve)
    return torch.where(finite, torch.where(near0, small, general), torch.inf)


@register_crps(GeneralizedExtremeValue)
def _gev(dist: GeneralizedExtremeValue, target: torch.Tensor) -> torch.Tensor:
    y, loc, scale, xi = _cast(target, dist.loc, dist.scale, dist.concentration)
    return scale * _crps_gev_std(xi, (y - loc) / scale)


def _crps_gpd_std(xi: torch.Tensor, z: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    r"""CRPS of the standard GPD with a point mass :math:`M` at 0, :math:`\xi < 1` (``inf`` otherwise):
    :math:`|z| - \tfrac{2(1-M)}{1-\xi}(1 - (1-F(z))^{1-\xi}) + \tfrac{(1-M)^2}{2-\xi}`."""
    finite = xi < 1.0
    xs = torch.where(finite, xi, 0.0)
    inside = (z >= 0) & (1.0 + xs * z > 0)
    lt = log1p_div(xs, torch.where(inside, z, 0.0))
    surv_pow = torch.where(inside, torch.exp(-(1.0 - xs) * lt), (z < 0).to(z.dtype))
    keep = 1.0 - mass
    value = z.abs() - 2.0 * keep / (1.0 - xs) * (1.0 - surv_pow) + keep * keep / (2.0 - xs)
    return torch.where(finite, value, torch.inf)


@register_crps(GeneralizedPareto)
def _gpd(dist: GeneralizedPareto, target: torch.Tensor) -> torch.Tensor:
    y, loc, scale, xi = _cast(target, dist.loc, dist.scale, dist.concentration)
    return scale * _crps_gpd_std(xi, (y - loc) / scale, torch.zeros_like(xi))


@register_crps(GeneralizedParetoWithMass)
def _gpd_mass(dist: GeneralizedParetoWithMass, target: torch.Tensor) -> torch.Tensor:
    y, loc, scale, xi, mass = _cast(target, dist.loc, dist.scale, dist.concentration, dist.mass)
    return scale * _crps_gpd_std(xi, (y - loc) / scale, mass)


def _crps_gtc_std(G, A1, A2, z, zl, zu, lmass, umass) -> torch.Tensor:
    r"""CRPS of a generalized truncated/censored symmetric base in standardised units.

    With :math:`F = e + cG` below and :math:`1 - F = f + c\bar G` above :math:`\tilde z = \mathrm{clip}(z, z_l,
    z_u)` (:math:`c = (1-L-U)/(G(z_u)-G(z_l))`, :math:`e = L - cG(z_l)`, :math:`f = U - c(1-G(z_u))`):
    :math:`(z_l - z)_+ + (z - z_u)_+ + \int_{z_l}^{\tilde z}(e + cG)^2 + \int_{\tilde z}^{z_u}(f + c\bar G)^2`,
    each integral from :math:`A_1 = \int G`, :math:`A_2 = \int G^2` and the symmetry :math:`\bar G(x) = G(-x)`.
    """
    lf, uf = torch.isfinite(zl), torch.isfinite(zu)
    zl_s, zu_s = torch.where(lf, zl, 0.0), torch.where(uf, zu, 0.0)
    a = torch.where(lf, G(zl_s), 0.0)
    b = torch.where(uf, G(zu_s), 1.0)
    c = (1.0 - lmass - umass) / (b - a)
    e = lmass - c * a
    f = umass - c * (1.0 - b)
    zt = torch.where(lf, torch.maximum(z, zl_s), z)
    zt = torch.where(uf, torch.minimum(zt, zu_s), zt)
    a1l = torch.where(lf, A1(zl_s), 0.0)
    a2l = torch.where(lf, A2(zl_s), 0.0)
    a1u = torch.where(uf, A1(-zu_s), 0.0)
    a2u = torch.where(uf, A2(-zu_s), 0.0)
    low = (
        torch.where(lf, e * e * (zt - zl_s), 0.0)
        + 2.0 * e * c * (A1(zt) - a1l)
        + c * c * (A2(zt) - a2l)
    )
    high = (
        torch.where(uf, f * f * (zu_s - zt), 0.0)
        + 2.0 * f * c * (A1(-zt) - a1u)
        + c * c * (A2(-zt) - a2u)
    )
    outside = torch.where(lf, (zl_s - z).clamp(min=0.0), 0.0) + torch.where(
        uf, (z - zu_s).clamp(min=0.0), 0.0
    )
    return outside + low + high


def _gtc_args(dist, target):
    y, loc, scale, lower, upper, lm, um = _cast(
        target, dist.loc, dist.scale, dist.lower, dist.upper, dist.lmass, dist.umass
    )
    zl, zu = standardise_bound(lower, loc, scale), standardise_bound(upper, loc, scale)
    return scale, (y - loc) / scale, zl, zu, lm, um


@register_crps(GeneralizedTruncatedCensoredNormal)
def _gtc_normal(dist, target: torch.Tensor) -> torch.Tensor:
    scale, *args = _gtc_args(dist, target)
    return scale * _crps_gtc_std(dist._cdf_std, dist._int1_std, dist._int2_std, *args)


@register_crps(GeneralizedTruncatedCensoredLogistic)
def _gtc_logistic(dist, target: torch.Tensor) -> torch.Tensor:
    scale, *args = _gtc_args(dist, target)
    return scale * _crps_gtc_std(dist._cdf_std, dist._int1_std, dist._int2_std, *args)


@register_crps(GeneralizedTruncatedCensoredStudentT)
def _gtc_t(dist, target: torch.Tensor) -> torch.Tensor:
    scale, z, zl, zu, lm, um = _gtc_args(dist, target)
    nu = _cast(dist.df, z)[0]
    ok = nu > 1.0
    nu_s = torch.where(ok, nu, 2.0)
    value = scale * _crps_gtc_std(
        lambda t: _t_cdf(nu_s, t),
        lambda t: _t_int1(nu_s, t),
        lambda t: _t_int2(nu_s, t),
        z,
        zl,
        zu,
        lm,
        um,
    )
    bounded = torch.isfinite(zl) & torch.isfinite(zu)
    return torch.where(ok, value, torch.where(bounded, torch.nan, torch.inf))


def _normal_int1(t):
    return t * _norm_cdf(t) + _norm_pdf(t)


def _normal_int2(t):
    cdf = _norm_cdf(t)
    return t * cdf * cdf + 2.0 * _norm_pdf(t) * cdf - _INV_SQRT_PI * _norm_cdf(_SQRT2 * t)


@register_crps(TwoPieceNormal)
def _two_piece_normal(dist: TwoPieceNormal, target: torch.Tensor) -> torch.Tensor:
    # A censored half-normal on each side (Gneiting & Thorarinsdottir 2010; scoringRules' crps_2pnorm).
    y, loc, s1, s2 = _cast(target, dist.loc, dist.scale1, dist.scale2)
    d = y - loc
    zero = torch.zeros_like(d)
    inf = torch.full_like(d, torch.inf)
    w1, w2 = s1 / (s1 + s2), s2 / (s1 + s2)
    left = _crps_gtc_std(
        _norm_cdf, _normal_int1, _normal_int2, (d / s1).clamp(max=0.0), -inf, zero, zero, w2 + zero
    )
    right = _crps_gtc_std(
        _norm_cdf, _normal_int1, _normal_int2, (d / s2).clamp(min=0.0), zero, inf, w1 + zero, zero
    )
    return s1 * left + s2 * right


@register_crps(TwoPieceExponential)
def _two_piece_exponential(dist: TwoPieceExponential, target: torch.Tensor) -> torch.Tensor:
    # |d| + (s1^3 + s2^3) / (2 s^2) - 2 s_k^2 / s (1 - exp(-|d| / s_k)), k the side of y (own derivation from
    # the piecewise-exponential CDF; checked by quadrature in the tests).
    y, loc, s1, s2 = _cast(target, dist.loc, dist.scale1, dist.scale2)
    d = y - loc
    total = s1 + s2
    sk = torch.where(d < 0, s1, s2)
    return (
        d.abs()
        + (s1**3 + s2**3) / (2.0 * total * total)
        + 2.0 * sk * sk / total * torch.expm1(-d.abs() / sk)
    )


@register_crps(LogLaplace)
def _log_laplace(dist: LogLaplace, target: torch.Tensor) -> torch.Tensor:
    # E|X - y| - E|X - X'|/2 with E[X 1{X <= y}] from the quantile function e^mu (2p)^b / e^mu (2(1-p))^-b.
    y, mu, b = _cast(target, dist.loc, dist.scale)
    finite = b < 1.0
    bs = torch.where(finite, b, 0.5)
    pos = y > 0
    z = torch.where(pos, (torch.log(torch.where(pos, y, 1.0)) - mu) / bs, -torch.inf)
    zn, zp = z.clamp(max=0.0), z.clamp(min=0.0)
    cdf = torch.where(z < 0, 0.5 * torch.exp(zn), 1.0 - 0.5 * torch.exp(-zp))
    partial = torch.where(
        z < 0,
        torch.exp((1.0 + bs) * zn) / (2.0 * (1.0 + bs)),
        1.0 / (2.0 * (1.0 + bs)) - torch.expm1(-(1.0 - bs) * zp) / (2.0 * (1.0 - bs)),
    )
    const = (4.0 + bs) / ((1.0 + bs) * (4.0 - bs * bs))
    value = y * (2.0 * cdf - 1.0) + torch.exp(mu) * (const - 2.0 * partial)
    return torch.where(finite, value, torch.inf)


@register_crps(LogLogistic)
def _log_logistic(dist: LogLogistic, target: torch.Tensor) -> torch.Tensor:
    # y(2F - 1) - e^mu B(1+s, 1-s) (2 I_F(1+s, 1-s) + s - 1) (Taillardat et al. 2016).
    y, mu, s = _cast(target, dist.loc, dist.scale)
    finite = s < 1.0
    ss = torch.where(finite, s, 0.5)
    pos = y > 0
    z = (torch.log(torch.where(pos, y, 1.0)) - mu) / ss
    cdf = torch.where(pos, torch.sigmoid(z), 0.0)
    sf = torch.where(pos, torch.sigmoid(-z), 1.0)
    inc = betainc(1.0 + ss, 1.0 - ss, cdf, sf)
    b = torch.exp(mu + torch.lgamma(1.0 + ss) + torch.lgamma(1.0 - ss))
    value = y * (2.0 * cdf - 1.0) - b * (2.0 * inc + ss - 1.0)
    return torch.where(finite, value, torch.inf)


@register_crps(UniformWithMasses)
def _uniform_masses(dist: UniformWithMasses, target: torch.Tensor) -> torch.Tensor:
    # int_0^t (L + w x)^2 + int_t^1 (U + w (1 - x))^2 on the unit interval, t = clip(z, 0, 1), w = 1 - L - U.
    y, low, high, lm, um = _cast(target, dist.low, dist.high, dist.lmass, dist.umass)
    width = high - low
    z = (y - low) / width
    t = z.clamp(0.0, 1.0)
    s = 1.0 - t
    w = 1.0 - lm - um
    inner = lm * lm * t + lm * w * t * t + w * w * t**3 / 3.0
    inner = inner + um * um * s + um * w * s * s + w * w * s**3 / 3.0
    return width * ((z - t).abs() + inner)


@register_crps(CensoredShiftedGamma)
def _csg(dist: CensoredShiftedGamma, target: torch.Tensor) -> torch.Tensor:
    # Scheuerer & Hamill (2015) for y >= 0; below the atom at 0 the CRPS grows by -y.
    y, alpha, beta, delta = _cast(target, dist.concentration, dist.rate, dist.shift)
    yp = y.clamp(min=0.0) + delta
    f_a_y = gammainc(alpha, beta * yp)
    f_a1_y = gammainc(alpha + 1.0, beta * yp)
    f_a_d = gammainc(alpha, beta * delta)
    f_a1_d = gammainc(alpha + 1.0, beta * delta)
    f_2a_2d = gammainc(2.0 * alpha, 2.0 * beta * delta)
    b_half = torch.exp(log_beta(torch.full_like(alpha, 0.5), alpha + 0.5))
    return (
        yp * (2.0 * f_a_y - 1.0)
        - alpha / (beta * math.pi) * b_half * (1.0 - f_2a_2d)
        + alpha / beta * (1.0 + 2.0 * f_a_d * f_a1_d - f_a_d * f_a_d - 2.0 * f_a1_y)
        - delta * f_a_d * f_a_d
        + (-y).clamp(min=0.0)
    )


@register_crps(Hypergeometric)
def _hypergeometric(dist: Hypergeometric, target: torch.Tensor) -> torch.Tensor:
    support, pmf = dist.support_table()
    y, support, pmf = _cast(target, support, pmf)
    return _crps_finite_support(support, pmf, y)
