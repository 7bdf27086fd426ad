"""Tests of the public propriety harness itself (scoringrules_torch.testing).

The harness is checked with scores written inline here in float64 (not the library's), against closed forms,
scipy, and plain Monte Carlo, so that a bug in the harness cannot hide behind a bug in a score.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as ss
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import (
    Gamma,
    Independent,
    Laplace,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    StudentT,
    Uniform,
)

from scoringrules_torch.testing import (
    CI_PROFILE,
    DEV_PROFILE,
    THOROUGH_PROFILE,
    ExpectedScore,
    assert_equal_expected_scores,
    assert_proper,
    assert_strictly_proper,
    compare_expected_scores,
    describe_distribution,
    expected_score,
    register_hypothesis_profiles,
)
from scoringrules_torch.testing import closed_forms as cf
from scoringrules_torch.testing import strategies as sts

PROFILE = settings.get_profile(register_hypothesis_profiles())
F64 = torch.float64


def t(v):
    return torch.as_tensor(v, dtype=F64)


def normal(loc, scale):
    return Normal(t(loc), t(scale))


# ---- inline float64 scores (one value per observation) ---------------------------------------------------------


def crps_fair(samples, target):
    m = samples.shape[0]
    acc = (samples - target).abs().mean(0)
    spread = (samples[:, None] - samples[None]).abs().sum((0, 1)) / (m * (m - 1))
    return acc - spread / 2


def energy_tau(samples, target, *, tau=1.0, beta=1.0):
    """Energy score with the spread term weighted by tau (tau < 1 is EAR's improper training temperature)."""
    if samples.dim() == 2:
        samples, target = samples[..., None], target[..., None]
    m = samples.shape[0]
    acc = ((samples - target).norm(dim=-1) ** beta).mean(0)
    spread = ((samples[:, None] - samples[None]).norm(dim=-1) ** beta).sum((0, 1)) / (m * (m - 1))
    return acc - tau * spread / 2


def log_score(dist, target):
    return -dist.log_prob(target)


def se_of_ensemble_mean(samples, target):
    d = samples.mean(0) - target
    return d**2 if d.dim() == 1 else (d**2).sum(-1)


# ---- expected_score against closed forms -----------------------------------------------------------------------


@pytest.mark.parametrize("p_loc,p_scale", [(0.0, 1.0), (0.7, 0.5), (-1.0, 2.0)])
def test_expected_crps_matches_closed_form(p_loc, p_scale):
    Q, P = normal(0.3, 1.2), normal(p_loc, p_scale)
    est = expected_score(crps_fair, P, Q, n_obs=20000, n_samples=8, seed=3)
    exact = cf.expected_crps_normal(P, Q).item()
    assert abs(est.mean - exact) < 4 * est.stderr, (est, exact)
    assert (
        isinstance(est, ExpectedScore) and est.values.shape == (20000,) and est.values.dtype == F64
    )


def test_expected_log_score_matches_cross_entropy():
    Q = MultivariateNormal(t([0.0, 1.0]), covariance_matrix=t([[1.0, 0.5], [0.5, 2.0]]))
    P = MultivariateNormal(t([0.5, 0.0]), covariance_matrix=t([[2.0, 0.0], [0.0, 1.0]]))
    est = expected_score(log_score, P, Q, kind="distribution", n_obs=20000)
    assert abs(est.mean - cf.expected_log_score(P, Q).item()) < 4 * est.stderr


def test_expected_score_of_ensemble_mean_includes_the_ensemble_variance():
    # E (Xbar - Y)^2 = (mu_P - mu_Q)^2 + var_Q + var_P / m: the ensemble size enters for a biased score.
    Q, P = normal(0.0, 1.0), normal(0.5, 2.0)
    for m in (1, 4):
        est = expected_score(se_of_ensemble_mean, P, Q, n_obs=40000, n_samples=m)
        assert abs(est.mean - (0.25 + 1.0 + 4.0 / m)) < 4 * est.stderr


# ---- common random numbers, determinism, global state ----------------------------------------------------------


def test_paired_standard_error_is_much_smaller_than_unpaired():
    Q, P = normal(0.0, 1.0), normal(0.2, 1.1)
    c = compare_expected_scores(crps_fair, P, Q, n_obs=8192, n_samples=8)
    unpaired = math.hypot(c.score_p.stderr, c.score_q.stderr)
    assert c.diff_stderr < 0.25 * unpaired, (c.diff_stderr, unpaired)
    assert c.diff == pytest.approx(c.score_p.mean - c.score_q.mean, abs=1e-12)


def test_identical_forecast_gives_exactly_zero_difference():
    Q = normal(0.0, 1.0)
    c = compare_expected_scores(crps_fair, normal(0.0, 1.0), Q, n_obs=1000, n_samples=4)
    assert c.diff == 0.0 and c.diff_stderr == 0.0
    assert_proper(crps_fair, normal(0.0, 1.0), Q, n_obs=1000, n_samples=4)
    with pytest.raises(AssertionError, match="does not have a significantly better"):
        assert_strictly_proper(crps_fair, normal(0.0, 1.0), Q, n_obs=1000, n_samples=4)


def test_same_family_ensembles_share_base_noise():
    # location-scale members drawn with the same seed are the same affine map of the same noise
    seen = []

    def spy(samples, target):
        seen.append(samples.clone())
        return crps_fair(samples, target)

    compare_expected_scores(spy, normal(1.0, 2.0), normal(0.0, 1.0), n_obs=50, n_samples=3)
    torch.testing.assert_close(seen[0], 1.0 + 2.0 * seen[1])


def test_seed_is_reproducible_and_leaves_global_rng_alone():
    Q, P = normal(0.0, 1.0), normal(0.5, 1.0)
    state = torch.random.get_rng_state()
    a = compare_expected_scores(crps_fair, P, Q, n_obs=500, n_samples=4, seed=7)
    b = compare_expected_scores(crps_fair, P, Q, n_obs=500, n_samples=4, seed=7)
    c = compare_expected_scores(crps_fair, P, Q, n_obs=500, n_samples=4, seed=8)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.diff == b.diff and a.diff_stderr == b.diff_stderr
    assert a.diff != c.diff


def test_observations_and_ensembles_use_disjoint_streams_across_seeds():
    # seed s draws observations with 2s and ensembles with 2s+1: seed 1's observations are not seed 0's members
    ys, xs = {}, {}

    def spy(seed):
        def f(samples, target):
            ys[seed], xs[seed] = target.clone(), samples.clone()
            return crps_fair(samples, target)

        return f

    Q = normal(0.0, 1.0)
    for s in (0, 1):
        expected_score(spy(s), Q, Q, n_obs=20, n_samples=2, seed=s)
    assert not torch.allclose(ys[1], xs[0][0])


def test_batch_size_gives_the_same_values():
    Q, P = normal(0.0, 1.0), normal(0.5, 1.5)
    a = compare_expected_scores(crps_fair, P, Q, n_obs=1000, n_samples=4)
    b = compare_expected_scores(crps_fair, P, Q, n_obs=1000, n_samples=4, batch_size=300)
    # same random numbers; values equal up to the summation order of vectorised reductions
    torch.testing.assert_close(a.score_p.values, b.score_p.values, rtol=1e-12, atol=0)
    torch.testing.assert_close(a.score_q.values, b.score_q.values, rtol=1e-12, atol=0)
    c = expected_score(log_score, P, Q, kind="distribution", n_obs=1000, batch_size=7)
    d = expected_score(log_score, P, Q, kind="distribution", n_obs=1000)
    torch.testing.assert_close(c.values, d.values, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="batch_size must be None or a positive int; got 0"):
        expected_score(crps_fair, P, Q, batch_size=0)


# ---- assertions: pass, fail, messages ---------------------------------------------------------------------------


def test_assert_strictly_proper_passes_for_a_strictly_proper_score():
    c = assert_strictly_proper(
        crps_fair, normal(0.0, 1.5), normal(0.0, 1.0), n_obs=8192, n_samples=8
    )
    assert c.z > 4


def test_improper_down_weighted_energy_is_caught_with_an_informative_message():
    # E S_tau(N(0, s^2), Y) for Y ~ N(0, 1) is minimised at s^2 = (tau^2/2) / (1 - tau^2/2): s = 0.378 for tau 0.5
    Q, P = normal(0.0, 1.0), normal(0.0, 0.378)
    improper = functools.partial(energy_tau, tau=0.5)
    with pytest.raises(AssertionError) as err:
        assert_proper(improper, P, Q, n_obs=4096, n_samples=8)
    msg = str(err.value)
    for pattern in (
        r"E_Q S\(P, Y\) = -?\d",
        r"E_Q S\(Q, Y\) = -?\d",
        r"difference E S\(P\) - E S\(Q\) = -\d",
        r"standard error \d",
        r"P = Normal\(loc=0, scale=0\.378\)",
        r"Q = Normal\(loc=0, scale=1\)",
        r"partial\(energy_tau, tau=0\.5\)",
        r"improper",
    ):
        assert re.search(pattern, msg), (pattern, msg)
    # the same pair under the proper score (tau = 1) passes
    assert_proper(energy_tau, P, Q, n_obs=4096, n_samples=8)


def test_improper_gap_matches_closed_form():
    # The measured advantage of the under-dispersed forecast equals the closed-form one within 4 standard errors.
    Q, P = normal(0.0, 1.0), normal(0.0, 0.378)
    c = compare_expected_scores(
        functools.partial(energy_tau, tau=0.5), P, Q, n_obs=8192, n_samples=8
    )
    c0 = math.sqrt(2 / math.pi)

    def exact(s):
        return c0 * (math.sqrt(1 + s * s) - 0.25 * math.sqrt(2) * s)

    assert abs(c.diff - (exact(0.378) - exact(1.0))) < 4 * c.diff_stderr


def test_squared_error_of_the_ensemble_mean_is_improper_as_an_ensemble_score():
    # E (Xbar - Y)^2 = var_Q + var_P / m: a sharper P beats the truth
    with pytest.raises(AssertionError, match="WORSE"):
        assert_proper(
            se_of_ensemble_mean, normal(0.0, 0.05), normal(0.0, 1.0), n_obs=4096, n_samples=4
        )


def test_squared_error_of_the_mean_is_proper_but_not_strictly():
    def se_of_mean(dist, target):
        return (dist.mean - target) ** 2

    Q, P = normal(0.0, 1.0), normal(0.0, 3.0)
    assert_proper(se_of_mean, P, Q, kind="distribution")
    c = assert_equal_expected_scores(se_of_mean, P, Q, kind="distribution")
    assert c.diff == 0.0
    with pytest.raises(AssertionError, match="not strictly proper for this pair"):
        assert_strictly_proper(se_of_mean, P, Q, kind="distribution")
    with pytest.raises(AssertionError, match="differ by more than 4 standard errors"):
        assert_equal_expected_scores(se_of_mean, normal(0.5, 1.0), Q, kind="distribution")


def test_infinite_forecast_score_counts_as_worse():
    def log_score_no_validation(dist, target):
        return -Uniform(dist.low, dist.high, validate_args=False).log_prob(target)

    Q = Uniform(t(0.0), t(1.0))
    P = Uniform(t(0.2), t(1.2))
    c = assert_strictly_proper(log_score_no_validation, P, Q, kind="distribution", n_obs=1000)
    assert c.diff == math.inf
    assert_proper(log_score_no_validation, P, Q, kind="distribution", n_obs=1000)
    with pytest.raises(AssertionError, match="differ"):
        assert_equal_expected_scores(log_score_no_validation, P, Q, kind="distribution", n_obs=1000)


def test_z_controls_the_decision():
    Q, P = normal(0.0, 1.0), normal(0.0, 1.05)
    c = compare_expected_scores(crps_fair, P, Q, n_obs=2000, n_samples=4)
    assert 0 < c.z < 50
    assert_strictly_proper(crps_fair, P, Q, n_obs=2000, n_samples=4, z=c.z * 0.9)
    with pytest.raises(AssertionError):
        assert_strictly_proper(crps_fair, P, Q, n_obs=2000, n_samples=4, z=c.z * 1.1)


# ---- argument errors --------------------------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    Q = normal(0.0, 1.0)
    with pytest.raises(
        ValueError, match=r"kind must be one of 'samples', 'distribution'.*got 'ensemble'"
    ):
        expected_score(crps_fair, Q, Q, kind="ensemble")
    with pytest.raises(ValueError, match=r"n_obs must be an int >= 2; got 1"):
        expected_score(crps_fair, Q, Q, n_obs=1)
    with pytest.raises(ValueError, match=r"n_samples must be an int >= 1; got 0"):
        expected_score(crps_fair, Q, Q, n_samples=0)
    with pytest.raises(ValueError, match=r"z must be a non-negative"):
        assert_proper(crps_fair, Q, Q, z=-1.0)
    with pytest.raises(TypeError, match=r"P must have a sample\(sample_shape\) method.*got str"):
        expected_score(crps_fair, "N(0, 1)", Q)
    with pytest.raises(
        ValueError, match=r"Q must have an empty batch_shape.*got batch_shape \(3,\)"
    ):
        expected_score(crps_fair, Q, Normal(torch.zeros(3), 1.0))
    with pytest.raises(
        ValueError, match=r"shape \(n_obs,\) = \(100,\); got \(\).*reduction='none'"
    ):
        expected_score(lambda x, y: crps_fair(x, y).mean(), Q, Q, n_obs=100)
    with pytest.raises(ValueError, match=r"same event shape"):
        expected_score(crps_fair, Independent(Normal(torch.zeros(2), 1.0), 1), Q, n_obs=100)


# ---- descriptions -----------------------------------------------------------------------------------------------


def test_describe_distribution_shows_parameter_values():
    mvn = MultivariateNormal(t([0.0, 1.0]), covariance_matrix=t([[1.0, 0.5], [0.5, 2.0]]))
    assert describe_distribution(mvn) == (
        "MultivariateNormal(loc=[0, 1], covariance_matrix=[[1, 0.5], [0.5, 2]])"
    )
    mix = MixtureSameFamily(
        torch.distributions.Categorical(probs=t([0.25, 0.75])),
        Normal(t([-1.0, 1.0]), t([0.5, 0.5])),
    )
    assert describe_distribution(mix) == (
        "MixtureSameFamily(weights=[0.25, 0.75], components=Normal(loc=[-1, 1], scale=[0.5, 0.5]))"
    )
    assert (
        describe_distribution(StudentT(t(3.0), t(0.0), t(2.0))) == "StudentT(df=3, loc=0, scale=2)"
    )
    big = Independent(Normal(torch.zeros(30), 1.0), 1)
    assert "<tensor of shape (30,)" in describe_distribution(big)
    assert describe_distribution("x") == "'x'"


# ---- closed forms against independent references ---------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 5, 8])
@pytest.mark.parametrize("beta", [0.5, 1.0, 1.5, 2.0])
def test_energy_score_normal_matches_scipy_hypergeometric(d, beta):
    s = 1.3
    loc = torch.zeros(4, d, dtype=F64)
    y = torch.zeros(4, d, dtype=F64)
    y[:, 0] = t([0.0, 0.7, 3.0, 10.0])
    got = cf.energy_score_normal(loc, s, y, beta=beta).numpy()

    def moment(lam2):
        return (
            2 ** (beta / 2)
            * sp.gamma((d + beta) / 2)
            / sp.gamma(d / 2)
            * sp.hyp1f1(-beta / 2, d / 2, -lam2 / 2)
        )

    lam = np.array([0.0, 0.7, 3.0, 10.0]) / s
    ref = s**beta * moment(lam**2) - 0.5 * (math.sqrt(2) * s) ** beta * moment(0.0)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_energy_score_normal_matches_monte_carlo_and_crps():
    g = torch.Generator().manual_seed(0)
    loc, y, s, beta = t([0.5, -1.0, 0.0]), t([1.0, 0.0, 2.0]), 0.8, 1.3
    x = loc + s * torch.randn(200000, 3, generator=g, dtype=F64)
    x2 = loc + s * torch.randn(200000, 3, generator=g, dtype=F64)
    v = (x - y).norm(dim=-1) ** beta - 0.5 * (x - x2).norm(dim=-1) ** beta
    exact = cf.energy_score_normal(loc, s, y, beta=beta).item()
    assert abs(v.mean().item() - exact) < 4 * v.std().item() / math.sqrt(len(v))
    es1 = cf.energy_score_normal(t([[0.3]]), 1.7, t([[-0.4]]))
    torch.testing.assert_close(es1, cf.crps_normal(t(0.3), t(1.7), t([-0.4])), rtol=1e-12, atol=0)


def test_crps_normal_and_mean_abs_normal_match_scipy():
    y = np.linspace(-4, 4, 9)
    # CRPS = E|X - y| - E|X - X'| / 2 with X ~ N(1, 2^2): folded normal mean via scipy
    ref = ss.foldnorm(c=np.abs(y - 1.0) / 2.0, scale=2.0).mean() - 2.0 / math.sqrt(math.pi)
    got = cf.crps_normal(t(1.0), t(2.0), t(y)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    np.testing.assert_allclose(
        cf.mean_abs_normal(t(y), t(4.0)).numpy(),
        ss.foldnorm(c=np.abs(y) / 2.0, scale=2.0).mean(),
        rtol=1e-10,
    )
    with pytest.raises(TypeError, match="P must be a torch.distributions.Normal; got Laplace"):
        cf.expected_crps_normal(Laplace(t(0.0), t(1.0)), normal(0.0, 1.0))


def test_kernel_and_variogram_closed_forms_match_monte_carlo():
    g = torch.Generator().manual_seed(1)
    n = 200000
    loc, y, s, h = t([0.5, -1.0]), t([1.0, 0.0]), 0.8, 1.5
    x = loc + s * torch.randn(n, 2, generator=g, dtype=F64)
    x2 = loc + s * torch.randn(n, 2, generator=g, dtype=F64)

    def k(a, b):
        return torch.exp(-0.5 * ((a - b) ** 2).sum(-1) / h**2)

    v = 0.5 * k(x, x2) + 0.5 - k(x, y)
    exact = cf.kernel_score_normal(loc, s, y, bandwidth=h).item()
    assert abs(v.mean().item() - exact) < 4 * v.std().item() / math.sqrt(n)

    cov = t([[1.0, 0.6, 0.0], [0.6, 2.0, -0.5], [0.0, -0.5, 0.5]])
    loc3, y3, p = t([0.0, 1.0, -0.5]), t([0.3, 0.2, 1.0]), 0.5
    L = torch.linalg.cholesky(cov)
    x = loc3 + torch.randn(n, 3, generator=g, dtype=F64) @ L.T
    g_x = ((x[:, :, None] - x[:, None, :]).abs() ** p).mean(0)
    g_y = (y3[:, None] - y3[None, :]).abs() ** p
    mc = ((g_y - g_x) ** 2).sum().item()
    exact = cf.variogram_score_normal(loc3, cov, y3, p=p).item()
    assert exact == pytest.approx(mc, rel=2e-2)  # plug-in of E|X_k - X_l|^p from 2e5 draws


def test_expected_energy_score_beta2_matches_monte_carlo():
    Q = Laplace(t([0.0, 1.0]), t([1.0, 0.5]))
    P = Normal(t([0.5, 0.0]), t([3.0, 3.0]))

    def es2(dist, target):  # ES_2(P, y) = ||mean_P - y||^2
        return ((dist.mean - target) ** 2).sum(-1)

    est = expected_score(
        es2, Independent(P, 1), Independent(Q, 1), kind="distribution", n_obs=40000
    )
    exact = cf.expected_energy_score_beta2(Independent(P, 1), Independent(Q, 1)).item()
    assert exact == pytest.approx(0.25 + 1.0 + 2.0 + 0.5)
    assert abs(est.mean - exact) < 4 * est.stderr


# ---- strategies -------------------------------------------------------------------------------------------------


@settings(PROFILE, max_examples=40)
@given(sts.distributions(dim=st.one_of(st.none(), st.integers(1, 8))))
def test_strategies_draw_valid_float64_distributions(dist):
    x = dist.sample((5,))
    assert x.dtype == F64 and torch.isfinite(x).all()
    assert dist.batch_shape == ()
    assert tuple(x.shape[1:]) == tuple(dist.event_shape)
    assert torch.isfinite(dist.log_prob(x)).all()
    assert sts.family_of(dist) in sts.FAMILIES


@settings(PROFILE, max_examples=60)
@given(sts.distribution_pairs(dim=st.one_of(st.none(), st.integers(1, 8))))
def test_perturbations_keep_what_they_promise(pair):
    Q, P, what = pair
    kind = what.split()[0]
    assert P.event_shape == Q.event_shape
    x = P.sample((4,))
    assert x.dtype == F64 and torch.isfinite(x).all()
    assert describe_distribution(P) != describe_distribution(Q)
    multi = len(Q.event_shape) == 1
    fam = sts.family_of(Q)
    if (
        kind in ("correlation", "modes")
        and fam == "gaussian"
        or (kind == "modes" and fam == "gaussian_mixture")
    ):
        # same mean and (full) covariance
        def moments(dist):
            if not multi:
                return dist.mean, dist.variance
            return sts._mean_cov(dist)

        (mq, cq), (mp, cp) = moments(Q), moments(P)
        torch.testing.assert_close(mp, mq, rtol=1e-10, atol=1e-10)
        if kind == "correlation":
            torch.testing.assert_close(cp.diagonal(), cq.diagonal(), rtol=1e-10, atol=1e-10)
            assert (cp - cq).abs().max() > 0.1
        else:
            torch.testing.assert_close(cp, cq, rtol=1e-9, atol=1e-9)
    if kind == "scale" and fam != "gamma":
        torch.testing.assert_close(P.mean, Q.mean, rtol=1e-10, atol=1e-10)
        ratio = (P.variance / Q.variance).sqrt()
        assert (ratio <= 0.7 + 1e-9).all() or (ratio >= 1.5 - 1e-9).all()
    if kind == "mean":
        assert (P.mean - Q.mean).abs().max() > 0.01
    if kind == "tail" and fam in ("laplace", "uniform"):
        torch.testing.assert_close(P.mean, Q.mean)
        torch.testing.assert_close(P.variance, Q.variance)


def test_perturb_rejects_inapplicable_kinds_and_strategies_reject_bad_names():
    with pytest.raises(ValueError, match="perturbation 'correlation' is not defined for Normal"):
        sts.perturb(normal(0.0, 1.0), "correlation", amount=0.5)
    with pytest.raises(ValueError, match="families must be a non-empty subset of"):
        sts.distributions(families=["cauchy"])
    with pytest.raises(ValueError, match="perturbations must be a non-empty subset of"):
        sts.distribution_pairs(perturbations=["skew"])
    with pytest.raises(ValueError, match="dim must be None"):
        sts.distributions(dim=0)
    with pytest.raises(ValueError, match="is not one of the families"):
        sts.family_of(torch.distributions.Exponential(t(1.0)))
    assert sts.applicable_perturbations(Gamma(t(2.0), t(1.0))) == ("mean", "scale", "tail")
    mvn = MultivariateNormal(torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64))
    assert sts.applicable_perturbations(mvn) == ("mean", "scale", "correlation", "modes")


# ---- hypothesis profiles ----------------------------------------------------------------------------------------


def test_register_hypothesis_profiles(monkeypatch):
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    assert register_hypothesis_profiles() == CI_PROFILE
    ci = settings.get_profile(CI_PROFILE)
    assert ci.derandomize and ci.deadline is None and ci.database is None and ci.max_examples == 10
    assert not settings.get_profile(DEV_PROFILE).derandomize
    assert settings.get_profile(THOROUGH_PROFILE).max_examples == 200
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "dev")
    assert register_hypothesis_profiles() == DEV_PROFILE
    monkeypatch.setenv("HYPOTHESIS_PROFILE", THOROUGH_PROFILE)
    assert register_hypothesis_profiles() == THOROUGH_PROFILE
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "someone-elses")
    assert register_hypothesis_profiles() == CI_PROFILE
