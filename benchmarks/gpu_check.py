"""The Python steps of ``benchmarks/gpu_check.sh``: device facts, the sample scores against ``torch.cdist``,
and a short EAR-B training run on synthetic latents. Each step writes one JSON file into ``--out``.

::

    python benchmarks/gpu_check.py facts --out DIR
    python benchmarks/gpu_check.py scores --out DIR [--smoke]
    python benchmarks/gpu_check.py train-ear-b --out DIR [--smoke]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from reference.ear.configs import apply_overrides, preset  # noqa: E402
from reference.ear.model import build_model, param_groups  # noqa: E402
from reference.ear.trainer import build_optimizer, clip_gradients, official_loss_factor  # noqa: E402
from scoringrules_torch.functional.energy import energy_score  # noqa: E402


def device_of(smoke: bool) -> torch.device:
    if smoke or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def facts(out: Path, smoke: bool) -> dict:
    res = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda_available": torch.cuda.is_available(),
        "smoke": smoke,
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        res.update(
            gpu=p.name,
            memory_gib=round(p.total_memory / 2**30, 1),
            capability=f"{p.major}.{p.minor}",
            bf16=torch.cuda.is_bf16_supported(),
            cuda=torch.version.cuda,
        )
    return res


def scores(out: Path, smoke: bool) -> dict:
    """The energy score (and its "pairs" estimator) on the device against a float64 ``torch.cdist`` loss."""
    dev = device_of(smoke)
    sizes = [(4, 256, 16)] if smoke else [(4, 4096, 16), (8, 65536, 16), (32, 8192, 64)]
    rows = []
    for m, n, d in sizes:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(m, n, d, generator=g, dtype=torch.float64)
        y = torch.randn(n, d, generator=g, dtype=torch.float64)
        xs = x.permute(1, 0, 2)
        acc = torch.cdist(xs, y[:, None]).squeeze(-1).mean(1)
        pair = torch.cdist(xs, xs)
        fair = acc - pair.sum((1, 2)) / (2 * m * (m - 1))
        half = m // 2
        pairs = acc - (x[:half] - x[half:]).norm(dim=-1).sum(0) / m
        for name, want in (("fair", fair), ("pairs", pairs)):
            for dtype in (torch.float32, torch.bfloat16):
                got = energy_score(
                    x.to(dev, dtype), y.to(dev, dtype), estimator=name, reduction="none"
                )
                err = float(((got.double().cpu() - want).abs() / want.abs().clamp_min(1e-3)).max())
                rows.append(
                    {
                        "m": m,
                        "n": n,
                        "d": d,
                        "estimator": name,
                        "dtype": str(dtype),
                        "max_rel_err": err,
                    }
                )
    tol = {"torch.float32": 1e-4, "torch.bfloat16": 5e-2}
    ok = all(r["max_rel_err"] < tol[r["dtype"]] for r in rows)
    return {"device": str(dev), "rows": rows, "ok": ok}


def train_ear_b(out: Path, smoke: bool) -> dict:
    """100 steps of EAR-B (tiny model in ``--smoke``) on synthetic, class-structured latents (bf16 on CUDA)."""
    dev = device_of(smoke)
    torch.manual_seed(0)
    if smoke:
        cfg = apply_overrides(preset("tiny"), ["train.lr=0.002"])
        steps, batch = 30, 16
    else:
        cfg = apply_overrides(preset("ear_b"), ["train.lr=4e-4", "train.warmup_epochs=0"])
        steps, batch = 100, 32
    mc, tc = cfg.model, cfg.train
    model = build_model(mc).to(dev)
    opt = build_optimizer(
        param_groups(model, weight_decay=tc.weight_decay, score_lrscale=tc.score_lrscale),
        tc.lr,
        tc,
        dev,
    )
    for g in opt.param_groups:
        g["lr"] = tc.lr * g["lr_scale"]
    # synthetic latents: a class-dependent smooth pattern plus noise (a distribution the model can learn)
    protos = torch.randn(mc.num_classes, mc.num_tokens, mc.token_dim, device=dev) * 0.5
    params = [p for p in model.parameters() if p.requires_grad]
    use_bf16 = dev.type == "cuda"
    losses, norms = [], []
    t0 = time.time()
    model.train()
    for _ in range(steps):
        labels = torch.randint(0, mc.num_classes, (batch,), device=dev)
        tokens = protos[labels] + 0.3 * torch.randn(batch, mc.num_tokens, mc.token_dim, device=dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = model(tokens, labels)
        loss.backward()
        norms.append(clip_gradients(params, tc.grad_clip, official_loss_factor(mc)))
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach().float())
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.time() - t0
    losses_f = [float(v) for v in losses]
    k = max(1, steps // 10)
    first, last = sum(losses_f[:k]) / k, sum(losses_f[-k:]) / k
    finite = all(math.isfinite(v) for v in losses_f) and all(
        bool(torch.isfinite(p).all()) for p in params
    )
    res = {
        "device": str(dev),
        "model": cfg.name,
        "parameters_m": round(sum(p.numel() for p in params) / 1e6, 1),
        "steps": steps,
        "batch": batch,
        "bf16": use_bf16,
        "seconds": round(seconds, 1),
        "loss_first": first,
        "loss_last": last,
        "clipped_steps": int(sum(float(n) > tc.grad_clip for n in norms)),
        "finite": finite,
        "ok": finite and last < first,
    }
    if dev.type == "cuda":
        res["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return res


STEPS = {"facts": facts, "scores": scores, "train-ear-b": train_ear_b}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("step", choices=sorted(STEPS))
    p.add_argument("--out", required=True)
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = STEPS[args.step](out, args.smoke)
    (out / f"{args.step}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0 if res.get("ok", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
