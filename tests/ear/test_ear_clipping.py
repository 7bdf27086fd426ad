"""Gradient clipping acts on the official EAR loss scale: ours clips exactly the steps the official rule would."""

import dataclasses

import torch

from reference.ear.configs import preset
from reference.ear.model import build_head
from reference.ear.trainer import clip_gradients, official_loss_factor


def _official_loss(x: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    """EAR's loss from ``2s`` draws ``x (2s, N, d)``: per token and sample pair ``(k, k + s)``,
    ``||x1 - y|| + ||x2 - y|| - tau ||x1 - x2||``, averaged over tokens and pairs (the official code tiles
    the batch ``s`` times and draws one pair per copy)."""
    s = x.shape[0] // 2
    x1, x2 = x[:s], x[s:]
    per = (x1 - y).norm(dim=-1) + (x2 - y).norm(dim=-1) - tau * (x1 - x2).norm(dim=-1)
    return per.mean()


def test_clipping_on_the_official_scale_clips_the_same_steps_by_the_same_ratio():
    mc = dataclasses.replace(preset("tiny").model, score_batch_mul=2, train_temperature=0.99)
    assert official_loss_factor(mc) == 2.0
    assert official_loss_factor(dataclasses.replace(mc, head="diffusion")) == 1.0
    torch.manual_seed(0)
    head = build_head(mc)
    with torch.no_grad():  # leave the zero-initialised start, where every sample is 0
        for p in head.parameters():
            p.add_(0.2 * torch.randn_like(p))
    params = list(head.parameters())
    m, n = 2 * mc.score_batch_mul, 24
    trials = []
    for t in range(10):
        z = torch.randn(n, mc.width) * (0.5 + t / 3)
        y = torch.randn(n, mc.token_dim)
        noise = torch.rand(m, n, mc.noise_dim) - 0.5
        ours = head.loss(z, y, noise=noise)
        official = _official_loss(head(z, noise), y, mc.train_temperature)
        torch.testing.assert_close(official, 2 * ours, rtol=1e-5, atol=1e-6)
        g_ours = torch.autograd.grad(ours, params)
        g_off = torch.autograd.grad(official, params)
        trials.append((g_ours, g_off))
    off_norms = [
        float(torch.linalg.vector_norm(torch.stack([g.norm() for g in go]))) for _, go in trials
    ]
    threshold = sorted(off_norms)[
        len(off_norms) // 2
    ]  # the official rule clips about half of the steps
    official_clips, our_clips = [], []
    for (g_ours, g_off), norm_off in zip(trials, off_norms, strict=True):
        # the official rule (torch.nn.utils.clip_grad_norm_ on the official gradients)
        coef = min(1.0, threshold / (norm_off + 1e-6))
        official_clips.append(coef < 1.0)
        for p, g in zip(params, g_ours, strict=True):
            p.grad = g.clone()
        reported = clip_gradients(params, threshold, official_loss_factor(mc))
        assert abs(float(reported) - norm_off) <= 1e-4 * norm_off
        our_clips.append(
            any(not torch.equal(p.grad, g) for p, g in zip(params, g_ours, strict=True))
        )
        for p, g in zip(params, g_off, strict=True):
            torch.testing.assert_close(2 * p.grad, g * coef, rtol=1e-4, atol=1e-7)
    assert our_clips == official_clips
    assert 0 < sum(official_clips) < len(official_clips)
    # clipping our gradients at the official threshold (the old rule) would clip fewer steps
    old = [float(torch.stack([g.norm() for g in go]).norm()) > threshold for go, _ in trials]
    assert sum(old) < sum(official_clips)
