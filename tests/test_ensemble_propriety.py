"""Propriety of the ensemble-score variants, through the public harness (scoringrules_torch.testing).

- the almost-fair CRPS with alpha = 1 is the fair CRPS: strictly proper;
- with alpha < 1 it is not proper: for a small ensemble an under-dispersed forecast beats the truth in
  expectation (its expectation is CRPS(F) + (1 - alpha) / (2m) E|X - X'|), which the harness shows;
- the multi-target energy score (several target samples per observation) is strictly proper for the law of
  the target samples.
"""

from __future__ import annotations

import torch
from torch.distributions import Independent, Normal

from scoringrules_torch.functional import crps_ensemble, multi_target_energy_score
from scoringrules_torch.testing import assert_strictly_proper, compare_expected_scores

F64 = torch.float64


def _normal(sd: float, shape=()) -> Normal:
    return Normal(torch.zeros(shape, dtype=F64), torch.full(shape, sd, dtype=F64))


def _afcrps(alpha: float):
    def score(x, y):
        return crps_ensemble(x, y, estimator="afcrps", alpha=alpha, reduction="none")

    return score


def test_afcrps_with_alpha_one_is_strictly_proper():
    assert_strictly_proper(_afcrps(1.0), _normal(1.4), _normal(1.0), n_obs=8192, n_samples=4)


def test_afcrps_with_alpha_below_one_prefers_an_underdispersed_forecast():
    # m = 4, alpha = 0.5: E S(N(0, s^2)) = sqrt(2/pi) sqrt(1 + s^2) - s/sqrt(pi) + s/(8 sqrt(pi)) under N(0, 1),
    # smaller at s = 0.7 (0.6209) than at the truth s = 1 (0.6347)
    c = compare_expected_scores(_afcrps(0.5), _normal(0.7), _normal(1.0), n_obs=40000, n_samples=4, seed=1)
    assert c.diff < -4 * c.diff_stderr, c
    # the fair CRPS on the same draws ranks them the other way
    c_fair = compare_expected_scores(_afcrps(1.0), _normal(0.7), _normal(1.0), n_obs=40000, n_samples=4, seed=1)
    assert c_fair.diff > 4 * c_fair.diff_stderr, c_fair


def test_multi_target_energy_score_is_strictly_proper():
    n, d = 3, 2  # each observation is a set of n target samples in d dimensions

    def score(x, y):  # x (m, B, n, d): the first slot of each draw is the model sample
        return multi_target_energy_score(x[:, :, 0, :], y, target_dim=1, reduction="none")

    P = Independent(_normal(1.5, (n, d)), 2)
    Q = Independent(_normal(1.0, (n, d)), 2)
    assert_strictly_proper(score, P, Q, n_obs=4096, n_samples=8)
