"""EAR backbone: preset sizes, masking, attention structure, parameter groups."""

import math

import pytest
import torch

from reference.ear.configs import ModelConfig, preset
from reference.ear.model import EAR, build_model, param_groups

# Published / analytic parameter counts of the official code (notes §2.8; the paper: EAR-B 205M).
PAPER_COUNTS = {"ear_b": 205.6e6, "ear_l": 474.8e6, "ear_h": 937.3e6}
HEAD_COUNTS = {"ear_b": 34.5e6, "ear_l": 70.3e6, "ear_h": 148.5e6}


@pytest.mark.parametrize("name", sorted(PAPER_COUNTS))
def test_preset_parameter_counts_match_the_paper(name):
    with torch.device("meta"):  # nothing is allocated
        model = build_model(preset(name).model)
    total = sum(p.numel() for p in model.parameters())
    head = sum(p.numel() for p in model.head.parameters())
    assert abs(total / PAPER_COUNTS[name] - 1) < 0.01, total
    assert abs(head / HEAD_COUNTS[name] - 1) < 0.01, head


def test_backbone_matrices_follow_the_architecture_formula():
    # 12 D^2 + 13 D per block (qkv, proj, fc1, fc2 with biases, two LayerNorms) -- counted independently
    c = ModelConfig(
        num_tokens=9,
        token_dim=5,
        width=24,
        depth=3,
        num_heads=4,
        buffer_size=3,
        num_classes=7,
        head_width=8,
        head_depth=1,
        noise_dim=4,
    )
    with torch.device("meta"):
        m = build_model(c)
    backbone = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("head."))
    D = 24
    expected = 3 * (12 * D * D + 13 * D) + (5 * D + D) + 7 * D + D + D + (3 + 9) * D + 2 * D
    assert backbone == expected


def _tiny(**kw):
    cfg = dict(
        num_tokens=6,
        token_dim=4,
        width=16,
        depth=2,
        num_heads=2,
        buffer_size=2,
        num_classes=3,
        attn_dropout=0.0,
        proj_dropout=0.0,
        head_width=8,
        head_depth=1,
        noise_dim=4,
        score_batch_mul=1,
    )
    cfg.update(kw)
    torch.manual_seed(0)
    return EAR(ModelConfig(**cfg)).eval()


def test_masked_token_values_do_not_reach_the_backbone():
    m = _tiny()
    x = torch.randn(2, 6, 4)
    mask = torch.tensor([[True, False, True, False, False, True]] * 2)
    cls = m.class_vectors(torch.tensor([0, 2]))
    z1 = m.backbone(x, mask, cls)
    x2 = x.clone()
    x2[mask] = torch.randn_like(x2[mask]) * 10
    assert torch.equal(z1, m.backbone(x2, mask, cls))
    x3 = x.clone()
    x3[~mask] += 1.0  # a visible token changes every output (bidirectional attention)
    z3 = m.backbone(x3, mask, cls)
    assert (z3 - z1).abs().amax(-1).min() > 0


def test_causal_rows_see_only_earlier_tokens():
    m = _tiny(causal=True)
    x = torch.randn(1, 6, 4)
    cls = m.class_vectors(torch.tensor([1]))
    z = m.backbone(x, None, cls)
    x2 = x.clone()
    x2[:, 3:] = torch.randn(1, 3, 4)
    z2 = m.backbone(x2, None, cls)
    # row i predicts token i from tokens < i: rows 0..3 are unchanged, rows 4, 5 change
    assert torch.allclose(z[:, :4], z2[:, :4], atol=1e-6)
    assert not torch.allclose(z[:, 4:], z2[:, 4:])


def test_causal_model_trains_and_samples():
    m = _tiny(causal=True).train()
    loss = m(torch.randn(4, 6, 4), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert torch.isfinite(loss)
    out = m.eval().sample(torch.tensor([0, 1]), cfg=2.0)
    assert out.shape == (2, 6, 4)


def test_training_mask_count_and_ratio_range():
    m = _tiny(num_tokens=40, mask_ratio_min=0.7)
    counts = set()
    torch.manual_seed(1)
    for _ in range(200):
        mask = m.random_mask(5, torch.device("cpu"))
        per_row = mask.sum(1)
        assert torch.all(per_row == per_row[0])  # one ratio per batch
        counts.add(int(per_row[0]))
    # ceil(40 r) with r in [0.7, 1]
    assert min(counts) >= math.ceil(40 * 0.7) and max(counts) <= 40
    assert len(counts) > 5


def test_class_dropout_uses_the_null_class():
    m = _tiny()
    labels = torch.tensor([0, 1, 2])
    null = torch.tensor([False, True, False])
    v = m.class_vectors(labels, null)
    assert torch.equal(v[1], m.fake_latent[0])
    assert torch.equal(v[0], m.class_emb.weight[0]) and torch.equal(v[2], m.class_emb.weight[2])


def test_param_groups_follow_the_official_rules():
    m = _tiny()
    groups = {g["name"]: g for g in param_groups(m, weight_decay=0.02, score_lrscale=0.25)}
    ids = {k: {id(p) for p in g["params"]} for k, g in groups.items()}
    named = dict(m.named_parameters())
    assert id(named["head.blocks.0.ffn.0.weight"]) in ids["head_matrices"]
    assert (
        groups["head_matrices"]["lr_scale"] == 0.25 and groups["head_matrices"]["weight_decay"] == 0
    )
    assert (
        id(named["head.blocks.0.ffn.0.bias"]) in ids["no_decay"]
    )  # head biases at full lr (official quirk)
    for n in (
        "blocks.0.attn.qkv.weight",
        "pos_embed",
        "mask_token",
        "fake_latent",
        "class_emb.weight",
    ):
        assert id(named[n]) in ids["decay"], n
    assert groups["decay"]["weight_decay"] == 0.02
    for n in ("blocks.0.norm1.weight", "blocks.0.attn.qkv.bias", "z_proj.bias"):
        assert id(named[n]) in ids["no_decay"], n
    assert sum(len(v) for v in ids.values()) == len(named)


def test_head_starts_at_zero_and_loss_is_finite():
    m = _tiny().train()
    loss = m(torch.randn(4, 6, 4), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
