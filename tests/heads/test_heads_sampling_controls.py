"""Sampling controls: the diffusion head's default guard (x0 clipped to the learned training-target range) and
the implicit generator's spread control."""

from __future__ import annotations

import math

import pytest
import torch

from scoringrules_torch.heads import DiffusionHead, ImplicitGeneratorHead


def _bimodal_heavy_tailed(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """z ~ N(0, I_4); y = 2 b + 0.3 t_3 + 0.2 z_1 with b = +-1: two modes with Student-t(3) tails."""
    z = torch.randn(n, 4, generator=gen)
    b = torch.randint(0, 2, (n, 1), generator=gen).float() * 2 - 1
    u = torch.rand(n, 1, generator=gen)
    return z, 2.0 * b + 0.3 * _t3_icdf(u) + 0.2 * z[:, :1]


def _t3_icdf(u: torch.Tensor) -> torch.Tensor:
    """Quantile function of Student's t with 3 degrees of freedom by bisection on its closed-form CDF."""
    lo, hi = torch.full_like(u, -1e4), torch.full_like(u, 1e4)
    for _ in range(80):
        mid = (lo + hi) / 2
        x = mid / math.sqrt(3)
        cdf = 0.5 + (torch.atan(x) + x / (1 + x**2)) / math.pi
        lo, hi = torch.where(cdf < u, mid, lo), torch.where(cdf < u, hi, mid)
    return (lo + hi) / 2


@pytest.fixture(scope="module")
def briefly_trained_diffusion():
    """A default-size DiffusionHead after 60 Adam steps on the bimodal heavy-tailed target."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    head = DiffusionHead(1, 4, num_sampling_steps=20)
    opt = torch.optim.Adam(head.parameters(), lr=2e-3)
    seen_min, seen_max = math.inf, -math.inf
    for _ in range(60):
        z, y = _bimodal_heavy_tailed(128, gen)
        mask = torch.ones(128, dtype=torch.bool)
        mask[:8] = False  # masked-out targets must not widen the range
        y[:8] = 1e6
        seen_min = min(seen_min, y[mask].min().item())
        seen_max = max(seen_max, y[mask].max().item())
        loss = head.loss(z, y, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    return head, seen_min, seen_max


def test_diffusion_records_the_training_range(briefly_trained_diffusion):
    head, seen_min, seen_max = briefly_trained_diffusion
    assert head.target_min.item() == pytest.approx(seen_min)
    assert head.target_max.item() == pytest.approx(seen_max)
    low, high = head.clip_bounds()
    pad = 0.1 * (seen_max - seen_min)
    assert low.item() == pytest.approx(seen_min - pad) and high.item() == pytest.approx(
        seen_max + pad
    )
    # eval-mode losses do not move it
    head.loss(torch.zeros(2, 4), torch.full((2, 1), 1e3))
    assert head.target_max.item() == pytest.approx(seen_max)


def test_diffusion_default_sampling_stays_within_the_learned_range(briefly_trained_diffusion):
    """The stated bound: every draw lies in [min - 0.1 w, max + 0.1 w] of the training targets (w = max - min).
    Unclipped sampling (MAR's, ``clip_denoised=None``) of the same briefly trained head does not."""
    head, seen_min, seen_max = briefly_trained_diffusion
    pad = 0.1 * (seen_max - seen_min)
    z, _ = _bimodal_heavy_tailed(40, torch.Generator().manual_seed(5))
    torch.manual_seed(1)
    draws = head.sample(z, num_samples=25)
    assert torch.isfinite(draws).all()
    assert (
        draws.min().item() >= seen_min - pad - 1e-5 and draws.max().item() <= seen_max + pad + 1e-5
    )
    # and they are not collapsed onto the bounds: most draws sit inside the data's bulk
    assert ((draws.abs() < 4).float().mean() > 0.8).item()
    unclipped = DiffusionHead(1, 4, num_sampling_steps=20, clip_denoised=None)
    unclipped.load_state_dict(head.state_dict())
    torch.manual_seed(1)
    wild = unclipped.sample(z, num_samples=25)
    assert ((wild < seen_min - pad) | (wild > seen_max + pad)).float().mean() > 0.2


def test_diffusion_clip_options_and_checkpoints():
    head = DiffusionHead(2, 3, width=16, depth=1, num_sampling_steps=5)
    low, high = head.clip_bounds()  # nothing seen yet: no bound
    assert torch.all(low == -math.inf) and torch.all(high == math.inf)
    fixed = DiffusionHead(2, 3, width=16, depth=1, clip_denoised=2.5)
    assert fixed.clip_bounds()[1].tolist() == [2.5, 2.5]
    with torch.no_grad():
        for p in fixed.parameters():
            p.add_(torch.randn_like(p))
    assert fixed.sample(torch.randn(50, 3), num_samples=4).abs().max() <= 2.5
    # a checkpoint written before the range buffers existed still loads (range unseen)
    old = {k: v for k, v in head.state_dict().items() if not k.startswith("target_")}
    fresh = DiffusionHead(2, 3, width=16, depth=1)
    fresh.load_state_dict(old)
    assert torch.all(fresh.target_min == math.inf)


def test_diffusion_timesteps_and_noise_are_checked():
    head = DiffusionHead(2, 3, width=16, depth=1, num_samples=2)
    z, y = torch.randn(4, 3), torch.randn(4, 2)
    with pytest.raises(
        ValueError, match=r"t must hold timesteps in \[0, num_train_timesteps=1000\); got "
    ):
        head.loss(z, y, t=torch.full((2, 4), 1000))
    with pytest.raises(ValueError, match=r"got values in \[-1, 5\]"):
        head.loss(z, y, t=torch.tensor([[0, 1, 2, 5], [-1, 0, 0, 0]]))
    with pytest.raises(
        TypeError, match="t must be an integer tensor of timesteps; got dtype torch.float32"
    ):
        head.loss(z, y, t=torch.zeros(2, 4))
    with pytest.raises(
        ValueError, match=r"t must have shape \(num_samples, \*positions\) = \(2, 4\)"
    ):
        head.loss(z, y, t=torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"noise must have shape .* = \(2, 4, 2\); got \(2, 8\)"):
        head.loss(z, y, noise=torch.zeros(2, 8))
    with pytest.raises(ValueError, match=r"num_steps must be an int >= 1; got 0"):
        head.sample(z, num_steps=0)


# -- the implicit generator's spread -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_implicit():
    """An implicit head after 150 steps on y | z ~ N(z_1, (0.2 + |z_2|)^2): a spread that depends on z."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    head = ImplicitGeneratorHead(1, 3, num_samples=8)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(150):
        z = torch.randn(128, 3, generator=gen)
        y = z[:, :1] + (0.2 + z[:, 1:2].abs()) * torch.randn(128, 1, generator=gen)
        loss = head.loss(z, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head


def test_spread_scales_the_predictive_spread_monotonically(trained_implicit):
    head = trained_implicit
    z = torch.tensor([[0.0, 0.5, 0.0], [1.0, -1.5, 0.3]])
    noise = head.draw_noise((2000, 2), z)
    with torch.no_grad():
        base = head.sample(z, num_samples=2000, noise=noise).std(0)
        assert base.min() > 0.1  # the trained head has a real spread
        stds = [
            head.sample(z, num_samples=2000, noise=noise, spread=s).std(0)
            for s in (0.0, 0.5, 1.0, 1.5, 2.0)
        ]
    assert torch.all(stds[0] < 1e-6)  # spread 0: the point forecast g(z, 0)
    for lower, upper in zip(stds, stds[1:], strict=False):
        assert torch.all(upper > lower)
    for s, std in zip((0.5, 1.5, 2.0), (stds[1], stds[3], stds[4]), strict=True):
        torch.testing.assert_close(std, s * base, rtol=1e-4, atol=1e-6)
    # the position with the wider conditional law keeps its wider spread
    assert base[1] > base[0]


def test_spread_per_position_and_errors(trained_implicit):
    head = trained_implicit
    z = torch.randn(3, 3)
    noise = head.draw_noise((500, 3), z)
    with torch.no_grad():
        base = head.sample(z, num_samples=500, noise=noise).std(0)
        mixed = head.sample(
            z, num_samples=500, noise=noise, spread=torch.tensor([0.5, 1.0, 2.0])
        ).std(0)
    torch.testing.assert_close(
        mixed, base * torch.tensor([[0.5], [1.0], [2.0]]), rtol=1e-4, atol=1e-6
    )
    with pytest.raises(ValueError, match="spread must be a finite number >= 0; got -1.0"):
        head.sample(z, spread=-1.0)
    with pytest.raises(TypeError, match="spread must be a number or a tensor; got str"):
        head.sample(z, spread="wide")
