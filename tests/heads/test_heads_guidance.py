"""Classifier-free guidance helpers against EAR's formulas and sampler schedule."""

from __future__ import annotations

import math

import pytest
import torch

from scoringrules_torch.heads import cfg_scale_schedule, guide


def test_guide_formula():
    zc, zu = torch.randn(4, 8, dtype=torch.float64), torch.randn(4, 8, dtype=torch.float64)
    torch.testing.assert_close(guide(zc, zu, 1.0), zc)
    torch.testing.assert_close(guide(zc, zu, 0.0), zu)
    torch.testing.assert_close(guide(zc, zu, 3.0), 3.0 * zc - 2.0 * zu)  # z_c s + (1 - s) z_u
    s = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)[:, None]
    torch.testing.assert_close(guide(zc, zu, s), zu + s * (zc - zu))
    with pytest.raises(ValueError, match="same shape"):
        guide(zc, zu[:2], 2.0)


def _ear_next_masked(num_tokens=256, num_iter=64):
    """EAR/MAR sampler: next_masked = floor(N cos(pi/2 (k+1)/K)) clamped to [1, masked - 1]."""
    masked, out = num_tokens, []
    for k in range(num_iter):
        nxt = math.floor(num_tokens * math.cos(math.pi / 2 * (k + 1) / num_iter))
        nxt = max(1, min(masked - 1, nxt))
        out.append(nxt)
        masked = nxt
    return out


def test_linear_schedule_over_ears_sampler():
    cfg = 3.0
    seq = [cfg_scale_schedule(cfg, 256, nxt) for nxt in _ear_next_masked()]
    assert seq[0] == pytest.approx(1 + 2 * (256 - 255) / 256)
    assert seq[-1] == pytest.approx(
        1 + 2 * 255 / 256
    )  # never reaches cfg: next_masked is clamped to 1
    assert all(a <= b for a, b in zip(seq, seq[1:], strict=False))
    assert cfg_scale_schedule(cfg, 256, 0) == cfg
    assert cfg_scale_schedule(cfg, 256, 256) == 1.0
    assert cfg_scale_schedule(cfg, 256, 100, schedule="constant") == cfg


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((3.0, 256, 300), {}, "next_masked must be an int in"),
        ((3.0, 0, 0), {}, "num_tokens must be a positive int"),
        ((3.0, 256, 10), {"schedule": "cosine"}, "schedule must be one of"),
    ],
)
def test_schedule_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cfg_scale_schedule(*args, **kwargs)
