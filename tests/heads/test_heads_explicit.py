"""GaussianHead and GaussianMixtureHead against scipy / properscoring / float64 loops."""

from __future__ import annotations

import math

import numpy as np
import properscoring
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from scoringrules_torch.heads import GaussianHead, GaussianMixtureHead

D_TOKEN, D_COND = 3, 5


def _randomise(head, seed=0, scale=0.5):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return head


def _data(n=7, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, D_COND)), rng.normal(size=(n, D_TOKEN))


# -- Gaussian ----------------------------------------------------------------------------------------------
def test_gaussian_parameters_and_log_score_match_scipy():
    head = _randomise(GaussianHead(D_TOKEN, D_COND, hidden=8)).double()
    z, y = _data()
    mean, std = head.parameters_of(torch.from_numpy(z))
    mean, std = mean.detach().numpy(), std.detach().numpy()
    raw = head.readout(torch.from_numpy(z)).detach().numpy()
    np.testing.assert_allclose(mean, raw[:, :D_TOKEN])
    np.testing.assert_allclose(std, np.log1p(np.exp(raw[:, D_TOKEN:])) + 1e-4, rtol=1e-12)
    expected = -stats.norm.logpdf(y, mean, std).sum(-1).mean()
    got = head.loss(torch.from_numpy(z), torch.from_numpy(y)).item()
    assert got == pytest.approx(expected, rel=1e-12)
    lp = head.distribution(torch.from_numpy(z)).log_prob(torch.from_numpy(y)).detach().numpy()
    np.testing.assert_allclose(lp, stats.norm.logpdf(y, mean, std).sum(-1), rtol=1e-12)


def test_gaussian_crps_matches_properscoring():
    head = _randomise(GaussianHead(D_TOKEN, D_COND, score="crps")).double()
    z, y = _data()
    mean, std = (t.detach().numpy() for t in head.parameters_of(torch.from_numpy(z)))
    expected = properscoring.crps_gaussian(y, mean, std).sum(-1).mean()
    assert head.loss(torch.from_numpy(z), torch.from_numpy(y)).item() == pytest.approx(
        expected, rel=1e-10
    )


def test_gaussian_energy_score_is_unbiased_for_the_crps_in_one_dimension():
    """In 1-D the energy score is the CRPS; the fair estimate from reparameterised draws is unbiased for the
    closed form, so its average over many positions matches properscoring's crps_gaussian."""
    torch.manual_seed(0)
    head = _randomise(GaussianHead(1, D_COND, score="energy", num_samples=8), scale=0.3).double()
    rng = np.random.default_rng(2)
    n = 20000
    z, y = rng.normal(size=(n, D_COND)), rng.normal(size=(n, 1))
    mean, std = (t.detach().numpy() for t in head.parameters_of(torch.from_numpy(z)))
    expected = properscoring.crps_gaussian(y, mean, std).mean()
    got = head.loss(torch.from_numpy(z), torch.from_numpy(y)).item()
    assert got == pytest.approx(expected, rel=0.01)


def test_gaussian_fixed_std_and_temperature():
    head = GaussianHead(D_TOKEN, D_COND, std=0.3)
    z = torch.randn(5, D_COND)
    dist = head.distribution(z)
    torch.testing.assert_close(dist.base_dist.scale, torch.full((5, D_TOKEN), 0.3))
    assert sum(p.numel() for p in head.parameters()) == (D_COND + 1) * D_TOKEN  # mean only
    _randomise(head)
    mean, std = head.parameters_of(z)
    torch.manual_seed(3)
    got = head.sample(z, temperature=0.25)
    torch.manual_seed(3)
    expected = mean + 0.25 * std * torch.randn(5, D_TOKEN)
    torch.testing.assert_close(got, expected)


def test_gaussian_learned_std_at_initialisation():
    head = GaussianHead(D_TOKEN, D_COND)
    mean, std = head.parameters_of(torch.randn(4, D_COND))
    assert torch.all(mean == 0)
    torch.testing.assert_close(std, torch.full_like(std, math.log(2) + 1e-4))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(std="fixed"), "std must be one of"),
        (dict(std=-1.0), r"std must be a finite number in \(0, inf\); got -1.0"),
        (dict(score="kernel"), "score must be one of"),
        (dict(score="energy", num_samples=1), "num_samples must be an int >= 2"),
        (dict(score="energy", estimator="pwm"), "estimator must be one of"),
        (dict(hidden=0), "hidden must be an int >= 1; got 0"),
        (dict(score="energy", beta=5), r"beta must be a finite number in \(0, 2\]; got 5.0"),
        (dict(score="log", beta=0.0), r"beta must be a finite number in \(0, 2\]; got 0.0"),
    ],
)
def test_gaussian_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianHead(D_TOKEN, D_COND, **kwargs)


# -- mixture -----------------------------------------------------------------------------------------------
def test_mixture_log_score_matches_float64_loop():
    k = 4
    head = _randomise(GaussianMixtureHead(D_TOKEN, D_COND, num_components=k, hidden=8)).double()
    z, y = _data()
    raw = head.readout(torch.from_numpy(z)).detach().numpy()
    logits = raw[:, :k]
    means = raw[:, k : k + k * D_TOKEN].reshape(-1, k, D_TOKEN)
    stds = np.log1p(np.exp(raw[:, k + k * D_TOKEN :].reshape(-1, k, D_TOKEN))) + 1e-4
    expected = []
    for i in range(len(y)):
        log_w = logits[i] - logsumexp(logits[i])
        comps = [
            log_w[j] + stats.norm.logpdf(y[i], means[i, j], stds[i, j]).sum() for j in range(k)
        ]
        expected.append(-logsumexp(comps))
    got = head.loss(torch.from_numpy(z), torch.from_numpy(y)).item()
    assert got == pytest.approx(np.mean(expected), rel=1e-12)
    lp = head.distribution(torch.from_numpy(z)).log_prob(torch.from_numpy(y)).detach().numpy()
    np.testing.assert_allclose(-lp, expected, rtol=1e-12)


def test_mixture_sampling_weights_and_temperature():
    """Readout fixed to two components at -2 and +2 (std 0.5) with weights 0.25 / 0.75."""
    head = GaussianMixtureHead(1, D_COND, num_components=2)
    std_raw = math.log(math.expm1(0.5 - 1e-4))
    with torch.no_grad():
        head.readout.output.weight.zero_()
        head.readout.output.bias.copy_(
            torch.tensor([math.log(0.25), math.log(0.75), -2.0, 2.0, std_raw, std_raw])
        )
    torch.manual_seed(0)
    z = torch.randn(40000, D_COND)
    for temperature in (1.0, 0.4):
        s = head.sample(z, temperature=temperature).squeeze(-1)
        upper = s > 0
        assert upper.float().mean().item() == pytest.approx(0.75, abs=0.01)
        assert s[upper].std().item() == pytest.approx(0.5 * temperature, rel=0.03)
        assert s[upper].mean().item() == pytest.approx(2.0, abs=0.01)


def test_mixture_components_separate_when_trained():
    torch.manual_seed(0)
    head = GaussianMixtureHead(1, 4, num_components=2)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    z = torch.ones(256, 4)
    for _ in range(200):
        y = (torch.randint(0, 2, (256, 1)) * 4 - 2) + 0.1 * torch.randn(256, 1)
        loss = head.loss(z, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, means, stds = head.parameters_of(z[:1])
    assert sorted(means.flatten().tolist()) == pytest.approx([-2.0, 2.0], abs=0.1)
    assert stds.max().item() < 0.2


def test_mixture_bad_arguments():
    with pytest.raises(ValueError, match="num_components must be an int >= 1; got 0"):
        GaussianMixtureHead(D_TOKEN, D_COND, num_components=0)
