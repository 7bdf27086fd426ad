"""Drop-in names for users of `scoringrules <https://github.com/frazane/scoringrules>`_ (0.10 and 0.11).

Every public scoring function of scoringrules has a function here with the same name, positional order, keywords
and default estimator (``qd`` for the CRPS, ``nrg`` for the energy, variogram and kernel scores); ``obs`` comes
first, ensemble axes are ``m_axis`` / ``v_axis``, member weights ``ens_w``. Inputs may be numpy arrays, Python
numbers or tensors; the result is a tensor, one value per observation (no reduction), differentiable in every
tensor input. ``backend`` is accepted and ignored. A scoringrules user switches with one import line::

    import scoringrules_torch.compat as sr

Each function is a thin adapter over the native API (:mod:`scoringrules_torch.functional`), never a second
implementation: it moves the ensemble axis to the front, builds the ``torch.distributions`` object of a closed
form, and calls the native function with ``reduction="none"``. :data:`NATIVE` maps every name to the native call
it makes (the migration table in the docs is generated from it).

Numeric inputs that are not tensors become float64 tensors (as numpy would compute); when some inputs are already
floating tensors, the others follow their dtype and device.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.distributions import (
    AffineTransform,
    Beta,
    Binomial,
    Categorical,
    Exponential,
    Gamma,
    Laplace,
    LogNormal,
    MixtureSameFamily,
    NegativeBinomial,
    Normal,
    Poisson,
    StudentT,
    TransformedDistribution,
    Uniform,
)

from . import distributions as _D
from .functional import categorical as _c
from .functional import dss as _d
from .functional import ensemble_log as _e
from .functional import quantile as _q
from .functional import weighted as _w
from .functional.crps_closed import Logistic, crps
from .functional.crps_sample import crps_ensemble as _crps_ensemble
from .functional.energy import energy_score as _energy_score
from .functional.kernel import kernel_score as _kernel_score
from .functional.log import log_score as _log_score
from .functional.variogram import variogram_score as _variogram_score

#: Every compat name -> the native call it makes (source of the migration table in the docs).
NATIVE: dict[str, str] = {}


def _native(call: str) -> Callable[[Callable], Callable]:
    def decorator(fn: Callable) -> Callable:
        NATIVE[fn.__name__] = call
        return fn

    return decorator


def _one_observation(fn: Callable) -> Callable:
    """A multivariate score given one observation (``obs`` of shape ``(d,)``) returns a 0-d tensor, as the peer."""

    @functools.wraps(fn)
    def wrapped(obs, *args, **kwargs):
        out = fn(obs, *args, **kwargs)
        return out.reshape(()) if np.ndim(obs) == 1 and out.shape == (1,) else out

    return wrapped


# --------------------------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------------------------
def _tensors(*args: Any) -> list[torch.Tensor | None]:
    """Tensors for ``args`` (``None`` stays ``None``): non-tensors follow the floating tensors' dtype/device."""
    floats = [a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()]
    if floats:
        dtype = floats[0].dtype
        for a in floats[1:]:
            dtype = torch.promote_types(dtype, a.dtype)
        device = floats[0].device
    else:
        dtype, device = torch.float64, torch.device("cpu")
    out: list[torch.Tensor | None] = []
    for a in args:
        if a is None:
            out.append(None)
        elif isinstance(a, torch.Tensor):
            out.append(a if a.dtype == dtype else a.to(dtype))
        else:
            arr = np.asarray(a)
            if arr.dtype.kind not in "biuf":
                raise TypeError(
                    f"expected numbers, an array or a tensor; got {type(a).__name__} {a!r}"
                )
            out.append(torch.as_tensor(arr.astype(np.float64), device=device).to(dtype))
    return out


def _members_first(fct: torch.Tensor, m_axis: int) -> torch.Tensor:
    return torch.movedim(fct, m_axis, 0)


def _mv_native(obs: torch.Tensor, fct: torch.Tensor, m_axis: int, v_axis: int):
    """``(samples, target)`` in our layout: members first, variables last (scoringrules' ``obs`` has the axes of
    ``fct`` without ``m_axis``)."""
    m_axis, v_axis = m_axis % fct.ndim, v_axis % fct.ndim
    if m_axis == v_axis:
        raise ValueError(f"m_axis and v_axis must differ; got both {m_axis}")
    v_obs = v_axis - 1 if m_axis < v_axis else v_axis
    x, y = torch.movedim(fct, (m_axis, v_axis), (0, fct.ndim - 1)), torch.movedim(obs, v_obs, -1)
    if y.dim() == 1:  # one observation: our multivariate scores need an explicit batch dimension
        x, y = x.unsqueeze(1), y.unsqueeze(0)
    return x, y


def _mv_weights(ens_w: torch.Tensor | None, fct_ndim: int, m_axis: int) -> torch.Tensor | None:
    """Member weights as scoringrules reads them for multivariate scores -> members first.

    scoringrules moves axis ``m_axis`` (counted on ``fct``) of ``ens_w`` to the end and then expects
    ``(*batch, m)``; with the default axes that is ``fct``'s shape without the variable axis.
    """
    if ens_w is None:
        return None
    return torch.movedim(torch.movedim(ens_w, m_axis % fct_ndim, -1), -1, 0)


def _check_estimator_default(estimator: str) -> str:
    if not isinstance(estimator, str):
        raise TypeError(f"estimator must be a string; got {type(estimator).__name__}")
    return estimator


# --------------------------------------------------------------------------------------------------------------
# Ensemble scores
# --------------------------------------------------------------------------------------------------------------
@_native(
    "functional.crps_ensemble(movedim(fct, m_axis, 0), obs, estimator=..., member_weights=...)"
)
def crps_ensemble(
    obs,
    fct,
    m_axis: int = -1,
    *,
    ens_w=None,
    estimator: str = "qd",
    sorted_ensemble: bool = False,
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``crps_ensemble`` (default estimator ``qd``); ``sorted_ensemble`` is accepted and ignored."""
    obs, fct, ens_w = _tensors(obs, fct, ens_w)
    w = None if ens_w is None else _members_first(ens_w, m_axis)
    return _crps_ensemble(
        _members_first(fct, m_axis),
        obs,
        estimator=_check_estimator_default(estimator),
        member_weights=w,
        reduction="none",
    )


@_native("functional.energy_score(movedim(fct, (m_axis, v_axis), (0, -1)), obs, estimator=...)")
@_one_observation
def es_ensemble(
    obs,
    fct,
    m_axis: int = -2,
    v_axis: int = -1,
    *,
    ens_w=None,
    estimator: str = "nrg",
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``es_ensemble`` (default estimator ``nrg``)."""
    obs, fct, ens_w = _tensors(obs, fct, ens_w)
    w = _mv_weights(ens_w, fct.ndim, m_axis)
    return _energy_score(
        *_mv_native(obs, fct, m_axis, v_axis),
        estimator=estimator,
        member_weights=w,
        reduction="none",
    )


@_native(
    "functional.variogram_score(movedim(fct, (m_axis, v_axis), (0, -1)), obs, p=p, weights=w, ...)"
)
@_one_observation
def vs_ensemble(
    obs,
    fct,
    w=None,
    m_axis: int = -2,
    v_axis: int = -1,
    *,
    ens_w=None,
    p: float = 0.5,
    estimator: str = "nrg",
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``vs_ensemble``: ``w`` are the ``(d, d)`` pair weights, ``ens_w`` the member weights."""
    obs, fct, w, ens_w = _tensors(obs, fct, w, ens_w)
    mw = _mv_weights(ens_w, fct.ndim, m_axis)
    return _variogram_score(
        *_mv_native(obs, fct, m_axis, v_axis),
        p=p,
        weights=w,
        estimator=estimator,
        member_weights=mw,
        reduction="none",
    )


@_native(
    "functional.kernel_score(movedim(fct, m_axis, 0)[..., None], obs[..., None], kernel='gaussian')"
)
def gksuv_ensemble(
    obs, fct, m_axis: int = -1, *, ens_w=None, estimator: str = "nrg", backend=None
) -> torch.Tensor:
    """scoringrules' ``gksuv_ensemble``: Gaussian kernel score (bandwidth 1) of a univariate ensemble."""
    obs, fct, ens_w = _tensors(obs, fct, ens_w)
    w = None if ens_w is None else _members_first(ens_w, m_axis)
    return _uv_kernel(
        _kernel_score,
        _members_first(fct, m_axis),
        obs,
        kernel="gaussian",
        bandwidth=1.0,
        estimator=estimator,
        member_weights=w,
    )


@_native("functional.kernel_score(movedim(fct, (m_axis, v_axis), (0, -1)), obs, kernel='gaussian')")
@_one_observation
def gksmv_ensemble(
    obs,
    fct,
    m_axis: int = -2,
    v_axis: int = -1,
    *,
    ens_w=None,
    estimator: str = "nrg",
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``gksmv_ensemble``: Gaussian kernel score (bandwidth 1) of a multivariate ensemble."""
    obs, fct, ens_w = _tensors(obs, fct, ens_w)
    w = _mv_weights(ens_w, fct.ndim, m_axis)
    return _kernel_score(
        *_mv_native(obs, fct, m_axis, v_axis),
        kernel="gaussian",
        bandwidth=1.0,
        estimator=estimator,
        member_weights=w,
        reduction="none",
    )


# 0.10 aliases
energy_score = es_ensemble
variogram_score = vs_ensemble


# --------------------------------------------------------------------------------------------------------------
# Closed forms: a distribution builder per family, shared by crps_* and logs_*
# --------------------------------------------------------------------------------------------------------------
def _crps_of(dist, obs: torch.Tensor) -> torch.Tensor:
    return crps(dist, obs, reduction="none")


def _logs_of(dist, obs: torch.Tensor) -> torch.Tensor:
    return _log_score(dist, obs, reduction="none")


def _rate(rate, scale, what: str):
    if (rate is None) == (scale is None):
        raise ValueError(
            f"{what}: give exactly one of rate and scale; got rate={rate!r}, scale={scale!r}"
        )
    return rate if rate is not None else 1.0 / scale


def _negbinom_probs(n, prob, mu):
    if (prob is None) == (mu is None):
        raise ValueError(f"give exactly one of prob and mu; got prob={prob!r}, mu={mu!r}")
    return (
        1.0 - prob if prob is not None else mu / (n + mu)
    )  # torch counts successes with probability `probs`


def _mixture(m, s, w, axis: int):
    m, s = torch.movedim(m, axis, -1), torch.movedim(s, axis, -1)
    if w is None:
        w = torch.ones_like(m)
    else:
        w = torch.movedim(w, axis, -1)
    return MixtureSameFamily(Categorical(probs=w), Normal(m, s))


def _scaled_beta(a, b, lower, upper):
    base = Beta(a, b)
    return TransformedDistribution(base, AffineTransform(lower, upper - lower))


def _shifted_exponential(location, scale):
    return TransformedDistribution(
        Exponential(1.0 / scale), AffineTransform(location, torch.ones_like(scale))
    )


@_native("functional.crps(Normal(mu, sigma), obs)")
def crps_normal(obs, mu, sigma, *, backend=None) -> torch.Tensor:
    obs, mu, sigma = _tensors(obs, mu, sigma)
    return _crps_of(Normal(mu, sigma), obs)


@_native("functional.crps(LogNormal(mulog, sigmalog), obs)")
def crps_lognormal(obs, mulog, sigmalog, backend=None) -> torch.Tensor:
    obs, mulog, sigmalog = _tensors(obs, mulog, sigmalog)
    return _crps_of(LogNormal(mulog, sigmalog), obs)


@_native("functional.crps(Logistic(mu, sigma), obs)")
def crps_logistic(obs, mu, sigma, *, backend=None) -> torch.Tensor:
    obs, mu, sigma = _tensors(obs, mu, sigma)
    return _crps_of(Logistic(mu, sigma), obs)


@_native("functional.crps(Laplace(location, scale), obs)")
def crps_laplace(obs, location=0.0, scale=1.0, *, backend=None) -> torch.Tensor:
    obs, location, scale = _tensors(obs, location, scale)
    return _crps_of(Laplace(location, scale), obs)


@_native("functional.crps(Exponential(rate), obs)")
def crps_exponential(obs, rate, *, backend=None) -> torch.Tensor:
    obs, rate = _tensors(obs, rate)
    return _crps_of(Exponential(rate), obs)


@_native("functional.crps(Gamma(shape, rate), obs)")
def crps_gamma(obs, shape, rate=None, *, scale=None, backend=None) -> torch.Tensor:
    obs, shape, rate, scale = _tensors(obs, shape, rate, scale)
    return _crps_of(Gamma(shape, _rate(rate, scale, "crps_gamma")), obs)


@_native(
    "functional.crps(TransformedDistribution(Beta(a, b), AffineTransform(lower, upper - lower)), obs)"
)
def crps_beta(obs, a, b, lower=0.0, upper=1.0, *, backend=None) -> torch.Tensor:
    obs, a, b, lower, upper = _tensors(obs, a, b, lower, upper)
    return _crps_of(_scaled_beta(a, b, lower, upper), obs)


@_native("functional.crps(Binomial(n, probs=prob), obs)")
def crps_binomial(obs, n, prob, *, backend=None) -> torch.Tensor:
    obs, n, prob = _tensors(obs, n, prob)
    return _crps_of(Binomial(n, probs=prob), obs)


@_native("functional.crps(Poisson(mean), obs)")
def crps_poisson(obs, mean, *, backend=None) -> torch.Tensor:
    obs, mean = _tensors(obs, mean)
    return _crps_of(Poisson(mean), obs)


@_native("functional.crps(NegativeBinomial(n, probs=1 - prob), obs)")
def crps_negbinom(obs, n, prob=None, *, mu=None, backend=None) -> torch.Tensor:
    obs, n, prob, mu = _tensors(obs, n, prob, mu)
    return _crps_of(NegativeBinomial(n, probs=_negbinom_probs(n, prob, mu)), obs)


@_native("functional.crps(StudentT(df, location, scale), obs)")
def crps_t(obs, df, location=0.0, scale=1.0, *, backend=None) -> torch.Tensor:
    obs, df, location, scale = _tensors(obs, df, location, scale)
    return _crps_of(StudentT(df, location, scale), obs)


@_native("functional.crps(MixtureSameFamily(Categorical(probs=w), Normal(m, s)), obs)")
def crps_mixnorm(obs, m, s, w=None, m_axis=-1, *, backend=None) -> torch.Tensor:
    obs, m, s, w = _tensors(obs, m, s, w)
    return _crps_of(_mixture(m, s, w, int(m_axis)), obs)


@_native("functional.crps(distributions.UniformWithMasses(min, max, lmass, umass), obs)")
def crps_uniform(obs, min, max, lmass=0.0, umass=0.0, *, backend=None) -> torch.Tensor:  # noqa: A002
    obs, lo, hi, lmass, umass = _tensors(obs, min, max, lmass, umass)
    return _crps_of(_D.UniformWithMasses(lo, hi, lmass, umass), obs)


@_native("functional.log_score(Normal(mu, sigma), obs)")
def logs_normal(obs, mu, sigma, *, negative: bool = True, backend=None) -> torch.Tensor:
    """scoringrules' ``logs_normal``; ``negative=False`` returns the log-density itself."""
    obs, mu, sigma = _tensors(obs, mu, sigma)
    value = _logs_of(Normal(mu, sigma), obs)
    return value if negative else -value


@_native("functional.log_score(LogNormal(mulog, sigmalog), obs)")
def logs_lognormal(obs, mulog, sigmalog, backend=None) -> torch.Tensor:
    obs, mulog, sigmalog = _tensors(obs, mulog, sigmalog)
    return _logs_of(LogNormal(mulog, sigmalog), obs)


@_native("functional.log_score(Logistic(mu, sigma), obs)")
def logs_logistic(obs, mu, sigma, *, backend=None) -> torch.Tensor:
    obs, mu, sigma = _tensors(obs, mu, sigma)
    return _logs_of(Logistic(mu, sigma), obs)


@_native("functional.log_score(Laplace(location, scale), obs)")
def logs_laplace(obs, location=0.0, scale=1.0, *, backend=None) -> torch.Tensor:
    obs, location, scale = _tensors(obs, location, scale)
    return _logs_of(Laplace(location, scale), obs)


@_native("functional.log_score(Exponential(rate), obs)")
def logs_exponential(obs, rate, *, backend=None) -> torch.Tensor:
    obs, rate = _tensors(obs, rate)
    return _logs_of(Exponential(rate), obs)


@_native(
    "functional.log_score(TransformedDistribution(Exponential(1/scale), AffineTransform(location, 1)), obs)"
)
def logs_exponential2(obs, location=0.0, scale=1.0, *, backend=None) -> torch.Tensor:
    obs, location, scale = _tensors(obs, location, scale)
    return _logs_of(_shifted_exponential(location, scale), obs)


@_native("functional.log_score(Gamma(shape, rate), obs)")
def logs_gamma(obs, shape, rate=None, *, scale=None, backend=None) -> torch.Tensor:
    obs, shape, rate, scale = _tensors(obs, shape, rate, scale)
    return _logs_of(Gamma(shape, _rate(rate, scale, "logs_gamma")), obs)


@_native(
    "functional.log_score(TransformedDistribution(Beta(a, b), AffineTransform(lower, upper - lower)), obs)"
)
def logs_beta(obs, a, b, lower=0.0, upper=1.0, *, backend=None) -> torch.Tensor:
    obs, a, b, lower, upper = _tensors(obs, a, b, lower, upper)
    return _logs_of(_scaled_beta(a, b, lower, upper), obs)


@_native("functional.log_score(Binomial(n, probs=prob), obs)")
def logs_binomial(obs, n, prob, *, backend=None) -> torch.Tensor:
    obs, n, prob = _tensors(obs, n, prob)
    return _logs_of(Binomial(n, probs=prob, validate_args=False), obs)


@_native("functional.log_score(Poisson(mean), obs)")
def logs_poisson(obs, mean, *, backend=None) -> torch.Tensor:
    obs, mean = _tensors(obs, mean)
    return _logs_of(Poisson(mean, validate_args=False), obs)


@_native("functional.log_score(NegativeBinomial(n, probs=1 - prob), obs)")
def logs_negbinom(obs, n, prob=None, *, mu=None, backend=None) -> torch.Tensor:
    obs, n, prob, mu = _tensors(obs, n, prob, mu)
    return _logs_of(
        NegativeBinomial(n, probs=_negbinom_probs(n, prob, mu), validate_args=False), obs
    )


@_native("functional.log_score(StudentT(df, location, scale), obs)")
def logs_t(obs, df, location=0.0, scale=1.0, *, backend=None) -> torch.Tensor:
    obs, df, location, scale = _tensors(obs, df, location, scale)
    return _logs_of(StudentT(df, location, scale), obs)


@_native("functional.log_score(MixtureSameFamily(Categorical(probs=w), Normal(m, s)), obs)")
def logs_mixnorm(obs, m, s, w=None, mc_axis=-1, *, backend=None) -> torch.Tensor:
    obs, m, s, w = _tensors(obs, m, s, w)
    return _logs_of(_mixture(m, s, w, int(mc_axis)), obs)


@_native("functional.log_score(Uniform(min, max), obs)")
def logs_uniform(obs, min, max, *, backend=None) -> torch.Tensor:  # noqa: A002
    obs, lo, hi = _tensors(obs, min, max)
    return _logs_of(Uniform(lo, hi, validate_args=False), obs)


# --------------------------------------------------------------------------------------------------------------
# Weighted ensemble scores
# --------------------------------------------------------------------------------------------------------------
def _torch_func(fn: Callable | None) -> Callable | None:
    """A user's weight/chaining function made safe for tensors: a numpy function still works (its result is
    converted back, without gradient through ``fn``); a torch function keeps gradients."""
    if fn is None:
        return None

    def wrapped(t: torch.Tensor) -> torch.Tensor:
        try:
            out = fn(t)
        except (TypeError, RuntimeError):
            out = fn(t.detach().cpu().numpy())
        if not isinstance(out, torch.Tensor):
            out = torch.as_tensor(np.asarray(out, dtype=np.float64), device=t.device).to(t.dtype)
        return out

    return wrapped


def _vector_func(fn: Callable | None) -> Callable | None:
    """A multivariate weight function as scoringrules calls it, one vector at a time (``apply_along_axis``):
    ``(..., d) -> (...)``. Torch functions run batched under ``torch.vmap`` (gradients kept); others, e.g.
    numpy functions, run vector by vector."""
    if fn is None:
        return None

    def wrapped(t: torch.Tensor) -> torch.Tensor:
        flat = t.reshape(-1, t.shape[-1])
        try:
            out = torch.vmap(fn)(flat)
        except Exception:  # not vmap-able (numpy, Python control flow): the peer's loop
            rows = flat.detach().cpu().numpy()
            out = torch.as_tensor(
                np.asarray([fn(r) for r in rows], dtype=np.float64), device=t.device
            )
        return out.to(t.dtype).reshape(t.shape[:-1])

    return wrapped


def _uv_func(fn: Callable | None) -> Callable | None:
    """An elementwise univariate weight function applied to ``(..., 1)`` kernel inputs -> ``(...)``."""
    fn = _torch_func(fn)
    return None if fn is None else (lambda t: fn(t.squeeze(-1)))


def _uv_chain(fn: Callable | None) -> Callable | None:
    """An elementwise univariate chaining function applied to ``(..., 1)`` kernel inputs -> ``(..., 1)``."""
    fn = _torch_func(fn)
    return None if fn is None else (lambda t: fn(t.squeeze(-1)).unsqueeze(-1))


def _uv_kernel(fn: Callable, x: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:
    """A univariate ensemble scored by a multivariate kernel function (trailing event axis of size 1)."""
    one = y.dim() == 0  # one observation: our multivariate scores need an explicit batch dimension
    xe, ye = (x.unsqueeze(1), y.unsqueeze(0)) if one else (x, y)
    out = fn(xe.unsqueeze(-1), ye.unsqueeze(-1), reduction="none", **kwargs)
    return out.reshape(y.shape)


def _uv_args(obs, fct, ens_w, m_axis):
    obs, fct, ens_w = _tensors(obs, fct, ens_w)
    w = None if ens_w is None else _members_first(ens_w, m_axis)
    return _members_first(fct, m_axis), obs, w


def _mv_args(obs, fct, ens_w, m_axis, v_axis):
    obs, fct, ens_w = _tensors(obs, fct, ens_w)
    x, y = _mv_native(obs, fct, m_axis, v_axis)
    return x, y, _mv_weights(ens_w, fct.ndim, m_axis)


@_native(
    "functional.twcrps_ensemble(movedim(fct, m_axis, 0), obs, a=a, b=b, v_func=v_func, estimator=...)"
)
def twcrps_ensemble(
    obs,
    fct,
    a: float = -math.inf,
    b: float = math.inf,
    m_axis: int = -1,
    *,
    ens_w=None,
    v_func=None,
    estimator: str = "qd",
    sorted_ensemble: bool = False,
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``twcrps_ensemble``: threshold-weighted CRPS (chaining ``v_func``, or clamping to [a, b])."""
    x, y, w = _uv_args(obs, fct, ens_w, m_axis)
    return _w.twcrps_ensemble(
        x,
        y,
        v_func=_torch_func(v_func),
        a=a,
        b=b,
        estimator=estimator,
        member_weights=w,
        reduction="none",
    )


@_native("functional.owcrps_ensemble(movedim(fct, m_axis, 0), obs, a=a, b=b, w_func=w_func)")
def owcrps_ensemble(
    obs,
    fct,
    a: float = -math.inf,
    b: float = math.inf,
    m_axis: int = -1,
    *,
    ens_w=None,
    w_func=None,
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``owcrps_ensemble``: outcome-weighted CRPS."""
    x, y, w = _uv_args(obs, fct, ens_w, m_axis)
    return _w.owcrps_ensemble(
        x, y, w_func=_torch_func(w_func), a=a, b=b, member_weights=w, reduction="none"
    )


@_native(
    "functional.vrcrps_ensemble(movedim(fct, m_axis, 0), obs, a=a, b=b, w_func=w_func, estimator='nrg')"
)
def vrcrps_ensemble(
    obs,
    fct,
    a: float = -math.inf,
    b: float = math.inf,
    m_axis: int = -1,
    *,
    ens_w=None,
    w_func=None,
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``vrcrps_ensemble``: vertically re-scaled CRPS (the peer's V-statistic, ``nrg``)."""
    x, y, w = _uv_args(obs, fct, ens_w, m_axis)
    return _w.vrcrps_ensemble(
        x,
        y,
        w_func=_torch_func(w_func),
        a=a,
        b=b,
        estimator="nrg",
        member_weights=w,
        reduction="none",
    )


@_native("functional.twenergy_score(samples, target, v_func=v_func, estimator=...)")
@_one_observation
def twes_ensemble(
    obs,
    fct,
    v_func,
    m_axis: int = -2,
    v_axis: int = -1,
    *,
    ens_w=None,
    estimator: str = "nrg",
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``twes_ensemble``: threshold-weighted energy score with chaining function ``v_func``."""
    x, y, w = _mv_args(obs, fct, ens_w, m_axis, v_axis)
    return _w.twenergy_score(
        x, y, v_func=_torch_func(v_func), estimator=estimator, member_weights=w, reduction="none"
    )


@_native("functional.owenergy_score(samples, target, w_func=w_func)")
@_one_observation
def owes_ensemble(
    obs, fct, w_func, m_axis: int = -2, v_axis: int = -1, *, ens_w=None, backend=None
) -> torch.Tensor:
    """scoringrules' ``owes_ensemble``: outcome-weighted energy score."""
    x, y, w = _mv_args(obs, fct, ens_w, m_axis, v_axis)
    return _w.owenergy_score(x, y, w_func=_vector_func(w_func), member_weights=w, reduction="none")


@_native("functional.vrenergy_score(samples, target, w_func=w_func, estimator='nrg')")
@_one_observation
def vres_ensemble(
    obs, fct, w_func, *, ens_w=None, m_axis: int = -2, v_axis: int = -1, backend=None
) -> torch.Tensor:
    """scoringrules' ``vres_ensemble``: vertically re-scaled energy score."""
    x, y, w = _mv_args(obs, fct, ens_w, m_axis, v_axis)
    return _w.vrenergy_score(
        x, y, w_func=_vector_func(w_func), estimator="nrg", member_weights=w, reduction="none"
    )


@_native(
    "functional.twvariogram_score(samples, target, v_func=v_func, p=p, weights=w, estimator=...)"
)
@_one_observation
def twvs_ensemble(
    obs,
    fct,
    v_func,
    w=None,
    m_axis: int = -2,
    v_axis: int = -1,
    *,
    ens_w=None,
    p: float = 0.5,
    estimator: str = "nrg",
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``twvs_ensemble``: threshold-weighted variogram score."""
    x, y, mw = _mv_args(obs, fct, ens_w, m_axis, v_axis)
    return _w.twvariogram_score(
        x,
        y,
        v_func=_torch_func(v_func),
        p=p,
        weights=_follow(w, x),
        estimator=estimator,
        member_weights=mw,
        reduction="none",
    )


@_native("functional.owvariogram_score(samples, target, w_func=w_func, p=p, weights=w)")
@_one_observation
def owvs_ensemble(
    obs,
    fct,
    w_func,
    w=None,
    m_axis: int = -2,
    v_axis: int = -1,
    *,
    ens_w=None,
    p: float = 0.5,
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``owvs_ensemble``: outcome-weighted variogram score."""
    x, y, mw = _mv_args(obs, fct, ens_w, m_axis, v_axis)
    return _w.owvariogram_score(
        x,
        y,
        w_func=_vector_func(w_func),
        p=p,
        weights=_follow(w, x),
        member_weights=mw,
        reduction="none",
    )


@_native("functional.vrvariogram_score(samples, target, w_func=w_func, p=p, weights=w)")
@_one_observation
def vrvs_ensemble(
    obs,
    fct,
    w_func,
    w=None,
    m_axis: int = -2,
    v_axis: int = -1,
    *,
    ens_w=None,
    p: float = 0.5,
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``vrvs_ensemble``: vertically re-scaled variogram score."""
    x, y, mw = _mv_args(obs, fct, ens_w, m_axis, v_axis)
    return _w.vrvariogram_score(
        x,
        y,
        w_func=_vector_func(w_func),
        p=p,
        weights=_follow(w, x),
        member_weights=mw,
        reduction="none",
    )


@_native(
    "functional.twkernel_score(fct[..., None], obs[..., None], a=a, b=b, kernel='gaussian', estimator=...)"
)
def twgksuv_ensemble(
    obs,
    fct,
    a: float = -math.inf,
    b: float = math.inf,
    m_axis: int = -1,
    *,
    ens_w=None,
    v_func=None,
    estimator: str = "nrg",
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``twgksuv_ensemble``: threshold-weighted Gaussian kernel score, univariate."""
    x, y, w = _uv_args(obs, fct, ens_w, m_axis)
    return _uv_kernel(
        _w.twkernel_score,
        x,
        y,
        v_func=_uv_chain(v_func),
        a=a,
        b=b,
        kernel="gaussian",
        bandwidth=1.0,
        estimator=estimator,
        member_weights=w,
    )


@_native(
    "functional.owkernel_score(fct[..., None], obs[..., None], a=a, b=b, w_func=..., kernel='gaussian')"
)
def owgksuv_ensemble(
    obs,
    fct,
    a: float = -math.inf,
    b: float = math.inf,
    m_axis: int = -1,
    *,
    ens_w=None,
    w_func=None,
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``owgksuv_ensemble``: outcome-weighted Gaussian kernel score, univariate."""
    x, y, w = _uv_args(obs, fct, ens_w, m_axis)
    return _uv_kernel(
        _w.owkernel_score,
        x,
        y,
        w_func=_uv_func(w_func),
        a=a,
        b=b,
        kernel="gaussian",
        bandwidth=1.0,
        member_weights=w,
    )


@_native(
    "functional.vrkernel_score(fct[..., None], obs[..., None], a=a, b=b, w_func=..., estimator='nrg')"
)
def vrgksuv_ensemble(
    obs,
    fct,
    a: float = -math.inf,
    b: float = math.inf,
    m_axis: int = -1,
    *,
    ens_w=None,
    w_func=None,
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``vrgksuv_ensemble``: vertically re-scaled Gaussian kernel score, univariate."""
    x, y, w = _uv_args(obs, fct, ens_w, m_axis)
    return _uv_kernel(
        _w.vrkernel_score,
        x,
        y,
        w_func=_uv_func(w_func),
        a=a,
        b=b,
        kernel="gaussian",
        bandwidth=1.0,
        estimator="nrg",
        member_weights=w,
    )


@_native(
    "functional.twkernel_score(samples, target, v_func=v_func, kernel='gaussian', estimator=...)"
)
@_one_observation
def twgksmv_ensemble(
    obs,
    fct,
    v_func,
    m_axis: int = -2,
    v_axis: int = -1,
    *,
    ens_w=None,
    estimator: str = "nrg",
    backend=None,
) -> torch.Tensor:
    """scoringrules' ``twgksmv_ensemble``: threshold-weighted Gaussian kernel score, multivariate."""
    x, y, w = _mv_args(obs, fct, ens_w, m_axis, v_axis)
    return _w.twkernel_score(
        x,
        y,
        v_func=_torch_func(v_func),
        kernel="gaussian",
        bandwidth=1.0,
        estimator=estimator,
        member_weights=w,
        reduction="none",
    )


@_native("functional.owkernel_score(samples, target, w_func=w_func, kernel='gaussian')")
@_one_observation
def owgksmv_ensemble(
    obs, fct, w_func, m_axis: int = -2, v_axis: int = -1, *, ens_w=None, backend=None
) -> torch.Tensor:
    """scoringrules' ``owgksmv_ensemble``: outcome-weighted Gaussian kernel score, multivariate."""
    x, y, w = _mv_args(obs, fct, ens_w, m_axis, v_axis)
    return _w.owkernel_score(
        x,
        y,
        w_func=_vector_func(w_func),
        kernel="gaussian",
        bandwidth=1.0,
        member_weights=w,
        reduction="none",
    )


@_native(
    "functional.vrkernel_score(samples, target, w_func=w_func, kernel='gaussian', estimator='nrg')"
)
@_one_observation
def vrgksmv_ensemble(
    obs, fct, w_func, m_axis: int = -2, v_axis: int = -1, *, ens_w=None, backend=None
) -> torch.Tensor:
    """scoringrules' ``vrgksmv_ensemble``: vertically re-scaled Gaussian kernel score, multivariate."""
    x, y, w = _mv_args(obs, fct, ens_w, m_axis, v_axis)
    return _w.vrkernel_score(
        x,
        y,
        w_func=_vector_func(w_func),
        kernel="gaussian",
        bandwidth=1.0,
        estimator="nrg",
        member_weights=w,
        reduction="none",
    )


# 0.10 aliases
twenergy_score = twes_ensemble
owenergy_score = owes_ensemble
vrenergy_score = vres_ensemble
twvariogram_score = twvs_ensemble
owvariogram_score = owvs_ensemble
vrvariogram_score = vrvs_ensemble


def _follow(w, like: torch.Tensor) -> torch.Tensor | None:
    """Pair weights as a tensor of ``like``'s dtype and device (or ``None``)."""
    if w is None:
        return None
    (w,) = _tensors(w)
    return w.to(dtype=like.dtype, device=like.device)


# --------------------------------------------------------------------------------------------------------------
# Quantile, interval, categorical, moment-based and ensemble log scores
# --------------------------------------------------------------------------------------------------------------
@_native("functional.quantile_score(fct[..., None], obs, levels=alpha[..., None])")
def quantile_score(obs, fct, alpha, *, backend=None) -> torch.Tensor:
    """scoringrules' ``quantile_score``: the pinball loss, elementwise over broadcast ``obs``, ``fct``, ``alpha``."""
    obs, fct, alpha = _tensors(obs, fct, alpha)
    obs, fct, alpha = torch.broadcast_tensors(obs, fct, alpha)
    return _q.quantile_score(
        fct.unsqueeze(-1), obs, levels=alpha.unsqueeze(-1), reduction="none"
    ).squeeze(-1)


@_native("functional.crps_quantile(movedim(fct, m_axis, -1), obs, levels=alpha)")
def crps_quantile(obs, fct, alpha, m_axis: int = -1, *, backend=None) -> torch.Tensor:
    """scoringrules' ``crps_quantile``: the CRPS approximated from quantiles at levels ``alpha``."""
    obs, fct, alpha = _tensors(obs, fct, alpha)
    return _q.crps_quantile(torch.movedim(fct, m_axis, -1), obs, levels=alpha, reduction="none")


@_native("functional.interval_score(lower, upper, obs, alpha=alpha)")
def interval_score(obs, lower, upper, alpha, *, backend=None) -> torch.Tensor:
    """scoringrules' ``interval_score`` of central ``(1 - alpha)`` intervals."""
    obs, lower, upper, alpha = _tensors(obs, lower, upper, alpha)
    return _q.interval_score(lower, upper, obs, alpha=alpha, reduction="none")


@_native(
    "functional.weighted_interval_score(median, lower, upper, obs, alpha=alpha, median_weight=..., "
    "interval_weights=w_alpha)"
)
def weighted_interval_score(
    obs, median, lower, upper, alpha, w_median=None, w_alpha=None, *, backend=None
) -> torch.Tensor:
    """scoringrules' ``weighted_interval_score`` (as its numba backend computes it; see the migration page)."""
    obs, median, lower, upper, alpha, w_alpha = _tensors(obs, median, lower, upper, alpha, w_alpha)
    return _q.weighted_interval_score(
        median,
        lower,
        upper,
        obs,
        alpha=alpha,
        median_weight=0.5 if w_median is None else float(w_median),
        interval_weights=w_alpha,
        reduction="none",
    )


@_native("functional.brier_score(fct, obs, binary=True)")
def brier_score(obs, fct, *, backend=None) -> torch.Tensor:
    """scoringrules' ``brier_score`` of binary events: ``fct`` the probability that ``obs == 1``."""
    obs, fct = _tensors(obs, fct)
    return _c.brier_score(fct, obs, binary=True, reduction="none")


@_native("functional.categorical_log_score(fct, obs, binary=True)")
def log_score(obs, fct, *, backend=None) -> torch.Tensor:
    """scoringrules' ``log_score`` of binary events: ``fct`` the probability that ``obs == 1``."""
    obs, fct = _tensors(obs, fct)
    return _c.categorical_log_score(fct, obs, binary=True, reduction="none")


def _categories(obs: torch.Tensor, onehot: bool, k_axis: int) -> torch.Tensor:
    """scoringrules' 1-based category numbers (or one-hot vectors) -> our 0-based indices (or one-hot)."""
    return torch.movedim(obs, k_axis, -1) if onehot else (obs - 1).round().long()


@_native("functional.rps_score(fct, obs - 1, class_dim=k_axis)")
def rps_score(obs, fct, k_axis: int = -1, *, onehot: bool = False, backend=None) -> torch.Tensor:
    """scoringrules' ``rps_score``: categories numbered from 1 (or one-hot with ``onehot=True``)."""
    obs, fct = _tensors(obs, fct)
    return _c.rps_score(
        torch.movedim(fct, k_axis, -1), _categories(obs, onehot, k_axis), reduction="none"
    )


@_native("functional.rls_score(fct, obs - 1, class_dim=k_axis)")
def rls_score(obs, fct, k_axis: int = -1, *, onehot: bool = False, backend=None) -> torch.Tensor:
    """scoringrules' ``rls_score``: categories numbered from 1 (or one-hot with ``onehot=True``)."""
    obs, fct = _tensors(obs, fct)
    return _c.rls_score(
        torch.movedim(fct, k_axis, -1), _categories(obs, onehot, k_axis), reduction="none"
    )


@_native("functional.dss_ensemble(movedim(fct, m_axis, 0), obs, bias=bias)")
def dssuv_ensemble(obs, fct, m_axis: int = -1, *, bias: bool = False, backend=None) -> torch.Tensor:
    """scoringrules' ``dssuv_ensemble``: Dawid–Sebastiani score of a univariate ensemble."""
    x, y, _ = _uv_args(obs, fct, None, m_axis)
    return _d.dss_ensemble(x, y, bias=bias, reduction="none")


@_native("functional.dss_ensemble_mv(samples, target, bias=bias)")
@_one_observation
def dssmv_ensemble(
    obs, fct, m_axis: int = -2, v_axis: int = -1, *, bias: bool = False, backend=None
) -> torch.Tensor:
    """scoringrules' ``dssmv_ensemble``: Dawid–Sebastiani score of a multivariate ensemble."""
    x, y, _ = _mv_args(obs, fct, None, m_axis, v_axis)
    return _d.dss_ensemble_mv(x, y, bias=bias, reduction="none")


@_native("functional.error_spread_score(movedim(fct, m_axis, 0), obs)")
def error_spread_score(obs, fct, m_axis: int = -1, *, backend=None) -> torch.Tensor:
    """scoringrules' ``error_spread_score``."""
    x, y, _ = _uv_args(obs, fct, None, m_axis)
    return _d.error_spread_score(x, y, reduction="none")


@_native("functional.logs_ensemble(movedim(fct, m_axis, 0), obs, bandwidth=bw)")
def logs_ensemble(obs, fct, m_axis: int = -1, *, bw=None, backend=None) -> torch.Tensor:
    """scoringrules' ``logs_ensemble``: log score of a Gaussian kernel density estimate."""
    x, y, _ = _uv_args(obs, fct, None, m_axis)
    return _e.logs_ensemble(x, y, bandwidth=bw, reduction="none")


@_native(
    "functional.clogs_ensemble(movedim(fct, m_axis, 0), obs, a=a, b=b, bandwidth=bw, censored=cens)"
)
def clogs_ensemble(
    obs, fct, a=-math.inf, b=math.inf, m_axis: int = -1, *, bw=None, cens: bool = True, backend=None
) -> torch.Tensor:
    """scoringrules' ``clogs_ensemble``: conditional (or censored) likelihood score on [a, b]."""
    x, y, _ = _uv_args(obs, fct, None, m_axis)
    return _e.clogs_ensemble(x, y, a=a, b=b, bandwidth=bw, censored=cens, reduction="none")


# --------------------------------------------------------------------------------------------------------------
# Closed forms of scoringrules_torch.distributions
# --------------------------------------------------------------------------------------------------------------
@_native("functional.crps(distributions.GeneralizedExtremeValue(location, scale, shape), obs)")
def crps_gev(obs, shape, location=0.0, scale=1.0, *, backend=None) -> torch.Tensor:
    obs, shape, location, scale = _tensors(obs, shape, location, scale)
    return _crps_of(_D.GeneralizedExtremeValue(location, scale, shape), obs)


@_native("functional.log_score(distributions.GeneralizedExtremeValue(location, scale, shape), obs)")
def logs_gev(obs, shape, location=0.0, scale=1.0, *, backend=None) -> torch.Tensor:
    obs, shape, location, scale = _tensors(obs, shape, location, scale)
    return _logs_of(_D.GeneralizedExtremeValue(location, scale, shape, validate_args=False), obs)


@_native(
    "functional.crps(distributions.GeneralizedParetoWithMass(location, scale, shape, mass), obs)"
)
def crps_gpd(obs, shape, location=0.0, scale=1.0, mass=0.0, *, backend=None) -> torch.Tensor:
    obs, shape, location, scale, mass = _tensors(obs, shape, location, scale, mass)
    return _crps_of(_D.GeneralizedParetoWithMass(location, scale, shape, mass), obs)


@_native(
    "functional.log_score(distributions.GeneralizedParetoWithMass(location, scale, shape), obs)"
)
def logs_gpd(obs, shape, location=0.0, scale=1.0, *, backend=None) -> torch.Tensor:
    obs, shape, location, scale = _tensors(obs, shape, location, scale)
    return _logs_of(_D.GeneralizedParetoWithMass(location, scale, shape, validate_args=False), obs)


@_native("functional.crps(distributions.ExponentialWithMass(location, scale, mass), obs)")
def crps_exponentialM(obs, mass=0.0, location=0.0, scale=1.0, *, backend=None) -> torch.Tensor:  # noqa: N802
    obs, mass, location, scale = _tensors(obs, mass, location, scale)
    return _crps_of(_D.ExponentialWithMass(location, scale, mass), obs)


@_native(
    "functional.crps(distributions.GeneralizedTruncatedCensoredNormal(location, scale, lower, upper, "
    "lmass, umass), obs)"
)
def crps_gtcnormal(
    obs, location, scale, lower=-math.inf, upper=math.inf, lmass=0.0, umass=0.0, *, backend=None
) -> torch.Tensor:
    obs, *p = _tensors(obs, location, scale, lower, upper, lmass, umass)
    return _crps_of(_D.GeneralizedTruncatedCensoredNormal(*p), obs)


@_native("functional.crps(distributions.TruncatedNormal(location, scale, lower, upper), obs)")
def crps_tnormal(
    obs, location, scale, lower=-math.inf, upper=math.inf, *, backend=None
) -> torch.Tensor:
    obs, *p = _tensors(obs, location, scale, lower, upper)
    return _crps_of(_D.TruncatedNormal(*p), obs)


@_native("functional.log_score(distributions.TruncatedNormal(location, scale, lower, upper), obs)")
def logs_tnormal(
    obs, location, scale, lower=-math.inf, upper=math.inf, *, backend=None
) -> torch.Tensor:
    obs, *p = _tensors(obs, location, scale, lower, upper)
    return _logs_of(_D.TruncatedNormal(*p, validate_args=False), obs)


@_native("functional.crps(distributions.CensoredNormal(location, scale, lower, upper), obs)")
def crps_cnormal(
    obs, location, scale, lower=-math.inf, upper=math.inf, *, backend=None
) -> torch.Tensor:
    obs, *p = _tensors(obs, location, scale, lower, upper)
    return _crps_of(_D.CensoredNormal(*p), obs)


@_native(
    "functional.crps(distributions.GeneralizedTruncatedCensoredLogistic(location, scale, lower, upper, "
    "lmass, umass), obs)"
)
def crps_gtclogistic(
    obs, location, scale, lower=-math.inf, upper=math.inf, lmass=0.0, umass=0.0, *, backend=None
) -> torch.Tensor:
    obs, *p = _tensors(obs, location, scale, lower, upper, lmass, umass)
    return _crps_of(_D.GeneralizedTruncatedCensoredLogistic(*p), obs)


@_native("functional.crps(distributions.TruncatedLogistic(location, scale, lower, upper), obs)")
def crps_tlogistic(
    obs, location, scale, lower=-math.inf, upper=math.inf, *, backend=None
) -> torch.Tensor:
    obs, *p = _tensors(obs, location, scale, lower, upper)
    return _crps_of(_D.TruncatedLogistic(*p), obs)


@_native(
    "functional.log_score(distributions.TruncatedLogistic(location, scale, lower, upper), obs)"
)
def logs_tlogistic(
    obs, location, scale, lower=-math.inf, upper=math.inf, *, backend=None
) -> torch.Tensor:
    obs, *p = _tensors(obs, location, scale, lower, upper)
    return _logs_of(_D.TruncatedLogistic(*p, validate_args=False), obs)


@_native("functional.crps(distributions.CensoredLogistic(location, scale, lower, upper), obs)")
def crps_clogistic(
    obs, location, scale, lower=-math.inf, upper=math.inf, *, backend=None
) -> torch.Tensor:
    obs, *p = _tensors(obs, location, scale, lower, upper)
    return _crps_of(_D.CensoredLogistic(*p), obs)


@_native(
    "functional.crps(distributions.GeneralizedTruncatedCensoredStudentT(df, location, scale, lower, "
    "upper, lmass, umass), obs)"
)
def crps_gtct(
    obs,
    df,
    location=0.0,
    scale=1.0,
    lower=-math.inf,
    upper=math.inf,
    lmass=0.0,
    umass=0.0,
    *,
    backend=None,
) -> torch.Tensor:
    obs, *p = _tensors(obs, df, location, scale, lower, upper, lmass, umass)
    return _crps_of(_D.GeneralizedTruncatedCensoredStudentT(*p), obs)


@_native("functional.crps(distributions.TruncatedStudentT(df, location, scale, lower, upper), obs)")
def crps_tt(
    obs, df, location=0.0, scale=1.0, lower=-math.inf, upper=math.inf, *, backend=None
) -> torch.Tensor:
    obs, *p = _tensors(obs, df, location, scale, lower, upper)
    return _crps_of(_D.TruncatedStudentT(*p), obs)


@_native(
    "functional.log_score(distributions.TruncatedStudentT(df, location, scale, lower, upper), obs)"
)
def logs_tt(
    obs, df, location=0.0, scale=1.0, lower=-math.inf, upper=math.inf, *, backend=None
) -> torch.Tensor:
    obs, *p = _tensors(obs, df, location, scale, lower, upper)
    return _logs_of(_D.TruncatedStudentT(*p, validate_args=False), obs)


@_native("functional.crps(distributions.CensoredStudentT(df, location, scale, lower, upper), obs)")
def crps_ct(
    obs, df, location=0.0, scale=1.0, lower=-math.inf, upper=math.inf, *, backend=None
) -> torch.Tensor:
    obs, *p = _tensors(obs, df, location, scale, lower, upper)
    return _crps_of(_D.CensoredStudentT(*p), obs)


@_native("functional.crps(distributions.TwoPieceNormal(location, scale1, scale2), obs)")
def crps_2pnormal(obs, scale1, scale2, location, *, backend=None) -> torch.Tensor:
    obs, scale1, scale2, location = _tensors(obs, scale1, scale2, location)
    return _crps_of(_D.TwoPieceNormal(location, scale1, scale2), obs)


@_native("functional.log_score(distributions.TwoPieceNormal(location, scale1, scale2), obs)")
def logs_2pnormal(obs, scale1, scale2, location, *, backend=None) -> torch.Tensor:
    obs, scale1, scale2, location = _tensors(obs, scale1, scale2, location)
    return _logs_of(_D.TwoPieceNormal(location, scale1, scale2), obs)


@_native("functional.crps(distributions.TwoPieceExponential(location, scale1, scale2), obs)")
def crps_2pexponential(obs, scale1, scale2, location, *, backend=None) -> torch.Tensor:
    obs, scale1, scale2, location = _tensors(obs, scale1, scale2, location)
    return _crps_of(_D.TwoPieceExponential(location, scale1, scale2), obs)


@_native("functional.log_score(distributions.TwoPieceExponential(location, scale1, scale2), obs)")
def logs_2pexponential(obs, scale1, scale2, location, *, backend=None) -> torch.Tensor:
    obs, scale1, scale2, location = _tensors(obs, scale1, scale2, location)
    return _logs_of(_D.TwoPieceExponential(location, scale1, scale2), obs)


@_native("functional.crps(distributions.LogLaplace(locationlog, scalelog), obs)")
def crps_loglaplace(obs, locationlog, scalelog, *, backend=None) -> torch.Tensor:
    obs, locationlog, scalelog = _tensors(obs, locationlog, scalelog)
    return _crps_of(_D.LogLaplace(locationlog, scalelog), obs)


@_native("functional.log_score(distributions.LogLaplace(locationlog, scalelog), obs)")
def logs_loglaplace(obs, locationlog, scalelog, *, backend=None) -> torch.Tensor:
    obs, locationlog, scalelog = _tensors(obs, locationlog, scalelog)
    return _logs_of(_D.LogLaplace(locationlog, scalelog, validate_args=False), obs)


@_native("functional.crps(distributions.LogLogistic(mulog, sigmalog), obs)")
def crps_loglogistic(obs, mulog, sigmalog, backend=None) -> torch.Tensor:
    obs, mulog, sigmalog = _tensors(obs, mulog, sigmalog)
    return _crps_of(_D.LogLogistic(mulog, sigmalog), obs)


@_native("functional.log_score(distributions.LogLogistic(mulog, sigmalog), obs)")
def logs_loglogistic(obs, mulog, sigmalog, backend=None) -> torch.Tensor:
    obs, mulog, sigmalog = _tensors(obs, mulog, sigmalog)
    return _logs_of(_D.LogLogistic(mulog, sigmalog, validate_args=False), obs)


@_native("functional.crps(distributions.CensoredShiftedGamma(shape, rate, shift), obs)")
def crps_csg0(obs, shape, rate=None, *, scale=None, shift=0.0, backend=None) -> torch.Tensor:
    obs, shape, rate, scale, shift = _tensors(obs, shape, rate, scale, shift)
    return _crps_of(_D.CensoredShiftedGamma(shape, _rate(rate, scale, "crps_csg0"), shift), obs)


@_native("functional.crps(distributions.Hypergeometric(m, n, k), obs)")
def crps_hypergeometric(obs, m, n, k, *, backend=None) -> torch.Tensor:
    obs, m, n, k = _tensors(obs, m, n, k)
    return _crps_of(_D.Hypergeometric(m, n, k), obs)


@_native("functional.log_score(distributions.Hypergeometric(m, n, k), obs)")
def logs_hypergeometric(obs, m, n, k, *, backend=None) -> torch.Tensor:
    obs, m, n, k = _tensors(obs, m, n, k)
    return _logs_of(_D.Hypergeometric(m, n, k, validate_args=False), obs)


__all__ = sorted(
    [
        *NATIVE,
        "NATIVE",
        "energy_score",
        "variogram_score",
        "twenergy_score",
        "owenergy_score",
        "vrenergy_score",
        "twvariogram_score",
        "owvariogram_score",
        "vrvariogram_score",
    ]
)
