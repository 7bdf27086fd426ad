"""Ensemble (kernel density) log score and censored / conditional likelihood scores: agreement with scoringrules
0.10 (numpy, float64), closed forms, tails, gradients, validation, propriety."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scoringrules as sr
import torch
from torch.distributions import Normal

from scoringrules_torch.functional.ensemble_log import (
    clogs_ensemble,
    logs_ensemble,
    silverman_bandwidth,
)
from scoringrules_torch.testing import assert_equal_expected_scores, assert_strictly_proper

BATCHES = [(), (5,), (3, 4)]
F64 = torch.float64
RTOL = 1e-10


def _rel(out: torch.Tensor, ref) -> float:
    ref = np.asarray(ref, dtype=np.float64)
    out = out.detach().numpy()
    assert out.shape == ref.shape, (out.shape, ref.shape)
    return float(np.max(np.abs(out - ref)) / max(1e-300, np.max(np.abs(ref))))


def _data(batch, m=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((m, *batch), generator=g, dtype=F64) * 1.4 + 0.3
    y = torch.randn(batch, generator=g, dtype=F64)
    return x, y


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("bw", [None, 0.7])
def test_logs_ensemble_matches_scoringrules(batch, bw):
    x, y = _data(batch)
    ref = sr.logs_ensemble(y.numpy(), np.moveaxis(x.numpy(), 0, -1), bw=bw, backend="numpy")
    assert _rel(logs_ensemble(x, y, bandwidth=bw, reduction="none"), ref) <= RTOL


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("censored", [True, False])
@pytest.mark.parametrize("ab", [(-0.3, 0.8), (-math.inf, 0.2), (0.0, math.inf)])
def test_clogs_ensemble_matches_scoringrules(batch, censored, ab):
    x, y = _data(batch, seed=1)
    a, b = ab
    ref = sr.clogs_ensemble(y.numpy(), np.moveaxis(x.numpy(), 0, -1), a=a, b=b, cens=censored, backend="numpy")
    out = clogs_ensemble(x, y, a=a, b=b, censored=censored, reduction="none")
    ref = np.asarray(ref, dtype=np.float64)
    # scoringrules returns 0.0 (not -0.0) outside for the conditional score; compare the absolute error there
    assert np.max(np.abs(out.numpy() - ref)) <= RTOL * max(1.0, np.max(np.abs(ref)))


def test_silverman_bandwidth_by_hand():
    x = torch.tensor([0.3, -1.2, 2.5, 0.9, 1.1, -0.4, 0.0], dtype=F64)
    xs = sorted(x.tolist())
    m = len(xs)

    def q(p):  # linear interpolation between order statistics
        pos = p * (m - 1)
        lo = math.floor(pos)
        return xs[lo] + (pos - lo) * (xs[min(lo + 1, m - 1)] - xs[lo])

    mean = sum(xs) / m
    sd = math.sqrt(sum((v - mean) ** 2 for v in xs) / (m - 1))
    ref = 1.06 * min(sd, (q(0.75) - q(0.25)) / 1.34) * m ** (-0.2)
    assert abs(silverman_bandwidth(x[:, None]).item() - ref) < 1e-14


def test_logs_ensemble_is_the_mixture_log_density_and_finite_in_the_tails():
    x, y = _data((6,), m=5, seed=2)
    h = 0.4
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(6, 5, dtype=F64)), Normal(x.T, torch.tensor(h, dtype=F64))
    )
    torch.testing.assert_close(logs_ensemble(x, y, bandwidth=h, reduction="none"), -mix.log_prob(y))
    far = torch.full((6,), 60.0, dtype=F64)
    out = logs_ensemble(x, far, bandwidth=h, reduction="none")
    with np.errstate(divide="ignore"):
        ref = sr.logs_ensemble(far.numpy(), x.T.numpy(), bw=h, backend="numpy")
    assert torch.isfinite(out).all() and np.isinf(ref).all()  # scoringrules underflows, we do not
    torch.testing.assert_close(out, -mix.log_prob(far))


def test_clogs_censored_and_conditional_closed_forms():
    x = torch.tensor([[0.0], [1.0]], dtype=F64)
    h = 1.0
    phi = Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    # y outside (a, b) = (-inf, 0.5): censored -log(1 - P_hat), P_hat = mean Phi((0.5 - x_i) / h)
    y = torch.tensor([2.0], dtype=F64)
    p_hat = (phi.cdf(torch.tensor(0.5, dtype=F64)) + phi.cdf(torch.tensor(-0.5, dtype=F64))) / 2
    out = clogs_ensemble(x, y, b=0.5, bandwidth=h, reduction="none")
    torch.testing.assert_close(out, -torch.log(1 - p_hat).reshape(1))
    assert clogs_ensemble(x, y, b=0.5, bandwidth=h, censored=False, reduction="none").item() == 0.0
    # inside: conditional = -log f + log P_hat
    y = torch.tensor([0.1], dtype=F64)
    f = (phi.log_prob(y).exp() + phi.log_prob(y - 1).exp()) / 2
    out = clogs_ensemble(x, y, b=0.5, bandwidth=h, censored=False, reduction="none")
    torch.testing.assert_close(out, -torch.log(f) + torch.log(p_hat))


def test_gradcheck_ensemble_log_scores():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 3, generator=g, dtype=F64).requires_grad_()
    y = torch.randn(3, generator=g, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(lambda s, t: logs_ensemble(s, t, reduction="none"), (x, y))
    assert torch.autograd.gradcheck(lambda s, t: logs_ensemble(s, t, bandwidth=0.5, reduction="none"), (x, y))
    for cens in (True, False):
        assert torch.autograd.gradcheck(
            lambda s, t, c=cens: clogs_ensemble(s, t, a=-0.5, b=1.0, censored=c, reduction="none"), (x, y)
        )


def test_validation_errors():
    x, y = _data((4,))
    with pytest.raises(ValueError, match="bandwidth must be positive"):
        logs_ensemble(x, y, bandwidth=0.0)
    with pytest.raises(ValueError, match="Silverman bandwidth"):
        logs_ensemble(torch.ones(5, 4, dtype=F64), y)
    with pytest.raises(ValueError, match="a < b"):
        clogs_ensemble(x, y, a=1.0, b=1.0)
    with pytest.raises(TypeError, match="censored must be a bool"):
        clogs_ensemble(x, y, censored="yes")
    with pytest.raises(ValueError, match="bandwidth must be a float or broadcastable"):
        logs_ensemble(x, y, bandwidth=torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match=r"samples must have shape"):
        logs_ensemble(x[:, :2], y)


# ---- propriety --------------------------------------------------------------------------------------------


def _normal(loc, scale):
    return Normal(torch.tensor(loc, dtype=F64), torch.tensor(scale, dtype=F64))


class _CompressedUpperHalf:
    """N(0, 1) below 0; above 0 the draws scaled by 0.3 (the same law on (-inf, 0], the same mass above)."""

    batch_shape = torch.Size()

    def __init__(self):
        self.base = _normal(0.0, 1.0)

    def sample(self, shape=()):
        z = self.base.sample(shape)
        return torch.where(z > 0, 0.3 * z, z)


def test_ensemble_log_scores_prefer_the_truth():
    Q = _normal(0.0, 1.0)

    def ls(s, t):
        return logs_ensemble(s, t, bandwidth=0.3, reduction="none")

    for P in (_normal(0.5, 1.0), _normal(0.0, 1.8)):
        assert_strictly_proper(ls, P, Q, n_obs=4096, n_samples=64)

    def cens(s, t):
        return clogs_ensemble(s, t, b=0.0, bandwidth=0.3, reduction="none")

    assert_strictly_proper(cens, _normal(-0.5, 1.0), Q, n_obs=4096, n_samples=64)


def test_censored_likelihood_is_blind_above_the_threshold():
    # equal on (-inf, 0] with the same mass above: the same expected censored score (up to the kernel's
    # smoothing across 0, small at bandwidth 0.05), while the full log score tells them apart
    Q, P = _normal(0.0, 1.0), _CompressedUpperHalf()

    def cens(s, t):
        return clogs_ensemble(s, t, b=0.0, bandwidth=0.05, reduction="none")

    assert_equal_expected_scores(cens, P, Q, n_obs=4096, n_samples=256)
    assert_strictly_proper(lambda s, t: logs_ensemble(s, t, bandwidth=0.05, reduction="none"), P, Q,
                           n_obs=4096, n_samples=256)
