"""Closed-form CRPS of the families in ``scoringrules_torch.distributions``: scoringrules 0.10.0 (numpy backend,
float64) on random inputs over batch shapes (), (5,), (3, 4); scipy quadrature of (F(x) - 1{x >= y})^2 with
CDFs built from scipy.stats (not from our classes) plus the point masses; gradcheck in every continuous
parameter and the target; the support-size cap; the event shape (1,) of univariate heads."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st
import scoringrules as sr
import torch
from torch.autograd import gradcheck
from torch.distributions import (
    Binomial,
    GeneralizedPareto,
    Gumbel,
    Independent,
    MultivariateNormal,
    NegativeBinomial,
    Normal,
)

import scoringrules_torch.distributions as D
from scoringrules_torch.distributions import _base as dist_base
from scoringrules_torch.functional.crps_closed import crps, registered_crps_types

F64 = torch.float64
SHAPES = [(), (5,), (3, 4)]


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


@dataclass
class Family:
    """One family: random parameters, our distribution, scoringrules' call, a scipy-built CDF and atoms."""

    name: str
    params: Callable[[np.random.Generator, tuple], dict]  # numpy float64 arrays
    obs: Callable[[np.random.Generator, tuple, dict], np.ndarray]
    ours: Callable[..., torch.distributions.Distribution]  # keyword tensors -> distribution
    peer: Callable[..., np.ndarray] | None  # (obs, **params) -> scoringrules' CRPS
    cdf: Callable[[float, dict], float]  # scalar scipy-based CDF (independent oracle)
    breaks: Callable[[dict], list]  # finite points where F jumps or has a kink
    tol: float = 1e-10  # relative tolerance against scoringrules
    grad_params: tuple = ()  # continuous parameters for gradcheck
    grad_batch: int = 2  # batch size of the gradcheck (1 for the slow incomplete-beta families)


def _u(r, lo, hi, shape):
    return r.uniform(lo, hi, size=shape)


def _gtc_cdf(base):
    def cdf(x, p):
        lo, hi, lm, um = p["lower"], p["upper"], p["lmass"], p["umass"]
        if x < lo:
            return 0.0
        if x >= hi:
            return 1.0
        a, b = base.cdf(lo, p), base.cdf(hi, p)
        return lm + (1 - lm - um) * (base.cdf(x, p) - a) / (b - a)

    return cdf


class _Base:
    def __init__(self, fn):
        self.fn = fn

    def cdf(self, x, p):
        return float(self.fn(x, p))


NORM = _Base(lambda x, p: st.norm.cdf(x, p["loc"], p["scale"]))
LOGI = _Base(lambda x, p: st.logistic.cdf(x, p["loc"], p["scale"]))
TDIST = _Base(lambda x, p: st.t.cdf(x, p["df"], p["loc"], p["scale"]))


def _gtc_params(with_masses: bool, with_df: bool = False):
    def make(r, shape):
        loc = r.normal(size=shape)
        scale = _u(r, 0.5, 2.0, shape)
        p = {
            "loc": loc,
            "scale": scale,
            "lower": loc - _u(r, 0.1, 2.5, shape) * scale,
            "upper": loc + _u(r, 0.1, 2.5, shape) * scale,
        }
        if with_masses:
            p["lmass"] = _u(r, 0.0, 0.4, shape)
            p["umass"] = _u(r, 0.0, 0.4, shape)
        if with_df:
            p["df"] = _u(r, 1.5, 9.0, shape)
        return p

    return make


def _obs_normalish(r, shape, p):
    return p["loc"] + 2.0 * r.normal(size=shape) * p.get("scale", 1.0)


def _gtc_breaks(p):
    return [p["lower"], p["upper"]]


def _censored_view(p, base):
    q = dict(p)
    q["lmass"] = base.cdf(p["lower"], p)
    q["umass"] = 1.0 - base.cdf(p["upper"], p)
    return q


def _trunc_view(p):
    return {**p, "lmass": 0.0, "umass": 0.0}


def _gev_cdf(x, p):
    return st.genextreme.cdf(x, -p["shape"], p["location"], p["scale"])


def _gpd_cdf(x, p):
    if x < p["location"]:
        return 0.0
    m = p.get("mass", 0.0)
    return m + (1 - m) * st.genpareto.cdf(x, p["shape"], p["location"], p["scale"])


def _two_piece_normal_cdf(x, p):
    s1, s2, mu = p["scale1"], p["scale2"], p["location"]
    if x < mu:
        return 2 * s1 / (s1 + s2) * st.norm.cdf(x, mu, s1)
    return s1 / (s1 + s2) + 2 * s2 / (s1 + s2) * (st.norm.cdf(x, mu, s2) - 0.5)


def _two_piece_exp_cdf(x, p):
    s1, s2, mu = p["scale1"], p["scale2"], p["location"]
    if x < mu:
        return s1 / (s1 + s2) * math.exp((x - mu) / s1)
    return 1 - s2 / (s1 + s2) * math.exp(-(x - mu) / s2)


def _unif_cdf(x, p):
    a, b, lm, um = p["min"], p["max"], p["lmass"], p["umass"]
    if x < a:
        return 0.0
    if x >= b:
        return 1.0
    return lm + (1 - lm - um) * (x - a) / (b - a)


def _csg_cdf(x, p):
    if x < 0:
        return 0.0
    return st.gamma.cdf(x + p["shift"], p["shape"], scale=1.0 / p["rate"])


def _pos_obs(r, shape, p):
    return np.exp(r.normal(size=shape))


FAMILIES = [
    Family(
        "gev",
        lambda r, s: {
            "shape": _u(r, -0.6, 0.8, s),
            "location": r.normal(size=s),
            "scale": _u(r, 0.5, 2.0, s),
        },
        lambda r, s, p: p["location"] + 2.0 * r.normal(size=s),
        lambda shape, location, scale: D.GeneralizedExtremeValue(
            location, scale, shape, validate_args=False
        ),
        lambda y, **p: sr.crps_gev(y, p["shape"], location=p["location"], scale=p["scale"]),
        _gev_cdf,
        lambda p: [p["location"] - p["scale"] / p["shape"]],
        tol=1e-8,
        grad_params=("shape", "location", "scale"),
    ),
    Family(
        "gpd_mass",
        lambda r, s: {
            "shape": _u(r, -0.6, 0.8, s),
            "location": r.normal(size=s),
            "scale": _u(r, 0.5, 2.0, s),
            "mass": _u(r, 0.0, 0.5, s),
        },
        lambda r, s, p: p["location"] + 1.5 * np.abs(r.normal(size=s)) - 0.3,
        lambda shape, location, scale, mass: D.GeneralizedParetoWithMass(
            location, scale, shape, mass
        ),
        lambda y, **p: sr.crps_gpd(
            y, p["shape"], location=p["location"], scale=p["scale"], mass=p["mass"]
        ),
        _gpd_cdf,
        lambda p: (
            [p["location"]] + ([p["location"] - p["scale"] / p["shape"]] if p["shape"] < 0 else [])
        ),
        grad_params=("shape", "location", "scale", "mass"),
    ),
    Family(
        "gpd_torch",
        lambda r, s: {
            "shape": _u(r, -0.6, 0.8, s),
            "location": r.normal(size=s),
            "scale": _u(r, 0.5, 2.0, s),
        },
        lambda r, s, p: p["location"] + 1.5 * np.abs(r.normal(size=s)) - 0.3,
        lambda shape, location, scale: GeneralizedPareto(
            location, scale, shape, validate_args=False
        ),
        lambda y, **p: sr.crps_gpd(y, p["shape"], location=p["location"], scale=p["scale"]),
        _gpd_cdf,
        lambda p: (
            [p["location"]] + ([p["location"] - p["scale"] / p["shape"]] if p["shape"] < 0 else [])
        ),
        grad_params=("shape", "location", "scale"),
    ),
    Family(
        "exponentialM",
        lambda r, s: {
            "mass": _u(r, 0.0, 0.6, s),
            "location": r.normal(size=s),
            "scale": _u(r, 0.5, 2.0, s),
        },
        lambda r, s, p: p["location"] + 1.5 * np.abs(r.normal(size=s)) - 0.3,
        lambda mass, location, scale: D.ExponentialWithMass(location, scale, mass),
        lambda y, **p: sr.crps_exponentialM(y, p["mass"], p["location"], p["scale"]),
        lambda x, p: _gpd_cdf(x, {**p, "shape": 0.0}),
        lambda p: [p["location"]],
        grad_params=("mass", "location", "scale"),
    ),
    Family(
        "gtcnormal",
        _gtc_params(True),
        _obs_normalish,
        lambda **p: D.GeneralizedTruncatedCensoredNormal(**p),
        lambda y, **p: sr.crps_gtcnormal(
            y, p["loc"], p["scale"], p["lower"], p["upper"], p["lmass"], p["umass"]
        ),
        _gtc_cdf(NORM),
        _gtc_breaks,
        grad_params=("loc", "scale", "lower", "upper", "lmass", "umass"),
    ),
    Family(
        "tnormal",
        _gtc_params(False),
        _obs_normalish,
        lambda **p: D.TruncatedNormal(**p),
        lambda y, **p: sr.crps_tnormal(y, p["loc"], p["scale"], p["lower"], p["upper"]),
        lambda x, p: _gtc_cdf(NORM)(x, _trunc_view(p)),
        _gtc_breaks,
        grad_params=("loc", "scale", "lower", "upper"),
    ),
    Family(
        "cnormal",
        _gtc_params(False),
        _obs_normalish,
        lambda **p: D.CensoredNormal(**p),
        lambda y, **p: sr.crps_cnormal(y, p["loc"], p["scale"], p["lower"], p["upper"]),
        lambda x, p: _gtc_cdf(NORM)(x, _censored_view(p, NORM)),
        _gtc_breaks,
        grad_params=("loc", "scale", "lower", "upper"),
    ),
    Family(
        "gtclogistic",
        _gtc_params(True),
        _obs_normalish,
        lambda **p: D.GeneralizedTruncatedCensoredLogistic(**p),
        lambda y, **p: sr.crps_gtclogistic(
            y, p["loc"], p["scale"], p["lower"], p["upper"], p["lmass"], p["umass"]
        ),
        _gtc_cdf(LOGI),
        _gtc_breaks,
        grad_params=("loc", "scale", "lower", "upper", "lmass", "umass"),
    ),
    Family(
        "tlogistic",
        _gtc_params(False),
        _obs_normalish,
        lambda **p: D.TruncatedLogistic(**p),
        lambda y, **p: sr.crps_tlogistic(y, p["loc"], p["scale"], p["lower"], p["upper"]),
        lambda x, p: _gtc_cdf(LOGI)(x, _trunc_view(p)),
        _gtc_breaks,
        grad_params=("loc", "scale", "lower", "upper"),
    ),
    Family(
        "clogistic",
        _gtc_params(False),
        _obs_normalish,
        lambda **p: D.CensoredLogistic(**p),
        lambda y, **p: sr.crps_clogistic(y, p["loc"], p["scale"], p["lower"], p["upper"]),
        lambda x, p: _gtc_cdf(LOGI)(x, _censored_view(p, LOGI)),
        _gtc_breaks,
        grad_params=("loc", "scale", "lower", "upper"),
    ),
    Family(
        "gtct",
        _gtc_params(True, with_df=True),
        _obs_normalish,
        lambda **p: D.GeneralizedTruncatedCensoredStudentT(**p),
        lambda y, **p: sr.crps_gtct(
            y, p["df"], p["loc"], p["scale"], p["lower"], p["upper"], p["lmass"], p["umass"]
        ),
        _gtc_cdf(TDIST),
        _gtc_breaks,
        tol=1e-8,
        grad_params=("df", "loc", "scale", "lower", "upper", "lmass", "umass"),
        grad_batch=1,
    ),
    Family(
        "tt",
        _gtc_params(False, with_df=True),
        _obs_normalish,
        lambda **p: D.TruncatedStudentT(**p),
        lambda y, **p: sr.crps_tt(y, p["df"], p["loc"], p["scale"], p["lower"], p["upper"]),
        lambda x, p: _gtc_cdf(TDIST)(x, _trunc_view(p)),
        _gtc_breaks,
        tol=1e-8,
        grad_params=("scale",),  # the t engine is gradchecked in every parameter under gtct
        grad_batch=1,
    ),
    Family(
        "ct",
        _gtc_params(False, with_df=True),
        _obs_normalish,
        lambda **p: D.CensoredStudentT(**p),
        lambda y, **p: sr.crps_ct(y, p["df"], p["loc"], p["scale"], p["lower"], p["upper"]),
        lambda x, p: _gtc_cdf(TDIST)(x, _censored_view(p, TDIST)),
        _gtc_breaks,
        tol=1e-8,
        grad_params=("df",),  # through the censoring masses G(z_l), 1 - G(z_u)
        grad_batch=1,
    ),
    Family(
        "2pnormal",
        lambda r, s: {
            "scale1": _u(r, 0.3, 2.0, s),
            "scale2": _u(r, 0.3, 2.0, s),
            "location": r.normal(size=s),
        },
        lambda r, s, p: p["location"] + 2.0 * r.normal(size=s),
        lambda scale1, scale2, location: D.TwoPieceNormal(location, scale1, scale2),
        lambda y, **p: sr.crps_2pnormal(y, p["scale1"], p["scale2"], p["location"]),
        _two_piece_normal_cdf,
        lambda p: [p["location"]],
        grad_params=("scale1", "scale2", "location"),
    ),
    Family(
        "2pexponential",
        lambda r, s: {
            "scale1": _u(r, 0.3, 2.0, s),
            "scale2": _u(r, 0.3, 2.0, s),
            "location": r.normal(size=s),
        },
        lambda r, s, p: p["location"] + 2.0 * r.normal(size=s),
        lambda scale1, scale2, location: D.TwoPieceExponential(location, scale1, scale2),
        lambda y, **p: sr.crps_2pexponential(y, p["scale1"], p["scale2"], p["location"]),
        _two_piece_exp_cdf,
        lambda p: [p["location"]],
        grad_params=("scale1", "scale2", "location"),
    ),
    Family(
        "loglaplace",
        lambda r, s: {"locationlog": r.normal(size=s) * 0.5, "scalelog": _u(r, 0.1, 0.8, s)},
        _pos_obs,
        lambda locationlog, scalelog: D.LogLaplace(locationlog, scalelog),
        lambda y, **p: sr.crps_loglaplace(y, p["locationlog"], p["scalelog"]),
        lambda x, p: (
            st.loglaplace.cdf(x, 1.0 / p["scalelog"], scale=math.exp(p["locationlog"]))
            if x > 0
            else 0.0
        ),
        lambda p: [0.0, math.exp(p["locationlog"])],
        grad_params=("locationlog", "scalelog"),
    ),
    Family(
        "loglogistic",
        lambda r, s: {"mulog": r.normal(size=s) * 0.5, "sigmalog": _u(r, 0.1, 0.8, s)},
        _pos_obs,
        lambda mulog, sigmalog: D.LogLogistic(mulog, sigmalog),
        lambda y, **p: sr.crps_loglogistic(y, p["mulog"], p["sigmalog"]),
        lambda x, p: (
            st.fisk.cdf(x, 1.0 / p["sigmalog"], scale=math.exp(p["mulog"])) if x > 0 else 0.0
        ),
        lambda p: [0.0],
        tol=1e-8,
        grad_params=("mulog", "sigmalog"),
    ),
    Family(
        "csg0",
        lambda r, s: {
            "shape": _u(r, 0.5, 4.0, s),
            "rate": _u(r, 0.5, 2.0, s),
            "shift": _u(r, 0.0, 1.0, s),
        },
        _pos_obs,
        lambda shape, rate, shift: D.CensoredShiftedGamma(shape, rate, shift),
        lambda y, **p: sr.crps_csg0(y, p["shape"], p["rate"], shift=p["shift"]),
        _csg_cdf,
        lambda p: [0.0],
        tol=1e-8,
        grad_params=("shape", "rate", "shift"),
    ),
    Family(
        "uniform_masses",
        lambda r, s: (
            lambda a: {
                "min": a,
                "max": a + _u(r, 0.5, 3.0, s),
                "lmass": _u(r, 0.0, 0.4, s),
                "umass": _u(r, 0.0, 0.4, s),
            }
        )(r.normal(size=s)),
        lambda r, s, p: p["min"] + (p["max"] - p["min"]) * _u(r, -0.5, 1.5, s),
        lambda **p: D.UniformWithMasses(p["min"], p["max"], p["lmass"], p["umass"]),
        lambda y, **p: sr.crps_uniform(y, p["min"], p["max"], p["lmass"], p["umass"]),
        _unif_cdf,
        lambda p: [p["min"], p["max"]],
        grad_params=("min", "max", "lmass", "umass"),
    ),
]
BY_NAME = {f.name: f for f in FAMILIES}


def _with_infinite_bounds(r, p: dict) -> dict:
    """Set some lower/upper bounds to -inf/inf (and their masses to 0) to cover one-sided laws."""
    p = dict(p)
    shape = np.shape(p["lower"])
    drop_l = r.uniform(size=shape) < 0.3
    drop_u = r.uniform(size=shape) < 0.3
    p["lower"] = np.where(drop_l, -np.inf, p["lower"])
    p["upper"] = np.where(drop_u, np.inf, p["upper"])
    for key, drop in (("lmass", drop_l), ("umass", drop_u)):
        if key in p:
            p[key] = np.where(drop, 0.0, p[key])
    return p


def _ours(fam: Family, p: dict, y: np.ndarray) -> np.ndarray:
    dist = fam.ours(**{k: _t(v) for k, v in p.items()})
    return crps(dist, _t(y), reduction="none").numpy()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_matches_scoringrules(fam, shape):
    r = np.random.default_rng(abs(hash((fam.name, shape))) % 2**32)
    p = fam.params(r, shape)
    y = fam.obs(r, shape, p)
    ours = _ours(fam, p, y)
    assert ours.shape == shape
    peer = np.asarray(fam.peer(y, **p, backend="numpy"), dtype=np.float64)
    np.testing.assert_allclose(ours, peer, rtol=fam.tol, atol=0)


@pytest.mark.parametrize(
    "fam",
    [f for f in FAMILIES if "lower" in f.params(np.random.default_rng(0), ())],
    ids=lambda f: f.name,
)
def test_one_sided_bounds_match_scoringrules_and_quadrature(fam):
    r = np.random.default_rng(7)
    p = _with_infinite_bounds(r, fam.params(r, (40,)))
    y = fam.obs(r, (40,), p)
    ours = _ours(fam, p, y)
    with np.errstate(all="ignore"):
        peer = np.asarray(fam.peer(y, **p, backend="numpy"), dtype=np.float64)
    # scoringrules 0.10 returns nan for the truncated logistic with an infinite bound (a peer quirk);
    # compare where it is finite, and everywhere with quadrature below.
    ok = np.isfinite(peer)
    assert ok.sum() >= 10
    np.testing.assert_allclose(ours[ok], peer[ok], rtol=fam.tol, atol=0)
    for i in range(0, 40, 8):
        q = {k: float(v[i]) for k, v in p.items()}
        np.testing.assert_allclose(ours[i], _quadrature(fam, q, float(y[i])), rtol=1e-7)
    # finite gradients with infinite bounds (no inf * 0 from the standardised bounds)
    params = {k: _t(v[:6]).requires_grad_() for k, v in p.items()}
    yy = _t(y[:6]).requires_grad_()
    crps(fam.ours(**params), yy, reduction="sum").backward()
    for name, t in [*params.items(), ("target", yy)]:
        if t.grad is not None:
            assert torch.isfinite(t.grad).all(), name


def _quadrature(fam: Family, p: dict, y: float) -> float:
    """int (F(x) - 1{x >= y})^2 dx with F from scipy.stats and the point masses, split at every break."""
    pts = sorted({y, *[float(b) for b in fam.breaks(p) if abs(b) < 1e3]})
    edges = [-np.inf, *pts, np.inf]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        mid = b - 1.0 if a == -np.inf else (a + 1.0 if b == np.inf else 0.5 * (a + b))
        step = 1.0 if mid >= y else 0.0
        val, _ = si.quad(
            lambda x, s=step: (fam.cdf(x, p) - s) ** 2, a, b, limit=400, epsabs=1e-13, epsrel=1e-11
        )
        total += val
    return total


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_matches_quadrature(fam):
    r = np.random.default_rng(11)
    p = fam.params(r, (4,))
    if fam.name in ("gev", "gpd_mass", "gpd_torch"):
        p["shape"] = np.array(
            [-0.4, -0.1, 0.15, 0.35]
        )  # keep the tails short enough for quadrature
    y = fam.obs(r, (4,), p)
    if fam.name in ("loglaplace", "loglogistic", "csg0"):
        y[0] = -0.7  # below the support (an atom at 0 for csg0)
    ours = _ours(fam, p, y)
    for i in range(4):
        q = {k: float(v[i]) for k, v in p.items()}
        np.testing.assert_allclose(ours[i], _quadrature(fam, q, float(y[i])), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_gradcheck(fam):
    r = np.random.default_rng(3)
    p = fam.params(r, (fam.grad_batch,))
    y = fam.obs(r, (fam.grad_batch,), p)
    names = list(fam.grad_params)
    fixed = {k: _t(v) for k, v in p.items() if k not in names}
    inputs = [_t(p[k]).requires_grad_() for k in names] + [_t(y).requires_grad_()]

    def fn(*args):
        kw = dict(zip(names, args[:-1], strict=True))
        return crps(fam.ours(**kw, **fixed), args[-1], reduction="none")

    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------------------ edge cases


def test_hypergeometric_exact_and_scoringrules_where_the_peer_is_right():
    r = np.random.default_rng(5)
    m = r.integers(0, 15, 60).astype(float)
    n = r.integers(0, 15, 60).astype(float)
    k = np.floor(r.uniform(0, 1, 60) * (m + n))
    y = r.integers(-2, 16, 60).astype(float) + np.where(r.uniform(size=60) < 0.3, 0.4, 0.0)
    ours = crps(D.Hypergeometric(_t(m), _t(n), _t(k)), _t(y), reduction="none").numpy()
    exact = []
    for mi, ni, ki, yi in zip(m, n, k, y, strict=True):
        xs = np.arange(0, ki + 1)
        f = st.hypergeom(int(mi + ni), int(mi), int(ki)).pmf(xs)
        exact.append(f @ np.abs(xs - yi) - 0.5 * f @ np.abs(xs[:, None] - xs[None, :]) @ f)
    np.testing.assert_allclose(ours, exact, rtol=1e-10, atol=1e-12)
    # scoringrules 0.10 sums over 0..n (the failure count) instead of the support 0..min(k, m): it is right
    # only where min(k, m) <= n (a peer bug; see the docs).
    peer = sr.crps_hypergeometric(y, m, n, k, backend="numpy")
    ok = np.minimum(k, m) <= n
    assert ok.sum() >= 20
    np.testing.assert_allclose(ours[ok], peer[ok], rtol=1e-10, atol=1e-12)
    # gradient in the target: 2 F(y) - 1 away from the atoms
    yy = _t(np.array([1.5, 2.5])).requires_grad_()
    d = D.Hypergeometric(_t([6.0, 6.0]), _t([4.0, 4.0]), _t([5.0, 5.0]))
    crps(d, yy, reduction="sum").backward()
    expected = 2 * st.hypergeom(10, 6, 5).cdf([1, 2]) - 1  # F(1.5) = F(1), F(2.5) = F(2)
    np.testing.assert_allclose(yy.grad.numpy(), expected, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_gev_is_continuous_through_zero_shape():
    y = _t(np.array([-2.0, 0.4, 4.0]))
    loc, scale = _t(0.2), _t(1.3)
    gumbel = crps(Gumbel(loc, scale), y, reduction="none")
    at0 = crps(D.GeneralizedExtremeValue(loc, scale, _t(0.0)), y, reduction="none")
    torch.testing.assert_close(at0, gumbel, rtol=1e-14, atol=0)
    for xi in (-1e-10, 2e-8, -1e-6, 1e-4):
        ours = crps(D.GeneralizedExtremeValue(loc, scale, _t(xi)), y, reduction="none")
        fam = BY_NAME["gev"]
        quad = [_quadrature(fam, {"shape": xi, "location": 0.2, "scale": 1.3}, float(v)) for v in y]
        np.testing.assert_allclose(ours.numpy(), quad, rtol=1e-9)
    # the slope in xi at 0 is the derivative (not the 0 of a switch to the Gumbel formula)
    xi0 = _t(0.0).requires_grad_()
    crps(D.GeneralizedExtremeValue(loc, scale, xi0), y, reduction="sum").backward()
    h = 1e-3
    plus = _quadrature(BY_NAME["gev"], {"shape": h, "location": 0.2, "scale": 1.3}, 0.4)
    minus = _quadrature(BY_NAME["gev"], {"shape": -h, "location": 0.2, "scale": 1.3}, 0.4)
    one = _t(0.0).requires_grad_()
    crps(D.GeneralizedExtremeValue(loc, scale, one), _t(0.4)).backward()
    np.testing.assert_allclose(one.grad.item(), (plus - minus) / (2 * h), rtol=1e-5)
    assert xi0.grad.abs() > 0.01
    # infinite CRPS for xi >= 1
    assert torch.isinf(crps(D.GeneralizedExtremeValue(loc, scale, _t(1.2)), y)).all()


def test_gpd_mass_zero_equals_torch_gpd_and_exponential_with_mass_is_gpd_zero_shape():
    y = _t(np.linspace(-1, 5, 9))
    a = crps(D.GeneralizedParetoWithMass(_t(0.3), _t(1.5), _t(0.2)), y, reduction="none")
    b = crps(GeneralizedPareto(_t(0.3), _t(1.5), _t(0.2)), y, reduction="none")
    torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-15)
    c = crps(D.ExponentialWithMass(_t(0.3), _t(1.5), _t(0.4)), y, reduction="none")
    d = crps(D.GeneralizedParetoWithMass(_t(0.3), _t(1.5), _t(0.0), _t(0.4)), y, reduction="none")
    torch.testing.assert_close(c, d, rtol=0, atol=0)


def test_heavy_tails_give_inf():
    y = _t(np.array([0.5, 2.0]))
    assert torch.isinf(crps(D.LogLaplace(_t(0.0), _t(1.2)), y)).all()
    assert torch.isinf(crps(D.LogLogistic(_t(0.0), _t(1.0)), y)).all()
    assert torch.isinf(crps(D.GeneralizedParetoWithMass(_t(0.0), _t(1.0), _t(1.5)), y)).all()
    assert torch.isinf(crps(D.TruncatedStudentT(_t(0.8), _t(0.0), _t(1.0), lower=_t(0.0)), y)).all()
    # both bounds finite: the true CRPS is finite but the closed form needs df > 1 -> nan, not a wrong number
    assert torch.isnan(
        crps(D.TruncatedStudentT(_t(0.8), _t(0.0), _t(1.0), _t(-1.0), _t(2.0)), y)
    ).all()


def test_float32_and_bf16_follow_the_inputs():
    y64 = torch.linspace(-1, 3, 7, dtype=F64)
    for make in (
        lambda dt: D.GeneralizedExtremeValue(
            torch.tensor(0.1, dtype=dt), torch.tensor(1.2, dtype=dt), torch.tensor(0.2, dtype=dt)
        ),
        lambda dt: D.CensoredNormal(
            torch.tensor(0.5, dtype=dt), torch.tensor(1.0, dtype=dt), lower=0.0, upper=2.0
        ),
        lambda dt: D.TwoPieceNormal(
            torch.tensor(0.5, dtype=dt), torch.tensor(1.0, dtype=dt), torch.tensor(2.0, dtype=dt)
        ),
    ):
        ref = crps(make(F64), y64, reduction="none")
        v32 = crps(make(torch.float32), y64.float(), reduction="none")
        assert v32.dtype == torch.float32
        torch.testing.assert_close(v32.double(), ref, rtol=2e-5, atol=2e-6)
        vb = crps(make(torch.bfloat16), y64.bfloat16(), reduction="none")
        assert vb.dtype == torch.float32 and torch.isfinite(vb).all()


# ------------------------------------------------------------------------------------------ issue 13: cap


def test_support_summation_over_the_cap_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Binomial.*1,000,000,001 points.*cap of 33,554,432"):
        crps(Binomial(total_count=torch.tensor(1e9), probs=torch.tensor(0.5)), torch.tensor(3.0))
    with pytest.raises(ValueError, match=r"NegativeBinomial.*points.*cap"):
        crps(
            NegativeBinomial(total_count=torch.tensor(1e9), probs=torch.tensor(0.5)),
            torch.tensor(3.0),
        )
    with pytest.raises(ValueError, match=r"Hypergeometric.*100,000,001 points.*cap"):
        crps(D.Hypergeometric(1e9, 1e9, 1e8), torch.tensor(3.0))
    # batch x support counts, not the support alone
    big_batch = Binomial(total_count=torch.full((40000,), 1000.0), probs=torch.tensor(0.5))
    with pytest.raises(ValueError, match=r"40,000 observations"):
        crps(big_batch, torch.zeros(40000))


def test_cap_is_read_at_call_time(monkeypatch):
    d = Binomial(total_count=torch.tensor(50.0), probs=torch.tensor(0.3))
    assert torch.isfinite(crps(d, torch.tensor(10.0)))
    monkeypatch.setattr(dist_base, "MAX_SUPPORT_ELEMENTS", 10)
    with pytest.raises(ValueError, match="Binomial"):
        crps(d, torch.tensor(10.0))


# ------------------------------------------------------------------------------------------ issue 17: (1,)


def test_unit_event_shape_is_scored_per_position():
    r = np.random.default_rng(2)
    loc, scale, y = (
        _t(r.normal(size=(6, 1))),
        _t(r.uniform(0.5, 2, (6, 1))),
        _t(r.normal(size=(6, 1))),
    )
    head_law = Independent(Normal(loc, scale), 1)
    got = crps(head_law, y, reduction="none")
    assert got.shape == (6,)
    expected = sr.crps_normal(
        y.numpy()[:, 0], loc.numpy()[:, 0], scale.numpy()[:, 0], backend="numpy"
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    torch.testing.assert_close(crps(head_law, y), got.mean())
    # a 1-d MultivariateNormal too
    mvn = MultivariateNormal(loc, covariance_matrix=(scale**2).unsqueeze(-1))
    torch.testing.assert_close(crps(mvn, y, reduction="none"), got)
    # a family of ours wrapped the same way
    gev = Independent(D.GeneralizedExtremeValue(loc, scale, _t(np.full((6, 1), 0.1))), 1)
    np.testing.assert_allclose(
        crps(gev, y, reduction="none").numpy(),
        sr.crps_gev(y.numpy()[:, 0], 0.1, location=loc.numpy()[:, 0], scale=scale.numpy()[:, 0]),
        rtol=1e-8,
    )
    with pytest.raises(ValueError, match=r"target must end in that event dimension"):
        crps(head_law, y[:, 0])
    with pytest.raises(ValueError, match="univariate"):
        crps(Independent(Normal(torch.zeros(6, 2), 1.0), 1), torch.zeros(6, 2))


def test_gaussian_head_distribution_with_token_dim_one():
    from scoringrules_torch.heads import GaussianHead

    torch.manual_seed(0)
    head = GaussianHead(1, 8)
    z = torch.randn(5, 8)
    dist = head.distribution(z)
    assert tuple(dist.event_shape) == (1,)
    target = torch.randn(5, 1)
    got = crps(dist, target, reduction="none")
    assert got.shape == (5,)
    base = dist.base_dist
    torch.testing.assert_close(
        got, crps(Normal(base.loc[:, 0], base.scale[:, 0]), target[:, 0], reduction="none")
    )


# ------------------------------------------------------------------------------------------ registry


def test_every_family_is_registered_and_logistic_moved():
    import scoringrules_torch.functional as F

    types = registered_crps_types()
    for name in (
        "GeneralizedExtremeValue",
        "GeneralizedParetoWithMass",
        "GeneralizedTruncatedCensoredNormal",
        "GeneralizedTruncatedCensoredLogistic",
        "GeneralizedTruncatedCensoredStudentT",
        "TwoPieceNormal",
        "TwoPieceExponential",
        "LogLaplace",
        "LogLogistic",
        "UniformWithMasses",
        "CensoredShiftedGamma",
        "Hypergeometric",
        "Logistic",
    ):
        assert getattr(D, name) in types, name
    assert GeneralizedPareto in types
    assert F.Logistic is D.Logistic


# ------------------------------------------------------------------------------------------ docs


def test_docs_count_is_generated_and_every_registered_class_is_documented(monkeypatch):
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parent.parent / "docs"
    pages = {p.name: p.read_text(encoding="utf-8") for p in (docs / "scores").glob("*.md")}
    # no hand-typed family count: every "N families / registered classes" is the build-time placeholder
    for name, text in pages.items():
        typed = re.findall(r"\b\d+\s+(?:closed-form\s+)?(?:families|registered classes)", text)
        assert not typed, (name, typed)
    assert "<!-- crps-family-count -->" in pages["distributions.md"]
    # the conf.py hook replaces it with the registry's size
    import importlib.util

    monkeypatch.setenv("SCORINGRULES_TORCH_DOCS_OFFLINE", "1")  # no intersphinx downloads
    spec = importlib.util.spec_from_file_location("_docs_conf", docs / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    source = ["x <!-- crps-family-count --> y <!-- crps-family-list -->"]
    conf._registry_placeholders(None, "scores/distributions", source)
    assert source[0].startswith(f"x {len(registered_crps_types())} y `Normal`")
    documented = pages["density.md"] + pages["distributions.md"]
    for cls in registered_crps_types():
        assert f"`{cls.__name__}" in documented or f"{cls.__name__}(" in documented, cls.__name__


# ------------------------------------------------------------------------------------------ propriety


def _pairs():
    t = _t
    return [
        (D.GeneralizedExtremeValue(t(0.0), t(1.0), t(0.2)), D.GeneralizedExtremeValue(t(0.0), t(1.0), t(-0.1))),
        (D.GeneralizedParetoWithMass(t(0.0), t(1.0), t(0.2), t(0.3)), D.GeneralizedParetoWithMass(t(0.0), t(1.0), t(0.2), t(0.1))),
        (D.CensoredNormal(t(0.3), t(1.0), lower=t(0.0)), D.CensoredNormal(t(0.6), t(1.0), lower=t(0.0))),
        (D.GeneralizedTruncatedCensoredLogistic(t(0.0), t(1.0), t(-1.0), t(2.0), t(0.1), t(0.2)),
         D.GeneralizedTruncatedCensoredLogistic(t(0.0), t(1.0), t(-1.0), t(2.0), t(0.25), t(0.1))),
        (D.TwoPieceExponential(t(0.0), t(1.0), t(2.0)), D.TwoPieceExponential(t(0.0), t(2.0), t(1.0))),
        (D.UniformWithMasses(t(0.0), t(1.0), t(0.1), t(0.3)), D.UniformWithMasses(t(0.0), t(1.0), t(0.3), t(0.1))),
        (D.Hypergeometric(t(8.0), t(8.0), t(7.0)), D.Hypergeometric(t(7.0), t(9.0), t(7.0))),
        (D.CensoredShiftedGamma(t(2.0), t(1.0), t(0.5)), D.CensoredShiftedGamma(t(2.0), t(1.5), t(0.5))),
    ]  # fmt: skip


@pytest.mark.parametrize("P,Q", _pairs(), ids=lambda d: type(d).__name__)
def test_crps_and_log_score_are_strictly_proper_for_these_pairs(P, Q):
    from scoringrules_torch.functional.log import log_score
    from scoringrules_torch.testing import assert_strictly_proper

    def crps_none(d, y):
        return crps(d, y, reduction="none")

    def logs_none(d, y):
        return log_score(d, y, reduction="none")

    assert_strictly_proper(crps_none, P, Q, kind="distribution", n_obs=4096)
    # the (mixed, where there are atoms) logarithmic score of log_prob
    assert_strictly_proper(logs_none, P, Q, kind="distribution", n_obs=4096)


@pytest.mark.slow
def test_torch_compile_fullgraph_of_the_closed_forms_without_iterations():
    # (the GEV, t, csg0 and log-logistic forms compile too, but their unrolled incomplete gamma/beta iterations
    # take minutes of compile time on CPU, so only the families made of elementary functions are compiled here)
    torch.manual_seed(0)
    mu, s, y = torch.randn(8), torch.rand(8) + 0.5, torch.randn(8)

    def f(mu, s, y):
        a = crps(D.TwoPieceNormal(mu, s, s + 0.5, validate_args=False), y)
        b = crps(
            D.GeneralizedTruncatedCensoredNormal(
                mu, s, mu - 1.0, mu + 1.0, 0.1, 0.2, validate_args=False
            ),
            y,
        )
        c = crps(D.TwoPieceExponential(mu, s, s + 0.5, validate_args=False), y)
        d = crps(D.CensoredLogistic(mu, s, lower=-0.5, validate_args=False), y)
        e = crps(D.UniformWithMasses(mu, mu + s, 0.1, 0.2, validate_args=False), y)
        return a + b + c + d + e

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(mu, s, y), f(mu, s, y))
