"""DiffusionHead: the cosine schedule and its respacing against closed forms, the loss against a float64
computation, and the sampler against the exact denoiser of a Gaussian law."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoringrules_torch.heads import DiffusionHead
from scoringrules_torch.heads.diffusion import cosine_alphas_cumprod, respaced_schedule


def _f(u):
    return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2


def test_cosine_schedule_closed_form():
    """Without the 0.999 cap the product telescopes: alpha_bar_t = f((t+1)/T) / f(0)."""
    T = 1000
    ab = cosine_alphas_cumprod(T)
    for t in range(T - 1):
        assert ab[t] == pytest.approx(_f((t + 1) / T) / _f(0), rel=1e-9)
    # the last step is capped at beta = 0.999
    assert 1 - ab[-1] / ab[-2] == pytest.approx(0.999, rel=1e-12)
    assert all(a > b for a, b in zip(ab, ab[1:], strict=False))


@pytest.mark.parametrize("steps", [1, 7, 100, 1000])
def test_respacing_keeps_alpha_bar_and_the_posterior_identities(steps):
    T = 1000
    ab_all = cosine_alphas_cumprod(T)
    sched = respaced_schedule(T, steps)
    assert len(sched) == steps
    kept = [s[0] for s in sched]
    assert kept[-1] == T - 1 and kept == sorted(set(kept))
    if steps > 1:
        assert kept[0] == 0
        gaps = np.diff(kept)
        assert gaps.max() - gaps.min() <= 1  # evenly strided
    prev = 1.0
    for t, ab, c0, ct, std in sched:
        assert ab == ab_all[t]
        # q(x_{i-1} | x_i, x0) must reproduce the marginals: with x_i = sqrt(ab) x0 + sqrt(1-ab) e,
        # the mean is sqrt(prev) x0 + ct sqrt(1-ab) e and mean-variance + posterior variance = 1 - prev.
        assert c0 + ct * math.sqrt(ab) == pytest.approx(math.sqrt(prev), rel=1e-9, abs=1e-12)
        assert (ct**2) * (1 - ab) + std**2 == pytest.approx(1 - prev, rel=1e-9, abs=1e-12)
        prev = ab


def test_respacing_rejects_bad_step_counts():
    with pytest.raises(ValueError, match="num_steps must be in"):
        respaced_schedule(1000, 0)
    with pytest.raises(ValueError, match="num_steps must be in"):
        DiffusionHead(2, 3, width=8, depth=1, num_sampling_steps=2000)
    with pytest.raises(
        ValueError, match=r"clip_denoised must be a finite number in \(0, inf\); got 0.0"
    ):
        DiffusionHead(2, 3, width=8, depth=1, clip_denoised=0.0)


def test_loss_matches_float64_epsilon_mse():
    torch.manual_seed(0)
    head = DiffusionHead(2, 4, width=16, depth=2, num_samples=3).double()
    with torch.no_grad():  # non-trivial denoiser
        for p in head.parameters():
            p.add_(0.2 * torch.randn_like(p))
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    mask = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    t = rng.integers(0, 1000, size=(3, 5))
    eps = rng.normal(size=(3, 5, 2))
    got = head.loss(
        torch.from_numpy(z),
        torch.from_numpy(y),
        torch.from_numpy(mask),
        t=torch.from_numpy(t),
        noise=torch.from_numpy(eps),
    ).item()
    cond = head.embed_condition(torch.from_numpy(z))
    num = den = 0.0
    for i in range(5):
        per = []
        for j in range(3):
            ab = _f((t[j, i] + 1) / 1000) / _f(0)
            x_t = math.sqrt(ab) * y[i] + math.sqrt(1 - ab) * eps[j, i]
            pred = (
                head.predict_eps(
                    torch.from_numpy(x_t)[None], torch.tensor([t[j, i]]), cond[i : i + 1]
                )
                .detach()
                .numpy()[0]
            )
            per.append(((pred - eps[j, i]) ** 2).mean())
        num += mask[i] * np.mean(per)
        den += mask[i]
    assert got == pytest.approx(num / den, rel=1e-9)


def _oracle(head, mu, s):
    """Exact epsilon-predictor for data ~ N(mu, diag(s^2)): E[eps | x_t] = sqrt(1-ab)(x - sqrt(ab) mu)/(ab s^2 + 1 - ab)."""
    ab_all = torch.tensor(cosine_alphas_cumprod(head.num_train_timesteps), dtype=torch.float64)

    def predict_eps(x, t, cond):
        ab = ab_all[t][..., None]
        return (1 - ab).sqrt() * (x - ab.sqrt() * mu) / (ab * s**2 + 1 - ab)

    return predict_eps


def test_sampler_with_the_exact_denoiser_recovers_a_gaussian_law():
    head = DiffusionHead(2, 3, width=8, depth=1, num_sampling_steps=100).double()
    mu, s = (
        torch.tensor([1.0, -2.0], dtype=torch.float64),
        torch.tensor([0.5, 2.0], dtype=torch.float64),
    )
    head.predict_eps = _oracle(head, mu, s)
    z = torch.zeros(40000, 3, dtype=torch.float64)
    torch.manual_seed(0)
    x = head.sample(z, num_steps=250)
    torch.testing.assert_close(x.mean(0), mu, atol=0.04, rtol=0)
    torch.testing.assert_close(x.std(0), s, rtol=0.03, atol=0)
    # temperature scales the injected noise: at 0.5 the spread is clearly smaller, the mean unchanged
    x_cold = head.sample(z, temperature=0.5)
    torch.testing.assert_close(x_cold.mean(0), mu, atol=0.04, rtol=0)
    assert torch.all(x_cold.std(0) < 0.6 * s)


def test_clip_denoised_bounds_the_clean_estimate():
    """A denoiser that is badly wrong at the noisiest step blows the sample up unless x0_hat is clipped."""
    head = DiffusionHead(1, 3, width=8, depth=1, num_sampling_steps=20).double()
    mu, s = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    exact = _oracle(head, mu, s)

    def wrong(x, t, cond):
        return exact(x, t, cond) + 0.1

    head.predict_eps = wrong
    z = torch.zeros(2000, 3, dtype=torch.float64)
    torch.manual_seed(0)
    assert head.sample(z).abs().min() > 10  # every sample is pushed far from N(0, 1)
    head.clip_denoised = 3.0
    torch.manual_seed(0)
    assert head.sample(z).abs().max() < 5


def test_zero_initialised_denoiser_and_default_configuration():
    head = DiffusionHead(16, 32, width=64, depth=2)
    assert (
        head.num_sampling_steps == 100
        and head.num_samples == 4
        and head.num_train_timesteps == 1000
    )
    z = torch.randn(3, 32)
    eps = head.predict_eps(torch.randn(3, 16), torch.tensor([0, 500, 999]), head.embed_condition(z))
    assert torch.all(eps == 0)
