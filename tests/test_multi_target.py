"""Energy and kernel scores against several target samples (CALM) vs float64 loops."""

from __future__ import annotations

import math

import pytest
import torch

from scoringrules_torch.functional.energy import energy_score
from scoringrules_torch.functional.kernel import kernel_score
from scoringrules_torch.functional.multi_target import (
    multi_target_energy_score,
    multi_target_kernel_score,
)


def _norm(a, b):
    return math.sqrt(sum((u - v) ** 2 for u, v in zip(a, b, strict=True)))


def _kernel(name, h):
    if name == "gaussian":
        return lambda a, b: math.exp(-0.5 * _norm(a, b) ** 2 / h**2)
    if name == "laplacian":
        return lambda a, b: math.exp(-_norm(a, b) / h)
    return lambda a, b: 1.0 / math.sqrt(1.0 + _norm(a, b) ** 2 / h**2)


def _mean_pairs(f, a, b, distinct):
    vals = [f(u, v) for i, u in enumerate(a) for j, v in enumerate(b) if not (distinct and i == j)]
    return sum(vals) / len(vals)


def _data(m=4, n=5, batch=(2, 3), d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, *batch, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, *batch, d, generator=g, dtype=torch.float64) + 0.3
    return x, y


@pytest.mark.parametrize("beta", [1.0, 0.5, 1.7])
@pytest.mark.parametrize("estimator", ["fair", "nrg"])
@pytest.mark.parametrize("target_estimator", [None, "fair", "nrg"])
def test_energy_matches_loop(beta, estimator, target_estimator):
    x, y = _data()
    got = multi_target_energy_score(x, y, beta=beta, estimator=estimator, target_estimator=target_estimator,
                                    reduction="none")
    assert got.shape == (2, 3)

    def dist(a, b):
        return _norm(a, b) ** beta

    for i in range(2):
        for j in range(3):
            xs = x[:, i, j].tolist()
            ys = y[:, i, j].tolist()
            want = _mean_pairs(dist, xs, ys, False) - 0.5 * _mean_pairs(dist, xs, xs, estimator == "fair")
            if target_estimator is not None:
                want -= 0.5 * _mean_pairs(dist, ys, ys, target_estimator == "fair")
            assert math.isclose(float(got[i, j]), want, rel_tol=1e-12, abs_tol=1e-13)


def test_energy_calm_loss_and_one_target_is_the_energy_score():
    x, y = _data(n=1)
    torch.testing.assert_close(multi_target_energy_score(x, y, reduction="none"),
                               energy_score(x, y[0], reduction="none"), rtol=1e-12, atol=1e-14)
    x, y = _data(m=8, n=100, batch=(4,), d=5, seed=3)
    # CALM: 2/(NM) sum ||x_i - y_j|| - 1/(N(N-1)) sum_{i != k} ||x_i - x_k||, averaged over positions.
    cross = torch.cdist(x.transpose(0, 1), y.transpose(0, 1)).mean((-2, -1))
    inner = torch.cdist(x.transpose(0, 1), x.transpose(0, 1)).sum((-2, -1)) / (8 * 7)
    calm = (2 * cross - inner).mean()
    torch.testing.assert_close(2 * multi_target_energy_score(x, y), calm, rtol=1e-12, atol=0)


def test_energy_distance_is_unbiased_and_zero_for_equal_distributions():
    """With target_estimator='fair' the score estimates half the energy distance: ~0 when F = G."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 4000, 2, generator=g, dtype=torch.float64)
    y = torch.randn(7, 4000, 2, generator=g, dtype=torch.float64)
    assert abs(float(multi_target_energy_score(x, y, target_estimator="fair"))) < 0.01
    assert float(multi_target_energy_score(x + 1.0, y, target_estimator="fair")) > 0.2


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "inverse_multiquadric"])
@pytest.mark.parametrize("target_estimator", [None, "fair", "nrg"])
def test_kernel_matches_loop(kernel, target_estimator):
    x, y = _data(seed=2)
    for estimator in ("fair", "nrg"):
        got = multi_target_kernel_score(x, y, kernel=kernel, bandwidth=1.3, estimator=estimator,
                                        target_estimator=target_estimator, reduction="none")
        k = _kernel(kernel, 1.3)
        for i in range(2):
            for j in range(3):
                xs, ys = x[:, i, j].tolist(), y[:, i, j].tolist()
                if target_estimator is None:
                    t = sum(k(v, v) for v in ys) / len(ys)
                else:
                    t = _mean_pairs(k, ys, ys, target_estimator == "fair")
                want = 0.5 * _mean_pairs(k, xs, xs, estimator == "fair") + 0.5 * t - _mean_pairs(k, xs, ys, False)
                assert math.isclose(float(got[i, j]), want, rel_tol=1e-12, abs_tol=1e-13)


def test_kernel_one_target_is_the_kernel_score_and_multiscale():
    x, y = _data(n=1, seed=5)
    torch.testing.assert_close(
        multi_target_kernel_score(x, y, bandwidth=[0.5, 2.0], reduction="none"),
        kernel_score(x, y[0], bandwidth=[0.5, 2.0], reduction="none"),
        rtol=1e-12,
        atol=1e-14,
    )


def test_sample_and_target_dims():
    x, y = _data()
    want = multi_target_energy_score(x, y, reduction="none")
    got = multi_target_energy_score(x.movedim(0, 2), y.movedim(0, -2), sample_dim=2, target_dim=-2,
                                    reduction="none")
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_gradcheck():
    x, y = _data(m=3, n=4, batch=(2,), d=2, seed=7)
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: multi_target_energy_score(a, b, beta=1.5, target_estimator="fair", reduction="none"), (x, y)
    )
    assert torch.autograd.gradcheck(
        lambda a, b: multi_target_kernel_score(a, b, kernel="laplacian", target_estimator="nrg", reduction="none"),
        (x, y),
    )


def test_coincident_points_have_finite_gradients():
    x = torch.zeros(3, 2, 4, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(5, 2, 4, dtype=torch.float64)
    multi_target_energy_score(x, y, beta=0.5).backward()
    assert torch.isfinite(x.grad).all()


def test_float32_and_half_inputs():
    x, y = _data()
    want = multi_target_energy_score(x, y)
    torch.testing.assert_close(multi_target_energy_score(x.float(), y.float()), want.float(), rtol=1e-5, atol=1e-6)
    got = multi_target_energy_score(x.bfloat16(), y.bfloat16())
    assert got.dtype == torch.float32 and abs(float(got) - float(want)) < 0.05


def test_errors():
    x, y = _data()
    with pytest.raises(ValueError, match=r"targets \(n, \*batch, d\)"):
        multi_target_energy_score(x, y[:, :1])
    with pytest.raises(ValueError, match="target_estimator must be one of"):
        multi_target_energy_score(x, y, target_estimator="pairs")
    with pytest.raises(ValueError, match="needs at least 2 target samples"):
        multi_target_energy_score(x, y[:1], target_estimator="fair")
    with pytest.raises(ValueError, match="needs at least 2 samples"):
        multi_target_kernel_score(x[:1], y)
    with pytest.raises(ValueError, match="kernel must be"):
        multi_target_kernel_score(x, y, kernel="energy")
    with pytest.raises(ValueError, match="beta must be in"):
        multi_target_energy_score(x, y, beta=3.0)
    with pytest.raises(ValueError, match="floating-point"):
        multi_target_energy_score(x, y.long())


@pytest.mark.parametrize("bandwidth", [1.0, [0.5, 2.0]])
def test_kernel_score_laplacian_with_diagonal_has_the_right_gradient(bandwidth):
    """Regression: the Laplacian kernel's derivative at s = 0 (the diagonal of "nrg") swamped the fused backward."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 2, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a: kernel_score(a, y, kernel="laplacian", bandwidth=bandwidth, estimator="nrg", reduction="none"), (x,)
    )
