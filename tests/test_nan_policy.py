"""``nan_policy`` of the ensemble scores against float64 loops that drop NaN members explicitly."""

from __future__ import annotations

import math

import pytest
import torch

from scoringrules_torch.functional.crps_sample import crps_ensemble
from scoringrules_torch.functional.energy import energy_score
from scoringrules_torch.functional.kernel import kernel_score
from scoringrules_torch.functional.variogram import variogram_score
from scoringrules_torch.scores.sample import CRPS, EnergyScore, KernelScore, VariogramScore

M, B, D = 5, 6, 3


def _data(event: bool, seed: int = 0):
    """Members with NaNs: obs 0 loses member 1, obs 2 loses members 0 and 3, obs 4 keeps only member 2 (too few
    for the fair estimators), obs 5 has a NaN target."""
    g = torch.Generator().manual_seed(seed)
    shape = (M, B, D) if event else (M, B)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    y = torch.randn(shape[1:], generator=g, dtype=torch.float64)
    nan = float("nan")
    if event:
        x[1, 0, 0] = nan  # one component is enough to drop the member
        x[0, 2, :] = nan
        x[3, 2, 1] = nan
        x[[0, 1, 3, 4], 4, 2] = nan
        y[5, 1] = nan
    else:
        x[1, 0] = nan
        x[[0, 3], 2] = nan
        x[[0, 1, 3, 4], 4] = nan
        y[5] = nan
    return x, y


def _crps_fair_loop(members, y):
    k = len(members)
    acc = sum(abs(v - y) for v in members) / k
    return acc - sum(abs(a - b) for a in members for b in members) / (2 * k * (k - 1))


def _valid(x, y, b, event):
    xb = x[:, b]
    keep = ~torch.isnan(xb).any(-1) if event else ~torch.isnan(xb)
    return xb[keep], y[b], bool(torch.isnan(y[b]).any())


def test_crps_omit_equals_loop_without_nan_members():
    x, y = _data(False)
    got = crps_ensemble(x, y, nan_policy="omit", reduction="none")
    for b in range(B):
        members, yb, bad_y = _valid(x, y, b, False)
        if bad_y or len(members) < 2:
            assert math.isnan(float(got[b]))
        else:
            assert math.isclose(float(got[b]), _crps_fair_loop(members.tolist(), float(yb)), rel_tol=1e-12)
    ok = torch.isfinite(got)
    assert ok.sum() == 4
    torch.testing.assert_close(crps_ensemble(x, y, nan_policy="omit"), got[ok].mean(), rtol=1e-13, atol=0)
    torch.testing.assert_close(crps_ensemble(x, y, nan_policy="omit", reduction="sum"), got[ok].sum(), rtol=1e-13,
                               atol=0)


SCORES = [
    ("crps", crps_ensemble, False, {"estimator": "nrg"}),
    ("crps-pwm", crps_ensemble, False, {"estimator": "pwm"}),
    ("crps-qd", crps_ensemble, False, {"estimator": "qd"}),
    ("crps-int", crps_ensemble, False, {"estimator": "int"}),
    ("crps-afcrps", crps_ensemble, False, {"estimator": "afcrps", "alpha": 0.7}),
    ("energy", energy_score, True, {}),
    ("energy-nrg", energy_score, True, {"estimator": "nrg", "beta": 0.5}),
    ("kernel", kernel_score, True, {"bandwidth": 2.0}),
    ("variogram", variogram_score, True, {}),
    ("variogram-fair", variogram_score, True, {"estimator": "fair", "p": 1.0}),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weights"])
@pytest.mark.parametrize(("name", "fn", "event", "kw"), SCORES, ids=[s[0] for s in SCORES])
def test_omit_equals_scoring_the_valid_members_of_each_observation(name, fn, event, kw, weighted):
    x, y = _data(event, seed=len(name))
    w = torch.rand(M, B, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.1 if weighted else None
    got = fn(x, y, nan_policy="omit", member_weights=w, reduction="none", **kw)
    needs = 2 if kw.get("estimator", "fair" if fn is not variogram_score else "nrg") in (
        "fair", "pwm", "afcrps") else 1
    for b in range(B):
        xb = x[:, b]
        keep = ~torch.isnan(xb).any(-1) if event else ~torch.isnan(xb)
        if bool(torch.isnan(y[b]).any()) or int(keep.sum()) < needs:
            assert math.isnan(float(got[b])), (b, got)
            continue
        wb = None if w is None else w[keep, b]
        want = fn(xb[keep].unsqueeze(1), y[b : b + 1], member_weights=wb, reduction="none", **kw)
        assert math.isclose(float(got[b]), float(want[0]), rel_tol=1e-12, abs_tol=1e-14), (b, got[b], want)


@pytest.mark.parametrize(("name", "fn", "event", "kw"), SCORES, ids=[s[0] for s in SCORES])
def test_omit_gradients_are_finite_and_zero_for_dropped_members(name, fn, event, kw):
    x, y = _data(event)
    x.requires_grad_(True)
    fn(x, y, nan_policy="omit", **kw).backward()
    assert torch.isfinite(x.grad).all()
    dropped = torch.isnan(x.detach()).any(-1) if event else torch.isnan(x.detach())
    assert (x.grad[dropped] == 0).all()
    assert (x.grad[:, 5] == 0).all()  # the observation with a NaN target has no score
    assert x.grad[:, 1].abs().sum() > 0  # an observation without NaN


def test_omit_gradcheck():
    _, y = _data(False)
    x = torch.randn(M, B, dtype=torch.float64, generator=torch.Generator().manual_seed(4))  # no ties
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[1, 0] = True
    x = x[:, :4].detach().requires_grad_(True)

    def f(a):
        return crps_ensemble(a.masked_fill(mask[:, :4], float("nan")), y[:4], nan_policy="omit", reduction="none")

    assert torch.autograd.gradcheck(f, (x,))


@pytest.mark.parametrize(("name", "fn", "event", "kw"), SCORES, ids=[s[0] for s in SCORES])
def test_propagate_and_raise(name, fn, event, kw):
    x, y = _data(event)
    got = fn(x, y, reduction="none", **kw)
    assert torch.isnan(got[0]) and torch.isnan(got[5])
    assert torch.isfinite(got[[1, 3]]).all()
    torch.testing.assert_close(fn(x, y, nan_policy="propagate", reduction="none", **kw), got, equal_nan=True)
    with pytest.raises(ValueError, match="samples contains 7 NaN value") if not event else pytest.raises(
        ValueError, match="samples contains .* NaN value"
    ):
        fn(x, y, nan_policy="raise", **kw)
    clean = torch.nan_to_num(x)
    with pytest.raises(ValueError, match="target contains 1 NaN value"):
        fn(clean, y, nan_policy="raise", **kw)
    yc = torch.nan_to_num(y)
    torch.testing.assert_close(fn(clean, yc, nan_policy="raise", **kw), fn(clean, yc, **kw))


def test_sample_dim_is_respected():
    x, y = _data(True)
    got = energy_score(x.movedim(0, 2), y, sample_dim=2, nan_policy="omit", reduction="none")
    torch.testing.assert_close(got, energy_score(x, y, nan_policy="omit", reduction="none"), equal_nan=True)


def test_all_observations_without_score_give_nan_mean():
    x = torch.full((3, 2), float("nan"), dtype=torch.float64)
    y = torch.zeros(2, dtype=torch.float64)
    assert torch.isnan(crps_ensemble(x, y, nan_policy="omit"))
    assert crps_ensemble(x, y, nan_policy="omit", reduction="sum") == 0


def test_bad_policy_and_positional_estimators():
    x, y = torch.randn(4, 3), torch.randn(3)
    with pytest.raises(ValueError, match="nan_policy must be one of 'propagate', 'omit', 'raise'; got 'drop'"):
        crps_ensemble(x, y, nan_policy="drop")
    for est in ("akr", "akr_circperm"):
        with pytest.raises(ValueError, match=f"estimator='{est}'"):
            crps_ensemble(x, y, estimator=est, nan_policy="omit")
    with pytest.raises(ValueError, match="estimator='pairs'"):
        energy_score(x.unsqueeze(-1), y.unsqueeze(-1), estimator="pairs", nan_policy="omit")
    with pytest.raises(ValueError, match="nan_policy must be"):
        EnergyScore(nan_policy="ignore")


def test_modules_forward_nan_policy():
    x, y = _data(True)
    xc, yc = _data(False)
    pairs = [
        (CRPS(nan_policy="omit"), crps_ensemble, xc, yc),
        (EnergyScore(nan_policy="omit"), energy_score, x, y),
        (KernelScore(nan_policy="omit"), kernel_score, x, y),
        (VariogramScore(nan_policy="omit"), variogram_score, x, y),
    ]
    for module, fn, a, b in pairs:
        torch.testing.assert_close(module(a, b), fn(a, b, nan_policy="omit"))
        assert torch.isfinite(module(a, b))
