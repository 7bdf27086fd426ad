"""Almost-fair CRPS (``estimator="afcrps"``) and energy score (``estimator="afes"``) against float64 loops."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from scoringrules_torch.functional.crps_sample import crps_ensemble
from scoringrules_torch.functional.energy import energy_score
from scoringrules_torch.scores.sample import CRPS, EnergyScore


def afcrps_loop(x: list[float], y: float, alpha: float) -> float:
    """Lang et al. (2024), AIFS-CRPS: sum over j != k of |x_j - y| + |x_k - y| - (1 - eps)|x_j - x_k|."""
    m = len(x)
    eps = (1.0 - alpha) / m
    total = sum(
        abs(x[j] - y) + abs(x[k] - y) - (1.0 - eps) * abs(x[j] - x[k])
        for j, k in itertools.product(range(m), range(m))
        if j != k
    )
    return total / (2 * m * (m - 1))


def weighted_loop(x, y, w, alpha, dist):
    """alpha * fair + (1 - alpha) * nrg with normalised weights (fair divides the pair sum by 1 - sum w^2)."""
    s = sum(w)
    w = [v / s for v in w]
    acc = sum(wi * dist(xi, y) for wi, xi in zip(w, x, strict=True))
    pairs = sum(w[i] * w[j] * dist(x[i], x[j]) for i in range(len(x)) for j in range(len(x)))
    fair = acc - 0.5 * pairs / (1.0 - sum(v * v for v in w))
    nrg = acc - 0.5 * pairs
    return alpha * fair + (1.0 - alpha) * nrg


@pytest.mark.parametrize("alpha", [1.0, 0.95, 0.3])
@pytest.mark.parametrize("m", [2, 5])
def test_afcrps_matches_the_aifs_formula(alpha, m):
    g = torch.Generator().manual_seed(m)
    x = torch.randn(m, 4, 3, generator=g, dtype=torch.float64)
    y = torch.randn(4, 3, generator=g, dtype=torch.float64)
    got = crps_ensemble(x, y, estimator="afcrps", alpha=alpha, reduction="none")
    for i, j in itertools.product(range(4), range(3)):
        want = afcrps_loop(x[:, i, j].tolist(), float(y[i, j]), alpha)
        assert math.isclose(float(got[i, j]), want, rel_tol=1e-12, abs_tol=1e-13)


def test_afcrps_limits_are_fair_and_nrg():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 10, generator=g, dtype=torch.float64)
    y = torch.randn(10, generator=g, dtype=torch.float64)
    torch.testing.assert_close(crps_ensemble(x, y, estimator="afcrps", alpha=1.0), crps_ensemble(x, y), rtol=1e-13,
                               atol=0)
    fair = crps_ensemble(x, y, reduction="none")
    nrg = crps_ensemble(x, y, estimator="nrg", reduction="none")
    torch.testing.assert_close(crps_ensemble(x, y, estimator="afcrps", alpha=0.25, reduction="none"),
                               0.25 * fair + 0.75 * nrg, rtol=1e-12, atol=1e-14)


def test_afcrps_default_alpha_is_aifs_095():
    x = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    y = torch.tensor([0.5], dtype=torch.float64)
    want = afcrps_loop([0.0, 1.0, 3.0], 0.5, 0.95)
    assert math.isclose(float(crps_ensemble(x, y, estimator="afcrps")), want, rel_tol=1e-12)


@pytest.mark.parametrize("shape", ["m", "mB"])
def test_afcrps_with_member_weights(shape):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 5, generator=g, dtype=torch.float64)
    y = torch.randn(5, generator=g, dtype=torch.float64)
    w = torch.rand(4, generator=g, dtype=torch.float64) + 0.1 if shape == "m" else torch.rand(
        4, 5, generator=g, dtype=torch.float64) + 0.1
    got = crps_ensemble(x, y, estimator="afcrps", alpha=0.6, member_weights=w, reduction="none")
    for b in range(5):
        wb = (w if w.dim() == 1 else w[:, b]).tolist()
        want = weighted_loop(x[:, b].tolist(), float(y[b]), wb, 0.6, lambda a, c: abs(a - c))
        assert math.isclose(float(got[b]), want, rel_tol=1e-12, abs_tol=1e-13)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_afes_matches_loop(beta):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 3, 2, generator=g, dtype=torch.float64)
    y = torch.randn(3, 2, generator=g, dtype=torch.float64)
    w = torch.rand(4, 3, generator=g, dtype=torch.float64) + 0.1

    def dist(a, c):
        return sum((ai - ci) ** 2 for ai, ci in zip(a, c, strict=True)) ** (beta / 2)

    got = energy_score(x, y, beta=beta, estimator="afes", alpha=0.7, reduction="none")
    got_w = energy_score(x, y, beta=beta, estimator="afes", alpha=0.7, member_weights=w, reduction="none")
    for b in range(3):
        xs = x[:, b].tolist()
        want = weighted_loop(xs, y[b].tolist(), [1.0] * 4, 0.7, dist)
        assert math.isclose(float(got[b]), want, rel_tol=1e-12)
        want_w = weighted_loop(xs, y[b].tolist(), w[:, b].tolist(), 0.7, dist)
        assert math.isclose(float(got_w[b]), want_w, rel_tol=1e-12)


def test_afes_in_one_dimension_is_afcrps():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(5, 7, generator=g, dtype=torch.float64)
    y = torch.randn(7, generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        energy_score(x.unsqueeze(-1), y.unsqueeze(-1), estimator="afes", alpha=0.4, reduction="none"),
        crps_ensemble(x, y, estimator="afcrps", alpha=0.4, reduction="none"),
        rtol=1e-12,
        atol=1e-14,
    )


def test_gradcheck():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, generator=g, dtype=torch.float64)
    w = (torch.rand(4, 3, generator=g, dtype=torch.float64) + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: crps_ensemble(a, y, estimator="afcrps", alpha=0.8, member_weights=b, reduction="none"), (x, w)
    )
    xe = torch.randn(4, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    ye = torch.randn(3, 2, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: energy_score(a, ye, estimator="afes", alpha=0.8, reduction="none"), (xe,))


def test_alpha_validation():
    x, y = torch.randn(3, 2), torch.randn(2)
    for bad in (0.0, -0.1, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match="alpha must be a number in"):
            crps_ensemble(x, y, estimator="afcrps", alpha=bad)
    with pytest.raises(ValueError, match="not used by estimator='fair'"):
        crps_ensemble(x, y, alpha=0.5)
    with pytest.raises(ValueError, match="not used by estimator='nrg'"):
        energy_score(x.unsqueeze(-1), y.unsqueeze(-1), estimator="nrg", alpha=0.5)
    with pytest.raises(ValueError, match="at least 2 samples"):
        crps_ensemble(x[:1], y, estimator="afcrps")


def test_modules():
    x = torch.randn(5, 4, dtype=torch.float64)
    y = torch.randn(4, dtype=torch.float64)
    torch.testing.assert_close(CRPS(estimator="afcrps", alpha=0.5)(x, y),
                               crps_ensemble(x, y, estimator="afcrps", alpha=0.5))
    xe, ye = x.unsqueeze(-1), y.unsqueeze(-1)
    torch.testing.assert_close(EnergyScore(estimator="afes", alpha=0.5)(xe, ye),
                               energy_score(xe, ye, estimator="afes", alpha=0.5))
    with pytest.raises(ValueError, match="alpha"):
        CRPS(estimator="afcrps", alpha=2.0)


def test_afcrps_is_not_fair_for_alpha_below_one():
    """Expected score over an iid ensemble from N(0, s^2), target from N(0, 1): minimised at s < 1 for alpha < 1.

    E|X - y| = sqrt(2/pi) sqrt(1 + s^2), E|X - X'| = 2 s / sqrt(pi); afCRPS's spread weight is (1 - eps) < 1.
    """
    m, alpha = 4, 0.5
    eps = (1 - alpha) / m
    s = torch.linspace(0.5, 1.5, 10001, dtype=torch.float64)
    expected = math.sqrt(2 / math.pi) * torch.sqrt(1 + s * s) - 0.5 * (1 - eps) * 2 * s / math.sqrt(math.pi)
    best = float(s[expected.argmin()])
    assert best < 0.95  # under-dispersed optimum: (1 - eps)^2 / (2 - (1 - eps)^2) = 0.6... -> s = 0.8
    assert math.isclose(best, math.sqrt((1 - eps) ** 2 / (2 - (1 - eps) ** 2)), abs_tol=2e-4)
    # ... and the same expectation estimated by the estimator itself on many draws agrees with the formula.
    g = torch.Generator().manual_seed(0)
    n = 200000
    for sd in (0.8, 1.0):
        x = sd * torch.randn(m, n, generator=g, dtype=torch.float64)
        y = torch.randn(n, generator=g, dtype=torch.float64)
        mc = float(crps_ensemble(x, y, estimator="afcrps", alpha=alpha))
        formula = math.sqrt(2 / math.pi) * math.sqrt(1 + sd * sd) - (1 - eps) * sd / math.sqrt(math.pi)
        assert abs(mc - formula) < 0.01
