"""The masked-AR sampler: schedule, CFG scales, one prediction per token, temperature only on the shifts."""

import math

import pytest
import torch
from torch import nn

from reference.ear.configs import ModelConfig
from reference.ear.model import EAR, sampling_plan


def test_64_steps_over_256_tokens_match_the_official_schedule():
    plan = sampling_plan(256, 64, cfg=3.0)
    counts = [p for p, _, _ in plan]
    assert len(plan) == 64 and sum(counts) == 256
    # facts of the official schedule (notes §2.7): 13 single-token steps, then 2, 3, 2, 2, 3, ..., 6-7 at the end
    assert counts[:13] == [1] * 13 and counts[13:18] == [2, 3, 2, 2, 3]
    assert set(counts[-10:]) <= {6, 7}


@pytest.mark.parametrize("L,K", [(256, 64), (16, 16), (16, 4), (49, 64), (1, 3), (10, 1)])
def test_every_token_is_predicted_once_and_the_count_follows_the_cosine(L, K):
    plan = sampling_plan(L, K)
    assert sum(p for p, _, _ in plan) == L
    masked = L
    for k, (pred, after, _) in enumerate(plan):
        if (
            k < K - 1
        ):  # independent restatement: floor(L cos(pi/2 (k+1)/K)), clamped to [1, masked - 1]
            expected = max(1, min(masked - 1, math.floor(L * math.cos(math.pi / 2 * (k + 1) / K))))
            assert after == expected
        else:
            assert after == 0
        assert pred == masked - after
        masked = after


def test_linear_cfg_scale_sequence():
    plan = sampling_plan(256, 64, cfg=3.0, cfg_schedule="linear")
    scales = [s for _, _, s in plan]
    assert scales[0] == pytest.approx(1 + 2 * 1 / 256)  # 255 tokens still masked after step 0
    assert all(b >= a for a, b in zip(scales, scales[1:], strict=False))
    assert scales[-1] == pytest.approx(1 + 2 * 255 / 256)  # never reaches cfg exactly
    for _, after, s in plan[:-1]:
        assert s == pytest.approx(1 + 2 * (256 - after) / 256)
    assert all(s == 3.0 for _, _, s in sampling_plan(256, 64, cfg=3.0, cfg_schedule="constant"))


class RecordingHead(nn.Module):
    """Returns z[..., :token_dim] + 100 * call index, and records the rows it was asked for."""

    def __init__(self, token_dim):
        super().__init__()
        self.token_dim = token_dim
        self.calls = []
        self.dummy = nn.Parameter(torch.zeros(1))

    def loss(self, z, target, mask=None):
        return (z.sum() * 0 + self.dummy).sum()

    def sample(self, z, temperature=1.0):
        self.calls.append((z.clone(), temperature))
        return z[..., : self.token_dim] * 0 + 100.0 * len(self.calls)


def _model(head, **kw):
    cfg = dict(
        num_tokens=12,
        token_dim=3,
        width=16,
        depth=1,
        num_heads=2,
        buffer_size=2,
        num_classes=4,
        attn_dropout=0.0,
        proj_dropout=0.0,
    )
    cfg.update(kw)
    torch.manual_seed(0)
    return EAR(ModelConfig(**cfg), head=head).eval()


def test_sampler_predicts_each_token_once_in_the_planned_counts():
    head = RecordingHead(3)
    m = _model(head)
    out = m.sample(torch.tensor([0, 3]), num_iter=5, cfg=1.0)
    plan = sampling_plan(12, 5)
    assert [c[0].shape[0] for c in head.calls] == [2 * p for p, _, _ in plan]
    # every token was written exactly once, by the step that predicted it (never revised)
    step_of = out[..., 0] / 100.0
    for k, (p, _, _) in enumerate(plan):
        assert torch.all((step_of == k + 1).sum(1) == p)


def test_cfg_mixes_hidden_states_with_the_linear_scale():
    head = RecordingHead(3)
    m = _model(head)
    torch.manual_seed(5)
    m.sample(torch.tensor([1]), num_iter=4, cfg=3.0)
    # recompute the conditional / null hidden states for the first step and mix them by hand
    torch.manual_seed(5)
    orders = torch.rand(1, 12).argsort(-1)
    tokens = torch.zeros(1, 12, 3)
    mask = torch.ones(1, 12, dtype=torch.bool)
    zc = m.backbone(tokens, mask, m.class_emb(torch.tensor([1])))
    zu = m.backbone(tokens, mask, m.fake_latent)
    pred, after, s = sampling_plan(12, 4, cfg=3.0)[0]
    first = orders[0, after:]  # the positions unmasked at step 0 (tail of the order)
    sel = torch.zeros(12, dtype=torch.bool)
    sel[first] = True
    expected = zu[0][sel] + s * (zc[0][sel] - zu[0][sel])
    assert torch.allclose(head.calls[0][0], expected, atol=1e-5)
    assert s == pytest.approx(1 + 2 * (12 - after) / 12)


def test_temperature_reaches_the_head_only_and_scales_only_the_shifts():
    from scoringrules_torch.heads import ImplicitGeneratorHead

    torch.manual_seed(0)
    head = ImplicitGeneratorHead(3, 16, width=8, depth=2, noise_dim=4, num_samples=2)
    with torch.no_grad():  # move away from the zero init so that every part of the head is active
        for p in head.parameters():
            p.add_(0.3 * torch.randn_like(p))
    m = _model(head)
    labels = torch.tensor([0, 2])

    def run(t):
        torch.manual_seed(11)
        return m.sample(labels, num_iter=3, cfg=2.0, temperature=t)

    assert not torch.allclose(run(1.0), run(0.4))
    with torch.no_grad():  # zero the shift part (first `width` outputs) of every block's modulation
        for blk in head.blocks:
            blk.modulation.weight[:8] = 0
            blk.modulation.bias[:8] = 0
    assert torch.equal(run(1.0), run(0.4))
