"""Side-by-side speed and memory of the sample-based scores against peers, in one run, like with like.

Peers: scoringrules 0.10 (numpy, numba if installed, torch backends), properscoring (CRPS), and a ``torch.cdist``
energy loss as engression-style code writes it.  Forward = one call under ``torch.no_grad`` (numpy/numba: the plain
call); forward+backward = the call plus ``.sum().backward()`` w.r.t. the ensemble.

Like with like:

* every row names its estimator and dtype, and each peer row's ratio is taken against *our* row of the same case,
  estimator and dtype (float64 rows of ours exist for the float64 peers);
* every variant runs at the full size of its case; a variant whose dominant intermediate would not fit in the
  memory available is not run and its row says so ("not run: needs N GiB"); nothing is extrapolated;
* each variant and mode (forward, forward+backward) runs in its own fresh process (forked from the parent after
  the libraries are imported, before any variant has allocated anything): it builds its inputs,
  warms up once at the timed shape (for ``torch.compile`` this compiles), then times ``--repeats`` calls; "peak+"
  is the process's peak resident memory during warm-up and timed calls minus its resident memory before them
  (Linux ``/proc/self/clear_refs`` resets the peak), so no variant inherits another's peak;
* times are medians; both wall-clock and process CPU time are recorded, and ratios use CPU time, which a busy
  shared machine perturbs less (one thread per process).

Usage::

    python benchmarks/bench_scores.py --threads 1      # full sizes, writes benchmarks/results_scores.{md,json}
    python benchmarks/bench_scores.py --quick          # tiny sizes, in-process, smoke test (used by the tests)
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
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


def _mem_available_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def measure(fn: Callable[[], object], repeats: int) -> dict:
    """Median wall and CPU seconds of ``repeats`` calls after one warm-up call, and the extra peak memory (MiB)."""
    gc.collect()
    base = _rss_kib("VmRSS")
    _reset_peak()
    fn()  # warm-up at the timed shape
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    peak = _rss_kib("VmHWM")
    extra = (peak - base) / 1024 if base > 0 and peak > 0 else float("nan")
    return {"s": statistics.median(wall), "cpu_s": statistics.median(cpu), "peak_mib": max(0.0, extra)}


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
#
# A case is a problem size; a variant is one implementation of it with an estimator and a dtype. ``build`` returns
# (forward, forward+backward or None); ``need_gib`` is the size of the variant's dominant intermediate (a variant is
# not run when it exceeds 70 % of the memory available).

GIB = 2.0**30
F32, F64 = torch.float32, torch.float64


def _dt(dtype) -> str:
    return "float32" if dtype == F32 else "float64"


class Variant:
    def __init__(self, case: str, impl: str, estimator: str, dtype, build, need_gib: float = 0.0, ours=False,
                 fwd_bwd=True, repeats_div=1, compiled=False):
        self.case, self.impl, self.estimator, self.dtype = case, impl, estimator, dtype
        self.build, self.need_gib, self.ours, self.fwd_bwd = build, need_gib, ours, fwd_bwd
        self.repeats_div, self.compiled = repeats_div, compiled

    @property
    def label(self) -> str:
        extra = ", torch.compile (inductor; compile time excluded)" if self.compiled else ""
        return f"{self.impl} [{self.estimator}, {_dt(self.dtype)}{extra}]"


def _crps_inputs(n, m, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, n, generator=g, dtype=F64).to(dtype)
    y = torch.randn(n, generator=g, dtype=F64).to(dtype)
    return x, y


def _mv_inputs(n, m, d, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, n, d, generator=g, dtype=F64).to(dtype)
    y = torch.randn(n, d, generator=g, dtype=F64).to(dtype)
    return x, y


def crps_variants(n, m) -> list[Variant]:
    case = f"CRPS ensemble, {n} x m={m}"
    out = []

    def ours(est, dtype):
        def build():
            x, y = _crps_inputs(n, m, dtype)

            def f(a, b):
                return crps_ensemble(a, b, estimator=est)

            return torch_fwd(f, x, y), torch_fwd_bwd(f, x, y)

        return build

    for est, dtype in (("fair", F32), ("fair", F64), ("qd", F32), ("qd", F64), ("nrg", F64)):
        out.append(Variant(case, "ours", est, dtype, ours(est, dtype), ours=True))

    def properscoring_build():
        import properscoring

        x, y = _crps_inputs(n, m, F64)
        xn, yn = x.T.numpy().copy(), y.numpy()
        return (lambda: properscoring.crps_ensemble(yn, xn)), None

    # properscoring's crps_ensemble is the CRPS of the empirical distribution: the nrg estimator.
    out.append(Variant(case, "properscoring crps_ensemble", "nrg", F64, properscoring_build, fwd_bwd=False))

    def sr_np(backend, est):
        def build():
            sr = _sr()
            x, y = _crps_inputs(n, m, F64)
            xn, yn = x.T.numpy().copy(), y.numpy()
            return (lambda: sr.crps_ensemble(yn, xn, estimator=est, backend=backend)), None

        return build

    if _has_numba():
        out.append(Variant(case, "scoringrules numba", "fair", F64, sr_np("numba", "fair"), fwd_bwd=False))
    out.append(Variant(case, "scoringrules numpy", "qd", F64, sr_np("numpy", "qd"), fwd_bwd=False))

    def sr_torch_build():
        sr = _sr()
        x, y = _crps_inputs(n, m, F32)
        xt = x.T.contiguous()

        def f(a, b):
            return sr.crps_ensemble(b, a, estimator="fair", backend="torch")

        return torch_fwd(f, xt, y), torch_fwd_bwd(f, xt, y)

    # its fair estimator forms all (n, m, m) differences
    out.append(Variant(case, "scoringrules torch", "fair", F32, sr_torch_build, need_gib=3 * n * m * m * 4 / GIB))
    return out


def energy_variants(n, m, d, compiled) -> list[Variant]:
    case = f"Energy score, {n} x m={m} x d={d}"
    out = []

    def ours(dtype, comp=False):
        def build():
            x, y = _mv_inputs(n, m, d, dtype)
            f = torch.compile(energy_score) if comp else energy_score
            return torch_fwd(f, x, y), torch_fwd_bwd(f, x, y)

        return build

    out.append(Variant(case, "ours", "fair", F32, ours(F32), ours=True))
    out.append(Variant(case, "ours", "fair", F64, ours(F64), ours=True))
    if compiled:
        out.append(Variant(case, "ours", "fair", F32, ours(F32, True), ours=True, compiled=True))

    def cdist_build():
        x, y = _mv_inputs(n, m, d, F32)
        xp = x.transpose(0, 1).contiguous()
        return torch_fwd(cdist_energy_loss, xp, y), torch_fwd_bwd(cdist_energy_loss, xp, y)

    out.append(Variant(case, "torch.cdist loss", "fair", F32, cdist_build))

    def sr_torch_build():
        sr = _sr()
        x, y = _mv_inputs(n, m, d, F32)
        xp = x.transpose(0, 1).contiguous()

        def f(a, b):
            return sr.es_ensemble(b, a, estimator="fair", backend="torch")

        return torch_fwd(f, xp, y), torch_fwd_bwd(f, xp, y)

    # scoringrules' torch backend forms the (n, m, m, d) differences (and autograd keeps them)
    out.append(Variant(case, "scoringrules torch", "fair", F32, sr_torch_build, need_gib=2 * n * m * m * d * 4 / GIB))
    if _has_numba():
        def sr_numba_build():
            sr = _sr()
            x, y = _mv_inputs(n, m, d, F64)
            xn, yn = x.transpose(0, 1).numpy().copy(), y.numpy()
            return (lambda: sr.es_ensemble(yn, xn, estimator="fair", backend="numba")), None

        out.append(Variant(case, "scoringrules numba", "fair", F64, sr_numba_build, fwd_bwd=False, repeats_div=2))
    return out


def variogram_variants(n, m, d) -> list[Variant]:
    case = f"Variogram score p=0.5, {n} x m={m} x d={d}"
    out = []

    def ours(dtype):
        def build():
            x, y = _mv_inputs(n, m, d, dtype)
            return torch_fwd(variogram_score, x, y), torch_fwd_bwd(variogram_score, x, y)

        return build

    out.append(Variant(case, "ours", "nrg", F32, ours(F32), ours=True))
    out.append(Variant(case, "ours", "nrg", F64, ours(F64), ours=True))

    def sr_torch_build():
        sr = _sr()
        x, y = _mv_inputs(n, m, d, F32)
        xp = x.transpose(0, 1).contiguous()

        def f(a, b):
            return sr.vs_ensemble(b, a, backend="torch")

        return torch_fwd(f, xp, y), torch_fwd_bwd(f, xp, y)

    out.append(Variant(case, "scoringrules torch (its gradient is all NaN)", "nrg", F32, sr_torch_build,
                       need_gib=3 * n * m * d * d * 4 / GIB))

    def sr_numpy_build():
        sr = _sr()
        x, y = _mv_inputs(n, m, d, F64)
        xn, yn = x.transpose(0, 1).numpy().copy(), y.numpy()
        return (lambda: sr.vs_ensemble(yn, xn, backend="numpy")), None

    out.append(Variant(case, "scoringrules numpy", "nrg", F64, sr_numpy_build, fwd_bwd=False,
                       need_gib=2 * n * m * d * d * 8 / GIB))
    return out


def kernel_variants(n, m, d) -> list[Variant]:
    case = f"Gaussian kernel score, {n} x m={m} x d={d}"

    def ours(dtype):
        def build():
            x, y = _mv_inputs(n, m, d, dtype)
            return torch_fwd(kernel_score, x, y), torch_fwd_bwd(kernel_score, x, y)

        return build

    def sr_torch_build():
        sr = _sr()
        x, y = _mv_inputs(n, m, d, F32)
        xp = x.transpose(0, 1).contiguous()

        def f(a, b):
            return sr.gksmv_ensemble(b, a, estimator="fair", backend="torch")

        return torch_fwd(f, xp, y), torch_fwd_bwd(f, xp, y)

    return [
        Variant(case, "ours", "fair", F32, ours(F32), ours=True),
        Variant(case, "scoringrules torch", "fair", F32, sr_torch_build, need_gib=2 * n * m * m * d * 4 / GIB),
    ]


def all_variants(quick: bool, only: set[str], compiled: bool) -> list[Variant]:
    def want(k):
        return not only or k in only

    out: list[Variant] = []
    if quick:
        sizes = {"crps": (200, 10), "energy": (64, 8, 4), "variogram": (16, 8, 6), "kernel": (64, 8, 4)}
    else:
        sizes = {"crps": (100_000, 50), "energy": (4096, 64, 16), "energy_big": (512, 256, 256),
                 "variogram": (1024, 64, 64), "kernel": (4096, 64, 16)}
    if want("crps"):
        out += crps_variants(*sizes["crps"])
    if want("energy"):
        out += energy_variants(*sizes["energy"], compiled and not quick)
    if "energy_big" in sizes and want("energy_big"):
        out += energy_variants(*sizes["energy_big"], compiled)
    if want("variogram"):
        out += variogram_variants(*sizes["variogram"])
    if want("kernel"):
        out += kernel_variants(*sizes["kernel"])
    return out


# ------------------------------------------------------------------------------------------------ running


def run_variant(v: Variant, mode: str, repeats: int) -> dict:
    """Build the variant's inputs and time one mode (in this process)."""
    fwd, fwd_bwd = v.build()
    fn = fwd if mode == "fwd" else fwd_bwd
    return measure(fn, max(1, repeats // v.repeats_div))


def _child(v: Variant, mode: str, repeats: int, queue) -> None:
    try:
        queue.put(run_variant(v, mode, repeats))
    except Exception as exc:  # reported in the row, never silently dropped
        queue.put({"error": f"{type(exc).__name__}: {exc}"[:300]})


def run_isolated(v: Variant, mode: str, repeats: int) -> dict:
    """Run one variant in one mode in a fresh process forked from this one (libraries already imported, nothing
    of any other variant allocated), so its peak memory is its own."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(v, mode, repeats, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


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
        import properscoring

        versions.append(f"properscoring {getattr(properscoring, '__version__', '0.1')}")
    except ImportError:
        versions.append("properscoring not installed")
    try:
        import numba

        versions.append(f"numba {numba.__version__}")
    except ImportError:
        versions.append("numba not installed")
    mem = _rss_total_gib()
    return (f"{cpu}; {os.cpu_count()} cores; {mem:.0f} GiB; torch threads {torch.get_num_threads()}; "
            + ", ".join(versions))


def _rss_total_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


def _fmt(r: dict | None, key: str) -> str:
    return "–" if not r or "error" in r else f"{r[key]:.4f}"


def render(results: list[tuple[Variant, dict | None, dict | None, str]], header: str) -> str:
    out = [header, "", "| case | implementation [estimator, dtype] | fwd s (CPU) | fwd+bwd s (CPU) | fwd s (wall) | "
           "fwd+bwd s (wall) | peak+ MiB (fwd / fwd+bwd) |", "|---|---|---|---|---|---|---|"]
    for v, f, b, note in results:
        if note:
            out.append(f"| {v.case} | {v.label} | {note} | | | | |")
            continue
        mem = f"{f['peak_mib']:.0f}" if f and "error" not in f else "–"
        if b and "error" not in b:
            mem += f" / {b['peak_mib']:.0f}"
        out.append(f"| {v.case} | {v.label} | {_fmt(f, 'cpu_s')} | {_fmt(b, 'cpu_s')} | {_fmt(f, 's')} | "
                   f"{_fmt(b, 's')} | {mem} |")
    return "\n".join(out)


def ratios(results) -> list[str]:
    """Each peer against our eager row of the same case, estimator and dtype (CPU-time medians)."""
    ours = {(v.case, v.estimator, v.dtype): (f, b) for v, f, b, note in results if v.ours and not v.compiled
            and not note}
    lines = []
    for v, f, b, note in results:
        if v.ours or note or not f or "error" in f:
            continue
        match = ours.get((v.case, v.estimator, v.dtype))
        if match is None:
            lines.append(f"- {v.case}: {v.label}: no row of ours with the same estimator and dtype")
            continue
        of, ob = match
        parts = [f"fwd {f['cpu_s'] / of['cpu_s']:.2f}x"]
        if b and ob and "error" not in b and "error" not in ob:
            parts.append(f"fwd+bwd {b['cpu_s'] / ob['cpu_s']:.2f}x")
        lines.append(f"- {v.case}: {v.label} vs ours [{v.estimator}, {_dt(v.dtype)}]: " + ", ".join(parts))
    for v, f, b, note in results:  # compiled rows against our eager row
        if v.compiled and not note and f and b:
            of, ob = ours[(v.case, v.estimator, v.dtype)]
            lines.append(f"- {v.case}: ours eager vs {v.label}: fwd {of['cpu_s'] / f['cpu_s']:.2f}x, "
                         f"fwd+bwd {ob['cpu_s'] / b['cpu_s']:.2f}x")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, in-process (smoke test)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="Markdown output (default benchmarks/results_scores.md)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in every process (default 1)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd energy score")
    ap.add_argument("--only", default="", help="comma-separated subset: crps,energy,energy_big,variogram,kernel")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    only = set(filter(None, args.only.split(",")))
    variants = all_variants(args.quick, only, args.compile)
    if not args.quick:  # import every peer once, before the variant processes are forked
        import properscoring  # noqa: F401

        _sr()
        _has_numba()
    repeats = 2 if args.quick else args.repeats
    avail = _mem_available_gib()
    results = []
    for v in variants:
        if v.need_gib > 0.7 * avail:
            note = f"not run: needs {v.need_gib:.0f} GiB ({avail:.0f} GiB available)"
            results.append((v, None, None, note))
            print(f"{v.case} | {v.label}: {note}", flush=True)
            continue
        if args.quick:
            f = run_variant(v, "fwd", repeats)
            b = run_variant(v, "fwd_bwd", repeats) if v.fwd_bwd else None
        else:
            f = run_isolated(v, "fwd", repeats)
            b = run_isolated(v, "fwd_bwd", repeats) if v.fwd_bwd else None
        results.append((v, f, b, ""))
        print(f"{v.case} | {v.label}: fwd {f} fwd+bwd {b}", flush=True)
    how = ("quick, in-process" if args.quick else
           "each variant and mode in a fresh forked process, one warm-up at the timed shape")
    header = (f"Machine: {machine()}. Median of {repeats} runs ({how}); ratios on CPU time. Shared machine: "
              "other jobs were running, so absolute times are noisy; ratios of one run are the robust figures.")
    text = (render(results, header) + "\n\nRatios (peer CPU time / our CPU time, same case, estimator and dtype; "
            "> 1 means ours is faster):\n\n" + "\n".join(ratios(results)))
    print(text)
    out = args.out or (None if args.quick else HERE / "results_scores.md")
    if out is not None:
        out.write_text(text + "\n")
        rows = []
        for v, f, b, note in results:
            ok_f = f if f and "error" not in f else None
            ok_b = b if b and "error" not in b else None
            rows.append({"case": v.case, "impl": v.label,
                         "estimator": v.estimator, "dtype": _dt(v.dtype), "fwd": ok_f, "fwd_bwd": ok_b,
                         "note": note or (f or {}).get("error", "")})
        out.with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
