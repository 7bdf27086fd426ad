"""Autoregressive rollouts: the trajectories' law against the closed form of a Gaussian AR(1), batching, the
per-step temperature, and the trajectory scores against scoringrules (numpy, float64) and numpy quantiles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scoringrules as sr
import torch
from torch.nn import functional as F

from scoringrules_torch.heads import GaussianHead, ImplicitGeneratorHead
from scoringrules_torch.heads.trajectories import interval_coverage, rollout, score_trajectories

A, S = 0.8, 0.5  # x_{t+1} = A x_t + S eps


def _ar1_head() -> GaussianHead:
    """A GaussianHead reading z = x_t with mean A x_t and std S (its linear read-out set by hand)."""
    head = GaussianHead(1, 1).double()
    with torch.no_grad():
        out = head.readout.output
        out.weight.copy_(torch.tensor([[A], [0.0]], dtype=torch.float64))
        out.bias.copy_(torch.tensor([0.0, math.log(math.expm1(S - 1e-4))], dtype=torch.float64))
    return head


class LastToken:
    """A 'model' whose hidden state is the last token; counts its calls and the batch it sees."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def __call__(self, history: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(history.shape))
        return history  # (N, L, 1): z at every position; rollout uses the last one


def test_rollout_matches_the_gaussian_ar1_law():
    torch.manual_seed(0)
    head, model = _ar1_head(), LastToken()
    history = torch.tensor([[[0.3], [2.0]], [[0.0], [-1.0]]], dtype=torch.float64)  # B = 2, L = 2
    m, horizon = 20000, 4
    paths = rollout(model, head, history, horizon=horizon, num_samples=m)
    assert paths.shape == (m, 2, horizon, 1) and paths.dtype == torch.float64
    # one batched model call per step, over all m * B trajectories, with the growing history
    assert model.calls == [(m * 2, 2 + h, 1) for h in range(horizon)]
    for b, x0 in enumerate((2.0, -1.0)):
        for h in range(1, horizon + 1):
            mean = A**h * x0
            var = S**2 * (1 - A ** (2 * h)) / (1 - A**2)
            got = paths[:, b, h - 1, 0]
            assert got.mean().item() == pytest.approx(mean, abs=4 * math.sqrt(var / m))
            assert got.var().item() == pytest.approx(var, rel=0.05)
    # steps are dependent as in the AR(1): corr(x_1, x_2) = A sqrt(var_1 / var_2)
    c = torch.corrcoef(paths[:, 0, :2, 0].T)[0, 1].item()
    assert c == pytest.approx(A * math.sqrt(1 / (1 + A**2)), abs=0.02)


def test_per_step_temperature():
    """Temperature 0 at step 2 adds no noise there: var_2 = A^2 var_1; temperature 2 at step 3 quadruples
    that step's innovation variance."""
    torch.manual_seed(1)
    head = _ar1_head()
    paths = rollout(
        LastToken(),
        head,
        torch.zeros(1, 1, 1, dtype=torch.float64),
        horizon=3,
        num_samples=20000,
        temperature=[1.0, 0.0, 2.0],
    )
    var = paths[:, 0, :, 0].var(0)
    assert var[0].item() == pytest.approx(S**2, rel=0.05)
    assert var[1].item() == pytest.approx(A**2 * var[0].item(), rel=1e-6)
    assert var[2].item() == pytest.approx(A**2 * var[1].item() + 4 * S**2, rel=0.05)
    with pytest.raises(ValueError, match=r"one entry per step \(horizon=3\); got 2 entries"):
        rollout(LastToken(), head, torch.zeros(1, 1, 1), horizon=3, temperature=[1.0, 1.0])


def test_rollout_with_a_gru_and_the_implicit_head_and_options():
    torch.manual_seed(0)
    gru = torch.nn.GRU(2, 16, batch_first=True)
    head = ImplicitGeneratorHead(2, 16)
    seen = []

    def model(x):
        seen.append(x.shape[1])
        return gru(x)[0][:, -1]  # (N, cond_dim) also works

    history = torch.randn(3, 5, 2)
    paths = rollout(
        model, head, history, horizon=4, num_samples=6, max_context=6, sample_kwargs={"spread": 0.0}
    )
    assert paths.shape == (6, 3, 4, 2)
    assert seen == [5, 6, 6, 6]  # the context is cropped to max_context
    # spread 0: the implicit head's point forecast, so all 6 trajectories of a history coincide
    assert torch.allclose(paths, paths[:1].expand_as(paths))


def test_rollout_errors():
    head = _ar1_head().float()
    model = LastToken()
    with pytest.raises(
        ValueError, match=r"history must have shape \(B, L, token_dim\) with token_dim=1"
    ):
        rollout(model, head, torch.zeros(4, 1), horizon=2)
    with pytest.raises(TypeError, match="horizon must be an int >= 1; got float"):
        rollout(model, head, torch.zeros(1, 3, 1), horizon=2.0)
    with pytest.raises(ValueError, match="num_samples must be an int >= 1; got 0"):
        rollout(model, head, torch.zeros(1, 3, 1), horizon=2, num_samples=0)
    with pytest.raises(TypeError, match="head must follow the PredictiveHead protocol"):
        rollout(model, torch.nn.Linear(1, 1), torch.zeros(1, 3, 1), horizon=2)
    with pytest.raises(ValueError, match="model must return z of shape"):
        rollout(lambda x: x[0], head, torch.zeros(2, 3, 1), horizon=2)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0; got inf"):
        rollout(model, head, torch.zeros(1, 3, 1), horizon=2, temperature=math.inf)


def test_scores_against_scoringrules():
    rng = np.random.default_rng(0)
    m, b, h, d = 30, 4, 5, 2
    paths = rng.normal(size=(m, b, h, d))
    target = rng.normal(size=(b, h, d))
    for estimator in ("fair", "nrg"):
        got = score_trajectories(
            torch.from_numpy(paths), torch.from_numpy(target), estimator=estimator, reduction="none"
        )
        crps = sr.crps_ensemble(
            target, np.moveaxis(paths, 0, -1), estimator=estimator, backend="numpy"
        )
        np.testing.assert_allclose(got.crps.numpy(), crps.sum(-1), rtol=1e-10)
        flat = np.moveaxis(paths.reshape(m, b, h * d), 0, 1)  # (B, m, H d)
        es = sr.es_ensemble(target.reshape(b, h * d), flat, estimator=estimator, backend="numpy")
        np.testing.assert_allclose(got.energy.numpy(), es, rtol=1e-10)
        mean = score_trajectories(
            torch.from_numpy(paths), torch.from_numpy(target), estimator=estimator
        )
        np.testing.assert_allclose(mean.crps.numpy(), crps.sum(-1).mean(0), rtol=1e-10)
        assert mean.energy.item() == pytest.approx(es.mean(), rel=1e-10)
    with pytest.raises(ValueError, match=r"trajectories must have shape \(m, B, H, token_dim\)"):
        score_trajectories(torch.zeros(3, 4, 5), torch.zeros(4, 5))


def test_interval_coverage_against_numpy():
    rng = np.random.default_rng(1)
    paths = rng.standard_t(3, size=(41, 6, 3, 2))
    target = rng.normal(size=(6, 3, 2)) * 2
    got = interval_coverage(torch.from_numpy(paths), torch.from_numpy(target), level=0.8).numpy()
    lo, hi = np.quantile(paths, [0.1, 0.9], axis=0)
    want = ((target >= lo) & (target <= hi)).mean(axis=(0, 2))
    np.testing.assert_allclose(got, want)
    with pytest.raises(ValueError, match=r"level must be a finite number in \(0, 1\); got 1.0"):
        interval_coverage(torch.from_numpy(paths), torch.from_numpy(target), level=1.0)


def test_ar1_head_has_the_stated_std():
    # the hand-set read-out gives std softplus(raw) + 1e-4 == S
    head = _ar1_head()
    raw = head.readout.output.bias[1]
    assert (F.softplus(raw) + 1e-4).item() == pytest.approx(S)
