"""Closed-form CRPS: scoringrules 0.10.0 (numpy backend, float64), scipy numerical integration of
(F(x) - 1{x >= y})^2, the large-sample limit of the fair ensemble estimator (own float64 numpy loop),
dCRPS/dy = 2F(y) - 1 from scipy, properscoring's analytic gradients, gradcheck/gradgradcheck, dtypes, errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import properscoring as ps
import pytest
import scipy.integrate as si
import scipy.stats as st
import scoringrules as sr
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.distributions import (
    AffineTransform,
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    Cauchy,
    Chi2,
    Exponential,
    ExpTransform,
    Gamma,
    Geometric,
    Gumbel,
    HalfNormal,
    Independent,
    Laplace,
    LogNormal,
    MixtureSameFamily,
    NegativeBinomial,
    Normal,
    Pareto,
    Poisson,
    SigmoidTransform,
    StudentT,
    TransformedDistribution,
    Uniform,
)

from scoringrules_torch.functional.crps_closed import (
    Logistic,
    crps,
    register_crps,
    registered_crps_types,
)

F64 = torch.float64
N_OBS = 6


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


class _MixNorm:
    """Minimal scipy-like frozen univariate normal mixture (cdf, rvs, support) for the oracles."""

    def __init__(self, m, s, w):
        self.m, self.s, self.w = np.asarray(m), np.asarray(s), np.asarray(w)

    def cdf(self, x):
        x = np.asarray(x, dtype=float)[..., None]
        return (self.w * st.norm.cdf(x, self.m, self.s)).sum(-1)

    def rvs(self, size, random_state):
        k = random_state.choice(len(self.w), size=size, p=self.w)
        return random_state.normal(self.m[k], self.s[k])

    def support(self):
        return (-np.inf, np.inf)


@dataclass
class Case:
    """One family: parameter sampler, torch constructor, scoringrules reference and a scipy distribution."""

    name: str
    params: Callable[[np.random.Generator], tuple]  # -> tuple of (N_OBS, ...) arrays
    make: Callable[..., torch.distributions.Distribution]  # torch params -> dist
    sr_ref: Callable[..., np.ndarray]  # (y, *params) -> crps
    scipy: Callable[..., object]  # (*scalar params) -> frozen scipy-like distribution
    target: Callable[[np.random.Generator, tuple], np.ndarray]
    discrete: bool = False
    wide: Callable[[np.random.Generator], tuple] | None = (
        None  # extra-wide parameter range for sr test
    )
    tags: tuple = field(default_factory=tuple)


def _u(lo, hi):
    return lambda r: r.uniform(lo, hi, N_OBS)


def _normal_targets(r, p):
    return p[0] + p[1] * r.normal(size=N_OBS) * 2.0


def _pos_targets(r, p):
    return r.gamma(2.0, 1.0, N_OBS) + 0.05


def _int_targets(r, p):
    return np.floor(r.uniform(0, 12, N_OBS)) + np.array([0.0, 0.5, 0.25, 0.0, 0.75, 0.0])


CASES = [
    Case(
        "normal",
        lambda r: (r.normal(size=N_OBS), _u(0.3, 3)(r)),
        lambda m, s: Normal(m, s),
        lambda y, m, s: sr.crps_normal(y, m, s, backend="numpy"),
        lambda m, s: st.norm(m, s),
        _normal_targets,
    ),
    Case(
        "lognormal",
        lambda r: (r.normal(scale=0.5, size=N_OBS), _u(0.2, 1.2)(r)),
        lambda m, s: LogNormal(m, s),
        lambda y, m, s: sr.crps_lognormal(y, m, s, backend="numpy"),
        lambda m, s: st.lognorm(s=s, scale=math.exp(m)),
        _pos_targets,
    ),
    Case(
        "logistic",
        lambda r: (r.normal(size=N_OBS), _u(0.3, 3)(r)),
        lambda m, s: Logistic(m, s),
        lambda y, m, s: sr.crps_logistic(y, m, s, backend="numpy"),
        lambda m, s: st.logistic(m, s),
        _normal_targets,
    ),
    Case(
        "logistic_transformed",
        lambda r: (r.normal(size=N_OBS), _u(0.3, 3)(r)),
        lambda m, s: TransformedDistribution(
            Uniform(torch.zeros_like(m), torch.ones_like(m)),
            [SigmoidTransform().inv, AffineTransform(m, s)],
        ),
        lambda y, m, s: sr.crps_logistic(y, m, s, backend="numpy"),
        lambda m, s: st.logistic(m, s),
        _normal_targets,
    ),
    Case(
        "affine_normal",
        lambda r: (r.normal(size=N_OBS), _u(0.3, 3)(r)),
        lambda m, s: TransformedDistribution(Normal(m, s), [AffineTransform(1.0, -2.0)]),
        lambda y, m, s: sr.crps_normal(y, 1.0 - 2.0 * m, 2.0 * s, backend="numpy"),
        lambda m, s: st.norm(1.0 - 2.0 * m, 2.0 * s),
        _normal_targets,
    ),
    Case(
        "laplace",
        lambda r: (r.normal(size=N_OBS), _u(0.3, 3)(r)),
        lambda m, s: Laplace(m, s),
        lambda y, m, s: sr.crps_laplace(y, m, s, backend="numpy"),
        lambda m, s: st.laplace(m, s),
        _normal_targets,
    ),
    Case(
        "uniform",
        lambda r: (r.normal(size=N_OBS), _u(0.5, 3)(r)),
        lambda lo, w: Uniform(lo, lo + w),
        lambda y, lo, w: sr.crps_uniform(y, lo, lo + w, backend="numpy"),
        lambda lo, w: st.uniform(lo, w),
        lambda r, p: p[0] + p[1] * r.uniform(-0.5, 1.5, N_OBS),
    ),
    Case(
        "exponential",
        lambda r: (_u(0.3, 3)(r),),
        lambda lam: Exponential(lam),
        lambda y, lam: sr.crps_exponential(y, lam, backend="numpy"),
        lambda lam: st.expon(scale=1.0 / lam),
        lambda r, p: r.uniform(-0.5, 4, N_OBS),
    ),
    Case(
        "gamma",
        lambda r: (_u(0.4, 8)(r), _u(0.3, 3)(r)),
        lambda a, b: Gamma(a, b),
        lambda y, a, b: sr.crps_gamma(y, a, b, backend="numpy"),
        lambda a, b: st.gamma(a, scale=1.0 / b),
        lambda r, p: r.uniform(-0.5, 6, N_OBS),
        wide=lambda r: (r.uniform(0.05, 60, N_OBS), r.uniform(0.1, 5, N_OBS)),
    ),
    Case(
        "chi2",
        lambda r: (_u(1, 8)(r),),
        lambda df: Chi2(df),
        lambda y, df: sr.crps_gamma(y, df / 2.0, 0.5, backend="numpy"),
        lambda df: st.chi2(df),
        _pos_targets,
    ),
    Case(
        "beta",
        lambda r: (_u(0.5, 6)(r), _u(0.5, 6)(r)),
        lambda a, b: Beta(a, b),
        lambda y, a, b: sr.crps_beta(y, a, b, backend="numpy"),
        lambda a, b: st.beta(a, b),
        lambda r, p: r.uniform(-0.2, 1.2, N_OBS),
        wide=lambda r: (r.uniform(0.05, 40, N_OBS), r.uniform(0.05, 40, N_OBS)),
    ),
    Case(
        "student_t",
        lambda r: (_u(3, 12)(r), r.normal(size=N_OBS), _u(0.3, 3)(r)),
        lambda df, m, s: StudentT(df, m, s),
        lambda y, df, m, s: sr.crps_t(y, df, m, s, backend="numpy"),
        lambda df, m, s: st.t(df, m, s),
        lambda r, p: p[1] + p[2] * r.normal(size=N_OBS) * 2.0,
        wide=lambda r: (
            r.uniform(1.05, 200, N_OBS),
            r.normal(size=N_OBS),
            r.uniform(0.3, 3, N_OBS),
        ),
    ),
    Case(
        "gumbel",
        lambda r: (r.normal(size=N_OBS), _u(0.3, 3)(r)),
        lambda m, s: Gumbel(m, s),
        lambda y, m, s: sr.crps_gev(y, 0.0, m, s, backend="numpy"),
        lambda m, s: st.gumbel_r(m, s),
        _normal_targets,
    ),
    Case(
        "half_normal",
        lambda r: (_u(0.3, 3)(r),),
        lambda s: HalfNormal(s),
        lambda y, s: sr.crps_tnormal(y, 0.0, s, 0.0, np.inf, backend="numpy"),
        lambda s: st.halfnorm(scale=s),
        lambda r, p: r.uniform(-1, 4, N_OBS),
    ),
    Case(
        "pareto",
        lambda r: (
            _u(0.5, 2)(r),
            _u(4.5, 8)(r),
        ),  # alpha > 4: finite 4th moment for the ensemble test
        lambda xm, a: Pareto(xm, a),
        lambda y, xm, a: sr.crps_gpd(y, 1.0 / a, xm, xm / a, backend="numpy"),
        lambda xm, a: st.pareto(a, scale=xm),
        lambda r, p: r.uniform(0.2, 4, N_OBS),
        wide=lambda r: (r.uniform(0.5, 2, N_OBS), r.uniform(1.05, 30, N_OBS)),
    ),
    Case(
        "normal_mixture",
        lambda r: (
            r.normal(size=(N_OBS, 3)),
            r.uniform(0.3, 2, (N_OBS, 3)),
            r.dirichlet(np.ones(3), N_OBS),
        ),
        lambda m, s, w: MixtureSameFamily(Categorical(probs=w), Normal(m, s)),
        lambda y, m, s, w: sr.crps_mixnorm(y, m, s, w, backend="numpy"),
        lambda m, s, w: _MixNorm(m, s, w),
        lambda r, p: r.normal(size=N_OBS) * 2.0,
    ),
    Case(
        "poisson",
        lambda r: (_u(0.2, 12)(r),),
        lambda lam: Poisson(lam),
        lambda y, lam: sr.crps_poisson(y, lam, backend="numpy"),
        lambda lam: st.poisson(lam),
        _int_targets,
        discrete=True,
        wide=lambda r: (r.uniform(0.01, 60, N_OBS),),
    ),
    Case(
        "geometric",
        lambda r: (_u(0.1, 0.9)(r),),
        lambda p: Geometric(p),
        lambda y, p: sr.crps_negbinom(y, 1.0, p, backend="numpy"),
        lambda p: st.geom(p, loc=-1),
        lambda r, p: np.floor(r.uniform(-1, 8, N_OBS)) + np.array([0.0, 0.5, 0.25, 0.0, 0.75, 0.0]),
        discrete=True,
    ),
    Case(
        "negative_binomial",  # torch: successes (prob probs) before total_count failures; sr: prob = 1 - probs
        lambda r: (_u(0.5, 10)(r), _u(0.05, 0.7)(r)),
        lambda n, p: NegativeBinomial(n, p),
        lambda y, n, p: sr.crps_negbinom(y, n, 1.0 - p, backend="numpy"),
        lambda n, p: st.nbinom(n, 1.0 - p),
        _int_targets,
        discrete=True,
        wide=lambda r: (r.uniform(0.02, 60, N_OBS), r.uniform(0.01, 0.95, N_OBS)),
    ),
    Case(
        "binomial",
        lambda r: (np.floor(r.uniform(1, 20, N_OBS)), _u(0.05, 0.95)(r)),
        lambda n, p: Binomial(n, p),
        lambda y, n, p: np.array(
            [sr.crps_binomial(y[i], n[i], p[i], backend="numpy") for i in range(len(y))],
            dtype=float,
        ),
        lambda n, p: st.binom(int(n), p),
        _int_targets,
        discrete=True,
    ),
    Case(
        "bernoulli",
        lambda r: (_u(0.05, 0.95)(r),),
        lambda p: Bernoulli(p),
        lambda y, p: sr.crps_binomial(y, 1.0, p, backend="numpy"),
        lambda p: st.bernoulli(p),
        lambda r, p: r.uniform(-0.5, 1.5, N_OBS),
        discrete=True,
    ),
]
IDS = [c.name for c in CASES]


def _setup(case: Case, seed: int = 0, wide: bool = False):
    r = np.random.default_rng(seed)
    params = (case.wide or case.params)(r) if wide else case.params(r)
    y = case.target(r, params)
    return params, y


def _torch_crps(case: Case, params, y) -> np.ndarray:
    dist = case.make(*[_t(p) for p in params])
    return crps(dist, _t(y), reduction="none").numpy()


# ------------------------------------------------------------------------------------------------------------
# Oracles
# ------------------------------------------------------------------------------------------------------------
SR_PARAMS = [pytest.param(c, False, id=c.name) for c in CASES] + [
    pytest.param(c, True, id=f"{c.name}-wide") for c in CASES if c.wide is not None
]


@pytest.mark.parametrize(("case", "wide"), SR_PARAMS)
def test_matches_scoringrules(case, wide):
    params, y = _setup(case, seed=1, wide=wide)
    if wide and case.name == "gamma":
        y = np.abs(y) * 10.0
    if (
        case.name == "beta"
    ):  # scoringrules returns nan outside [0, 1]; outside is covered by the other oracles
        y = np.clip(y, 0.0, 1.0)
    ref = np.asarray(case.sr_ref(y, *params), dtype=float)
    np.testing.assert_allclose(_torch_crps(case, params, y), ref, rtol=1e-8, atol=0)


def test_categorical_matches_ranked_probability_score():
    # On integer observations the CRPS of a distribution on {0..K-1} is the RPS (scoringrules: 1-based).
    r = np.random.default_rng(2)
    probs = r.dirichlet(np.ones(5), 8)
    y = r.integers(0, 5, 8).astype(float)
    ref = sr.rps_score(y + 1.0, probs, backend="numpy")
    got = crps(Categorical(probs=_t(probs)), _t(y), reduction="none").numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_negative_binomial_matches_direct_summation():
    # sum_k (F(k) - 1{k >= y})^2 over unit steps (plus the partial step [y, ceil y) for non-integer y), with
    # scipy's nbinom CDF in float64, summed until the survival function is below 1e-30.
    r = np.random.default_rng(11)
    n, probs = r.uniform(0.05, 30, 12), r.uniform(0.01, 0.97, 12)
    y = np.concatenate(
        [[-2.5, 0.0, 0.3], np.floor(r.uniform(0, 60, 9)) + r.choice([0.0, 0.5, 0.75], 9)]
    )
    got = crps(NegativeBinomial(_t(n), _t(probs)), _t(y), reduction="none").numpy()
    ref = []
    for ni, pi, yi in zip(n, probs, y, strict=True):
        frozen = st.nbinom(ni, 1.0 - pi)
        k_hi = int(frozen.isf(1e-30)) + 2
        z = np.arange(min(0, math.floor(yi)), max(k_hi, math.ceil(yi) + 1))
        knots = np.unique(np.concatenate([z, [yi]]))
        vals = (
            frozen.cdf(knots[:-1]) - (knots[:-1] >= yi)
        ) ** 2  # F is constant on [knot_i, knot_{i+1})
        ref.append(float((vals * np.diff(knots)).sum()))
    np.testing.assert_allclose(got, np.array(ref), rtol=1e-10, atol=0)


def test_negative_binomial_gradients_and_edge_cases():
    # total_count is differentiable; Geometric(p) is NegativeBinomial(1, 1 - p).
    n = _t([0.7, 4.0]).requires_grad_(True)
    probs = _t([0.3, 0.85]).requires_grad_(True)
    y = _t([1.5, 12.25]).requires_grad_(True)

    def fn(n, probs, y):
        return crps(NegativeBinomial(n, probs), y, reduction="none")

    assert gradcheck(fn, (n, probs, y))
    p = _t([0.2, 0.6])
    y2 = _t([0.0, 3.5])
    torch.testing.assert_close(
        crps(NegativeBinomial(torch.ones(2, dtype=F64), 1.0 - p), y2, reduction="none"),
        crps(Geometric(p), y2, reduction="none"),
        rtol=1e-12,
        atol=1e-15,
    )
    # far observations and logits parametrisation: finite and matching scoringrules
    y3 = _t([1e4, -50.0])
    d = NegativeBinomial(_t([3.0, 3.0]), logits=_t([0.4, 0.4]))
    ref = sr.crps_negbinom(y3.numpy(), 3.0, 1.0 - 1.0 / (1.0 + math.exp(-0.4)), backend="numpy")
    np.testing.assert_allclose(crps(d, y3, reduction="none").numpy(), ref, rtol=1e-10)


def _integrate_crps(frozen, y: float, discrete: bool) -> float:
    """int (F(x) - 1{x >= y})^2 dx by scipy (quad; exact piecewise sum for step CDFs)."""
    if discrete:
        lo = min(-1.0, math.floor(y) - 1.0)
        hi = max(float(frozen.mean() + 40.0 * frozen.std()) + 10.0, math.ceil(y) + 2.0)
        knots = np.unique(np.concatenate([np.arange(math.floor(lo), math.ceil(hi) + 1), [y]]))
        mids = 0.5 * (knots[1:] + knots[:-1])
        vals = (frozen.cdf(mids) - (mids >= y)) ** 2
        return float((vals * np.diff(knots)).sum())
    lo, hi = frozen.support()

    def left(x):
        return frozen.cdf(x) ** 2

    def right(x):
        return (1.0 - frozen.cdf(x)) ** 2

    a = float(lo) if np.isfinite(lo) else -np.inf
    b = float(hi) if np.isfinite(hi) else np.inf
    total = 0.0
    if y > a:
        total += si.quad(
            left, a if np.isfinite(a) else -np.inf, y, limit=400, epsabs=1e-13, epsrel=1e-11
        )[0]
    else:  # y below the support: (1 - F)^2 = 1 on [y, a]
        total += a - y
    if y < b:  # for y >= b the integrand vanishes on [y, inf)
        start = max(y, a) if np.isfinite(a) else y
        total += si.quad(right, start, b, limit=400, epsabs=1e-13, epsrel=1e-11)[0]
    return total


@pytest.mark.filterwarnings(
    "ignore:overflow encountered in exp:RuntimeWarning"
)  # scipy's Gumbel cdf at -inf
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_numerical_integration(case):
    params, y = _setup(case, seed=3)
    got = _torch_crps(case, params, y)
    ref = []
    for i in range(N_OBS):
        frozen = case.scipy(*[np.asarray(p)[i] for p in params])
        if isinstance(frozen, _MixNorm):
            ref.append(_integrate_crps_mix(frozen, float(y[i])))
        else:
            ref.append(_integrate_crps(frozen, float(y[i]), case.discrete))
    np.testing.assert_allclose(got, np.array(ref), rtol=1e-7, atol=1e-10)


def _integrate_crps_mix(frozen: _MixNorm, y: float) -> float:
    left = si.quad(lambda x: frozen.cdf(x) ** 2, -np.inf, y, limit=400, epsabs=1e-13)[0]
    right = si.quad(lambda x: (1 - frozen.cdf(x)) ** 2, y, np.inf, limit=400, epsabs=1e-13)[0]
    return left + right


def _fair_crps(x: np.ndarray, y: float) -> float:
    """Fair (U-statistic) ensemble CRPS in float64: mean|x - y| - sum_{i != j}|x_i - x_j| / (2 m (m-1))."""
    m = x.size
    xs = np.sort(x)
    pair_sum = 2.0 * np.sum((2.0 * np.arange(m) - m + 1.0) * xs)  # sum over ordered pairs i != j
    return float(np.mean(np.abs(x - y)) - pair_sum / (2.0 * m * (m - 1)))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_equals_large_sample_limit_of_fair_ensemble(case):
    params, y = _setup(case, seed=4)
    got = _torch_crps(case, params, y)
    rng = np.random.default_rng(5)
    reps, m = 50, 2000
    for i in range(2):
        frozen = case.scipy(*[np.asarray(p)[i] for p in params])
        est = np.array(
            [
                _fair_crps(np.asarray(frozen.rvs(size=m, random_state=rng), float), y[i])
                for _ in range(reps)
            ]
        )
        se = est.std(ddof=1) / math.sqrt(reps)
        assert abs(est.mean() - got[i]) <= 4.0 * se + 1e-12, (case.name, i, est.mean(), got[i], se)


CONTINUOUS = [c for c in CASES if not c.discrete]


@pytest.mark.parametrize("case", CONTINUOUS, ids=[c.name for c in CONTINUOUS])
def test_target_gradient_is_2F_minus_1(case):
    # d/dy CRPS(F, y) = 2 F(y) - 1 for a continuous F.
    params, y = _setup(case, seed=6)
    yt = _t(y).requires_grad_(True)
    crps(case.make(*[_t(p) for p in params]), yt, reduction="sum").backward()
    cdf = np.array(
        [case.scipy(*[np.asarray(p)[i] for p in params]).cdf(y[i]) for i in range(N_OBS)]
    )
    np.testing.assert_allclose(yt.grad.numpy(), 2.0 * cdf - 1.0, rtol=1e-9, atol=1e-12)


def test_normal_gradients_match_properscoring():
    r = np.random.default_rng(7)
    mu, sig, y = r.normal(size=20), r.uniform(0.3, 3, 20), r.normal(size=20) * 2
    m, s = _t(mu).requires_grad_(True), _t(sig).requires_grad_(True)
    crps(Normal(m, s), _t(y), reduction="sum").backward()
    val, (dmu, dsig) = ps.crps_gaussian(y, mu, sig, grad=True)
    np.testing.assert_allclose(m.grad.numpy(), dmu, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(s.grad.numpy(), dsig, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(
        crps(Normal(_t(mu), _t(sig)), _t(y), reduction="none").numpy(), val, rtol=1e-12
    )


def test_float64_constants_are_exact():
    # At y = mu: CRPS = sigma * (2 phi(0) - 1/sqrt(pi)) = sigma * (sqrt(2) - 1) / sqrt(pi), exactly in float64.
    sigma = 1.7
    got = crps(
        Normal(torch.tensor(0.3, dtype=F64), torch.tensor(sigma, dtype=F64)),
        torch.tensor(0.3, dtype=F64),
    )
    assert got.dtype == F64
    assert (
        abs(got.item() - sigma * (math.sqrt(2.0) - 1.0) / math.sqrt(math.pi)) <= 4e-16 * got.item()
    )


# ------------------------------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_and_gradgradcheck(case):
    params, y = _setup(case, seed=8)
    params, y = [np.asarray(p)[:2] for p in params], np.asarray(y)[:2]
    if case.discrete:
        y = np.floor(y) + np.array([0.5, 0.25])  # away from the jumps of F
    fixed = {"binomial": 0}  # total_count is not a differentiable parameter
    tensors = []
    for j, p in enumerate(params):
        tensors.append(_t(p).requires_grad_(case.name not in fixed or fixed[case.name] != j))
    yt = _t(y).requires_grad_(True)

    def fn(*args):
        return crps(case.make(*args[:-1]), args[-1], reduction="none")

    assert gradcheck(fn, (*tensors, yt))
    assert gradgradcheck(fn, (*tensors, yt), fast_mode=True)


# ------------------------------------------------------------------------------------------------------------
# Dtypes, shapes, reductions
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_close_to_float64_and_bf16_finite(case):
    params, y = _setup(case, seed=9)
    ref = _torch_crps(case, params, y)
    d32 = case.make(*[_t(p).float() for p in params])
    out32 = crps(d32, _t(y).float(), reduction="none")
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.numpy(), ref, rtol=2e-5, atol=2e-5)
    out_bf = crps(d32, _t(y).bfloat16(), reduction="none")
    assert out_bf.dtype == torch.float32 and torch.isfinite(out_bf).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_ac = crps(d32, _t(y).float(), reduction="none")
    assert torch.isfinite(out_ac).all()


def test_bf16_parameters_are_upcast():
    d = Normal(torch.tensor([0.5], dtype=torch.bfloat16), torch.tensor([2.0], dtype=torch.bfloat16))
    out = crps(d, torch.tensor([1.0], dtype=torch.bfloat16), reduction="none")
    assert out.dtype == torch.float32
    ref = sr.crps_normal(1.0, 0.5, 2.0, backend="numpy")
    assert abs(out.item() - ref) < 1e-6


def test_broadcasting_and_reductions():
    d = Normal(torch.zeros(3, 1, dtype=F64), torch.ones(3, 1, dtype=F64))
    y = torch.linspace(-1, 1, 4, dtype=F64)
    none = crps(d, y, reduction="none")
    assert none.shape == (3, 4)
    assert torch.allclose(crps(d, y), none.mean())
    assert torch.allclose(crps(d, y, reduction="sum"), none.sum())
    ref = sr.crps_normal(y.numpy(), 0.0, 1.0, backend="numpy")
    np.testing.assert_allclose(none[1].numpy(), ref, rtol=1e-12)


def test_gumbel_far_tails_stay_finite():
    # E1(e^{-z}) is evaluated from z itself: no overflow of e^{-z} (scoringrules 0.10 returns inf here).
    y = torch.tensor([-30.0, 40.0, 700.0], dtype=F64)
    got = crps(
        Gumbel(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64)), y, reduction="none"
    )
    euler, log2 = 0.5772156649015329, math.log(2.0)
    # far left: E X - y - E|X - X'|/2 = gamma - y - log 2; far right: y - gamma - log 2 (+ O(e^{-y}))
    ref = torch.tensor([euler + 30.0 - log2, 40.0 - euler - log2, 700.0 - euler - log2], dtype=F64)
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=1e-12)
    got32 = crps(Gumbel(torch.tensor(0.0), torch.tensor(1.0)), y.float(), reduction="none")
    torch.testing.assert_close(got32, ref.float(), rtol=1e-6, atol=1e-5)


def test_infinite_crps_for_heavy_tails():
    y = torch.tensor([0.5], dtype=F64)
    assert torch.isinf(crps(StudentT(torch.tensor([1.0], dtype=F64)), y))
    assert torch.isinf(
        crps(Pareto(torch.tensor([1.0], dtype=F64), torch.tensor([0.9], dtype=F64)), y)
    )


def test_transformed_lognormal_and_affine_gamma():
    y = np.array([0.3, 1.0, 2.5, 7.0])
    base = Normal(torch.tensor(0.2, dtype=F64), torch.tensor(0.6, dtype=F64))
    td = TransformedDistribution(base, [ExpTransform(), AffineTransform(0.0, 3.0)])
    ref = sr.crps_lognormal(y, 0.2 + math.log(3.0), 0.6, backend="numpy")
    np.testing.assert_allclose(crps(td, _t(y), reduction="none").numpy(), ref, rtol=1e-10)
    g = TransformedDistribution(
        Gamma(torch.tensor(2.5, dtype=F64), torch.tensor(1.5, dtype=F64)),
        [AffineTransform(-1.0, 2.0)],
    )
    frozen = st.gamma(2.5, loc=-1.0, scale=2.0 / 1.5)
    ref = [_integrate_crps(frozen, float(v), False) for v in y]
    np.testing.assert_allclose(crps(g, _t(y), reduction="none").numpy(), ref, rtol=1e-8)


# ------------------------------------------------------------------------------------------------------------
# Registry and errors
# ------------------------------------------------------------------------------------------------------------
def test_unregistered_type_raises_with_way_out():
    with pytest.raises(NotImplementedError, match=r"Cauchy.*crps_ensemble"):
        crps(Cauchy(torch.zeros(2), torch.ones(2)), torch.zeros(2))
    mix = MixtureSameFamily(
        Categorical(logits=torch.zeros(2)), Laplace(torch.zeros(2), torch.ones(2))
    )
    with pytest.raises(NotImplementedError, match=r"Laplace components"):
        crps(mix, torch.zeros(()))
    td = TransformedDistribution(Normal(0.0, 1.0), [ExpTransform(), ExpTransform()])
    with pytest.raises(NotImplementedError, match=r"TransformedDistribution.*ExpTransform"):
        crps(td, torch.ones(()))


def test_shape_and_type_errors():
    d = Normal(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match=r"target shape \(4,\).*batch_shape \(3,\)"):
        crps(d, torch.zeros(4))
    with pytest.raises(ValueError, match=r"univariate.*event_shape \(3,\)"):
        crps(Independent(d, 1), torch.zeros(3))
    with pytest.raises(TypeError, match=r"Distribution.*crps_ensemble"):
        crps(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"floating-point"):
        crps(d, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"reduction"):
        crps(d, torch.zeros(3), reduction="avg")
    with pytest.raises(TypeError, match=r"register_crps"):
        register_crps(int)


def test_register_crps_resolves_by_mro(monkeypatch):
    from scoringrules_torch.functional import crps_closed

    registry = crps_closed._CRPS_REGISTRY  # a private copy, so the registration does not outlive the test
    monkeypatch.setattr(registry, "_table", dict(registry._table))
    monkeypatch.setattr(registry, "_memo", {})

    class MyNormal(Normal):
        pass

    y = torch.tensor([0.3], dtype=F64)
    d = MyNormal(torch.zeros(1, dtype=F64), torch.ones(1, dtype=F64))
    assert torch.allclose(
        crps(d, y), crps(Normal(torch.zeros(1, dtype=F64), torch.ones(1, dtype=F64)), y)
    )

    @register_crps(MyNormal)
    def _mine(dist, target):
        return torch.full_like(target, 42.0)

    assert crps(d, y).item() == 42.0
    assert MyNormal in registered_crps_types()
    assert crps(Normal(torch.zeros(1, dtype=F64), torch.ones(1, dtype=F64)), y).item() != 42.0


@pytest.mark.slow
def test_torch_compile_fullgraph():
    mu, s, y = torch.randn(8), torch.rand(8) + 0.5, torch.randn(8)
    logits = torch.randn(8, 3)

    def f(mu, s, y):
        a = crps(Normal(mu, s, validate_args=False), y)
        b = crps(Logistic(mu, s, validate_args=False), y)
        mix = MixtureSameFamily(
            Categorical(logits=logits, validate_args=False),
            Normal(mu[:, None] + torch.arange(3.0), s[:, None].expand(8, 3), validate_args=False),
        )
        return a + b + crps(mix, y)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(mu, s, y), f(mu, s, y))
