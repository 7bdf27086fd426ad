"""Dawid-Sebastiani scores and the error-spread score: agreement with scoringrules 0.10 (numpy, float64), closed
forms, gradients, validation, propriety (proper, not strictly)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scoringrules as sr
import torch
from torch.distributions import Laplace, MultivariateNormal, Normal

from scoringrules_torch.functional.dss import (
    dss_ensemble,
    dss_ensemble_mv,
    dss_moments,
    dss_moments_mv,
    error_spread_score,
)
from scoringrules_torch.testing import (
    assert_equal_expected_scores,
    assert_proper,
    assert_strictly_proper,
)

BATCHES = [(), (5,), (3, 4)]
F64 = torch.float64
RTOL = 1e-10


def _rel(out: torch.Tensor, ref) -> float:
    ref = np.asarray(ref, dtype=np.float64)
    out = out.detach().numpy()
    assert out.shape == ref.shape, (out.shape, ref.shape)
    return float(np.max(np.abs(out - ref)) / max(1e-300, np.max(np.abs(ref))))


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("bias", [False, True])
def test_dss_univariate_matches_scoringrules(batch, bias):
    g = torch.Generator().manual_seed(0)
    x = torch.randn((9, *batch), generator=g, dtype=F64) * 1.3 + 0.2
    y = torch.randn(batch, generator=g, dtype=F64)
    ref = sr.dssuv_ensemble(y.numpy(), np.moveaxis(x.numpy(), 0, -1), bias=bias, backend="numpy")
    assert _rel(dss_ensemble(x, y, bias=bias, reduction="none"), ref) <= RTOL


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("bias", [False, True])
def test_dss_multivariate_matches_scoringrules(batch, bias):
    batch = tuple(batch) or (1,)  # multivariate scores need an explicit batch dimension
    g = torch.Generator().manual_seed(1)
    x = torch.randn((12, *batch, 3), generator=g, dtype=F64) @ torch.tensor(
        [[1.0, 0.3, 0.0], [0.0, 1.2, -0.4], [0.0, 0.0, 0.7]], dtype=F64
    )
    y = torch.randn((*batch, 3), generator=g, dtype=F64)
    ref = sr.dssmv_ensemble(y.numpy(), np.moveaxis(x.numpy(), 0, -2), bias=bias, backend="numpy")
    assert _rel(dss_ensemble_mv(x, y, bias=bias, reduction="none"), ref) <= RTOL


@pytest.mark.parametrize("batch", BATCHES, ids=str)
def test_error_spread_score_matches_scoringrules(batch):
    g = torch.Generator().manual_seed(2)
    x = torch.randn((8, *batch), generator=g, dtype=F64).exp()  # skewed members
    y = torch.randn(batch, generator=g, dtype=F64)
    ref = sr.error_spread_score(y.numpy(), np.moveaxis(x.numpy(), 0, -1), backend="numpy")
    assert _rel(error_spread_score(x, y, reduction="none"), ref) <= RTOL


def test_moment_forms_match_closed_forms_and_the_ensemble_forms():
    g = torch.Generator().manual_seed(3)
    mu, var, y = torch.randn(6, generator=g, dtype=F64), torch.rand(6, generator=g, dtype=F64) + 0.2, torch.randn(
        6, generator=g, dtype=F64
    )
    # 2 * Gaussian NLL - log(2 pi)
    nll = -Normal(mu, var.sqrt()).log_prob(y)
    torch.testing.assert_close(dss_moments(mu, var, y, reduction="none"), 2 * nll - math.log(2 * math.pi))
    a = torch.randn(6, 3, 3, generator=g, dtype=F64)
    cov = a @ a.transpose(-1, -2) + 0.5 * torch.eye(3, dtype=F64)
    m, yy = torch.randn(6, 3, generator=g, dtype=F64), torch.randn(6, 3, generator=g, dtype=F64)
    nll = -MultivariateNormal(m, cov).log_prob(yy)
    torch.testing.assert_close(dss_moments_mv(m, cov, yy, reduction="none"), 2 * nll - 3 * math.log(2 * math.pi))
    x = torch.randn(20, 6, 3, generator=g, dtype=F64)
    cov_x = torch.stack([torch.cov(x[:, i].T) for i in range(6)])
    torch.testing.assert_close(dss_ensemble_mv(x, yy, reduction="none"),
                               dss_moments_mv(x.mean(0), cov_x, yy, reduction="none"))


def test_error_spread_score_by_loop():
    x = torch.tensor([0.3, 2.0, -0.5, 1.1, 4.0], dtype=F64)
    y = 0.7
    m = len(x)
    mean = sum(x.tolist()) / m
    s = math.sqrt(sum((v - mean) ** 2 for v in x.tolist()) / (m - 1))
    gsk = sum(((v - mean) / s) ** 3 for v in x.tolist()) / ((m - 1) * (m - 2))
    e = mean - y
    ref = (s * s - e * e - e * s * gsk) ** 2
    out = error_spread_score(x[:, None], torch.tensor([y], dtype=F64), reduction="none")
    assert abs(out.item() - ref) <= 1e-12 * ref


def test_gradcheck_dss_family():
    g = torch.Generator().manual_seed(4)
    xu = torch.randn(5, 3, generator=g, dtype=F64).requires_grad_()
    yu = torch.randn(3, generator=g, dtype=F64).requires_grad_()
    xm = torch.randn(8, 2, 3, generator=g, dtype=F64).requires_grad_()
    ym = torch.randn(2, 3, generator=g, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: dss_ensemble(a, b, reduction="none"), (xu, yu))
    assert torch.autograd.gradcheck(lambda a, b: error_spread_score(a, b, reduction="none"), (xu, yu))
    assert torch.autograd.gradcheck(lambda a, b: dss_ensemble_mv(a, b, reduction="none"), (xm, ym))
    mu = torch.randn(3, generator=g, dtype=F64).requires_grad_()
    var = (torch.rand(3, generator=g, dtype=F64) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, c: dss_moments(a, b, c, reduction="none"), (mu, var, yu))
    # the covariance through a symmetric parametrisation (the Cholesky factor reads one triangle only)
    a = torch.randn(2, 3, 3, generator=g, dtype=F64).requires_grad_()
    mm = torch.randn(2, 3, generator=g, dtype=F64).requires_grad_()

    def mv(p, q, r):
        return dss_moments_mv(p, q @ q.transpose(-1, -2) + torch.eye(3, dtype=F64), r, reduction="none")

    assert torch.autograd.gradcheck(mv, (mm, a, ym))


def test_sample_dim_and_low_precision():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(7, 4, generator=g)
    y = torch.randn(4, generator=g)
    torch.testing.assert_close(dss_ensemble(x.T, y, sample_dim=1), dss_ensemble(x, y))
    out = dss_ensemble(x.bfloat16(), y.bfloat16())
    assert out.dtype == torch.float32 and torch.isfinite(out)


def test_validation_errors():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3, 4, 5, generator=g, dtype=F64)  # m = 3 <= d = 5: singular covariance
    with pytest.raises(ValueError, match="the ensemble covariance must be symmetric positive definite"):
        dss_ensemble_mv(x, torch.zeros(4, 5, dtype=F64))
    with pytest.raises(ValueError, match="covariance must be symmetric positive definite"):
        dss_moments_mv(torch.zeros(2, dtype=F64), -torch.eye(2, dtype=F64), torch.zeros(2, dtype=F64))
    with pytest.raises(ValueError, match="variance must be positive"):
        dss_moments(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.zeros(2))
    with pytest.raises(ValueError, match="at least 3 samples"):
        error_spread_score(torch.randn(2, 4), torch.zeros(4))
    with pytest.raises(ValueError, match="at least 2 samples"):
        dss_ensemble(torch.randn(1, 4), torch.zeros(4))
    with pytest.raises(TypeError, match="bias must be a bool"):
        dss_ensemble(torch.randn(3, 4), torch.zeros(4), bias=1)
    with pytest.raises(ValueError, match="covariance must have shape"):
        dss_moments_mv(torch.zeros(3), torch.eye(2), torch.zeros(3))


# ---- propriety --------------------------------------------------------------------------------------------


def _normal(loc, scale):
    return Normal(torch.tensor(loc, dtype=F64), torch.tensor(scale, dtype=F64))


def _dss_of_moments(P, y):
    return dss_moments(P.mean.expand(y.shape), P.variance.expand(y.shape), y, reduction="none")


def test_dss_proper_not_strictly():
    Q = _normal(0.0, 1.0)
    for P in (_normal(0.4, 1.0), _normal(0.0, 1.5), _normal(0.0, 0.7)):
        assert_strictly_proper(_dss_of_moments, P, Q, kind="distribution", n_obs=8192)
    # a Laplace with the same mean and variance: the same expected DSS ...
    P = Laplace(torch.tensor(0.0, dtype=F64), torch.tensor(1 / math.sqrt(2), dtype=F64))
    assert_equal_expected_scores(_dss_of_moments, P, Q, kind="distribution", n_obs=8192)
    # ... while the (strictly proper) log score separates them
    assert_strictly_proper(lambda D, y: -D.log_prob(y), P, Q, kind="distribution", n_obs=8192)


def test_dss_ensemble_forms_prefer_the_truth():
    Q = _normal(0.0, 1.0)

    def uv(s, t):
        return dss_ensemble(s, t, reduction="none")

    assert_strictly_proper(uv, _normal(0.0, 2.0), Q, n_obs=4096, n_samples=64)
    assert_strictly_proper(uv, _normal(0.5, 1.0), Q, n_obs=4096, n_samples=64)

    def mvn(scale, rho):
        cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=F64) * scale**2
        return MultivariateNormal(torch.zeros(2, dtype=F64), cov)

    def mv(s, t):
        return dss_ensemble_mv(s, t, reduction="none")

    assert_strictly_proper(mv, mvn(1.0, 0.0), mvn(1.0, 0.6), n_obs=4096, n_samples=64)
    c = assert_strictly_proper(
        lambda P, y: dss_moments_mv(P.mean.expand(y.shape), P.covariance_matrix, y, reduction="none"),
        mvn(1.3, 0.6), mvn(1.0, 0.6), kind="distribution", n_obs=4096,
    )
    assert c.diff > 0


def test_error_spread_score_prefers_the_right_spread():
    Q = _normal(0.0, 1.0)

    def ess(s, t):
        return error_spread_score(s, t, reduction="none")

    assert_strictly_proper(ess, _normal(0.0, 1.5), Q, n_obs=8192, n_samples=128)
    assert_proper(ess, _normal(0.0, 0.8), Q, n_obs=8192, n_samples=128)
