"""Parameters and CPU time per training step (loss + backward) of every head, at its default size and at the
EAR/MAR presets: the size/cost table of the heads page.

Run:  python examples/head_sizes.py            (one thread; about a minute)
"""

from __future__ import annotations

import time

import torch

from scoringrules_torch.heads import (
    DiffusionHead,
    GaussianHead,
    GaussianMixtureHead,
    ImplicitGeneratorHead,
)

POSITIONS = 2048


def cases():
    for d, c in ((1, 48), (16, 768)):
        yield f"ImplicitGeneratorHead({d}, {c})", lambda d=d, c=c: ImplicitGeneratorHead(d, c)
        yield f"DiffusionHead({d}, {c})", lambda d=d, c=c: DiffusionHead(d, c)
        yield f"GaussianMixtureHead({d}, {c})", lambda d=d, c=c: GaussianMixtureHead(d, c)
        yield f"GaussianHead({d}, {c})", lambda d=d, c=c: GaussianHead(d, c)
    yield (
        "ImplicitGeneratorHead.ear_preset(1, 48, 'B')",
        lambda: ImplicitGeneratorHead.ear_preset(1, 48, "B"),
    )
    yield (
        "ImplicitGeneratorHead.ear_preset(16, 768, 'B')",
        lambda: ImplicitGeneratorHead.ear_preset(16, 768, "B"),
    )
    yield "DiffusionHead.mar_preset(16, 768, 'B')", lambda: DiffusionHead.mar_preset(16, 768, "B")


def cpu_seconds_per_step(head, repeats: int = 3) -> float:
    z = torch.randn(POSITIONS, head.cond_dim)
    y = torch.randn(POSITIONS, head.token_dim)
    head.loss(z, y).backward()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        head.zero_grad(set_to_none=True)
        start = time.process_time()
        head.loss(z, y).backward()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    print(
        f"| head | width x depth | parameters | CPU ms per loss + backward ({POSITIONS} positions) |"
    )
    print("|---|---|---:|---:|")
    for name, make in cases():
        torch.manual_seed(0)
        head = make()
        size = (
            f"{head.width} x {head.depth}"
            if hasattr(head, "width")
            else ("linear" if head.hidden is None else f"{head.hidden} x {head.depth}")
        )
        params = sum(p.numel() for p in head.parameters())
        ms = 1000 * cpu_seconds_per_step(head)
        print(f"| `{name}` | {size} | {params:,} | {ms:,.1f} |", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
