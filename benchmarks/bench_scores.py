"""Side-by-side speed and memory of the sample-based scores against peers, in one run.

Peers: scoringrules 0.10 (numpy, numba if installed, torch backends), properscoring (CRPS), and a ``torch.cdist``
energy loss as engression-style code writes it.  Forward = one call under ``torch.no_grad`` (numpy/numba: the plain
call); forward+backward = the call plus ``.sum().backward()`` w.r.t. the ensemble.  Median of ``--repeats`` timed
runs after one warm-up.  "Peak+" is the process peak RSS during the timed calls minus the RSS before them (Linux:
``/proc/self/clear_refs`` resets the peak), i.e. extra memory beyond the inputs.

Usage::

    python benchmarks/bench_scores.py                 # full sizes, writes benchmarks/results_scores.md
    python benchmarks/bench_scores.py --quick         # tiny sizes, smoke test (used by the test suite)
"""

from __future__ import annotations

import argparse
import gc
import json
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
from scoringrules_torch.functional import crps_ensemble, energy_score, kernel_score, variogram_score  # noqa: E402

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------------ measuring


def _rss_kib(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def measure(fn: Callable[[], object], repeats: int) -> dict:
    """Median seconds of ``repeats`` calls after one warm-up, and the extra peak memory in MiB."""
    fn()
    gc.collect()
    base = _rss_kib("VmRSS")
    _reset_peak()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    peak = _rss_kib("VmHWM")
    extra = (peak - base) / 1024 if base > 0 and peak > 0 else float("nan")
    return {"s": statistics.median(times), "peak_mib": max(0.0, extra)}


def torch_fwd(f, *args):
    def run():
        with torch.no_grad():
            f(*args)

    return run


def torch_fwd_bwd(f, x, *rest):
    def run():
        xr = x.detach().requires_grad_(True)
        f(xr, *rest).sum().backward()

    return run


# ------------------------------------------------------------------------------------------------ peers


def cdist_energy_loss(x_bmd: torch.Tensor, y_bd: torch.Tensor) -> torch.Tensor:
    """Fair energy loss as engression-style code writes it: ``torch.cdist`` (default mode) on (B, m, d)."""
    m = x_bmd.shape[1]
    acc = torch.linalg.vector_norm(x_bmd - y_bd.unsqueeze(1), dim=-1).mean(-1)
    spread = torch.cdist(x_bmd, x_bmd).sum((-2, -1)) / (m * (m - 1))
    return (acc - 0.5 * spread).mean()


def _sr():
    import scoringrules as sr

    return sr


def _has_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------------------ cases


def case_crps(n, m, repeats, rows):
    import properscoring

    sr = _sr()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, n, generator=g)
    y = torch.randn(n, generator=g)
    x_np, y_np = x.T.double().numpy().copy(), y.double().numpy()
    x_t_peer = x.T.contiguous()
    name = f"CRPS ensemble, {n} x m={m}"
    rows.append((name, "ours fair (sort, float32)", measure(torch_fwd(crps_ensemble, x, y), repeats),
                 measure(torch_fwd_bwd(crps_ensemble, x, y), repeats)))
    rows.append((name, "ours qd (sort, float32)",
                 measure(torch_fwd(lambda a, b: crps_ensemble(a, b, estimator="qd"), x, y), repeats), None))
    rows.append((name, "properscoring crps_ensemble (float64)",
                 measure(lambda: properscoring.crps_ensemble(y_np, x_np), repeats), None))
    if _has_numba():
        rows.append((name, "scoringrules numba fair (float64)",
                     measure(lambda: sr.crps_ensemble(y_np, x_np, estimator="fair", backend="numba"), repeats), None))
    rows.append((name, "scoringrules numpy qd (float64)",
                 measure(lambda: sr.crps_ensemble(y_np, x_np, estimator="qd", backend="numpy"), repeats), None))

    def sr_torch(a, b):
        return sr.crps_ensemble(b, a, estimator="fair", backend="torch")

    rows.append((name, "scoringrules torch fair (float32)", measure(torch_fwd(sr_torch, x_t_peer, y), repeats),
                 measure(torch_fwd_bwd(sr_torch, x_t_peer, y), repeats)))


def case_energy(n, m, d, repeats, rows, sr_sub=None, compiled=False):
    sr = _sr()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, n, d, generator=g)
    y = torch.randn(n, d, generator=g)
    x_peer = x.transpose(0, 1).contiguous()
    name = f"Energy score, {n} x m={m} x d={d}"
    rows.append((name, "ours fair (float32)", measure(torch_fwd(energy_score, x, y), repeats),
                 measure(torch_fwd_bwd(energy_score, x, y), repeats)))
    if compiled:
        energy_c = torch.compile(energy_score)
        rows.append((name, "ours fair, torch.compile (inductor; compile time excluded)",
                     measure(torch_fwd(energy_c, x, y), repeats), measure(torch_fwd_bwd(energy_c, x, y), repeats)))
    rows.append((name, "torch.cdist fair loss (float32)", measure(torch_fwd(cdist_energy_loss, x_peer, y), repeats),
                 measure(torch_fwd_bwd(cdist_energy_loss, x_peer, y), repeats)))
    sub = n if sr_sub is None else sr_sub
    scale = n / sub
    xs, ys = x_peer[:sub].contiguous(), y[:sub]

    def sr_torch(a, b):
        return sr.es_ensemble(b, a, estimator="fair", backend="torch")

    fwd = measure(torch_fwd(sr_torch, xs, ys), repeats)
    fb = measure(torch_fwd_bwd(sr_torch, xs, ys), repeats)
    label = "scoringrules torch fair (float32)"
    if scale != 1:
        label += f" [measured on {sub} rows, time x{scale:g}]"
        fwd = {"s": fwd["s"] * scale, "peak_mib": fwd["peak_mib"]}
        fb = {"s": fb["s"] * scale, "peak_mib": fb["peak_mib"]}
    rows.append((name, label, fwd, fb))
    if _has_numba():
        xn, yn = x_peer.double().numpy(), y.double().numpy()
        rows.append((name, "scoringrules numba fair (float64)",
                     measure(lambda: sr.es_ensemble(yn, xn, estimator="fair", backend="numba"), max(1, repeats // 2)),
                     None))


def case_variogram(n, m, d, repeats, rows, sr_sub=None):
    sr = _sr()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, n, d, generator=g)
    y = torch.randn(n, d, generator=g)
    x_peer = x.transpose(0, 1).contiguous()
    name = f"Variogram score p=0.5, {n} x m={m} x d={d}"
    rows.append((name, "ours nrg (float32)", measure(torch_fwd(variogram_score, x, y), repeats),
                 measure(torch_fwd_bwd(variogram_score, x, y), repeats)))

    def sr_torch(a, b):
        return sr.vs_ensemble(b, a, backend="torch")

    rows.append((name, "scoringrules torch nrg (float32; its gradient is all NaN)",
                 measure(torch_fwd(sr_torch, x_peer, y), repeats), measure(torch_fwd_bwd(sr_torch, x_peer, y), repeats)))
    xn, yn = x_peer.double().numpy(), y.double().numpy()
    rows.append((name, "scoringrules numpy nrg (float64)", measure(lambda: sr.vs_ensemble(yn, xn, backend="numpy"),
                                                                    repeats), None))


def case_kernel(n, m, d, repeats, rows):
    sr = _sr()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, n, d, generator=g)
    y = torch.randn(n, d, generator=g)
    x_peer = x.transpose(0, 1).contiguous()
    name = f"Gaussian kernel score, {n} x m={m} x d={d}"
    rows.append((name, "ours fair (float32)", measure(torch_fwd(kernel_score, x, y), repeats),
                 measure(torch_fwd_bwd(kernel_score, x, y), repeats)))

    def sr_torch(a, b):
        return sr.gksmv_ensemble(b, a, estimator="fair", backend="torch")

    rows.append((name, "scoringrules torch fair (float32)", measure(torch_fwd(sr_torch, x_peer, y), repeats),
                 measure(torch_fwd_bwd(sr_torch, x_peer, y), repeats)))


# ------------------------------------------------------------------------------------------------ report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import scoringrules

    versions = [f"python {platform.python_version()}", f"torch {torch.__version__}", f"numpy {np.__version__}",
                f"scoringrules {getattr(scoringrules, '__version__', '?')}"]
    try:
        import numba

        versions.append(f"numba {numba.__version__}")
    except ImportError:
        versions.append("numba not installed")
    return f"{cpu}; {os.cpu_count()} cores; torch threads {torch.get_num_threads()}; " + ", ".join(versions)


def render(rows, header: str) -> str:
    out = [header, "", "| case | implementation | fwd s | fwd+bwd s | peak+ MiB (fwd / fwd+bwd) |",
           "|---|---|---|---|---|"]
    for name, impl, fwd, fb in rows:
        fb_s = f"{fb['s']:.4f}" if fb else "–"
        mem = f"{fwd['peak_mib']:.0f} / {fb['peak_mib']:.0f}" if fb else f"{fwd['peak_mib']:.0f}"
        out.append(f"| {name} | {impl} | {fwd['s']:.4f} | {fb_s} | {mem} |")
    return "\n".join(out)


def ratios(rows) -> list[str]:
    by = {(n, i.split(" [")[0]): (f, b) for n, i, f, b in rows}
    lines = []
    for name in dict.fromkeys(n for n, *_ in rows):
        ours = [(i, f, b) for (n, i), (f, b) in by.items() if n == name and i.startswith("ours")]
        if not ours:
            continue
        oi, of, ob = ours[0]
        for (n, i), (f, b) in by.items():
            if n != name or i.startswith("ours"):
                continue
            parts = [f"fwd {f['s'] / of['s']:.1f}x"]
            if b and ob:
                parts.append(f"fwd+bwd {b['s'] / ob['s']:.1f}x")
            lines.append(f"- {name}: ours ({oi}) vs {i}: " + ", ".join(parts) + " faster")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="Markdown output (default benchmarks/results_scores.md)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's default)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd energy score")
    ap.add_argument("--only", default="", help="comma-separated subset: crps,energy,energy_big,variogram,kernel")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list = []
    only = set(filter(None, args.only.split(",")))

    def want(k):
        return not only or k in only

    if args.quick:
        r = 2
        if want("crps"):
            case_crps(200, 10, r, rows)
        if want("energy"):
            case_energy(64, 8, 4, r, rows)
        if want("variogram"):
            case_variogram(16, 8, 6, r, rows)
        if want("kernel"):
            case_kernel(64, 8, 4, r, rows)
    else:
        r = args.repeats
        if want("crps"):
            case_crps(100_000, 50, r, rows)
        if want("energy"):
            case_energy(4096, 64, 16, r, rows, compiled=args.compile)
        if want("energy_big"):
            case_energy(512, 256, 256, r, rows, sr_sub=8, compiled=args.compile)
        if want("variogram"):
            case_variogram(1024, 64, 64, r, rows)
        if want("kernel"):
            case_kernel(4096, 64, 16, r, rows)
    header = f"Machine: {machine()}. Median of {args.repeats if not args.quick else 2} runs."
    text = render(rows, header) + "\n\nRatios (peer time / our time; > 1 means ours is faster):\n\n" + "\n".join(ratios(rows))
    print(text)
    out = args.out or (None if args.quick else HERE / "results_scores.md")
    if out is not None:
        out.write_text(text + "\n")
        (out.with_suffix(".json")).write_text(json.dumps(
            [{"case": n, "impl": i, "fwd": f, "fwd_bwd": b} for n, i, f, b in rows], indent=1))


if __name__ == "__main__":
    main()
