"""The distribution classes of ``scoringrules_torch.distributions``: log_prob and cdf against scipy.stats (or
formulas built from scipy.stats where scipy has no such family, plus the point masses), the log score against
scoringrules 0.10's ``logs_*``, sampling by a Kolmogorov-Smirnov distance with the DKW bound at a fixed seed,
icdf, mean and variance, argument validation with ``validate_args=True``, broadcasting and ``expand``."""

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

import scoringrules_torch.distributions as D
from scoringrules_torch.functional.log import log_score

F64 = torch.float64


def _t(a) -> torch.Tensor:
    return torch.tensor(
        np.array(a, dtype=np.float64)
    )  # a copy: no memory shared with the peer's inputs


@dataclass
class Case:
    """A distribution with scalar parameters and its scipy-built oracle."""

    name: str
    make: Callable[
        ..., torch.distributions.Distribution
    ]  # (**tensor params, validate_args) -> dist
    params: dict
    logpdf: Callable[[np.ndarray], np.ndarray]  # log density (log mass at atoms); -inf outside
    cdf: Callable[[np.ndarray], np.ndarray]
    atoms: Callable[[], dict]  # {location: mass}
    grid: np.ndarray  # points inside the support (atoms included)
    mean: float | None = None
    var: float | None = None
    reparam: bool = True
    has_icdf: bool = True


def _gtc(base_logpdf, base_cdf, lo, hi, lm, um):
    a, b = base_cdf(lo), base_cdf(hi)
    c = (1 - lm - um) / (b - a)

    def logpdf(x):
        x = np.asarray(x, dtype=float)
        out = np.log(c) + base_logpdf(x)
        out = np.where((x < lo) | (x > hi), -np.inf, out)
        out = np.where((x == lo) & (lm > 0), np.log(lm) if lm > 0 else 0.0, out)
        return np.where((x == hi) & (um > 0), np.log(um) if um > 0 else 0.0, out)

    def cdf(x):
        x = np.asarray(x, dtype=float)
        inner = lm + c * (base_cdf(x) - a)
        return np.where(x < lo, 0.0, np.where(x >= hi, 1.0, inner))

    return logpdf, cdf


def _mean_var_numeric(logpdf, lo, hi, atoms):
    """Mean and variance by quadrature of the continuous part plus the atoms."""
    dens = lambda x: math.exp(logpdf(np.array(x))) if logpdf(np.array(x)) > -np.inf else 0.0  # noqa: E731
    m0 = sum(atoms.values())
    m1 = sum(k * v for k, v in atoms.items())
    m2 = sum(k * k * v for k, v in atoms.items())
    m0 += si.quad(dens, lo, hi, limit=200)[0]
    m1 += si.quad(lambda x: x * dens(x), lo, hi, limit=200)[0]
    m2 += si.quad(lambda x: x * x * dens(x), lo, hi, limit=200)[0]
    assert abs(m0 - 1) < 1e-8
    return m1, m2 - m1 * m1


def _cases() -> list[Case]:
    out = []
    # GEV (scipy's genextreme has c = -xi)
    for xi in (-0.3, 0.0, 0.25):
        g = st.genextreme(-xi, 0.4, 1.3)
        m, v = g.stats("mv")
        out.append(
            Case(
                f"gev{xi}",
                D.GeneralizedExtremeValue,
                {"loc": 0.4, "scale": 1.3, "concentration": xi},
                g.logpdf,
                g.cdf,
                dict,
                np.array(g.ppf([0.01, 0.2, 0.5, 0.8, 0.99])),
                float(m),
                float(v),
            )
        )
    # GPD with a point mass, and the exponential with a point mass
    for xi, mass in ((0.2, 0.3), (-0.25, 0.1), (0.0, 0.0)):
        g = st.genpareto(xi, 0.5, 1.2)
        mean = 0.5 + (1 - mass) * (g.mean() - 0.5)
        var = (1 - mass) * g.var() + mass * (1 - mass) * (g.mean() - 0.5) ** 2

        def lp(x, g=g, mass=mass):
            x = np.asarray(x, dtype=float)
            out = np.log1p(-mass) + g.logpdf(x)
            return np.where((x == 0.5) & (mass > 0), np.log(mass) if mass > 0 else 0, out)

        out.append(
            Case(
                f"gpd{xi},{mass}",
                D.GeneralizedParetoWithMass,
                {"loc": 0.5, "scale": 1.2, "concentration": xi, "mass": mass},
                lp,
                lambda x, g=g, mass=mass: np.where(
                    np.asarray(x) < 0.5, 0.0, mass + (1 - mass) * g.cdf(x)
                ),
                lambda mass=mass: {0.5: mass} if mass > 0 else {},
                np.array([0.5, 0.7, 1.5, 2.5]),
                float(mean),
                float(var),
            )
        )
    e = st.expon(0.5, 1.2)
    out.append(
        Case(
            "exponentialM",
            D.ExponentialWithMass,
            {"loc": 0.5, "scale": 1.2, "mass": 0.25},
            lambda x: np.where(np.asarray(x) == 0.5, np.log(0.25), np.log(0.75) + e.logpdf(x)),
            lambda x: np.where(np.asarray(x) < 0.5, 0.0, 0.25 + 0.75 * e.cdf(x)),
            lambda: {0.5: 0.25},
            np.array([0.5, 0.9, 2.0]),
            0.5 + 0.75 * 1.2,
            0.75 * 1.44 + 0.25 * 0.75 * 1.44,
        )
    )
    # generalized truncated / censored, truncated, censored: normal, logistic, t
    bases = {
        "Normal": (st.norm(0.3, 1.2), {}),
        "Logistic": (st.logistic(0.3, 1.2), {}),
        "StudentT": (st.t(4.0, 0.3, 1.2), {"df": 4.0}),
    }
    for base_name, (b, extra) in bases.items():
        lo, hi = -0.8, 2.1
        for kind, (lm, um) in {
            "GeneralizedTruncatedCensored": (0.15, 0.2),
            "Truncated": (0.0, 0.0),
            "Censored": (float(b.cdf(lo)), float(1 - b.cdf(hi))),
        }.items():
            cls = getattr(D, f"{kind}{base_name}")
            params = {**extra, "loc": 0.3, "scale": 1.2, "lower": lo, "upper": hi}
            if kind == "GeneralizedTruncatedCensored":
                params.update(lmass=lm, umass=um)
            logpdf, cdf = _gtc(b.logpdf, b.cdf, lo, hi, lm, um)
            atoms = {k: v for k, v in ((lo, lm), (hi, um)) if v > 0}
            mean, var = _mean_var_numeric(logpdf, lo, hi, atoms)
            out.append(
                Case(
                    f"{kind}{base_name}",
                    cls,
                    params,
                    logpdf,
                    cdf,
                    lambda atoms=atoms: atoms,
                    np.array([lo, -0.2, 0.3, 1.1, hi]),
                    mean,
                    None,
                )
            )
    # one-sided truncation of the t
    b = st.t(3.0, 0.3, 1.2)
    logpdf, cdf = _gtc(b.logpdf, b.cdf, 0.0, np.inf, 0.0, 0.0)
    out.append(
        Case(
            "TruncatedStudentT_lower",
            D.TruncatedStudentT,
            {"df": 3.0, "loc": 0.3, "scale": 1.2, "lower": 0.0},
            logpdf,
            cdf,
            dict,
            np.array([0.0, 0.5, 3.0, 20.0]),
            _mean_var_numeric(logpdf, 0.0, np.inf, {})[0],
        )
    )
    # two-piece
    s1, s2, mu = 0.7, 1.8, 0.2
    tp_lp = lambda x: np.where(  # noqa: E731
        np.asarray(x) < mu,
        np.log(2 * s1 / (s1 + s2)) + st.norm.logpdf(x, mu, s1),
        np.log(2 * s2 / (s1 + s2)) + st.norm.logpdf(x, mu, s2),
    )
    tp_cdf = lambda x: np.where(  # noqa: E731
        np.asarray(x) < mu,
        2 * s1 / (s1 + s2) * st.norm.cdf(x, mu, s1),
        s1 / (s1 + s2) + 2 * s2 / (s1 + s2) * (st.norm.cdf(x, mu, s2) - 0.5),
    )
    out.append(
        Case(
            "TwoPieceNormal",
            D.TwoPieceNormal,
            {"loc": mu, "scale1": s1, "scale2": s2},
            tp_lp,
            tp_cdf,
            dict,
            np.array([-1.0, 0.0, 0.2, 1.0, 3.0]),
            *_mean_var_numeric(tp_lp, -np.inf, np.inf, {}),
        )
    )
    la = st.laplace_asymmetric(math.sqrt(s1 / s2), mu, math.sqrt(s1 * s2))
    out.append(
        Case(
            "TwoPieceExponential",
            D.TwoPieceExponential,
            {"loc": mu, "scale1": s1, "scale2": s2},
            la.logpdf,
            la.cdf,
            dict,
            np.array([-1.0, 0.0, 0.2, 1.0, 3.0]),
            float(la.mean()),
            float(la.var()),
        )
    )
    ll = st.loglaplace(1 / 0.3, scale=math.exp(0.2))
    out.append(
        Case(
            "LogLaplace",
            D.LogLaplace,
            {"loc": 0.2, "scale": 0.3},
            ll.logpdf,
            ll.cdf,
            dict,
            np.array([0.3, 1.0, 1.3, 4.0]),
            float(ll.mean()),
        )
    )
    fk = st.fisk(1 / 0.3, scale=math.exp(0.2))
    out.append(
        Case(
            "LogLogistic",
            D.LogLogistic,
            {"loc": 0.2, "scale": 0.3},
            fk.logpdf,
            fk.cdf,
            dict,
            np.array([0.3, 1.0, 1.3, 4.0]),
            float(fk.mean()),
        )
    )
    # uniform with point masses
    lo, hi, lm, um = -0.5, 1.5, 0.2, 0.1
    u_lp = lambda x: np.where(  # noqa: E731
        (np.asarray(x) < lo) | (np.asarray(x) > hi),
        -np.inf,
        np.where(
            np.asarray(x) == lo,
            np.log(lm),
            np.where(np.asarray(x) == hi, np.log(um), np.log((1 - lm - um) / (hi - lo))),
        ),
    )
    out.append(
        Case(
            "UniformWithMasses",
            D.UniformWithMasses,
            {"low": lo, "high": hi, "lmass": lm, "umass": um},
            u_lp,
            lambda x: np.where(
                np.asarray(x) < lo,
                0.0,
                np.where(
                    np.asarray(x) >= hi, 1.0, lm + (1 - lm - um) * (np.asarray(x) - lo) / (hi - lo)
                ),
            ),
            lambda: {lo: lm, hi: um},
            np.array([lo, 0.0, 1.0, hi]),
            *_mean_var_numeric(u_lp, lo, hi, {lo: lm, hi: um}),
        )
    )
    # censored shifted gamma
    g = st.gamma(2.5, scale=1 / 1.5)
    delta = 0.6
    c_lp = lambda x: np.where(  # noqa: E731
        np.asarray(x) == 0, np.log(g.cdf(delta)), g.logpdf(np.asarray(x) + delta)
    )
    out.append(
        Case(
            "CensoredShiftedGamma",
            D.CensoredShiftedGamma,
            {"concentration": 2.5, "rate": 1.5, "shift": delta},
            c_lp,
            lambda x: np.where(np.asarray(x) < 0, 0.0, g.cdf(np.asarray(x) + delta)),
            lambda: {0.0: float(g.cdf(delta))},
            np.array([0.0, 0.4, 1.0, 3.0]),
            *_mean_var_numeric(c_lp, 0.0, np.inf, {0.0: float(g.cdf(delta))}),
            has_icdf=False,
        )
    )
    hg = st.hypergeom(17, 7, 9)  # M = m + n, n = m (successes), N = k (draws)
    out.append(
        Case(
            "Hypergeometric",
            D.Hypergeometric,
            {"m": 7.0, "n": 10.0, "k": 9.0},
            hg.logpmf,
            hg.cdf,
            lambda: {float(x): float(hg.pmf(x)) for x in range(10)},
            np.array([0.0, 2.0, 4.0, 7.0]),
            float(hg.mean()),
            float(hg.var()),
            reparam=False,
        )
    )
    return out


CASES = _cases()
IDS = [c.name for c in CASES]


def _build(case: Case, validate_args=False, **override):
    params = {k: _t(v) for k, v in {**case.params, **override}.items()}
    return case.make(**params, validate_args=validate_args)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_log_prob_and_cdf_match_scipy(case):
    d = _build(case, validate_args=True)
    x = case.grid
    np.testing.assert_allclose(d.log_prob(_t(x)).numpy(), case.logpdf(x), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d.cdf(_t(x)).numpy(), case.cdf(x), rtol=1e-10, atol=1e-12)
    # outside the support (unvalidated): log_prob -inf, cdf 0 or 1
    loose = _build(case)
    lo = float(getattr(loose.support, "lower_bound", -np.inf))
    hi = float(getattr(loose.support, "upper_bound", np.inf))
    outside = [v for v in (lo - 1.0, hi + 1.0) if np.isfinite(v)]
    if outside:
        o = _t(np.array(outside))
        assert torch.all(loose.log_prob(o) == -torch.inf)
        np.testing.assert_allclose(
            loose.cdf(o).numpy(), (np.array(outside) > hi).astype(float), rtol=0, atol=1e-12
        )
        with pytest.raises(ValueError, match="support"):
            d.log_prob(o)


@pytest.mark.parametrize("case", [c for c in CASES if c.mean is not None], ids=lambda c: c.name)
def test_mean_and_variance(case):
    d = _build(case)
    np.testing.assert_allclose(d.mean.item(), case.mean, rtol=1e-7, atol=1e-9)
    if case.var is not None:
        np.testing.assert_allclose(d.variance.item(), case.var, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sampling_ks_distance_within_dkw_bound(case):
    n = 600 if "StudentT" in case.name else 4000
    torch.manual_seed(1234)
    d = _build(case)
    x = (d.rsample((n,)) if case.reparam else d.sample((n,))).detach().numpy()
    assert x.shape == (n,)
    values = np.unique(x)
    xs = np.sort(x)
    ecdf = np.searchsorted(xs, values, side="right") / n
    ecdf_left = np.searchsorted(xs, values, side="left") / n
    atoms = case.atoms()
    f = case.cdf(values)
    f_left = f - np.array([atoms.get(float(v), 0.0) for v in values])
    ks = max(np.max(np.abs(ecdf - f)), np.max(np.abs(ecdf_left - f_left)))
    bound = math.sqrt(math.log(2 / 1e-4) / (2 * n))  # DKW: P(KS > bound) <= 1e-4 for any F
    assert ks < bound, (ks, bound)
    # the draws respect the support and hit every atom with about its mass
    assert np.all(d.support.check(_t(x)).numpy())
    for loc, mass in atoms.items():
        if mass > 0.05:
            assert abs(np.mean(x == loc) - mass) < 5 * math.sqrt(mass * (1 - mass) / n)


@pytest.mark.parametrize("case", [c for c in CASES if c.reparam], ids=lambda c: c.name)
def test_icdf_inverts_cdf_and_rsample_carries_gradients(case):
    d = _build(case)
    atoms = case.atoms()
    inner = np.array([v for v in case.grid if v not in atoms])
    if case.has_icdf:
        back = d.icdf(d.cdf(_t(inner)))
        np.testing.assert_allclose(back.detach().numpy(), inner, rtol=1e-8, atol=1e-8)
    params = {k: _t(v).requires_grad_() for k, v in case.params.items()}
    torch.manual_seed(0)
    draw = case.make(**params, validate_args=False).rsample((64,))
    draw.sum().backward()
    grads = [p.grad for p in params.values() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# ------------------------------------------------------------------------------------------ log score


def _logs_cases():
    r = np.random.default_rng(4)
    n = 12
    mu, s = r.normal(size=n), r.uniform(0.5, 2, n)
    lo, hi = mu - r.uniform(0.2, 2, n), mu + r.uniform(0.2, 2, n)
    y = mu + r.uniform(-0.15, 0.15, n) * (hi - lo)
    xi = r.uniform(-0.3, 0.5, n)
    ypos = np.exp(r.normal(size=n))
    df = r.uniform(1.5, 8, n)
    s2 = r.uniform(0.5, 2, n)
    m, nn = r.integers(1, 15, n).astype(float), r.integers(1, 15, n).astype(float)
    k = np.floor(r.uniform(0.2, 1, n) * (m + nn))
    yh = np.clip(np.floor(k * m / (m + nn)), np.maximum(0, k - nn), np.minimum(k, m))
    yg = mu + s * r.uniform(0.05, 1.5, n)
    # scoringrules 0.10's logs_gpd and logs_exponential2 overwrite obs in place (a peer quirk): pass copies
    return [
        ("gev", D.GeneralizedExtremeValue(_t(mu), _t(s), _t(xi)), y,
         sr.logs_gev(y, xi, location=mu, scale=s, backend="numpy")),
        ("gpd", D.GeneralizedParetoWithMass(_t(mu), _t(s), _t(xi)), yg,
         sr.logs_gpd(yg.copy(), xi, location=mu, scale=s, backend="numpy")),
        ("exponential2", D.ExponentialWithMass(_t(mu), _t(s)), yg,
         sr.logs_exponential2(yg.copy(), location=mu, scale=s, backend="numpy")),
        ("tnormal", D.TruncatedNormal(_t(mu), _t(s), _t(lo), _t(hi)), y,
         sr.logs_tnormal(y, mu, s, lo, hi, backend="numpy")),
        ("tlogistic", D.TruncatedLogistic(_t(mu), _t(s), _t(lo), _t(hi)), y,
         sr.logs_tlogistic(y, mu, s, lo, hi, backend="numpy")),
        ("tt", D.TruncatedStudentT(_t(df), _t(mu), _t(s), _t(lo), _t(hi)), y,
         sr.logs_tt(y, df, mu, s, lo, hi, backend="numpy")),
        ("2pnormal", D.TwoPieceNormal(_t(mu), _t(s), _t(s2)), y,
         sr.logs_2pnormal(y, s, s2, mu, backend="numpy")),
        ("2pexponential", D.TwoPieceExponential(_t(mu), _t(s), _t(s2)), y,
         sr.logs_2pexponential(y, s, s2, mu, backend="numpy")),
        ("loglaplace", D.LogLaplace(_t(mu), _t(s2)), ypos,
         sr.logs_loglaplace(ypos, mu, s2, backend="numpy")),
        ("loglogistic", D.LogLogistic(_t(mu), _t(s2)), ypos,
         sr.logs_loglogistic(ypos, mu, s2, backend="numpy")),
        ("hypergeometric", D.Hypergeometric(_t(m), _t(nn), _t(k)), yh,
         sr.logs_hypergeometric(yh, m, nn, k, backend="numpy")),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "name,dist,y,peer", _logs_cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_log_score_matches_scoringrules(name, dist, y, peer):
    ours = log_score(dist, _t(y), reduction="none").numpy()
    np.testing.assert_allclose(ours, peer, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: D.GeneralizedExtremeValue(0.0, -1.0, 0.1, validate_args=True), "scale"),
        (lambda: D.GeneralizedParetoWithMass(0.0, 1.0, 0.1, 1.0, validate_args=True), "mass"),
        (lambda: D.ExponentialWithMass(0.0, 1.0, -0.1, validate_args=True), "mass"),
        (
            lambda: D.TruncatedNormal(0.0, 1.0, 2.0, 1.0, validate_args=True),
            "lower must be < upper",
        ),
        (
            lambda: D.GeneralizedTruncatedCensoredLogistic(
                0.0, 1.0, -1.0, 1.0, 0.6, 0.5, validate_args=True
            ),
            "lmass \\+ umass",
        ),
        (
            lambda: D.GeneralizedTruncatedCensoredNormal(0.0, 1.0, lmass=0.1, validate_args=True),
            "finite lower bound",
        ),
        (
            lambda: D.GeneralizedTruncatedCensoredStudentT(
                3.0, 0.0, 1.0, upper=2.0, umass=1.5, validate_args=True
            ),
            "umass",
        ),
        (lambda: D.CensoredStudentT(-1.0, 0.0, 1.0, validate_args=True), "df"),
        (lambda: D.TwoPieceNormal(0.0, 1.0, 0.0, validate_args=True), "scale2"),
        (lambda: D.TwoPieceExponential(0.0, -1.0, 1.0, validate_args=True), "scale1"),
        (lambda: D.LogLaplace(0.0, 0.0, validate_args=True), "scale"),
        (lambda: D.LogLogistic(0.0, -2.0, validate_args=True), "scale"),
        (lambda: D.UniformWithMasses(1.0, 0.0, validate_args=True), "low must be < high"),
        (lambda: D.UniformWithMasses(0.0, 1.0, 0.7, 0.4, validate_args=True), "lmass \\+ umass"),
        (lambda: D.CensoredShiftedGamma(1.0, 0.0, 0.1, validate_args=True), "rate"),
        (lambda: D.CensoredShiftedGamma(1.0, 1.0, -0.1, validate_args=True), "shift"),
        (lambda: D.Hypergeometric(5, 5, 11, validate_args=True), "k \\(draws\\)"),
        (lambda: D.Hypergeometric(2.5, 5, 3, validate_args=True), "\\bm\\b"),
    ],
)
def test_invalid_arguments_are_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_validation_can_be_switched_off():
    d = D.TruncatedNormal(0.0, 1.0, 2.0, 1.0, validate_args=False)  # no error at construction
    assert d.batch_shape == ()


# ------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_broadcasting_and_expand(case):
    names = list(case.params)
    first = names[0]
    # the first parameter varies along a (3, 1) axis, the second along (4,); the rest are scalars
    base = case.params
    p = {k: _t(v) for k, v in base.items()}
    p[first] = _t(np.full((3, 1), base[first]))
    p[names[1]] = _t(np.full((4,), base[names[1]]))
    d = case.make(**p, validate_args=False)
    assert d.batch_shape == (3, 4)
    x = _t(case.grid[1])
    ref = _build(case).log_prob(x)
    torch.testing.assert_close(d.log_prob(x), ref.expand(3, 4))
    e = d.expand((2, 3, 4))
    assert type(e) is type(d) and e.batch_shape == (2, 3, 4)
    torch.testing.assert_close(e.log_prob(x), ref.expand(2, 3, 4))
    torch.testing.assert_close(e.cdf(x), _build(case).cdf(x).expand(2, 3, 4))
    torch.manual_seed(0)
    if "StudentT" not in case.name:
        assert e.sample((5,)).shape == (5, 2, 3, 4)
    assert d.sample().shape == (3, 4)


def test_float32_parameters_stay_float32():
    d = D.GeneralizedExtremeValue(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(0.1))
    assert d.log_prob(torch.tensor(0.5)).dtype == torch.float32
    mixed = D.TwoPieceNormal(torch.tensor(0.0), torch.tensor(1.0, dtype=F64), 2.0)
    assert mixed.loc.dtype == F64 and mixed.scale2.dtype == F64
