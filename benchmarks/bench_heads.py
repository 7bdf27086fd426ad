"""Per-position sampling latency and training-step cost of every head at EAR-B head size.

EAR-B head: width 1024, depth 6, token dim 16, hidden state 768 (EAR-B backbone width), 4096 positions
(16 images x 256 tokens). The diffusion head has the same width/depth (MAR-B's released head) and samples with
100 DDPM steps. The explicit heads get a residual-MLP read-out of the same width and depth.

Measured quantities (wall clock, ``time.perf_counter``, after a warm-up):

- sampling: one ``head.sample(z)`` over all positions, the diffusion head with its real 100 steps (timed, not
  extrapolated; on a CPU this takes about 0.15 s per step per 1024 positions, so the CPU run uses
  ``--positions 512`` for every head);
- training step: ``head.loss(z, y)`` forward + backward over all positions, with EAR's README setting for the
  implicit head (2 pairs = 4 samples per token) and MAR's README setting for the diffusion head
  (``diffusion_batch_mul = 4``);
- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` (matrix products; elementwise work is not counted), counted
  at a small number of positions and scaled, which is exact because every matmul is linear in the row count
  (checked at two sizes).

Every measurement is preceded by a warm-up at the timed shape (the diffusion sampler: 2 steps at the timed
shape, each step being the same computation).

Run:  python benchmarks/bench_heads.py --threads 1 --positions 512   (writes benchmarks/results_heads.md)
      python benchmarks/bench_heads.py --positions 64 --output /tmp/x.md   (quick check)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from scoringrules_torch.heads import (
    DiffusionHead,
    GaussianHead,
    GaussianMixtureHead,
    ImplicitGeneratorHead,
)

TOKEN_DIM, COND_DIM, WIDTH, DEPTH = 16, 768, 1024, 6
DIFFUSION_STEPS = 100


def make_heads() -> dict[str, torch.nn.Module]:
    return {
        "implicit (EAR, energy)": ImplicitGeneratorHead(
            TOKEN_DIM, COND_DIM, width=WIDTH, depth=DEPTH, noise_dim=64, num_samples=4
        ),
        "diffusion (MAR-like, 100 steps)": DiffusionHead(
            TOKEN_DIM,
            COND_DIM,
            width=WIDTH,
            depth=DEPTH,
            num_sampling_steps=DIFFUSION_STEPS,
            num_samples=4,
        ),
        "gaussian (log score)": GaussianHead(TOKEN_DIM, COND_DIM, hidden=WIDTH, depth=DEPTH),
        "mixture k=8 (log score)": GaussianMixtureHead(
            TOKEN_DIM, COND_DIM, num_components=8, hidden=WIDTH, depth=DEPTH
        ),
    }


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def sample_fn(head, z, steps=None):
    if isinstance(head, DiffusionHead):
        return lambda: head.sample(z, num_steps=steps or head.num_sampling_steps)
    return lambda: head.sample(z)


def train_fn(head, z, y):
    def step():
        head.zero_grad(set_to_none=True)
        head.loss(z, y).backward()

    return step


def scaled_flops(make_fn: Callable[[int], Callable[[], object]], n: int, small: int = 64) -> int:
    small = min(small, max(1, n // 2))
    a, b = flops(make_fn(small)), flops(make_fn(2 * small))
    if b != 2 * a:
        raise RuntimeError(
            f"FLOPs are not linear in the number of positions: {a} at {small}, {b} at {2 * small}"
        )
    return a * n // small


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description="Benchmark the predictive heads at EAR-B head size."
    )
    parser.add_argument("--positions", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed repeats of each sampling measurement"
    )
    parser.add_argument("--train-repeats", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results_heads.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n = args.positions
    z = torch.randn(n, COND_DIM)
    y = torch.randn(n, TOKEN_DIM)
    heads = make_heads()
    rows = []
    for name, head in heads.items():
        params = sum(p.numel() for p in head.parameters())
        # warm-up at the timed shape (allocator, kernels); the diffusion sampler with 2 of its identical steps
        with torch.no_grad():
            sample_fn(head, z, 2)()
        train_fn(head, z, y)()

        with torch.no_grad():
            # the diffusion head samples with its real 100 steps, once (minutes on a CPU)
            sample_s = timed(sample_fn(head, z), 1 if isinstance(head, DiffusionHead) else args.repeats)
            sample_flops = scaled_flops(lambda m, head=head: sample_fn(head, z[:m]), n)
        train_s = timed(train_fn(head, z, y), args.train_repeats)
        train_flops = scaled_flops(lambda m, head=head: train_fn(head, z[:m], y[:m]), n)
        rows.append((name, params, sample_s, sample_flops, train_s, train_flops))
        print(
            f"{name}: sample {sample_s:.3f} s ({sample_s / n * 1e6:.1f} us/position, "
            f"{sample_flops / 1e9:.1f} GFLOP); train step {train_s:.3f} s ({train_flops / 1e9:.1f} GFLOP)",
            flush=True,
        )

    implicit, diffusion = rows[0], rows[1]
    ratio = diffusion[2] / implicit[2]
    flop_ratio = diffusion[3] / implicit[3]
    lines = [
        "# Heads benchmark: sampling latency and training-step cost at EAR-B head size",
        "",
        f"Command: `python benchmarks/bench_heads.py --threads {args.threads}"
        + (f" --positions {n}" if n != 4096 else "")
        + "`",
        "",
        f"Machine: {_cpu()}, {args.threads} CPU thread(s), python {platform.python_version()}, torch "
        f"{torch.__version__}, float32, shared machine (other jobs were running: absolute times are noisy, "
        f"ratios less so). No GPU was available for this run.",
        "",
        f"Setting: token dim {TOKEN_DIM}, hidden state {COND_DIM}, head width {WIDTH}, depth {DEPTH}, {n} positions. "
        "Implicit: noise 64, 4 samples per token in the loss (EAR README, 2 pairs). Diffusion: 1000 training "
        "timesteps, 100 sampling steps, 4 (t, noise) draws per token in the loss (MAR README). Gaussian / mixture: "
        "residual-MLP read-out of the same width and depth.",
        "",
        "| head | parameters | sample: s for all positions | sample: us / position | sample GFLOP | "
        "train step (fwd+bwd): s | train GFLOP |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, params, sample_s, sample_flops, train_s, train_flops in rows:
        lines.append(
            f"| {name} | {params / 1e6:.1f}M | {sample_s:.3f} | {sample_s / n * 1e6:.1f} | "
            f"{sample_flops / 1e9:.1f} | {train_s:.3f} | {train_flops / 1e9:.1f} |"
        )
    lines += [
        "",
        f"**Sampling: the implicit generator is {ratio:.0f}x faster than the diffusion head at {DIFFUSION_STEPS} steps** "
        f"(FLOP ratio {flop_ratio:.0f}x; requirement: >= 20x).",
        "",
    ]
    lines += [f"Diffusion sampling: the real {DIFFUSION_STEPS}-step sampler, timed once after a warm-up at the same "
              f"shape; the other heads: median of {args.repeats}.", ""]
    lines += [
        f"FLOPs: `torch.utils.flop_counter.FlopCounterMode` (matrix products only), counted at {min(64, n // 2)} and "
        f"{2 * min(64, n // 2)} positions (exactly linear) and scaled to the table's size. Training FLOPs include the "
        "backward pass.",
        "",
    ]
    text = "\n".join(lines)
    args.output.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
