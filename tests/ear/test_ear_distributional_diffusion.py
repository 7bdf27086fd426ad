"""The reference EAR with ``model.head="distributional_diffusion"`` and the sampling-time ``sample.head_steps``."""

import pytest
import torch

from reference.ear.configs import ModelConfig, SampleConfig, apply_overrides, preset
from reference.ear.model import EAR, build_head
from reference.ear.sampling import generate
from scoringrules_torch.heads import DiffusionHead, DistributionalDiffusionHead


def _tiny(head, **model):
    cfg = dict(preset("tiny").model.__dict__, head=head, diffusion_steps=5, **model)
    torch.manual_seed(0)
    ear = EAR(ModelConfig(**cfg))
    with torch.no_grad():  # move the zero-initialised output layers so samples are not all zero
        for p in ear.head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return ear


def _count_head_calls(ear):
    calls = []
    handle = ear.head.net.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def test_build_head_reads_the_config():
    mc = ModelConfig(
        **dict(
            preset("tiny").model.__dict__,
            head="distributional_diffusion",
            score_batch_mul=3,
            beta=0.5,
            train_temperature=0.8,
            diffusion_steps=4,
        )
    )
    head = build_head(mc)
    assert isinstance(head, DistributionalDiffusionHead)
    assert (head.token_dim, head.cond_dim) == (mc.token_dim, mc.width)
    assert (head.width, head.depth, head.noise_dim) == (mc.head_width, mc.head_depth, mc.noise_dim)
    assert head.num_samples == 6 and head.beta == 0.5 and head.spread_weight == 0.8
    assert head.num_sampling_steps == 4
    # the paper's lambda is at most 1: the head says so, naming the argument
    with pytest.raises(ValueError, match=r"spread_weight must be a finite number in \[0, 1\]; got 1.5"):
        build_head(ModelConfig(**dict(mc.__dict__, train_temperature=1.5)))


def test_the_model_trains_and_samples_with_the_head():
    ear = _tiny("distributional_diffusion")
    labels = torch.tensor([0, 3, 7])
    tokens = torch.randn(3, ear.config.num_tokens, ear.config.token_dim)
    loss = ear(tokens, labels)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in ear.parameters() if p.grad is not None)
    ear.eval()
    out = ear.sample(labels, num_iter=3, cfg=2.0, temperature=0.8, head_steps=2)
    assert out.shape == tokens.shape and torch.isfinite(out).all() and out.abs().max() > 0


@pytest.mark.parametrize("head", ["diffusion", "distributional_diffusion"])
@pytest.mark.parametrize("head_steps", [None, 2, 4])
def test_head_steps_sets_the_number_of_denoiser_calls(head, head_steps):
    """One head call per AR step; inside it the denoiser runs ``head_steps`` times (default: diffusion_steps)."""
    ear = _tiny(head).eval()
    calls, handle = _count_head_calls(ear)
    try:
        ear.sample(torch.tensor([1, 2]), num_iter=3, cfg=1.0, head_steps=head_steps)
    finally:
        handle.remove()
    assert len(calls) == 3 * (5 if head_steps is None else head_steps)


def test_generate_passes_head_steps_through():
    ear = _tiny("distributional_diffusion")
    calls, handle = _count_head_calls(ear)
    try:
        generate(
            ear, torch.tensor([0, 1, 2]), num_iter=2, cfg=1.0, cfg_schedule="constant",
            temperature=1.0, batch_size=3, device=torch.device("cpu"), head_steps=3,
        )
    finally:
        handle.remove()
    assert len(calls) == 2 * 3


def test_head_steps_errors():
    ear = _tiny("implicit").eval()
    with pytest.raises(ValueError, match="head_steps=2 needs a head with sampling steps"):
        ear.sample(torch.tensor([1]), num_iter=2, head_steps=2)
    ear = _tiny("distributional_diffusion").eval()
    with pytest.raises(ValueError, match="head_steps must be None or an int >= 1; got 0"):
        ear.sample(torch.tensor([1]), num_iter=2, head_steps=0)
    with pytest.raises(ValueError, match=r"sample.head_steps must be .*; got 0"):
        SampleConfig(head_steps=0)
    with pytest.raises(TypeError, match="sample.head_steps must be"):
        SampleConfig(head_steps=2.5)
    cfg = apply_overrides(preset("tiny"), ["sample.head_steps=4", "model.head=distributional_diffusion"])
    assert cfg.sample.head_steps == 4 and cfg.model.head == "distributional_diffusion"
    with pytest.raises(ValueError, match="model.head must be one of"):
        apply_overrides(preset("tiny"), ["model.head=ddpm"])


def test_diffusion_head_default_unchanged():
    """The MAR arm keeps its own sampler: DiffusionHead with the unclipped default."""
    head = build_head(ModelConfig(**dict(preset("tiny").model.__dict__, head="diffusion")))
    assert isinstance(head, DiffusionHead) and head.clip_denoised is None
