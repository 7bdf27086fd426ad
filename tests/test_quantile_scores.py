"""Quantile, interval and weighted interval scores and the quantile CRPS: agreement with scoringrules 0.10 (numpy,
float64), closed forms, gradients, validation, propriety."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import scoringrules as sr
import torch
from torch.distributions import Laplace, Normal

from scoringrules_torch.functional.quantile import (
    crps_quantile,
    interval_score,
    quantile_score,
    weighted_interval_score,
)
from scoringrules_torch.scores.quantile import IntervalScore, QuantileScore
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


def _quantile_data(batch, q=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    levels = torch.sort(torch.rand(q, generator=g, dtype=F64) * 0.9 + 0.05).values
    quants = torch.sort(torch.randn((*batch, q), generator=g, dtype=F64), dim=-1).values * 1.3
    y = torch.randn(batch, generator=g, dtype=F64)
    return quants, y, levels


@pytest.mark.parametrize("batch", BATCHES, ids=str)
def test_quantile_score_matches_scoringrules(batch):
    q, y, tau = _quantile_data(batch)
    ref = sr.quantile_score(y.numpy()[..., None], q.numpy(), tau.numpy(), backend="numpy")
    assert _rel(quantile_score(q, y, levels=tau, reduction="none"), ref) <= RTOL
    assert torch.allclose(quantile_score(q, y, levels=tau), torch.as_tensor(ref).mean(), rtol=1e-12)
    assert torch.allclose(quantile_score(q, y, levels=tau, reduction="sum"), torch.as_tensor(ref).sum())


def test_quantile_score_per_observation_levels_and_quantile_dim():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(4, 6, 3, generator=g, dtype=F64)  # quantile axis in the middle
    y = torch.randn(4, 3, generator=g, dtype=F64)
    tau = torch.rand(4, 3, 6, generator=g, dtype=F64) * 0.98 + 0.01  # one set of levels per observation
    out = quantile_score(q, y, levels=tau, quantile_dim=1, reduction="none")
    ref = sr.quantile_score(y.numpy()[..., None], np.moveaxis(q.numpy(), 1, -1), tau.numpy(), backend="numpy")
    assert _rel(out, ref) <= RTOL


def test_quantile_score_definition_by_loop():
    q, y, tau = _quantile_data((7,), q=4, seed=5)
    out = quantile_score(q, y, levels=tau, reduction="none")
    for i in range(7):
        for j in range(4):
            e = y[i].item() - q[i, j].item()
            t = tau[j].item()
            assert math.isclose(out[i, j].item(), max(t * e, (t - 1) * e), rel_tol=1e-14, abs_tol=1e-16)


@pytest.mark.parametrize("batch", BATCHES, ids=str)
def test_crps_quantile_matches_scoringrules(batch):
    q, y, tau = _quantile_data(batch, q=9, seed=1)
    ref = sr.crps_quantile(y.numpy(), q.numpy(), tau.numpy(), backend="numpy")
    assert _rel(crps_quantile(q, y, levels=tau, reduction="none"), ref) <= RTOL


def test_crps_quantile_approaches_the_closed_form_crps():
    # midpoint levels of N(0, 1): the quantile CRPS converges to the closed form
    n = 2000
    levels = (torch.arange(n, dtype=F64) + 0.5) / n
    quants = Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64)).icdf(levels)
    y = torch.tensor([-1.3, 0.0, 0.4, 2.5], dtype=F64)
    out = crps_quantile(quants.expand(4, n), y, levels=levels, reduction="none")
    pdf = torch.exp(-0.5 * y**2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + torch.erf(y / math.sqrt(2)))
    closed = y * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi)
    assert torch.allclose(out, closed, atol=2e-4)


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("several", [False, True])
def test_interval_score_matches_scoringrules(batch, several):
    g = torch.Generator().manual_seed(2)
    shape = (*batch, 3) if several else batch
    lo = torch.randn(shape, generator=g, dtype=F64) - 0.7
    up = lo + torch.rand(shape, generator=g, dtype=F64) * 2
    y = torch.randn(batch, generator=g, dtype=F64)
    alpha = torch.tensor([0.05, 0.2, 0.5], dtype=F64) if several else 0.1
    ref = sr.interval_score(
        y.numpy(), lo.numpy(), up.numpy(), alpha.numpy() if several else alpha, backend="numpy"
    )
    out = interval_score(lo, up, y, alpha=alpha, reduction="none")
    assert _rel(out, ref) <= RTOL


def test_interval_score_is_the_scaled_sum_of_two_quantile_scores():
    g = torch.Generator().manual_seed(4)
    lo = torch.randn(50, generator=g, dtype=F64)
    up = lo + torch.rand(50, generator=g, dtype=F64)
    y = torch.randn(50, generator=g, dtype=F64) * 2
    a = 0.3
    qs = quantile_score(torch.stack([lo, up], -1), y, levels=[a / 2, 1 - a / 2], reduction="none").sum(-1)
    assert torch.allclose(interval_score(lo, up, y, alpha=a, reduction="none"), 2 / a * qs, rtol=1e-12)


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("custom_weights", [False, True])
def test_weighted_interval_score_matches_scoringrules(batch, custom_weights):
    g = torch.Generator().manual_seed(6)
    alpha = torch.tensor([0.02, 0.1, 0.3, 0.6], dtype=F64)
    med = torch.randn(batch, generator=g, dtype=F64)
    width = torch.sort(torch.rand((*batch, 4), generator=g, dtype=F64), dim=-1, descending=True).values
    lo, up = med.unsqueeze(-1) - width, med.unsqueeze(-1) + width
    y = torch.randn(batch, generator=g, dtype=F64)
    kw, skw = {}, {}
    if custom_weights:
        wk = torch.tensor([0.3, 0.1, 0.7, 0.2], dtype=F64)
        kw = {"median_weight": 0.8, "interval_weights": wk}
        skw = {"w_median": 0.8, "w_alpha": wk.numpy()}
    # the numba backend: scoringrules 0.10's numpy backend adds w_median * median instead of
    # w_median * |y - median| (see docs/scores/quantile.md)
    ref = sr.weighted_interval_score(
        y.numpy(), med.numpy(), lo.numpy(), up.numpy(), alpha.numpy(), backend="numba", **skw
    )
    out = weighted_interval_score(med, lo, up, y, alpha=alpha, reduction="none", **kw)
    assert _rel(out, ref) <= RTOL


def test_wis_with_default_weights_is_a_sum_of_quantile_scores():
    # WIS = 2/(2K+1) * sum of the quantile scores of the 2K+1 quantiles (Bracher et al. 2021)
    g = torch.Generator().manual_seed(8)
    alpha = torch.tensor([0.1, 0.4], dtype=F64)
    med = torch.randn(30, generator=g, dtype=F64)
    lo = med[:, None] - torch.tensor([1.5, 0.5], dtype=F64)
    up = med[:, None] + torch.tensor([1.5, 0.5], dtype=F64)
    y = torch.randn(30, generator=g, dtype=F64)
    q = torch.cat([lo, med[:, None], up], -1)
    lv = torch.cat([alpha / 2, torch.tensor([0.5], dtype=F64), 1 - alpha / 2])
    qs = quantile_score(q, y, levels=lv, reduction="none").sum(-1)
    wis = weighted_interval_score(med, lo, up, y, alpha=alpha, reduction="none")
    assert torch.allclose(wis, 2 / 5 * qs, rtol=1e-12)


def test_gradcheck_quantile_family():
    g = torch.Generator().manual_seed(9)
    q = torch.randn(3, 4, generator=g, dtype=F64).requires_grad_()
    y = torch.randn(3, generator=g, dtype=F64).requires_grad_()
    tau = torch.tensor([0.1, 0.3, 0.6, 0.95], dtype=F64)
    assert torch.autograd.gradcheck(lambda a, b: quantile_score(a, b, levels=tau, reduction="none"), (q, y))
    assert torch.autograd.gradcheck(lambda a, b: crps_quantile(a, b, levels=tau, reduction="none"), (q, y))
    lo = (torch.randn(3, 2, generator=g, dtype=F64) - 1).requires_grad_()
    up = (torch.randn(3, 2, generator=g, dtype=F64) + 1).requires_grad_()
    med = torch.randn(3, generator=g, dtype=F64).requires_grad_()
    al = torch.tensor([0.1, 0.5], dtype=F64)
    assert torch.autograd.gradcheck(
        lambda a, b, c: interval_score(a, b, c, alpha=al, reduction="none"), (lo, up, y)
    )
    assert torch.autograd.gradcheck(
        lambda m, a, b, c: weighted_interval_score(m, a, b, c, alpha=al, reduction="none"), (med, lo, up, y)
    )


def test_modules_match_functionals_and_follow_dtype():
    q, y, tau = _quantile_data((6,), q=3, seed=11)
    mod = QuantileScore(levels=tau.tolist())
    assert torch.allclose(mod(q, y), quantile_score(q, y, levels=tau), rtol=1e-6)
    modc = QuantileScore(levels=tau.tolist(), crps=True, reduction="none")
    assert torch.allclose(modc(q, y), crps_quantile(q, y, levels=tau, reduction="none"), rtol=1e-6)
    out = mod(q.float(), y.float())
    assert out.dtype == torch.float32
    half = mod(q.bfloat16(), y.bfloat16())
    assert half.dtype == torch.float32 and torch.isfinite(half)
    lo, up = q[:, 0], q[:, 2]
    assert torch.allclose(IntervalScore(alpha=0.2)(lo, up, y), interval_score(lo, up, y, alpha=0.2))
    assert "levels=" in repr(mod)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_levels_outside_the_open_unit_interval_are_rejected(bad):
    q, y, _ = _quantile_data((4,), q=2)
    with pytest.raises(ValueError, match="levels must lie in the open interval"):
        quantile_score(q, y, levels=[0.5, bad])
    with pytest.raises(ValueError, match="levels must lie in the open interval"):
        crps_quantile(q, y, levels=torch.tensor([bad, 0.5], dtype=F64))
    with pytest.raises(ValueError, match="alpha must lie in the open interval"):
        interval_score(q[:, 0], q[:, 1], y, alpha=bad)
    with pytest.raises(ValueError, match="levels must lie"):
        QuantileScore(levels=[bad])


def test_shape_and_type_errors():
    q, y, tau = _quantile_data((4,), q=3)
    with pytest.raises(ValueError, match=r"quantiles must have shape \(\*batch, q\)"):
        quantile_score(q, y[:3], levels=tau)
    with pytest.raises(ValueError, match="levels must have shape"):
        quantile_score(q, y, levels=[0.1, 0.5])
    with pytest.raises(ValueError, match="floating-point"):
        quantile_score(q.long(), y, levels=tau)
    with pytest.raises(TypeError, match="levels must be"):
        quantile_score(q, y, levels="0.5")
    with pytest.raises(ValueError, match="reduction"):
        quantile_score(q, y, levels=tau, reduction="avg")
    with pytest.raises(ValueError, match="lower and upper must have the same shape"):
        interval_score(q[:, :2], q, y, alpha=0.1)
    with pytest.raises(ValueError, match="median_weight must be non-negative"):
        weighted_interval_score(y, q[:, :1], q[:, 2:], y, alpha=[0.2], median_weight=-1.0)
    with pytest.raises(ValueError, match="interval_weights must be non-negative"):
        weighted_interval_score(y, q[:, :1], q[:, 2:], y, alpha=[0.2], interval_weights=[-0.5])
    with pytest.raises(ValueError, match="quantile_dim=3 is out of range"):
        quantile_score(q, y, levels=tau, quantile_dim=3)


# ---- propriety (harness: the forecast P is a distribution, its quantiles are scored) -------------------------


def _normal(loc, scale):
    return Normal(torch.tensor(loc, dtype=F64), torch.tensor(scale, dtype=F64))


def _qs_of(levels):
    lv = torch.tensor(levels, dtype=F64)

    def score(P, y):
        return quantile_score(P.icdf(lv).expand(y.shape[0], -1), y, levels=lv, reduction="none").sum(-1)

    return score


def _is_of(alpha):
    def score(P, y):
        lo = P.icdf(torch.tensor(alpha / 2, dtype=F64)).expand(y.shape)
        up = P.icdf(torch.tensor(1 - alpha / 2, dtype=F64)).expand(y.shape)
        return interval_score(lo, up, y, alpha=alpha, reduction="none")

    return score


def _crps_normal(P, y):
    z = (y - P.loc) / P.scale
    pdf = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    return P.scale * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def test_quantile_score_is_proper_for_the_quantile_but_not_strictly_for_the_distribution():
    Q = _normal(0.0, 1.0)
    score = _qs_of([0.1, 0.5, 0.9])
    # wrong quantiles lose
    for P in (_normal(0.4, 1.0), _normal(0.0, 1.6)):
        assert_strictly_proper(score, P, Q, kind="distribution", n_obs=8192)
    # a different distribution with the same median: the 0.5-level score cannot tell them apart ...
    P = _normal(0.0, 3.0)
    med = _qs_of([0.5])
    assert_equal_expected_scores(med, P, Q, kind="distribution", n_obs=8192)
    # ... while the strictly proper CRPS does (so the equality is not a lack of power)
    assert_strictly_proper(_crps_normal, P, Q, kind="distribution", n_obs=8192)


def test_crps_quantile_proper():
    Q = _normal(0.0, 1.0)
    lv = ((torch.arange(9, dtype=F64) + 0.5) / 9).tolist()

    def score(P, y):
        t = torch.tensor(lv, dtype=F64)
        return crps_quantile(P.icdf(t).expand(y.shape[0], -1), y, levels=t, reduction="none")

    assert_strictly_proper(score, _normal(0.3, 1.2), Q, kind="distribution", n_obs=8192)
    assert_proper(score, _normal(0.0, 0.8), Q, kind="distribution", n_obs=8192)


def test_interval_score_proper_not_strictly():
    Q = _normal(0.0, 1.0)
    score = _is_of(0.1)
    assert_strictly_proper(score, _normal(0.0, 1.5), Q, kind="distribution", n_obs=8192)
    assert_strictly_proper(score, _normal(0.0, 0.6), Q, kind="distribution", n_obs=8192)
    # a Laplace with the same 5 % and 95 % quantiles as Q: same expected interval score
    b = Q.icdf(torch.tensor(0.95, dtype=F64)).item() / math.log(10.0)
    P = Laplace(torch.tensor(0.0, dtype=F64), torch.tensor(b, dtype=F64))
    assert_equal_expected_scores(score, P, Q, kind="distribution", n_obs=8192)
    # control: the quantile scores at other levels separate P and Q
    assert_strictly_proper(_qs_of([0.25, 0.75]), P, Q, kind="distribution", n_obs=8192)


def test_weighted_interval_score_proper():
    Q = _normal(0.0, 1.0)
    alpha = torch.tensor([0.1, 0.5], dtype=F64)

    def score(P, y):
        n = y.shape[0]
        lo = P.icdf(alpha / 2).expand(n, -1)
        up = P.icdf(1 - alpha / 2).expand(n, -1)
        med = P.icdf(torch.tensor(0.5, dtype=F64)).expand(n)
        return weighted_interval_score(med, lo, up, y, alpha=alpha, reduction="none")

    assert_strictly_proper(score, _normal(0.3, 1.0), Q, kind="distribution", n_obs=8192)
    assert_proper(functools.partial(score), _normal(0.0, 1.3), Q, kind="distribution", n_obs=8192)
