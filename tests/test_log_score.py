"""Logarithmic score: scipy.stats log-densities, tail stability, Gaussian-mixture constructors, gradients,
propriety on a Gaussian family scan (Gauss-Hermite expectation), low precision, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from scipy.special import logsumexp
from torch.autograd import gradcheck, gradgradcheck
from torch.distributions import (
    Beta,
    Binomial,
    Categorical,
    Exponential,
    Gamma,
    Laplace,
    LogNormal,
    MultivariateNormal,
    Normal,
    Poisson,
    StudentT,
)

from scoringrules_torch.functional.crps_closed import Logistic
from scoringrules_torch.functional.log import gaussian_mixture, log_score, normal_mixture

F64 = torch.float64
RNG = np.random.default_rng(0)


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


N = 7
MU, SIG = RNG.normal(size=N), RNG.uniform(0.3, 3, N)
A, B = RNG.uniform(0.5, 5, N), RNG.uniform(0.5, 5, N)
Y_REAL = RNG.normal(size=N) * 3
Y_POS = RNG.gamma(2.0, 1.0, N) + 0.01
Y_UNIT = RNG.uniform(0.01, 0.99, N)
Y_INT = np.floor(RNG.uniform(0, 15, N))

SCIPY_CASES = {
    "normal": (Normal(_t(MU), _t(SIG)), Y_REAL, st.norm(MU, SIG).logpdf(Y_REAL)),
    "lognormal": (
        LogNormal(_t(MU), _t(SIG)),
        Y_POS,
        st.lognorm(s=SIG, scale=np.exp(MU)).logpdf(Y_POS),
    ),
    "gamma": (Gamma(_t(A), _t(B)), Y_POS, st.gamma(A, scale=1 / B).logpdf(Y_POS)),
    "beta": (Beta(_t(A), _t(B)), Y_UNIT, st.beta(A, B).logpdf(Y_UNIT)),
    "student_t": (StudentT(_t(A), _t(MU), _t(SIG)), Y_REAL, st.t(A, MU, SIG).logpdf(Y_REAL)),
    "laplace": (Laplace(_t(MU), _t(SIG)), Y_REAL, st.laplace(MU, SIG).logpdf(Y_REAL)),
    "exponential": (Exponential(_t(B)), Y_POS, st.expon(scale=1 / B).logpdf(Y_POS)),
    "logistic": (Logistic(_t(MU), _t(SIG)), Y_REAL, st.logistic(MU, SIG).logpdf(Y_REAL)),
    "poisson": (Poisson(_t(A * 2)), Y_INT, st.poisson(A * 2).logpmf(Y_INT)),
    "binomial": (
        Binomial(_t(np.full(N, 20.0)), _t(Y_UNIT)),
        Y_INT,
        st.binom(20, Y_UNIT).logpmf(Y_INT),
    ),
}


@pytest.mark.parametrize("name", list(SCIPY_CASES))
def test_matches_scipy_logpdf(name):
    dist, y, ref = SCIPY_CASES[name]
    got = log_score(dist, _t(y), reduction="none")
    np.testing.assert_allclose(got.numpy(), -ref, rtol=1e-12, atol=1e-12)


def test_multivariate_normal_matches_scipy():
    d = 4
    m = RNG.normal(size=(3, d))
    lmat = np.tril(RNG.normal(size=(3, d, d)), -1) + np.eye(d) * RNG.uniform(0.5, 2, (3, 1, d))
    y = RNG.normal(size=(3, d)) * 2
    got = log_score(MultivariateNormal(_t(m), scale_tril=_t(lmat)), _t(y), reduction="none")
    ref = [-st.multivariate_normal(m[i], lmat[i] @ lmat[i].T).logpdf(y[i]) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)


def _mixture_ref(y, means, scales, logits):
    """-log sum_k w_k prod_j N(y_j; mu_kj, s_kj) by scipy + logsumexp, per observation."""
    logw = logits - logsumexp(logits, axis=-1, keepdims=True)
    comp = st.norm(means, scales).logpdf(y[:, None, :]).sum(-1)
    return -logsumexp(logw + comp, axis=-1)


def test_gaussian_mixture_matches_scipy_and_is_tail_stable():
    b, k, d = 5, 3, 2
    means, scales, logits = (
        RNG.normal(size=(b, k, d)),
        RNG.uniform(0.3, 2, (b, k, d)),
        RNG.normal(size=(b, k)),
    )
    y = RNG.normal(size=(b, d)) * 3
    y[0] = [60.0, -80.0]  # every component density underflows in float64 (log p ~ -1e3 .. -3e4)
    mix = gaussian_mixture(_t(means), _t(scales), _t(logits))
    assert mix.batch_shape == (b,) and mix.event_shape == (d,)
    got = log_score(mix, _t(y), reduction="none")
    assert torch.isfinite(got).all()
    np.testing.assert_allclose(got.numpy(), _mixture_ref(y, means, scales, logits), rtol=1e-12)


def test_normal_mixture_matches_scipy():
    means, scales, logits = (
        RNG.normal(size=(4, 3)),
        RNG.uniform(0.3, 2, (4, 3)),
        RNG.normal(size=(4, 3)),
    )
    y = RNG.normal(size=4) * 2
    got = log_score(normal_mixture(_t(means), _t(scales), _t(logits)), _t(y), reduction="none")
    ref = _mixture_ref(y[:, None], means[..., None], scales[..., None], logits)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)


def test_far_tail_is_finite_where_density_underflows():
    # float64: N(0,1) density at 40 underflows to 0 (e^-800), but -log p = 800 + log(2 pi)/2 is finite.
    y = torch.tensor([40.0, -45.0], dtype=F64)
    got = log_score(Normal(torch.zeros((), dtype=F64), 1.0), y, reduction="none")
    np.testing.assert_allclose(
        got.numpy(), 0.5 * y.numpy() ** 2 + 0.5 * math.log(2 * math.pi), rtol=1e-15
    )
    assert torch.exp(-got).eq(0).all()  # the density itself underflows
    got32 = log_score(Normal(torch.zeros(()), 1.0), y.float(), reduction="none")
    assert torch.isfinite(got32).all()


def test_callable_matches_distribution_and_reductions():
    d = MultivariateNormal(torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64) * 2.0)
    y = _t(RNG.normal(size=(6, 3)))
    none = log_score(d.log_prob, y, reduction="none")
    torch.testing.assert_close(none, log_score(d, y, reduction="none"))
    torch.testing.assert_close(log_score(d, y), none.mean())
    torch.testing.assert_close(log_score(d, y, reduction="sum"), none.sum())


def test_categorical_is_cross_entropy():
    logits = _t(RNG.normal(size=(5, 4)))
    y = torch.tensor([0, 3, 1, 2, 2])
    got = log_score(Categorical(logits=logits), y, reduction="none")
    torch.testing.assert_close(got, torch.nn.functional.cross_entropy(logits, y, reduction="none"))


def test_gradcheck_gradgradcheck_mixture():
    means = _t(RNG.normal(size=(2, 3, 2))).requires_grad_(True)
    scales = _t(RNG.uniform(0.5, 1.5, (2, 3, 2))).requires_grad_(True)
    logits = _t(RNG.normal(size=(2, 3))).requires_grad_(True)
    y = _t(RNG.normal(size=(2, 2))).requires_grad_(True)

    def fn(m, s, lg, t):
        return log_score(gaussian_mixture(m, s, lg), t, reduction="none")

    assert gradcheck(fn, (means, scales, logits, y))
    assert gradgradcheck(fn, (means, scales, logits, y))


def test_gradient_matches_analytic_normal():
    mu = _t(MU).requires_grad_(True)
    sig = _t(SIG).requires_grad_(True)
    log_score(Normal(mu, sig), _t(Y_REAL), reduction="sum").backward()
    z = (Y_REAL - MU) / SIG
    np.testing.assert_allclose(mu.grad.numpy(), -z / SIG, rtol=1e-12)
    np.testing.assert_allclose(sig.grad.numpy(), 1 / SIG - z**2 / SIG, rtol=1e-12)


def test_expected_log_score_minimised_at_true_parameters():
    # E_{Y ~ N(0.3, 1.2^2)} LogS(N(mu, s), Y) by Gauss-Hermite (exact: the integrand is quadratic in Y).
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)
    weights = weights / weights.sum()
    true_mu, true_s = 0.3, 1.2
    y = _t(true_mu + true_s * nodes)
    mus = np.linspace(-0.7, 1.3, 21)
    ss = np.linspace(0.7, 1.7, 21)
    grid = np.array(
        [
            [
                float((_t(weights) * log_score(Normal(_t(m), _t(s)), y, reduction="none")).sum())
                for s in ss
            ]
            for m in mus
        ]
    )
    i, j = np.unravel_index(np.argmin(grid), grid.shape)
    assert math.isclose(mus[i], true_mu, abs_tol=1e-9) and math.isclose(ss[j], true_s, abs_tol=1e-9)
    # strictly larger everywhere else; the minimum is the entropy of the truth
    assert (np.sort(grid.ravel())[1] - grid.min()) > 0
    assert math.isclose(grid.min(), 0.5 * math.log(2 * math.pi * math.e * true_s**2), rel_tol=1e-12)


def test_bf16_autocast_and_bf16_parameters_finite():
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 3 * 2 * 2 + 3)
    z = torch.randn(16, 8)
    y = torch.randn(16, 2) * 3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(z)
        means = out[:, :6].reshape(16, 3, 2)
        scales = torch.nn.functional.softplus(out[:, 6:12]).reshape(16, 3, 2) + 0.1
        logits = out[:, 12:]
        loss = log_score(gaussian_mixture(means, scales, logits), y)
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())
    d = Normal(torch.zeros(4, dtype=torch.bfloat16), torch.ones(4, dtype=torch.bfloat16))
    out = log_score(d, torch.full((4,), 30.0, dtype=torch.bfloat16), reduction="none")
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_errors():
    d = MultivariateNormal(torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match=r"event_shape \(3,\).*\(4, 2\)"):
        log_score(d, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"batch dimensions of target \(4,\).*batch_shape \(5,\)"):
        log_score(MultivariateNormal(torch.zeros(5, 3), torch.eye(3)), torch.zeros(4, 3))
    with pytest.raises(TypeError, match=r"target must be a torch.Tensor"):
        log_score(d, [0.0, 0.0, 0.0])
    with pytest.raises(TypeError, match=r"must return a torch.Tensor"):
        log_score(lambda y: 0.0, torch.zeros(3))
    with pytest.raises(TypeError, match=r"Distribution or a log-density callable"):
        log_score(3.0, torch.zeros(3))
    with pytest.raises(ValueError, match=r"reduction"):
        log_score(d, torch.zeros(3), reduction="mean ")
    with pytest.raises(ValueError, match=r"logits must have shape \(\*batch, K\) with K=3"):
        gaussian_mixture(torch.zeros(2, 3, 4), torch.ones(2, 3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"scales \(2, 3, 5\) must broadcast"):
        gaussian_mixture(torch.zeros(2, 3, 4), torch.ones(2, 3, 5), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"means must have shape \(\*batch, K, d\)"):
        gaussian_mixture(torch.zeros(3), torch.ones(3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"floating-point"):
        normal_mixture(torch.zeros(3, dtype=torch.long), torch.ones(3), torch.zeros(3))


@pytest.mark.slow
def test_torch_compile_fullgraph():
    means, scales, logits = torch.randn(4, 3, 2), torch.rand(4, 3, 2) + 0.5, torch.randn(4, 3)
    y = torch.randn(4, 2)

    def f(m, s, lg, t):
        return log_score(gaussian_mixture(m, s, lg), t)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(means, scales, logits, y), f(means, scales, logits, y))


def test_callable_returning_per_element_log_densities_is_an_error():
    """Issue 13: a callable returning per-element log-densities (*batch, d) was silently averaged over the event
    dimension (the score divided by d). The contract is one joint log-density per observation."""
    y = _t(RNG.normal(size=(6, 3)))
    marg = Normal(torch.zeros(3, dtype=F64), torch.ones(3, dtype=F64) * 2.0)
    with pytest.raises(ValueError, match=r"one joint log-density per observation, shape \(6,\).*got \(6, 3\)"
                                         r".*per-element log-densities: return their sum"):
        log_score(marg.log_prob, y)
    # summed, it is the joint log-density of the independent components: a float64 loop oracle
    got = log_score(lambda t: marg.log_prob(t).sum(-1), y, reduction="none")
    ref = torch.tensor([sum(0.5 * (v / 2.0) ** 2 + math.log(2.0) + 0.5 * math.log(2 * math.pi) for v in row)
                        for row in y.tolist()], dtype=F64)
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=0)
    # a univariate callable says so with event_dims=0
    u = _t(RNG.normal(size=(5,)))
    got = log_score(Normal(torch.tensor(0.0, dtype=F64), torch.tensor(2.0, dtype=F64)).log_prob, u, event_dims=0, reduction="none")
    ref = torch.tensor([0.5 * (v / 2.0) ** 2 + math.log(2.0) + 0.5 * math.log(2 * math.pi) for v in u.tolist()],
                       dtype=F64)
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=0)
    with pytest.raises(ValueError, match=r"shape \(\) for target \(5,\) with event_dims=1; got \(5,\)"):
        log_score(Normal(torch.tensor(0.0, dtype=F64), torch.tensor(2.0, dtype=F64)).log_prob, u)


def test_log_score_event_dims_and_complex_errors():
    d = MultivariateNormal(torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match=r"event_dims=2 disagrees with MultivariateNormal.event_shape \(3,\)"):
        log_score(d, torch.zeros(4, 3), event_dims=2)
    with pytest.raises(ValueError, match=r"event_dims must be a non-negative int or None; got -1"):
        log_score(d.log_prob, torch.zeros(4, 3), event_dims=-1)
    with pytest.raises(ValueError, match=r"at least event_dims=2 dimension\(s\); got shape \(3,\)"):
        log_score(lambda t: t.sum(), torch.zeros(3), event_dims=2)
    with pytest.raises(TypeError, match=r"target must be a real tensor; got complex dtype"):
        log_score(d, torch.zeros(4, 3, dtype=torch.complex64))
    with pytest.raises(TypeError, match=r"log-density output must be a real floating-point tensor"):
        log_score(lambda t: t.sum(-1).to(torch.complex64), torch.zeros(4, 3))
