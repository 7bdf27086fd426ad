"""The trainer's and sampler's fast-path switches give the plain path's results (on CPU).

Each switch of ``TrainConfig`` / ``ModelConfig`` / ``SampleConfig`` (fused AdamW, bf16 autocast, torch.compile,
SDPA, head on masked positions only, DDP no_sync on accumulation micro-steps, TF32 / channels-last) is compared
with the path it replaces, on the tiny preset.
"""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reference.ear.checkpoint import load_checkpoint
from reference.ear.configs import ModelConfig, apply_overrides, preset
from reference.ear.distributed import Dist
from reference.ear.model import EAR
from reference.ear.trainer import (
    build_optimizer,
    compile_training,
    configure_backends,
    fused_adamw_supported,
    train,
)

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path, name, *sets):
    cfg = apply_overrides(
        preset("tiny"),
        ["train.max_steps=4", "train.log_every=1", "model.attn_dropout=0.0", *sets],
    )
    out = train(cfg, tmp_path / name, d=Dist(), progress=False)
    with open(tmp_path / name / "log.csv") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    params = {n: p.detach().clone() for n, p in out["model"].named_parameters()}
    return losses, params


def _assert_params_close(a, b, rtol, atol):
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=rtol, atol=atol, msg=lambda m, n=n: f"{n}: {m}")


def test_fused_adamw_matches_the_foreach_path(tmp_path):
    assert fused_adamw_supported(torch.device("cpu"))
    l_plain, p_plain = _run(tmp_path, "plain", "train.fused_optimizer=false")
    l_fused, p_fused = _run(tmp_path, "fused", "train.fused_optimizer=true")
    payload, _ = load_checkpoint(tmp_path / "fused")
    assert all(g.get("fused") for g in payload["optimizer"]["param_groups"])
    payload, _ = load_checkpoint(tmp_path / "plain")
    assert not any(g.get("fused") for g in payload["optimizer"]["param_groups"])
    torch.testing.assert_close(l_fused, l_plain, rtol=1e-5, atol=1e-6)
    # Adam's update m / sqrt(v) is O(lr) even for the tiny gradients of the zero-initialised modulation
    # layers, so rounding differences there show up at ~1e-3 of the 4 steps' movement (4 x lr = 4e-3)
    _assert_params_close(p_fused, p_plain, rtol=1e-4, atol=2e-5)


def test_bf16_autocast_is_close_to_fp32_and_really_runs(tmp_path):
    l32, p32 = _run(tmp_path, "fp32", "train.precision=fp32")
    l16, p16 = _run(tmp_path, "bf16", "train.precision=bf16")
    assert l16 != l32  # the bf16 path was taken
    torch.testing.assert_close(torch.tensor(l16), torch.tensor(l32), rtol=3e-2, atol=0.0)
    _assert_params_close(
        p16, p32, rtol=0.0, atol=5e-3
    )  # 4 AdamW steps of lr 1e-3 move at most 4e-3


def test_compiled_training_matches_eager(tmp_path):
    l_eager, p_eager = _run(tmp_path, "eager", "train.compile=false")
    l_comp, p_comp = _run(tmp_path, "compiled", 'train.compile="aot_eager"')
    torch.testing.assert_close(l_comp, l_eager, rtol=1e-5, atol=1e-6)
    _assert_params_close(p_comp, p_eager, rtol=1e-4, atol=2e-5)


@pytest.mark.slow
def test_inductor_compiled_training_matches_eager(tmp_path):
    import torch._inductor.config as inductor_config

    # inductor draws random numbers with its own generator; use torch's so that both runs draw the same.
    # ``config.patch`` restores the entry; pytest's monkeypatch would delete it on undo (the config module keeps
    # its values outside the instance ``__dict__``), and every later inductor compile then fails with
    # "torch._inductor.config.fallback_random does not exist".
    l_eager, p_eager = _run(tmp_path, "eager", "train.compile=false")
    with inductor_config.patch(fallback_random=True):
        l_comp, p_comp = _run(tmp_path, "compiled", "train.compile=true")
    torch.testing.assert_close(l_comp, l_eager, rtol=1e-4, atol=1e-5)
    # atol 5e-5: AdamW normalises each update, so an entry of a zero-initialised weight whose gradient is at
    # rounding level can move by a few lr-sized steps differently under inductor (one of 2048 entries of the
    # head's final modulation moved by 2.2e-5 after the official-scale clipping of issue 15)
    _assert_params_close(p_comp, p_eager, rtol=1e-3, atol=5e-5)


def test_compile_training_rejects_bad_settings():
    m = torch.nn.Linear(2, 2)
    assert compile_training(m, False) is m
    with pytest.raises(ValueError, match="train.compile must be"):
        compile_training(m, 3)


def _pair(common: dict, differ: dict) -> tuple[EAR, EAR]:
    """Two tiny models with identical weights; the second's config also has ``differ``."""
    base = dict(preset("tiny").model.__dict__, attn_dropout=0.0, proj_dropout=0.0, **common)
    torch.manual_seed(0)
    a = EAR(ModelConfig(**base))
    b = EAR(ModelConfig(**{**base, **differ}))
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_matches_the_explicit_attention(causal):
    sdpa, plain = _pair({"causal": causal}, {"sdpa": False})
    sdpa, plain = sdpa.double(), plain.double()
    assert plain.blocks[0].attn.sdpa is False
    tokens = torch.randn(3, 4, 16, dtype=torch.float64)
    mask = torch.tensor([[True, False, True, True]] * 3)
    labels = torch.tensor([1, 2, 3])
    z1 = sdpa.backbone(tokens, mask, sdpa.class_vectors(labels))
    z2 = plain.backbone(tokens, mask, plain.class_vectors(labels))
    torch.testing.assert_close(z1, z2, rtol=1e-10, atol=1e-12)
    z1.square().sum().backward()
    z2.square().sum().backward()
    for (n, p1), p2 in zip(sdpa.named_parameters(), plain.parameters(), strict=True):
        if p1.grad is not None:
            torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-9, atol=1e-11, msg=n)


def test_head_on_masked_positions_only_equals_the_masked_mean_over_all():
    # the Gaussian (MSE) head's loss has no noise, so both paths must agree exactly up to rounding
    a, b = _pair({"head": "gaussian"}, {"head_on_masked_only": False})
    assert a.config.head_on_masked_only and not b.config.head_on_masked_only
    tokens, labels = torch.randn(6, 4, 16), torch.randint(0, 10, (6,))
    torch.manual_seed(1)
    la = a(tokens, labels)
    torch.manual_seed(1)
    lb = b(tokens, labels)
    torch.testing.assert_close(la, lb, rtol=1e-6, atol=1e-6)
    la.backward()
    lb.backward()
    for (n, p1), p2 in zip(a.named_parameters(), b.parameters(), strict=True):
        if p1.grad is not None:
            torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-5, atol=1e-7, msg=n)


@pytest.mark.parametrize("head", ["implicit", "diffusion"])
def test_compiled_sampling_matches_eager(head):
    cfg = dict(preset("tiny").model.__dict__, head=head, diffusion_steps=5)
    torch.manual_seed(0)
    eager = EAR(ModelConfig(**cfg)).eval()
    with torch.no_grad():  # move the zero-initialised output layers so samples are not all zero
        for p in eager.head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    comp = EAR(ModelConfig(**cfg)).eval()
    comp.load_state_dict(eager.state_dict())
    comp.compile_for_sampling(backend="aot_eager")
    labels = torch.tensor([0, 3, 7])
    torch.manual_seed(5)
    t1 = eager.sample(labels, num_iter=3, cfg=2.0, temperature=0.8)
    torch.manual_seed(5)
    t2 = comp.sample(labels, num_iter=3, cfg=2.0, temperature=0.8)
    assert t1.abs().max() > 0
    torch.testing.assert_close(t2, t1, rtol=1e-5, atol=1e-6)


def test_ddp_no_sync_on_accumulation_steps_matches_syncing_every_micro_step(tmp_path, run_ddp_tiny):
    params = []
    for no_sync in (True, False):
        out = tmp_path / f"no_sync_{no_sync}"
        run_ddp_tiny(out, f"train.ddp_no_sync={str(no_sync).lower()}", "model.attn_dropout=0.0")
        params.append(torch.load(out / "params-rank0.pt", weights_only=True))
    # 6 AdamW steps of lr 1e-3 move a parameter by up to ~6e-3; a lost or doubled micro-step gradient changes
    # the result at that scale, while reduction-order rounding (amplified by Adam's m / sqrt(v) on the tiny
    # gradients of zero-initialised layers) stays near 2e-5
    _assert_params_close(params[0], params[1], rtol=1e-4, atol=6e-5)


def _flags_in_fresh_interpreter(imports: str) -> str:
    code = f"import torch{imports}; print(torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)"
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return res.stdout.strip()


def test_tf32_is_set_by_the_training_script_only_and_only_for_cuda():
    # importing the library, the model and the trainer leaves torch's defaults alone
    assert _flags_in_fresh_interpreter(
        ", scoringrules_torch, reference.ear.model, reference.ear.trainer, reference.ear.train"
    ) == _flags_in_fresh_interpreter("")
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    tc = preset("tiny").train
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        configure_backends(tc, torch.device("cpu"))
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        configure_backends(tc, torch.device("cuda"))  # only flips flags; needs no GPU
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        off = apply_overrides(preset("tiny"), ["train.tf32=false"]).train
        configure_backends(off, torch.device("cuda"))
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_channels_last_vae_encoding_matches_contiguous(small_vae):
    from reference.ear.tokenizer import KLTokenizer

    vae = small_vae().eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    plain = KLTokenizer(vae, scale=0.2325).encode(x, sample=False)
    vae_cl = vae.to(memory_format=torch.channels_last)
    cl = KLTokenizer(vae_cl, scale=0.2325).encode(
        x.contiguous(memory_format=torch.channels_last), sample=False
    )
    torch.testing.assert_close(cl, plain, rtol=1e-4, atol=1e-5)


def test_build_optimizer_picks_fused_or_foreach():
    p = [torch.nn.Parameter(torch.randn(3))]
    tc = preset("tiny").train
    opt = build_optimizer([{"params": p}], 1e-3, tc, torch.device("cpu"))
    assert opt.param_groups[0]["fused"] is True
    tc.fused_optimizer = False
    opt = build_optimizer([{"params": p}], 1e-3, tc, torch.device("cpu"))
    assert not opt.param_groups[0]["fused"] and opt.param_groups[0]["foreach"]


def test_head_on_masked_positions_only_skips_the_head_work_on_visible_tokens():
    from torch.utils.flop_counter import FlopCounterMode

    a, b = _pair({}, {"head_on_masked_only": False})
    fixed = torch.tensor([[True, False, True, False]] * 6)  # half of the tokens masked
    flops = []
    for m in (a, b):
        m.random_mask = lambda batch, device, num_masked=None: fixed
        m.draw_num_masked = lambda: 2
        with FlopCounterMode(display=False) as fc:
            m(torch.randn(6, 4, 16), torch.randint(0, 10, (6,))).backward()
        flops.append(fc.get_total_flops())
    head_all = flops[1] - flops[0]  # the head's extra work on the 12 visible tokens
    assert head_all > 0
    # the head's work is linear in the positions it sees: 12 masked tokens cost what 12 visible ones do
    with FlopCounterMode(display=False) as fc:
        z = torch.randn(12, a.config.width, requires_grad=True)
        a.head.loss(z, torch.randn(12, 16)).backward()
    assert head_all == fc.get_total_flops()
