"""Propriety of every shipped score and estimator, checked with the public harness (scoringrules_torch.testing).

* strict propriety where it holds: for a true Q and a decisive perturbation P != Q (hypothesis), the expected score
  of Q is lower by more than 4 paired standard errors;
* non-strictness where it holds: P != Q with equal expected scores, each paired with a strictly proper control that
  separates the same P and Q (so the equality is not a lack of power);
* improper scores caught: the down-weighted spread term (EAR's training temperature below 1), the squared error of
  the ensemble mean, plug-in (``"nrg"``-type) estimators with tiny ensembles, a forecast-dependent kernel bandwidth.

Biased (plug-in) ensemble estimators are not proper at a finite ensemble size m: their expected value is the score
with the spread term weighted by (m - 1)/m. They are checked for strict propriety with m = 64, and caught as
improper with m = 2.

Everything is deterministic (derandomised hypothesis profile, fixed seeds); sizes are chosen so that each check is
decisive (measured: the smallest z over 40-60 random examples per score is above 5 for the perturbations used).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import (
    AffineTransform,
    Independent,
    MultivariateNormal,
    Normal,
    TransformedDistribution,
)

from scoringrules_torch.functional import crps_closed as crps_closed_mod
from scoringrules_torch.functional import hyvarinen as hyv_mod
from scoringrules_torch.functional import log as log_mod
from scoringrules_torch.functional.crps_sample import crps_ensemble
from scoringrules_torch.functional.energy import energy_score, energy_score_terms
from scoringrules_torch.functional.kernel import kernel_score
from scoringrules_torch.functional.variogram import variogram_score
from scoringrules_torch.testing import (
    THOROUGH_PROFILE,
    assert_equal_expected_scores,
    assert_proper,
    assert_strictly_proper,
    compare_expected_scores,
    expected_score,
    register_hypothesis_profiles,
)
from scoringrules_torch.testing import closed_forms as cf
from scoringrules_torch.testing import strategies as sts

_PROFILE_NAME = register_hypothesis_profiles()
PROFILE = settings.get_profile(_PROFILE_NAME)
F64 = torch.float64


def examples(n: int) -> settings:
    """CI: exactly ``n`` derandomised examples; the thorough profile multiplies them."""
    return settings(PROFILE, max_examples=n * (10 if _PROFILE_NAME == THOROUGH_PROFILE else 1))


def none(fn, **kw):
    return functools.partial(fn, reduction="none", **kw)


def iso_normal(d: int, scale: float, loc: float = 0.0) -> Independent:
    return Independent(
        Normal(torch.full((d,), loc, dtype=F64), torch.full((d,), scale, dtype=F64)), 1
    )


def normal(loc: float, scale: float) -> Normal:
    return Normal(torch.tensor(loc, dtype=F64), torch.tensor(scale, dtype=F64))


def _spread(Q) -> float:
    """sqrt(trace Cov_Q): the typical distance between two draws of Q, up to sqrt(2)."""
    return Q.variance.sum().sqrt().item()


DIMS = st.integers(1, 8)
DECISIVE = ["mean", "scale", "correlation"]
ENERGY_UNBIASED = ["fair", "pairs", "akr", "akr_circperm"]
CRPS_UNBIASED = ["fair", "pwm", "akr", "akr_circperm"]
CRPS_PLUG_IN = ["nrg", "qd", "int"]


# ================================================================================================================
# strict propriety: sample-based scores
# ================================================================================================================


@pytest.mark.parametrize("estimator", ENERGY_UNBIASED)
@examples(4)
@given(
    pair=sts.distribution_pairs(dim=DIMS, perturbations=["mean", "scale"]),
    beta=st.sampled_from([0.5, 1.0, 1.5]),
)
def test_energy_strictly_proper(estimator, pair, beta):
    score = none(energy_score, beta=beta, estimator=estimator)
    assert_strictly_proper(score, pair.P, pair.Q, n_obs=8192, n_samples=16)


@pytest.mark.parametrize("estimator", ENERGY_UNBIASED)
@examples(3)
@given(
    pair=sts.distribution_pairs(
        dim=st.integers(2, 8), families=["gaussian"], perturbations=["correlation"]
    )
)
def test_energy_strictly_proper_for_dependence(estimator, pair):
    # the energy score sees dependence weakly, least for beta near 2 and unequal marginal scales: beta = 0.5 here
    score = none(energy_score, beta=0.5, estimator=estimator)
    assert_strictly_proper(score, pair.P, pair.Q, n_obs=16384, n_samples=16)


@examples(3)
@given(pair=sts.distribution_pairs(dim=DIMS, perturbations=["mean", "scale"]))
def test_energy_nrg_strictly_proper_with_a_large_ensemble(pair):
    assert_strictly_proper(
        none(energy_score, estimator="nrg"), pair.P, pair.Q, n_obs=4096, n_samples=64
    )


@examples(4)
@given(
    pair=sts.distribution_pairs(
        dim=st.one_of(st.just(1), st.integers(2, 3)), perturbations=["tail"]
    )
)
def test_energy_separates_tail_weight(pair):
    assert_strictly_proper(none(energy_score), pair.P, pair.Q, n_obs=32768, n_samples=16)


@examples(3)
@given(pair=sts.distribution_pairs(dim=st.integers(1, 2), perturbations=["modes"]))
def test_energy_separates_number_of_modes(pair):
    # a moment-matched change of modality is a small effect for the energy score: many observations
    assert_strictly_proper(none(energy_score), pair.P, pair.Q, n_obs=65536, n_samples=16)


@pytest.mark.parametrize("estimator", CRPS_UNBIASED)
@examples(5)
@given(pair=sts.distribution_pairs(dim=None, perturbations=["mean", "scale", "tail"]))
def test_crps_ensemble_strictly_proper(estimator, pair):
    assert_strictly_proper(
        none(crps_ensemble, estimator=estimator), pair.P, pair.Q, n_obs=32768, n_samples=16
    )


@pytest.mark.parametrize("estimator", CRPS_PLUG_IN)
@examples(3)
@given(pair=sts.distribution_pairs(dim=None, perturbations=["mean", "scale", "tail"]))
def test_crps_ensemble_plug_in_estimators_strictly_proper_with_a_large_ensemble(estimator, pair):
    assert_strictly_proper(
        none(crps_ensemble, estimator=estimator), pair.P, pair.Q, n_obs=8192, n_samples=64
    )


@pytest.mark.parametrize(
    "kernel,estimator,multiscale",
    [
        ("gaussian", "fair", False),
        ("gaussian", "akr", False),
        ("gaussian", "akr_circperm", False),
        ("gaussian", "fair", True),
        ("laplacian", "fair", False),
        ("inverse_multiquadric", "fair", False),
    ],
)
@examples(3)
@given(pair=sts.distribution_pairs(dim=DIMS, perturbations=DECISIVE))
def test_kernel_score_strictly_proper_for_characteristic_kernels(
    kernel, estimator, multiscale, pair
):
    # a fixed kernel on the scale of the truth (a bandwidth far from the data's scale makes any kernel weak);
    # multiscale: the sum of the kernels at half and twice that bandwidth
    h = _spread(pair.Q)
    score = none(
        kernel_score,
        kernel=kernel,
        bandwidth=[h / 2, 2 * h] if multiscale else h,
        estimator=estimator,
    )
    assert_strictly_proper(score, pair.P, pair.Q, n_obs=4096, n_samples=16)


@examples(3)
@given(pair=sts.distribution_pairs(dim=DIMS, perturbations=DECISIVE))
def test_kernel_score_nrg_strictly_proper_with_a_large_ensemble(pair):
    score = none(kernel_score, bandwidth=_spread(pair.Q), estimator="nrg")
    assert_strictly_proper(score, pair.P, pair.Q, n_obs=4096, n_samples=64)


@pytest.mark.parametrize("estimator", ["fair", "nrg"])
@examples(4)
@given(pair=sts.distribution_pairs(dim=st.integers(2, 8)))
def test_variogram_score_proper(estimator, pair):
    m = 16 if estimator == "fair" else 64
    assert_proper(
        none(variogram_score, estimator=estimator), pair.P, pair.Q, n_obs=4096, n_samples=m
    )


@examples(3)
@given(
    pair=sts.distribution_pairs(
        dim=st.integers(2, 6), families=["gaussian"], perturbations=["scale"]
    )
)
def test_variogram_score_separates_scale(pair):
    # not strictly proper in general, but it does see the spread of the increments (its dependence signal is weak:
    # rho 0 -> 0.875 in d = 2 gives z = 3 with 32768 observations)
    score = none(variogram_score, estimator="fair")
    assert_strictly_proper(score, pair.P, pair.Q, n_obs=8192, n_samples=16)


# ================================================================================================================
# strict propriety: density-based scores (kind="distribution")
# ================================================================================================================


def _bounded_support(dist) -> bool:
    base = dist.base_dist if isinstance(dist, Independent) else dist
    return isinstance(base, torch.distributions.Uniform)


@examples(8)
@given(
    pair=sts.distribution_pairs(
        dim=st.one_of(st.none(), DIMS), families=[f for f in sts.FAMILIES if f != "uniform"]
    )
)
def test_log_score_strictly_proper(pair):
    # a uniform P would give an infinite score (and torch's support validation raises): left out here
    if _bounded_support(pair.P):
        pair = pair._replace(P=sts.perturb(pair.Q, "scale", amount=1.5))
    assert_strictly_proper(none(log_mod.log_score), pair.P, pair.Q, kind="distribution", n_obs=4096)


@examples(4)
@given(pair=sts.distribution_pairs(dim=st.one_of(st.none(), DIMS), families=["gaussian"]))
def test_log_score_expected_value_is_the_cross_entropy(pair):
    # the closed form H(Q) + KL(Q || P) where torch has it: Gaussian to Gaussian
    Q, P = pair.Q, pair.P
    if sts.family_of(P) != "gaussian" or isinstance(
        getattr(P, "base_dist", P), torch.distributions.StudentT
    ):
        P = sts.perturb(Q, "scale", amount=1.5)

    def as_mvn(dist):
        if isinstance(dist, Independent):
            return MultivariateNormal(
                dist.base_dist.loc, covariance_matrix=torch.diag(dist.base_dist.scale**2)
            )
        return dist

    est = expected_score(none(log_mod.log_score), P, Q, kind="distribution", n_obs=4096)
    exact = cf.expected_log_score(as_mvn(P), as_mvn(Q)).item()
    assert abs(est.mean - exact) <= 4 * est.stderr, (est, exact)


@examples(8)
@given(pair=sts.distribution_pairs(dim=None))
def test_closed_form_crps_strictly_proper(pair):
    assert_strictly_proper(
        none(crps_closed_mod.crps), pair.P, pair.Q, kind="distribution", n_obs=4096
    )


def test_closed_form_crps_expected_value_matches_closed_form():
    Q, P = normal(0.3, 1.2), normal(-0.4, 0.7)
    est = expected_score(none(crps_closed_mod.crps), P, Q, kind="distribution", n_obs=8192)
    assert abs(est.mean - cf.expected_crps_normal(P, Q).item()) <= 4 * est.stderr


@examples(8)
@given(
    pair=sts.distribution_pairs(
        dim=st.one_of(st.none(), DIMS), families=["gaussian", "gaussian_mixture", "student_t"]
    )
)
def test_hyvarinen_score_strictly_proper(pair):
    # strictly proper relative to smooth positive densities: Gaussians, Gaussian mixtures, Student-t
    score = none(hyv_mod.hyvarinen_score)
    assert_strictly_proper(score, pair.P, pair.Q, kind="distribution", n_obs=16384)


@pytest.mark.parametrize("method", ["exact", "hutchinson", "sliced"])
def test_hyvarinen_autograd_methods_strictly_proper(method):
    # log-density callables (autograd path; stochastic trace estimators with a seeded generator)
    Q = MultivariateNormal(
        torch.zeros(3, dtype=F64),
        covariance_matrix=torch.tensor(
            [[1.0, 0.5, 0.0], [0.5, 1.5, -0.3], [0.0, -0.3, 0.8]], dtype=F64
        ),
    )
    for P in (sts.perturb(Q, "scale", amount=1.6), sts.perturb(Q, "correlation", amount=0.8)):
        g = torch.Generator().manual_seed(0)

        def score(dist, target, g=g):
            return hyv_mod.hyvarinen_score(
                dist.log_prob, target, method=method, generator=g, num_probes=2, reduction="none"
            ).detach()

        assert_strictly_proper(score, P, Q, kind="distribution", n_obs=4096)


# ================================================================================================================
# non-strictness exhibited
# ================================================================================================================


@pytest.mark.filterwarnings("ignore:energy score with beta=2")
@examples(5)
@given(
    pair=sts.distribution_pairs(dim=DIMS, perturbations=["scale", "correlation", "tail", "modes"])
)
def test_energy_beta2_cannot_tell_distributions_with_the_same_mean(pair):
    # Every perturbation except "mean" keeps the mean: ES_2 = ||mean_P - y||^2 cannot see the difference.
    es2 = none(energy_score, beta=2.0)
    c = assert_equal_expected_scores(es2, pair.P, pair.Q, n_obs=4096, n_samples=16)
    exact = cf.expected_energy_score_beta2(pair.P, pair.Q).item()
    assert abs(c.score_p.mean - exact) <= 4 * c.score_p.stderr, (c.score_p, exact)
    # control: with beta = 0.5 the same pair is separated (scale and correlation are decisive at this size)
    if pair.perturbation.split()[0] in ("scale", "correlation"):
        assert_strictly_proper(
            none(energy_score, beta=0.5), pair.P, pair.Q, n_obs=16384, n_samples=16
        )


@pytest.mark.parametrize("estimator", ["fair", "nrg"])
@examples(4)
@given(
    Q=sts.distributions(dim=st.integers(2, 8)),
    shift=st.floats(-3.0, 3.0).filter(lambda s: abs(s) > 0.5),
)
def test_variogram_blind_to_a_common_shift(estimator, Q, shift):
    d = Q.event_shape[0]
    P = TransformedDistribution(
        Q, [AffineTransform(torch.full((d,), shift, dtype=F64), 1.0, event_dim=1)]
    )
    vs = none(variogram_score, estimator=estimator)
    c = assert_equal_expected_scores(vs, P, Q, n_obs=2048, n_samples=16)
    assert abs(c.diff) <= 1e-9 * abs(
        c.score_q.mean
    )  # same members up to the shift: equal to round-off
    assert_strictly_proper(none(energy_score), P, Q, n_obs=2048, n_samples=16)  # control


@examples(4)
@given(
    pair=sts.distribution_pairs(
        dim=st.integers(2, 8), families=["gaussian"], perturbations=["correlation"]
    )
)
def test_sum_of_marginal_crps_cannot_see_correlation(pair):
    def marginal_crps_sum(samples, target):
        return crps_ensemble(samples, target, reduction="none").sum(-1)

    assert_equal_expected_scores(marginal_crps_sum, pair.P, pair.Q, n_obs=16384, n_samples=16)
    assert_strictly_proper(
        none(energy_score, beta=0.5), pair.P, pair.Q, n_obs=16384, n_samples=16
    )  # control


# ================================================================================================================
# improper scores are caught
# ================================================================================================================


def _gaussian_norm_moment(d: int, v: float, beta: float = 1.0) -> float:
    """E||Z||^beta for Z ~ N(0, v I_d) (chi distribution moment)."""
    return (2.0 * v) ** (beta / 2) * math.exp(math.lgamma((d + beta) / 2) - math.lgamma(d / 2))


def _expected_tau_score(d: int, s: float, tau: float, beta: float = 1.0) -> float:
    """E_{Y~N(0,I)} [E||X-Y||^b - tau/2 E||X-X'||^b] for X ~ N(0, s^2 I): X-Y ~ N(0, (1+s^2) I), X-X' ~ N(0, 2s^2 I)."""
    return _gaussian_norm_moment(d, 1 + s * s, beta) - tau / 2 * _gaussian_norm_moment(
        d, 2 * s * s, beta
    )


def _best_isotropic_scale(d: int, tau: float) -> float:
    grid = [0.05 + 0.0005 * i for i in range(2901)]
    return min(grid, key=lambda s: _expected_tau_score(d, s, tau))


@pytest.mark.parametrize("tau", [0.5, 0.8])
@pytest.mark.parametrize("d", [1, 4])
def test_down_weighted_spread_is_improper(tau, d):
    def energy_tau(samples, target):
        acc, spread = energy_score_terms(samples, target, reduction="none")
        return acc - tau * spread

    s_star = _best_isotropic_scale(d, tau)
    assert s_star < 0.75  # the optimum is under-dispersed
    Q, P = iso_normal(d, 1.0), iso_normal(d, s_star)
    with pytest.raises(AssertionError, match="WORSE"):
        assert_proper(energy_tau, P, Q, n_obs=16384, n_samples=16)
    assert_proper(none(energy_score), P, Q, n_obs=16384, n_samples=16)  # tau = 1: proper


def test_down_weighted_spread_gap_matches_closed_form():
    tau, d = 0.5, 2
    s_star = _best_isotropic_scale(d, tau)

    def energy_tau(samples, target):
        acc, spread = energy_score_terms(samples, target, reduction="none")
        return acc - tau * spread

    c = compare_expected_scores(
        energy_tau, iso_normal(d, s_star), iso_normal(d, 1.0), n_obs=16384, n_samples=16
    )
    gap = _expected_tau_score(d, s_star, tau) - _expected_tau_score(d, 1.0, tau)
    assert abs(c.diff - gap) <= 4 * c.diff_stderr, (c.diff, gap, c.diff_stderr)
    assert c.z < -4


def test_squared_error_of_the_ensemble_mean_is_caught():
    def se_of_mean(samples, target):
        return ((samples.mean(0) - target) ** 2).sum(-1)

    Q = iso_normal(3, 1.0)
    with pytest.raises(AssertionError, match="WORSE"):
        assert_proper(se_of_mean, iso_normal(3, 0.1), Q, n_obs=4096, n_samples=8)


@pytest.mark.parametrize(
    "score",
    [none(energy_score, estimator="nrg")]
    + [none(crps_ensemble, estimator=e) for e in CRPS_PLUG_IN],
    ids=["energy-nrg", "crps-nrg", "crps-qd", "crps-int"],
)
def test_plug_in_estimators_with_two_members_are_improper(score):
    # with m = 2 the plug-in spread term is weighted by (m - 1)/m = 1/2: the optimum scale is 0.378, not 1
    multi = "energy" in score.func.__name__
    Q, P = (
        (iso_normal(1, 1.0), iso_normal(1, 0.378))
        if multi
        else (normal(0.0, 1.0), normal(0.0, 0.378))
    )
    with pytest.raises(AssertionError, match="WORSE"):
        assert_proper(score, P, Q, n_obs=16384, n_samples=2)


def test_kernel_score_with_the_forecasts_own_median_bandwidth_is_improper():
    # The bandwidth then depends on the forecast: a wider forecast gets a wider kernel and a better score.
    Q, P = iso_normal(2, 1.0), iso_normal(2, 2.0)
    with pytest.raises(AssertionError, match="WORSE"):
        assert_proper(none(kernel_score, bandwidth="median"), P, Q, n_obs=4096, n_samples=16)
    assert_proper(
        none(kernel_score, bandwidth=2.0), P, Q, n_obs=4096, n_samples=16
    )  # fixed bandwidth: fine


# ================================================================================================================
# bigger sweeps (-m slow)
# ================================================================================================================


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ENERGY_UNBIASED)
@settings(PROFILE, max_examples=40)
@given(data=st.data(), pair=sts.distribution_pairs(dim=DIMS, perturbations=DECISIVE))
def test_energy_strictly_proper_sweep(estimator, data, pair):
    dependence = pair.perturbation.startswith("correlation")
    beta = data.draw(st.floats(0.3, 0.7) if dependence else st.floats(0.3, 1.8), label="beta")
    score = none(energy_score, beta=beta, estimator=estimator)
    assert_strictly_proper(score, pair.P, pair.Q, n_obs=32768 if dependence else 8192, n_samples=16)


@pytest.mark.slow
@settings(PROFILE, max_examples=40)
@given(pair=sts.distribution_pairs(dim=st.integers(1, 3), perturbations=["tail", "modes"]))
def test_energy_tail_and_modes_sweep(pair):
    assert_strictly_proper(none(energy_score), pair.P, pair.Q, n_obs=65536, n_samples=16)


@pytest.mark.slow
@pytest.mark.parametrize("estimator", CRPS_UNBIASED)
@settings(PROFILE, max_examples=30)
@given(pair=sts.distribution_pairs(dim=None))
def test_crps_ensemble_strictly_proper_sweep(estimator, pair):
    # all perturbations, modes included
    assert_strictly_proper(
        none(crps_ensemble, estimator=estimator), pair.P, pair.Q, n_obs=32768, n_samples=16
    )


@pytest.mark.slow
@settings(PROFILE, max_examples=40)
@given(pair=sts.distribution_pairs(dim=st.one_of(st.none(), DIMS)))
def test_density_scores_strictly_proper_sweep(pair):
    if not _bounded_support(pair.P):
        assert_strictly_proper(
            none(log_mod.log_score), pair.P, pair.Q, kind="distribution", n_obs=16384
        )
    if not pair.Q.event_shape:
        assert_strictly_proper(
            none(crps_closed_mod.crps), pair.P, pair.Q, kind="distribution", n_obs=16384
        )
    if sts.family_of(pair.Q) in ("gaussian", "gaussian_mixture", "student_t") and sts.family_of(
        pair.P
    ) in (
        "gaussian",
        "gaussian_mixture",
        "student_t",
    ):
        score = none(hyv_mod.hyvarinen_score)
        assert_strictly_proper(score, pair.P, pair.Q, kind="distribution", n_obs=16384)
