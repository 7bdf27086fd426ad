"""Speed of the density-based scores: closed-form Normal CRPS against peers, and Hyvärinen estimators vs dimension.

1. Closed-form Normal CRPS on N observations: ``crps(Normal(mu, sigma), y)`` forward and forward+backward (w.r.t.
   mu and sigma) against scoringrules 0.10's torch backend (``crps_normal(..., backend="torch")``) and
   properscoring's ``crps_gaussian`` (numpy; ``grad=True`` returns its analytic gradient), with the float64 accuracy
   of each against scoringrules' numpy backend.
2. Hyvärinen score of a small MLP log-density (d -> 64 -> 64 -> 1, tanh) on a batch of 256 points, forward+backward
   w.r.t. the MLP parameters, for ``method="exact"`` (d backward passes), ``"hutchinson"`` and ``"sliced"`` (one probe)
   as d grows from 2 to 256.

Median of ``--repeats`` timed runs after one warm-up; one torch thread.

Usage::

    python benchmarks/bench_density.py            # full sizes, writes benchmarks/results_density.md
    python benchmarks/bench_density.py --quick    # tiny sizes, smoke test, prints only
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scoringrules_torch.functional.crps_closed import crps  # noqa: E402
from scoringrules_torch.functional.hyvarinen import hyvarinen_score  # noqa: E402

HERE = Path(__file__).resolve().parent


def measure(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    for name in ("scoringrules", "properscoring"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except ImportError:
            out[name] = "not installed"
    return out


def _crps_rows_for(dtype, y_np, mu_np, sig_np, ref64, repeats) -> list[dict]:
    import properscoring as ps
    import scoringrules as sr

    rows = []
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    mu = torch.tensor(mu_np, dtype=dtype)
    sig = torch.tensor(sig_np, dtype=dtype)
    y = torch.tensor(y_np, dtype=dtype)
    mu_r, sig_r = mu.clone().requires_grad_(True), sig.clone().requires_grad_(True)
    yn, mn, sn = y_np.astype(np_dtype), mu_np.astype(np_dtype), sig_np.astype(np_dtype)

    def ours_fwd():
        with torch.no_grad():
            return crps(
                torch.distributions.Normal(mu, sig, validate_args=False), y, reduction="none"
            )

    def ours_bwd():
        mu_r.grad = sig_r.grad = None
        crps(
            torch.distributions.Normal(mu_r, sig_r, validate_args=False), y, reduction="sum"
        ).backward()

    def sr_fwd():
        with torch.no_grad():
            return sr.crps_normal(y, mu, sig, backend="torch")

    def sr_bwd():
        mu_r.grad = sig_r.grad = None
        sr.crps_normal(y, mu_r, sig_r, backend="torch").sum().backward()

    def ps_fwd():
        return ps.crps_gaussian(yn, mn, sn)

    def ps_bwd():
        return ps.crps_gaussian(yn, mn, sn, grad=True)

    def err(v) -> float:
        v = v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        return float(np.max(np.abs(v.astype(np.float64) - ref64) / np.abs(ref64)))

    for name, fwd, bwd in (
        ("scoringrules_torch `crps(Normal)`", ours_fwd, ours_bwd),
        ("scoringrules 0.10 torch `crps_normal`", sr_fwd, sr_bwd),
        ("properscoring `crps_gaussian` (numpy)", ps_fwd, ps_bwd),
    ):
        rows.append(
            {
                "impl": name,
                "dtype": str(dtype).replace("torch.", ""),
                "fwd": measure(fwd, repeats),
                "fwdbwd": measure(bwd, repeats),
                "relerr": err(fwd()),
            }
        )
    return rows


def bench_crps_normal(n: int, repeats: int) -> list[dict]:
    import scoringrules as sr

    rng = np.random.default_rng(0)
    mu_np, sig_np = rng.normal(size=n), rng.uniform(0.5, 2.0, n)
    y_np = mu_np + sig_np * rng.normal(size=n) * 1.5
    ref64 = sr.crps_normal(y_np, mu_np, sig_np, backend="numpy")
    rows = []
    for dtype in (torch.float32, torch.float64):
        rows += _crps_rows_for(dtype, y_np, mu_np, sig_np, ref64, repeats)
    return rows


class MLPLogDensity(torch.nn.Module):
    def __init__(self, d: int, hidden: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, 1),
        )

    def forward(self, x):
        return self.net(x).squeeze(-1) - 0.5 * x.pow(2).sum(-1)


def bench_hyvarinen(dims: list[int], batch: int, repeats: int, exact_max_d: int) -> list[dict]:
    rows = []
    for d in dims:
        torch.manual_seed(0)
        model = MLPLogDensity(d)
        x = torch.randn(batch, d)
        gen = torch.Generator().manual_seed(0)
        row = {"d": d}
        for method in ("exact", "hutchinson", "sliced"):
            if method == "exact" and d > exact_max_d:
                row[method] = None
                continue

            def step(method=method, model=model, x=x, gen=gen):
                model.zero_grad(set_to_none=True)
                hyvarinen_score(model, x, method=method, generator=gen).backward()

            row[method] = measure(
                step, repeats if method != "exact" or d <= 64 else max(3, repeats // 2)
            )
        rows.append(row)
    return rows


def render(crps_rows, hyv_rows, n, batch, repeats) -> str:
    v = _versions()
    lines = [
        "# Density-based scores: benchmark results",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs ({platform.processor() or 'unknown CPU'}), "
        f"{platform.system()} {platform.release()}; torch threads: {torch.get_num_threads()}; shared machine "
        f"(other jobs running), so treat ratios as indicative.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Command: `OMP_NUM_THREADS=1 python benchmarks/bench_density.py` (median of {repeats} runs "
        "after one warm-up at the timed shape). Each implementation is compared with ours in the same dtype.",
        "",
        f"## Closed-form Normal CRPS, {n:,} observations",
        "",
        "Forward = per-observation values (no autograd); forward+backward = sum + backward w.r.t. mu and sigma "
        "(properscoring: `grad=True`, its analytic gradient in numpy). Max rel. error: against scoringrules' "
        "numpy backend in float64.",
        "",
        "| implementation | dtype | forward (ms) | forward+backward (ms) | max rel. error | "
        "peer / ours, same dtype (fwd / fwd+bwd) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    ours_by_dtype = {r["dtype"]: r for r in crps_rows if r["impl"].startswith("scoringrules_torch")}
    for r in crps_rows:
        o = ours_by_dtype[r["dtype"]]
        ratio = "–" if r is o else f"{r['fwd'] / o['fwd']:.1f}x / {r['fwdbwd'] / o['fwdbwd']:.1f}x"
        lines.append(
            f"| {r['impl']} | {r['dtype']} | {1e3 * r['fwd']:.1f} | {1e3 * r['fwdbwd']:.1f} | {r['relerr']:.1e} "
            f"| {ratio} |"
        )
    lines += [
        "",
        f"## Hyvärinen score of an MLP log-density (d -> 64 -> 64 -> 1), batch {batch}, forward+backward (ms)",
        "",
        "`exact` takes d extra backward passes (the diagonal of the Hessian); `hutchinson` and `sliced` take one "
        "per probe (here 1). Empty: not run (too slow for this budget).",
        "",
        "| d | exact | hutchinson | sliced | exact / hutchinson |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in hyv_rows:
        ex = "" if r["exact"] is None else f"{1e3 * r['exact']:.1f}"
        ratio = "" if r["exact"] is None else f"{r['exact'] / r['hutchinson']:.1f}x"
        lines.append(
            f"| {r['d']} | {ex} | {1e3 * r['hutchinson']:.1f} | {1e3 * r['sliced']:.1f} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes; print only")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        n, dims, batch, repeats, exact_max_d = 1000, [2, 8], 16, 1, 8
    else:
        n, dims, batch, repeats, exact_max_d = (
            1_000_000,
            [2, 8, 32, 64, 128, 256],
            256,
            args.repeats,
            256,
        )
    crps_rows = bench_crps_normal(n, repeats)
    hyv_rows = bench_hyvarinen(dims, batch, repeats, exact_max_d)
    text = render(crps_rows, hyv_rows, n, batch, repeats)
    print(text)
    if not args.quick:
        (HERE / "results_density.md").write_text(text)


if __name__ == "__main__":
    main()
