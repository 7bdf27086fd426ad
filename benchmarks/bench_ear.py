"""EAR training throughput, model FLOPs utilisation, sampling latency and peak memory, on CPU or one GPU.

What one run measures, for one model size on one device:

- **peak**: the device's matrix-product rate, measured here with square ``n x n`` products in the training
  dtype (fp32 on CPU, bf16 for ``--precision bf16``); the best of repeated products over about 2 s;
- **training** (per variant of the fast-path switches): the trainer's step — forward (backbone + head loss on
  the masked tokens), backward, gradient clipping, AdamW step, EMA update — on random tokens, after warm-up
  (which includes compilation); images/s, tokens/s (image tokens), seconds per step. **Model FLOPs** are counted
  with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and attention; elementwise work is not
  counted) on the same steps in eager mode (same seeds, hence the same masks), so MFU = counted FLOPs per second /
  measured peak;
- **sampling**: seconds per image of the masked-AR sampler with classifier-free guidance (``--num-iter`` steps,
  CFG 3 linear) for the implicit generator (EAR) and the diffusion head (MAR-like, ``--diffusion-steps`` DDPM
  steps) on the same backbone, and the same for the head alone (one ``head.sample`` over every token);
- **memory**: peak allocated device memory on a GPU; on a CPU the peak resident set size of the process.

Variants (``--variants``; each is a list of config overrides applied to the size's config):

- ``plain``: fp32, explicit attention, head on all positions (masked mean), foreach AdamW, no compile;
- ``default``: the config's defaults (SDPA, head on the masked tokens only, fused AdamW, bf16 autocast on GPU);
- ``compiled``: ``default`` + ``train.compile=true`` (inductor).

Sizes (``--size``): ``demo`` (the CPU demo: 16 tokens of 49 pixels, width 192, depth 4, head 192 x 2; batch 128);
``ear_b_reduced`` (EAR-B width 768 / 12 heads and EAR-B's head 1024 x 6 with 2 pairs per token, but depth 4,
64 tokens and a 16-position class buffer; batch 8) for CPUs; ``ear_b`` (the paper's EAR-B: depth 24, 256 tokens,
64 buffer positions; batch 64) for one GPU; ``tiny`` (the tests' preset) as a smoke test.

Run (CPU numbers in RESULTS.md; GPU commands in benchmarks/README.md)::

    OMP_NUM_THREADS=1 python benchmarks/bench_ear.py --size demo --threads 1
    OMP_NUM_THREADS=1 python benchmarks/bench_ear.py --size ear_b_reduced --threads 1
    python benchmarks/bench_ear.py --size ear_b --device cuda --variants plain,default,compiled
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch.utils.flop_counter import FlopCounterMode

from reference.ear.configs import RunConfig, apply_overrides, preset
from reference.ear.model import build_model, param_groups
from reference.ear.trainer import (
    build_optimizer,
    clip_gradients,
    compile_training,
    configure_backends,
    official_loss_factor,
    precision_context,
)

VARIANTS = {
    "plain": [
        "train.precision=fp32",
        "model.sdpa=false",
        "model.head_on_masked_only=false",
        "train.fused_optimizer=false",
        "train.compile=false",
    ],
    "default": [],
    "compiled": ["train.compile=true"],
}


def size_config(size: str) -> RunConfig:
    """The benchmark's model and batch for ``size`` (dropouts as in the configs)."""
    if size in ("demo", "tiny"):
        return preset(size)
    if size == "ear_b":
        return apply_overrides(
            preset("ear_b"), ["train.batch_size=64", "train.accumulation_steps=1"]
        )
    if size == "ear_b_reduced":
        return apply_overrides(
            preset("ear_b"),
            [
                "model.depth=4",
                "model.num_tokens=64",
                "model.buffer_size=16",
                "train.batch_size=8",
                "train.accumulation_steps=1",
            ],
        )
    raise ValueError(f"--size must be tiny, demo, ear_b_reduced or ear_b; got {size!r}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_peak(device: torch.device, dtype: torch.dtype, n: int, seconds: float = 2.0) -> dict:
    """Best rate of ``n x n @ n x n`` products (FLOP/s), repeated for about ``seconds``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return {"peak_flops": best, "matmul_n": n, "dtype": str(dtype).replace("torch.", "")}


def _random_batch(config: RunConfig, device: torch.device, seed: int):
    g = torch.Generator().manual_seed(seed)
    m, b = config.model, config.train.batch_size
    tokens = torch.randn(b, m.num_tokens, m.token_dim, generator=g).to(device)
    labels = torch.randint(0, m.num_classes, (b,), generator=g).to(device)
    return tokens, labels


def bench_training(config: RunConfig, device: torch.device, warmup: int, steps: int) -> dict:
    """Throughput of the trainer's step for ``config`` (its fast-path switches), and counted FLOPs."""
    tc = config.train
    torch.manual_seed(0)
    model = build_model(config.model).to(device)
    model.train()
    groups = param_groups(model, weight_decay=tc.weight_decay, score_lrscale=tc.score_lrscale)
    optimizer = build_optimizer(groups, 1e-4, tc, device)
    autocast, use_bf16 = precision_context(tc, device)
    configure_backends(tc, device)
    forward = compile_training(model, tc.compile)
    params = [p for p in model.parameters() if p.requires_grad]
    ema = [p.detach().clone().float() for p in params]

    def step(i: int) -> None:
        tokens, labels = _random_batch(config, device, 1000 + i)
        torch.manual_seed(1000 + i)  # the same masks / noise in the timed and in the counted steps
        with autocast:
            loss = forward(tokens, labels)
        loss.backward()
        clip_gradients(params, tc.grad_clip, official_loss_factor(config.model))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach().float() for p in params], 1.0 - tc.ema_rate)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for i in range(warmup):
        step(i)
    _sync(device)
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    _sync(device)
    seconds = time.perf_counter() - t0
    peak_mem = (
        torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )

    flops = 0
    for i in range(warmup, warmup + steps):  # eager, same seeds: the work the timed steps did
        tokens, labels = _random_batch(config, device, 1000 + i)
        torch.manual_seed(1000 + i)
        with FlopCounterMode(display=False) as fc:
            with autocast:
                loss = model(tokens, labels)
            loss.backward()
        optimizer.zero_grad(set_to_none=True)
        flops += fc.get_total_flops()
    b, L = tc.batch_size, config.model.num_tokens
    return {
        "params_M": round(sum(p.numel() for p in params) / 1e6, 2),
        "batch_size": b,
        "steps": steps,
        "warmup_steps": warmup,
        "warmup_seconds": round(warmup_s, 2),
        "seconds_per_step": seconds / steps,
        "images_per_s": b * steps / seconds,
        "tokens_per_s": b * L * steps / seconds,
        "model_flops_per_step": flops / steps,
        "model_flops_per_s": flops / seconds,
        "bf16": use_bf16,
        "peak_memory_bytes": peak_mem,
        "peak_memory_kind": "max allocated (CUDA)" if device.type == "cuda" else "process peak RSS",
    }


@torch.no_grad()
def bench_sampling(
    config: RunConfig,
    device: torch.device,
    *,
    num_images: int,
    num_iter: int,
    diffusion_steps: int,
    compile_sampler: bool,
) -> dict:
    """Seconds per image (CFG 3, linear) for the implicit and the diffusion head on the same backbone."""
    out = {
        "num_images": num_images,
        "num_iter": num_iter,
        "diffusion_steps": diffusion_steps,
        "cfg": 3.0,
    }
    autocast, _ = precision_context(config.train, device)
    heads = {
        "implicit": ["model.head=implicit"],
        "diffusion": ["model.head=diffusion", f"model.diffusion_steps={diffusion_steps}"],
    }
    labels = torch.arange(num_images, device=device) % config.model.num_classes
    for name, sets in heads.items():
        cfg = apply_overrides(config, sets)
        torch.manual_seed(0)
        model = build_model(cfg.model).to(device).eval()
        if compile_sampler:
            model.compile_for_sampling()
        temperature = 0.7 if name == "implicit" else 1.0
        with autocast:  # warm-up (and compilation): a short run
            model.sample(labels[:2], num_iter=2, cfg=3.0, temperature=temperature)
        _sync(device)
        t = time.perf_counter()
        with autocast:
            model.sample(labels, num_iter=num_iter, cfg=3.0, temperature=temperature)
        _sync(device)
        out[f"{name}_seconds_per_image"] = (time.perf_counter() - t) / num_images
        # the head alone: one draw for every token of the batch (the sampler makes exactly these draws)
        z = torch.randn(num_images * cfg.model.num_tokens, cfg.model.width, device=device)
        with autocast:
            model.head.sample(z[:8], temperature=temperature)
            _sync(device)
            t = time.perf_counter()
            model.head.sample(z, temperature=temperature)
            _sync(device)
        out[f"{name}_head_seconds_per_image"] = (time.perf_counter() - t) / num_images
    out["latency_ratio"] = out["diffusion_seconds_per_image"] / out["implicit_seconds_per_image"]
    out["head_latency_ratio"] = (
        out["diffusion_head_seconds_per_image"] / out["implicit_head_seconds_per_image"]
    )
    return out


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{name}; torch {torch.__version__}, CUDA {torch.version.cuda}; python {platform.python_version()}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return (
        f"{cpu}; {os.cpu_count()} cores; torch threads {torch.get_num_threads()}; torch {torch.__version__}; "
        f"python {platform.python_version()}"
    )


def to_markdown(res: dict) -> str:
    lines = [
        f"### `{res['size']}` on {res['device']}",
        "",
        f"Machine: {res['machine']}. Measured peak: {res['peak']['peak_flops'] / 1e9:.1f} GFLOP/s "
        f"({res['peak']['dtype']} {res['peak']['matmul_n']}^3 products). Date {res['date']}.",
        "",
        "| variant | params (M) | batch | s / step | images / s | tokens / s | counted GFLOP / step | MFU | peak memory (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in res["training"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} |")
            continue
        lines.append(
            f"| {name}{' (bf16)' if r['bf16'] else ''} | {r['params_M']} | {r['batch_size']} | "
            f"{r['seconds_per_step']:.3f} | {r['images_per_s']:.1f} | {r['tokens_per_s']:.0f} | "
            f"{r['model_flops_per_step'] / 1e9:.1f} | {100 * r['mfu']:.1f} % | "
            f"{r['peak_memory_bytes'] / 2**20:.0f} ({r['peak_memory_kind']}) |"
        )
    s = res.get("sampling")
    if s:
        lines += [
            "",
            f"Sampling, {s['num_images']} images per call, {s['num_iter']} AR steps, CFG {s['cfg']:g} (linear), "
            f"diffusion head {s['diffusion_steps']} DDPM steps:",
            "",
            "| | implicit (EAR) | diffusion (MAR-like) | ratio |",
            "|---|---|---|---|",
            f"| whole sampler, s / image | {s['implicit_seconds_per_image']:.4f} | "
            f"{s['diffusion_seconds_per_image']:.4f} | {s['latency_ratio']:.1f}x |",
            f"| head only, s / image | {s['implicit_head_seconds_per_image']:.4f} | "
            f"{s['diffusion_head_seconds_per_image']:.4f} | {s['head_latency_ratio']:.1f}x |",
        ]
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--size", default="demo", help="demo, ear_b_reduced, ear_b, or tiny (smoke test)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--variants", default="plain,default", help="comma-separated: plain, default, compiled"
    )
    p.add_argument(
        "--set", action="append", default=[], help="extra config override for every variant"
    )
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument(
        "--sample-images", type=int, default=None, help="images per sampler call (default: by size)"
    )
    p.add_argument(
        "--num-iter",
        type=int,
        default=None,
        help="AR steps (default 64, or the token count if fewer)",
    )
    p.add_argument("--diffusion-steps", type=int, default=100)
    p.add_argument(
        "--sample-compile", action="store_true", help="compile the sampler (compile_for_sampling)"
    )
    p.add_argument("--no-sampling", action="store_true")
    p.add_argument(
        "--matmul-n", type=int, default=None, help="peak matmul size (default 1024 CPU, 8192 GPU)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--output", default=None, help="Markdown file to append to (default: print only)"
    )
    p.add_argument("--json", default=None, help="JSON file to write")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    base = apply_overrides(size_config(args.size), list(args.set))
    names = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise ValueError(f"--variants: unknown {unknown}; valid: {sorted(VARIANTS)}")
    bf16 = precision_context(apply_overrides(base, VARIANTS[names[-1]]).train, device)[1]
    dtype = torch.bfloat16 if bf16 else torch.float32
    peak = measure_peak(device, dtype, args.matmul_n or (8192 if device.type == "cuda" else 1024))
    res = {
        "size": args.size,
        "device": str(device),
        "machine": machine(device),
        "date": time.strftime("%Y-%m-%d"),
        "peak": peak,
        "training": {},
    }
    for name in names:
        cfg = apply_overrides(base, VARIANTS[name])
        try:
            r = bench_training(cfg, device, args.warmup, args.steps)
        except Exception as e:  # noqa: BLE001 - report and go on with the other variants
            res["training"][name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        var_peak = peak["peak_flops"]
        if r["bf16"] != bf16:  # MFU against the peak of the dtype this variant computes in
            var_peak = measure_peak(
                device, torch.bfloat16 if r["bf16"] else torch.float32, peak["matmul_n"]
            )["peak_flops"]
        r["mfu"] = r["model_flops_per_s"] / var_peak
        r["peak_flops_used"] = var_peak
        res["training"][name] = r
        print(f"[bench_ear] {args.size} {name}: {json.dumps(r)}", flush=True)
    if not args.no_sampling:
        m = base.model
        num_iter = args.num_iter or min(64, m.num_tokens)
        n_img = args.sample_images or (
            64 if device.type == "cuda" else {"demo": 50}.get(args.size, 2)
        )
        cfg = apply_overrides(base, VARIANTS[names[-1]])
        res["sampling"] = bench_sampling(
            cfg,
            device,
            num_images=n_img,
            num_iter=num_iter,
            diffusion_steps=args.diffusion_steps,
            compile_sampler=args.sample_compile,
        )
        print(f"[bench_ear] sampling: {json.dumps(res['sampling'])}", flush=True)
    md = to_markdown(res)
    print(md)
    if args.output:
        with open(args.output, "a") as f:
            f.write(md + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
