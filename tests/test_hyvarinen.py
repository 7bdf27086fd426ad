"""Hyvärinen score and denoising score matching.

Oracles: hand-written numpy formulas, autograd on ``log_prob`` (closed form == exact autograd to 1e-10 in
float64), unbiasedness of the Hutchinson and sliced estimators (mean of independent draws within 4 standard
errors), gradcheck/gradgradcheck, propriety on a Gaussian family scan (Gauss-Hermite expectation), Vincent's
identity E[DSM] = E_q[H] + d / sigma^2 (Monte Carlo with common random numbers, and in closed form), bf16, errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.distributions import (
    Categorical,
    Gumbel,
    Independent,
    LowRankMultivariateNormal,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    StudentT,
)

from scoringrules_torch.functional.crps_closed import Logistic
from scoringrules_torch.functional.hyvarinen import (
    denoising_score_matching,
    hyvarinen_score,
    register_hyvarinen,
)
from scoringrules_torch.functional.log import gaussian_mixture, normal_mixture

F64 = torch.float64


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _rng(seed=0):
    return np.random.default_rng(seed)


def _tril(r, b, d):
    return np.tril(r.normal(size=(b, d, d)), -1) * 0.5 + np.eye(d) * r.uniform(0.5, 1.5, (b, 1, d))


class MLPLogDensity(torch.nn.Module):
    """Unnormalised log-density: -|x|^2/2 + small tanh MLP (non-quadratic, so the Hessian varies with x)."""

    def __init__(self, d: int, hidden: int = 16, seed: int = 0, dtype=F64):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = torch.nn.Parameter(
            torch.randn(d, hidden, generator=g, dtype=dtype) / math.sqrt(d)
        )
        self.b1 = torch.nn.Parameter(torch.randn(hidden, generator=g, dtype=dtype) * 0.1)
        self.w2 = torch.nn.Parameter(
            torch.randn(hidden, generator=g, dtype=dtype) / math.sqrt(hidden)
        )

    def forward(self, x):
        return -0.5 * x.pow(2).sum(-1) + torch.tanh(x @ self.w1 + self.b1) @ self.w2


# ------------------------------------------------------------------------------------------------------------
# Closed forms == independent formulas == exact autograd
# ------------------------------------------------------------------------------------------------------------
def _make_models():
    r = _rng(1)
    b, d, k = 4, 3, 3
    m = r.normal(size=(b, d))
    tril = _tril(r, b, d)
    cov_diag = r.uniform(0.3, 2.0, (b, d))
    models = {
        "normal": (Normal(_t(m[:, 0]), _t(cov_diag[:, 0])), r.normal(size=b) * 2),
        "student_t": (
            StudentT(_t(r.uniform(2, 8, b)), _t(m[:, 0]), _t(cov_diag[:, 0])),
            r.normal(size=b) * 2,
        ),
        "logistic": (Logistic(_t(m[:, 0]), _t(cov_diag[:, 0])), r.normal(size=b) * 2),
        "mvn_full": (MultivariateNormal(_t(m), scale_tril=_t(tril)), r.normal(size=(b, d))),
        "mvn_diag": (
            MultivariateNormal(_t(m), covariance_matrix=torch.diag_embed(_t(cov_diag))),
            r.normal(size=(b, d)),
        ),
        "mvn_broadcast": (
            MultivariateNormal(_t(m[0]), scale_tril=_t(tril[0])),
            r.normal(size=(5, b, d)),
        ),
        "lowrank": (
            LowRankMultivariateNormal(_t(m), _t(r.normal(size=(b, d, 2)) * 0.5), _t(cov_diag)),
            r.normal(size=(b, d)),
        ),
        "independent_normal": (Independent(Normal(_t(m), _t(cov_diag)), 1), r.normal(size=(b, d))),
        "independent_t": (
            Independent(StudentT(_t(r.uniform(2, 8, (b, d))), _t(m), _t(cov_diag)), 1),
            r.normal(size=(b, d)),
        ),
        "gaussian_mixture": (
            gaussian_mixture(
                _t(r.normal(size=(b, k, d))),
                _t(r.uniform(0.4, 1.5, (b, k, d))),
                _t(r.normal(size=(b, k))),
            ),
            r.normal(size=(b, d)) * 1.5,
        ),
        "normal_mixture": (
            normal_mixture(
                _t(r.normal(size=(b, k))),
                _t(r.uniform(0.4, 1.5, (b, k))),
                _t(r.normal(size=(b, k))),
            ),
            r.normal(size=b) * 1.5,
        ),
        "mvn_mixture": (
            MixtureSameFamily(
                Categorical(logits=_t(r.normal(size=(b, k)))),
                MultivariateNormal(
                    _t(r.normal(size=(b, k, d))),
                    scale_tril=_t(_tril(r, b * k, d).reshape(b, k, d, d)),
                ),
            ),
            r.normal(size=(b, d)),
        ),
    }
    return models


MODELS = _make_models()


@pytest.mark.parametrize("name", list(MODELS))
def test_closed_form_equals_exact_autograd(name):
    dist, y = MODELS[name]
    ev = len(dist.event_shape)
    closed = hyvarinen_score(dist, _t(y), reduction="none")
    auto = hyvarinen_score(lambda x: dist.log_prob(x), _t(y), event_dims=ev, reduction="none")
    assert closed.shape == auto.shape
    torch.testing.assert_close(closed, auto.detach(), rtol=1e-10, atol=1e-10)


def test_normal_and_mvn_match_hand_formulas():
    r = _rng(2)
    mu, s, y = r.normal(size=6), r.uniform(0.3, 2, 6), r.normal(size=6) * 2
    got = hyvarinen_score(Normal(_t(mu), _t(s)), _t(y), reduction="none").numpy()
    np.testing.assert_allclose(got, -2 / s**2 + (y - mu) ** 2 / s**4, rtol=1e-13)
    d = 4
    m, tril, x = r.normal(size=(3, d)), _tril(r, 3, d), r.normal(size=(3, d))
    got = hyvarinen_score(
        MultivariateNormal(_t(m), scale_tril=_t(tril)), _t(x), reduction="none"
    ).numpy()
    prec = np.linalg.inv(tril @ np.swapaxes(tril, -1, -2))
    grad = -np.einsum("bij,bj->bi", prec, x - m)
    ref = -2 * np.trace(prec, axis1=-2, axis2=-1) + (grad**2).sum(-1)
    np.testing.assert_allclose(got, ref, rtol=1e-11)


def test_autograd_fallback_for_unregistered_distribution():
    # Gumbel: d/dx log p = (e^{-z} - 1)/b, d2/dx2 = -e^{-z}/b^2.
    loc, scale = np.array([0.2, -1.0, 0.5]), np.array([1.0, 0.5, 2.0])
    y = np.array([0.3, 1.5, -2.0])
    got = hyvarinen_score(Gumbel(_t(loc), _t(scale)), _t(y), reduction="none").detach().numpy()
    z = (y - loc) / scale
    ref = -2 * np.exp(-z) / scale**2 + ((np.exp(-z) - 1) / scale) ** 2
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_score_callable_equals_log_prob_callable():
    model = MLPLogDensity(4)
    x = _t(_rng(3).normal(size=(5, 4)))

    def score(v):
        with torch.enable_grad():
            v = v if v.requires_grad else v.requires_grad_(True)
            return torch.autograd.grad(model(v).sum(), v, create_graph=True)[0]

    a = hyvarinen_score(model, x, reduction="none")
    b = hyvarinen_score(score, x, kind="score", reduction="none")
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_event_dims_two_and_zero():
    # log p = -|x|^2/2 over a (2, 3) event: H = -2 * 6 + |x|^2; event_dims=0 scores every entry separately.
    x = _t(_rng(4).normal(size=(4, 2, 3)))
    got = hyvarinen_score(
        lambda v: -0.5 * v.pow(2).sum((-1, -2)), x, event_dims=2, reduction="none"
    )
    torch.testing.assert_close(got.detach(), -12.0 + x.pow(2).sum((-1, -2)))
    got0 = hyvarinen_score(lambda v: -0.5 * v.pow(2), x, event_dims=0, reduction="none")
    torch.testing.assert_close(got0.detach(), -2.0 + x.pow(2))


# ------------------------------------------------------------------------------------------------------------
# Stochastic estimators are unbiased
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["hutchinson", "sliced"])
@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_stochastic_estimators_unbiased(method, probe):
    d, reps = 6, 4000
    model = MLPLogDensity(d, seed=1)
    x0 = _t(_rng(5).normal(size=(2, d)))
    exact = hyvarinen_score(model, x0, reduction="none").detach()
    xs = x0.repeat(reps, 1)  # (reps * 2, d): independent probes per row
    g = torch.Generator().manual_seed(123)
    est = hyvarinen_score(
        model, xs, method=method, probe=probe, generator=g, reduction="none"
    ).detach()
    est = est.reshape(reps, 2)
    se = est.std(0) / math.sqrt(reps)
    assert (est.std(0) > 0).all()  # the estimator is genuinely stochastic here
    assert ((est.mean(0) - exact).abs() <= 4 * se).all(), (est.mean(0), exact, se)


def test_num_probes_averages_and_distribution_uses_autograd_for_stochastic_methods():
    dist, y = MODELS["mvn_full"]
    g1 = torch.Generator().manual_seed(7)
    many = hyvarinen_score(
        dist, _t(y), method="hutchinson", num_probes=64, generator=g1, reduction="none"
    )
    g2 = torch.Generator().manual_seed(7)
    singles = torch.stack(
        [
            hyvarinen_score(dist, _t(y), method="hutchinson", generator=g2, reduction="none")
            for _ in range(64)
        ]
    )
    torch.testing.assert_close(many, singles.mean(0))
    # for a Gaussian, Rademacher probes give v^T H v = tr(H) exactly only when H is diagonal; here close anyway
    exact = hyvarinen_score(dist, _t(y), reduction="none")
    assert ((many - exact).abs() < 2.0).all()


def test_rademacher_hutchinson_is_exact_for_diagonal_hessian():
    # v^T diag(h) v = sum h_i for v in {-1, 1}^d.
    dist, y = MODELS["independent_normal"]
    est = hyvarinen_score(
        dist,
        _t(y),
        method="hutchinson",
        generator=torch.Generator().manual_seed(0),
        reduction="none",
    )
    torch.testing.assert_close(
        est, hyvarinen_score(dist, _t(y), reduction="none"), rtol=1e-12, atol=1e-12
    )


# ------------------------------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------------------------------
def test_gradcheck_closed_forms():
    r = _rng(6)
    mu = _t(r.normal(size=3)).requires_grad_(True)
    s = _t(r.uniform(0.5, 2, 3)).requires_grad_(True)
    y = _t(r.normal(size=3)).requires_grad_(True)

    def f_normal(m, sc, t):
        return hyvarinen_score(Normal(m, sc), t, reduction="none")

    assert gradcheck(f_normal, (mu, s, y)) and gradgradcheck(f_normal, (mu, s, y))

    loc = _t(r.normal(size=(2, 3))).requires_grad_(True)
    tril = _t(_tril(r, 2, 3)).requires_grad_(True)
    x = _t(r.normal(size=(2, 3))).requires_grad_(True)

    def f_mvn(m, lt, t):
        return hyvarinen_score(
            MultivariateNormal(m, scale_tril=torch.tril(lt)), t, reduction="none"
        )

    assert gradcheck(f_mvn, (loc, tril, x)) and gradgradcheck(f_mvn, (loc, tril, x))

    means = _t(r.normal(size=(2, 3, 2))).requires_grad_(True)
    scales = _t(r.uniform(0.5, 1.5, (2, 3, 2))).requires_grad_(True)
    logits = _t(r.normal(size=(2, 3))).requires_grad_(True)
    xm = _t(r.normal(size=(2, 2))).requires_grad_(True)

    def f_mix(m, sc, lg, t):
        return hyvarinen_score(gaussian_mixture(m, sc, lg), t, reduction="none")

    assert gradcheck(f_mix, (means, scales, logits, xm)) and gradgradcheck(
        f_mix, (means, scales, logits, xm)
    )


@pytest.mark.parametrize("method", ["exact", "hutchinson", "sliced"])
def test_gradcheck_autograd_path(method):
    model = MLPLogDensity(3, hidden=4, seed=2)
    x = _t(_rng(7).normal(size=(2, 3))).requires_grad_(True)
    params = tuple(model.parameters())

    def fn(xx, *ps):
        # a fixed generator per call, so the stochastic estimators are deterministic functions here
        gen = torch.Generator().manual_seed(0)
        return hyvarinen_score(
            lambda v: torch.func.functional_call(
                model, dict(zip(["w1", "b1", "w2"], ps, strict=True)), (v,)
            ),
            xx,
            method=method,
            generator=gen,
            reduction="none",
        )

    assert gradcheck(fn, (x, *params))
    assert gradgradcheck(fn, (x, *params), fast_mode=True)


def test_training_step_gradients_flow_to_parameters():
    model = MLPLogDensity(3)
    x = _t(_rng(8).normal(size=(16, 3)))
    for method in ("exact", "hutchinson", "sliced"):
        model.zero_grad()
        hyvarinen_score(
            model, x, method=method, generator=torch.Generator().manual_seed(0)
        ).backward()
        assert all(
            p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
            for p in model.parameters()
        )


def test_no_grad_mode_returns_detached_values():
    model = MLPLogDensity(3)
    x = _t(_rng(9).normal(size=(4, 3)))
    ref = hyvarinen_score(model, x, reduction="none").detach()
    with torch.no_grad():
        got = hyvarinen_score(model, x, reduction="none")
    assert not got.requires_grad
    torch.testing.assert_close(got, ref)


# ------------------------------------------------------------------------------------------------------------
# Propriety: expected score minimised at the truth
# ------------------------------------------------------------------------------------------------------------
def test_expected_hyvarinen_score_minimised_at_true_parameters():
    # E_{Y ~ N(0.3, 1.2^2)} H(N(mu, s), Y) = -2/s^2 + ((m - mu)^2 + 1.2^2)/s^4 (exact by Gauss-Hermite).
    nodes, weights = np.polynomial.hermite_e.hermegauss(10)
    weights = _t(weights / weights.sum())
    true_mu, true_s = 0.3, 1.2
    y = _t(true_mu + true_s * nodes)
    mus = np.linspace(-0.7, 1.3, 21)
    ss = np.linspace(0.7, 1.7, 21)
    grid = np.array(
        [
            [
                float((weights * hyvarinen_score(Normal(_t(m), _t(s)), y, reduction="none")).sum())
                for s in ss
            ]
            for m in mus
        ]
    )
    i, j = np.unravel_index(np.argmin(grid), grid.shape)
    assert math.isclose(mus[i], true_mu, abs_tol=1e-9) and math.isclose(ss[j], true_s, abs_tol=1e-9)
    assert (np.sort(grid.ravel())[1] - grid.min()) > 0
    # at the truth E[H] = -E|grad log q|^2 = -1/s^2
    assert math.isclose(grid.min(), -1.0 / true_s**2, rel_tol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# Low precision
# ------------------------------------------------------------------------------------------------------------
def test_bf16_autocast_and_bf16_inputs_finite():
    model = MLPLogDensity(4, dtype=torch.float32)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    for method in ("exact", "hutchinson", "sliced"):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            v = hyvarinen_score(model, x, method=method)
        assert torch.isfinite(v)
        v.backward()
    out = hyvarinen_score(model, x.bfloat16(), reduction="none")
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    d = Normal(torch.zeros(8, dtype=torch.bfloat16), torch.ones(8, dtype=torch.bfloat16))
    out = hyvarinen_score(d, x[:, 0].bfloat16(), reduction="none")
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


# ------------------------------------------------------------------------------------------------------------
# Registry and errors
# ------------------------------------------------------------------------------------------------------------
def test_register_hyvarinen_overrides_by_mro(monkeypatch):
    from scoringrules_torch.functional import hyvarinen

    registry = hyvarinen._REGISTRY  # a private copy, so the registration does not outlive the test
    monkeypatch.setattr(registry, "_table", dict(registry._table))
    monkeypatch.setattr(registry, "_memo", {})

    class MyNormal(Normal):
        pass

    d = MyNormal(torch.zeros(2, dtype=F64), torch.ones(2, dtype=F64))
    y = torch.tensor([1.0, 2.0], dtype=F64)
    torch.testing.assert_close(hyvarinen_score(d, y, reduction="none"), -2.0 + y**2)

    @register_hyvarinen(MyNormal)
    def _wrong(dist, x):
        return torch.zeros_like(x), torch.full_like(x, 5.0)

    torch.testing.assert_close(hyvarinen_score(d, y, reduction="none"), torch.full_like(y, 10.0))
    with pytest.raises(TypeError, match=r"register_hyvarinen"):
        register_hyvarinen(float)


def test_errors():
    mvn = MultivariateNormal(torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match=r"method must be one of"):
        hyvarinen_score(mvn, torch.zeros(3), method="trace")
    with pytest.raises(ValueError, match=r"probe must be one of"):
        hyvarinen_score(mvn, torch.zeros(3), probe="sphere")
    with pytest.raises(ValueError, match=r"kind='score' is for score callables"):
        hyvarinen_score(mvn, torch.zeros(3), kind="score")
    with pytest.raises(ValueError, match=r"num_probes must be a positive int"):
        hyvarinen_score(mvn, torch.zeros(3), method="sliced", num_probes=0)
    with pytest.raises(ValueError, match=r"event_shape \(3,\).*\(4, 2\)"):
        hyvarinen_score(mvn, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"event_dims=2 disagrees"):
        hyvarinen_score(mvn, torch.zeros(3), event_dims=2)
    with pytest.raises(ValueError, match=r"do not broadcast"):
        hyvarinen_score(MultivariateNormal(torch.zeros(5, 3), torch.eye(3)), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"one value per observation, shape \(4,\)"):
        hyvarinen_score(lambda v: v.sum(), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"shaped like x \(4, 3\)"):
        hyvarinen_score(lambda v: v.sum(-1), torch.zeros(4, 3), kind="score")
    with pytest.raises(ValueError, match=r"floating-point"):
        hyvarinen_score(mvn, torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"Distribution or a callable"):
        hyvarinen_score(3, torch.zeros(3))
    with pytest.raises(ValueError, match=r"at least event_dims=2"):
        hyvarinen_score(lambda v: v.sum(-1), torch.zeros(3), event_dims=2)


# ------------------------------------------------------------------------------------------------------------
# Denoising score matching
# ------------------------------------------------------------------------------------------------------------
def _gaussian_score(mu, prec):
    return lambda x, sigma: -(x - mu) @ prec.T


@pytest.mark.parametrize("which", ["gaussian_model", "mlp_model"])
def test_dsm_equals_hyvarinen_of_smoothed_density_plus_constant(which):
    # Vincent (2011): E[|s(x~) + eps/sigma|^2] = E_{q_sigma}[H(s, x~)] + d/sigma^2 for any model s.
    # Common random numbers: DSM(x, eps) - H(s, x + sigma eps) - d/sigma^2 has mean 0.
    d, n, sigma = 3, 20000, 0.7
    g = torch.Generator().manual_seed(11)
    data = (
        torch.randn(n, d, generator=g, dtype=F64) * torch.tensor([1.0, 0.5, 2.0], dtype=F64) + 0.3
    )
    eps = torch.randn(n, d, generator=g, dtype=F64)
    if which == "gaussian_model":
        prec = _t([[1.5, 0.2, 0.0], [0.2, 0.8, 0.1], [0.0, 0.1, 0.6]])
        score = _gaussian_score(_t([0.1, -0.2, 0.4]), prec)
    else:
        mlp = MLPLogDensity(d, seed=3)

        def score(x, s):
            with torch.enable_grad():
                x = x if x.requires_grad else x.detach().requires_grad_(True)
                return torch.autograd.grad(mlp(x).sum(), x, create_graph=True)[0]

    dsm = denoising_score_matching(score, data, sigma=sigma, noise=eps, reduction="none").detach()
    noisy = data + sigma * eps
    h = hyvarinen_score(lambda x: score(x, None), noisy, kind="score", reduction="none").detach()
    diff = dsm - h - d / sigma**2
    se = diff.std() / math.sqrt(n)
    assert diff.std() > 0
    assert diff.mean().abs() <= 4 * se, (diff.mean(), se)


def test_dsm_expectation_in_closed_form_with_alpha_and_per_sample_sigma():
    # Data N(m, S), x~ = a x + sigma eps, model s(x) = -P (x - mu):
    # E[DSM] = -2 tr P + tr(P^2 C) + |P (a m - mu)|^2 + d / sigma^2,  C = a^2 S + sigma^2 I.
    d, n = 2, 40000
    m, sd = np.array([0.5, -1.0]), np.array([1.0, 0.6])
    mu, prec = np.array([0.2, -0.5]), np.array([[1.2, 0.3], [0.3, 0.9]])
    g = torch.Generator().manual_seed(12)
    levels = [(0.8, 0.5), (0.3, 1.5)]  # (alpha, sigma)
    idx = torch.arange(n) % 2
    alpha = _t([levels[i][0] for i in idx.tolist()])
    sigma = _t([levels[i][1] for i in idx.tolist()])
    data = _t(m) + _t(sd) * torch.randn(n, d, generator=g, dtype=F64)
    score = _gaussian_score(_t(mu), _t(prec))
    vals = denoising_score_matching(
        score, data, sigma=sigma, alpha=alpha, generator=g, reduction="none"
    ).detach()
    for i, (a, s) in enumerate(levels):
        c = a**2 * np.diag(sd**2) + s**2 * np.eye(d)
        ref = (
            -2 * np.trace(prec)
            + np.trace(prec @ prec @ c)
            + np.sum((prec @ (a * m - mu)) ** 2)
            + d / s**2
        )
        v = vals[idx == i]
        assert abs(v.mean().item() - ref) <= 4 * v.std().item() / math.sqrt(v.numel()), (
            i,
            v.mean(),
            ref,
        )


def test_dsm_epsilon_prediction_is_sigma2_weighted_score_form():
    r = _rng(13)
    x, eps = _t(r.normal(size=(6, 3))), _t(r.normal(size=(6, 3)))
    sigma = _t(r.uniform(0.2, 2.0, 6))
    net = lambda xn, s: torch.tanh(xn) * s[:, None]  # noqa: E731 - any epsilon predictor
    eps_loss = denoising_score_matching(
        net, x, sigma=sigma, noise=eps, prediction="epsilon", reduction="none"
    )
    score_loss = denoising_score_matching(
        lambda xn, s: -net(xn, s) / s[:, None], x, sigma=sigma, noise=eps, reduction="none"
    )
    torch.testing.assert_close(eps_loss, sigma**2 * score_loss)
    ref = ((net(x + sigma[:, None] * eps, sigma) - eps) ** 2).sum(-1)
    torch.testing.assert_close(eps_loss, ref)


def test_dsm_gradcheck_and_errors():
    r = _rng(14)
    w = _t(r.normal(size=(3, 3)) * 0.3).requires_grad_(True)
    x = _t(r.normal(size=(4, 3))).requires_grad_(True)
    eps = _t(r.normal(size=(4, 3)))

    def fn(ww, xx):
        return denoising_score_matching(
            lambda xn, s: torch.tanh(xn @ ww), xx, sigma=0.5, noise=eps, reduction="none"
        )

    assert gradcheck(fn, (w, x)) and gradgradcheck(fn, (w, x))
    f = lambda xn, s: xn  # noqa: E731
    with pytest.raises(ValueError, match=r"sigma must be a positive number"):
        denoising_score_matching(f, torch.zeros(4, 3), sigma=0.0)
    with pytest.raises(
        ValueError,
        match=r"sigma must be a number or a tensor broadcastable to the batch shape \(4,\)",
    ):
        denoising_score_matching(f, torch.zeros(4, 3), sigma=torch.ones(3))
    with pytest.raises(ValueError, match=r"noise must have the shape of target \(4, 3\)"):
        denoising_score_matching(f, torch.zeros(4, 3), sigma=1.0, noise=torch.zeros(3))
    with pytest.raises(ValueError, match=r"score_fn must return a tensor shaped like target"):
        denoising_score_matching(lambda xn, s: xn.sum(-1), torch.zeros(4, 3), sigma=1.0)
    with pytest.raises(ValueError, match=r"prediction must be one of"):
        denoising_score_matching(f, torch.zeros(4, 3), sigma=1.0, prediction="v")
    with pytest.raises(TypeError, match=r"alpha must be a real number; got str '1'"):
        denoising_score_matching(f, torch.zeros(4, 3), sigma=1.0, alpha="1")


@pytest.mark.parametrize(
    "sigma,exc,pattern",
    [
        (0.0, ValueError, r"sigma must be a positive number \(finite, > 0\); got 0\.0"),
        (-0.5, ValueError, r"sigma must be a positive number"),
        (float("inf"), ValueError, r"sigma must be a positive number"),
        (np.float64(-1.0), ValueError, r"sigma must be a positive number"),
        (torch.tensor([0.5, 0.0, 1.0, 1.0]), ValueError, r"sigma must be positive and finite; got 0\.0"),
        (torch.tensor([0.5, -1.0, 1.0, 1.0]), ValueError, r"sigma must be positive and finite; got -1\.0"),
        (torch.tensor(float("nan")), ValueError, r"sigma must be positive and finite; got nan"),
        (torch.tensor([1, 2, 3, 4]), TypeError, r"sigma must have a floating-point dtype"),
        ("0.5", TypeError, r"sigma must be a real number; got str"),
    ],
)
def test_dsm_non_positive_sigma_is_an_error(sigma, exc, pattern):
    """A zero or negative sigma (also inside a per-observation tensor) divided by zero or flipped the sign of the
    score target silently."""
    with pytest.raises(exc, match=pattern):
        denoising_score_matching(lambda xn, s: -xn, torch.zeros(4, 3), sigma=sigma)


def test_dsm_numpy_and_0d_tensor_sigma_are_numbers():
    x, eps = torch.zeros(4, 3, dtype=torch.float64), torch.ones(4, 3, dtype=torch.float64)
    ref = denoising_score_matching(lambda xn, s: torch.zeros_like(xn), x, sigma=0.5, noise=eps)
    torch.testing.assert_close(ref, torch.tensor(12.0, dtype=torch.float64))  # |eps / 0.5|^2 = 3 * 4
    for sig in (np.float32(0.5), np.float64(0.5), torch.tensor(0.5, dtype=torch.float64)):
        out = denoising_score_matching(lambda xn, s: torch.zeros_like(xn), x, sigma=sig, noise=eps)
        torch.testing.assert_close(out, ref)


@pytest.mark.slow
def test_torch_compile_fullgraph():
    mu, s, y = torch.randn(8), torch.rand(8) + 0.5, torch.randn(8, 2)
    noise = torch.randn(8, 2)

    def f(mu, s, y):
        base = Normal(mu[:, None].expand(8, 2), s[:, None].expand(8, 2), validate_args=False)
        h = hyvarinen_score(Independent(base, 1), y)
        dsm = denoising_score_matching(lambda x, sg: -x * s[:, None], y, sigma=0.5, noise=noise)
        return h + dsm

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(mu, s, y), f(mu, s, y))
