"""Draw the charts of ``docs/benchmarks.md`` from the committed benchmark results.

Reads only files written by the benchmark scripts in ``benchmarks/`` (nothing is typed in by hand):

* ``benchmarks/results_scores.json`` (``bench_scores.py``): time of every implementation per case;
* ``benchmarks/results_density.md`` (``bench_density.py``): closed-form Normal CRPS and Hyvärinen score tables;
* ``benchmarks/results_heads.md`` (``bench_heads.py``): sampling latency and training-step cost per head.

A results file that is absent is skipped (its chart is not drawn); a results file that is present but lacks the
table a chart needs is an error, so a change of format cannot silently drop a figure.

Usage (writes ``docs/_static/bench_*.png``; commit them with the results they come from)::

    python docs/_scripts/benchmark_charts.py
    python docs/_scripts/benchmark_charts.py --out /tmp/charts     # somewhere else
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks"
OUT = ROOT / "docs" / "_static"

OURS = "#1f6feb"
PEER = "#9aa4ad"
PALETTE = ["#1f6feb", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#495057"]

Table = tuple[str, list[str], list[list[str]]]


# ------------------------------------------------------------------------------------------------ parsing


def markdown_tables(text: str) -> list[Table]:
    """Every pipe table of a Markdown text as ``(heading above it, header cells, body rows)``."""
    tables: list[Table] = []
    heading = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|[\s:|-]+\|", lines[i + 1].strip()):
            header = _cells(line)
            body = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                body.append(_cells(lines[i].strip()))
                i += 1
            tables.append((heading, header, body))
            continue
        i += 1
    return tables


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def number(cell: str) -> float | None:
    """``"12.5"``, ``"6.7e-07"``, ``"1.6x"`` -> float; ``""``, ``"–"`` -> None."""
    m = re.fullmatch(r"\s*([-+]?\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?)\s*x?\s*", cell)
    return float(m.group(1).replace(",", "")) if m else None


def find_table(tables: list[Table], source: Path, heading_part: str) -> Table:
    for table in tables:
        if heading_part.lower() in table[0].lower():
            return table
    raise ValueError(f"{source}: no table under a heading containing {heading_part!r}; update the chart script")


def column(header: list[str], source: Path, *parts: str) -> int:
    for j, name in enumerate(header):
        if all(p.lower() in name.lower() for p in parts):
            return j
    raise ValueError(f"{source}: no column containing {parts} in {header}; update the chart script")


# ------------------------------------------------------------------------------------------------ charts


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _hbars(ax, labels: list[str], values: list[float | None], colors: list[str], xlabel: str) -> None:
    ys = list(range(len(labels)))[::-1]
    shown = [v if v is not None else 0.0 for v in values]
    ax.barh(ys, shown, color=colors)
    ax.set_yticks(ys, labels)
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())  # the bars are labelled with their values
    ax.set_xlabel(xlabel)
    for y, v in zip(ys, values, strict=True):
        if v is not None:
            text = f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
            ax.annotate(text, (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        else:
            ax.annotate("not measured", (ax.get_xlim()[0], y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=8, color="#868e96")
    ax.margins(x=0.25)


def chart_scores(out: Path) -> Path | None:
    source = RESULTS / "results_scores.json"
    if not source.is_file():
        return None
    rows = json.loads(source.read_text(encoding="utf-8"))
    cases = list(dict.fromkeys(r["case"] for r in rows))
    plt = _plt()
    fig, axes = plt.subplots(len(cases), 1, figsize=(8, 0.55 * len(rows) + 0.9 * len(cases)), squeeze=False)
    for ax, case in zip(axes[:, 0], cases, strict=True):
        sub = [r for r in rows if r["case"] == case]
        labels, values, colors = [], [], []
        for r in sub:
            for key, what in (("fwd", "fwd"), ("fwd_bwd", "fwd+bwd")):
                if r.get(key):
                    labels.append(f"{r['impl']} [{what}]")
                    values.append(r[key].get("cpu_s", r[key]["s"]) * 1e3)  # CPU time: robust on a busy machine
                    colors.append(OURS if r["impl"].startswith("ours") else PEER)
        _hbars(ax, labels, values, colors, "CPU milliseconds, one thread (log scale; lower is better)")
        ax.set_title(case, loc="left", fontsize=9, fontweight="bold")
    fig.suptitle("Sample-based scores: CPU time per call (benchmarks/results_scores.json)", fontsize=10, y=1.0)
    fig.tight_layout()
    return _save(fig, out / "bench_scores.png")


def chart_density_crps(out: Path) -> Path | None:
    source = RESULTS / "results_density.md"
    if not source.is_file():
        return None
    _, header, body = find_table(markdown_tables(source.read_text(encoding="utf-8")), source, "Normal CRPS")
    impl, dtype = column(header, source, "implementation"), column(header, source, "dtype")
    fwd = column(header, source, "forward (ms)")
    fb = column(header, source, "forward+backward")
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    labels = [f"{r[impl].replace('`', '')} ({r[dtype]})" for r in body]
    colors = [OURS if r[impl].startswith("scoringrules_torch") else PEER for r in body]
    _hbars(axes[0], labels, [number(r[fwd]) for r in body], colors, "forward, ms")
    _hbars(axes[1], labels, [number(r[fb]) for r in body], colors, "forward + backward, ms")
    fig.suptitle("Closed-form CRPS of a Normal, 1,000,000 observations (benchmarks/results_density.md)",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out / "bench_density_crps.png")


def chart_hyvarinen(out: Path) -> Path | None:
    source = RESULTS / "results_density.md"
    if not source.is_file():
        return None
    _, header, body = find_table(markdown_tables(source.read_text(encoding="utf-8")), source, "Hyvärinen")
    d = column(header, source, "d")
    methods = [name for name in ("exact", "hutchinson", "sliced") if name in header]
    if not methods:
        raise ValueError(f"{source}: the Hyvärinen table has no method columns; update the chart script")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for k, name in enumerate(methods):
        j = header.index(name)
        pts = [(number(r[d]), number(r[j])) for r in body]
        pts = [(x, y) for x, y in pts if x is not None and y is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=PALETTE[k], label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("dimension d")
    ax.set_ylabel("forward + backward, ms")
    ax.set_title("Hyvärinen score of an MLP log-density, batch 256", fontsize=10)
    ax.legend(frameon=False)
    fig.tight_layout()
    return _save(fig, out / "bench_hyvarinen.png")


def chart_heads(out: Path) -> Path | None:
    source = RESULTS / "results_heads.md"
    if not source.is_file():
        return None
    tables = markdown_tables(source.read_text(encoding="utf-8"))
    table = next((t for t in tables if t[1] and t[1][0].lower() == "head"), None)
    if table is None:
        raise ValueError(f"{source}: no table with a 'head' column; update the chart script")
    _, header, body = table
    head = column(header, source, "head")
    per_pos = column(header, source, "us / position")
    train = column(header, source, "train step", ": s")
    labels = [r[head] for r in body]
    colors = [PALETTE[k % len(PALETTE)] for k in range(len(body))]
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), sharey=True)
    _hbars(axes[0], labels, [number(r[per_pos]) for r in body], colors, "sampling, µs per position")
    _hbars(axes[1], labels, [number(r[train]) for r in body], colors, "training step (fwd + bwd), s")
    fig.suptitle("Heads at EAR-B size, 4096 positions, 1 CPU thread (benchmarks/results_heads.md)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out / "bench_heads.png")


CHARTS: list[Callable[[Path], Path | None]] = [chart_scores, chart_density_crps, chart_hyvarinen, chart_heads]


def _save(fig, path: Path) -> Path:
    # Fixed metadata, so that re-running the script on the same results does not change the files.
    fig.savefig(path, dpi=110, metadata={"Software": None})
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> list[Path]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="folder for the PNG files (default docs/_static)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written = [p for chart in CHARTS if (p := chart(args.out)) is not None]
    for p in written:
        print(f"wrote {p}")
    if not written:
        print("no results files found under benchmarks/: nothing drawn")
    return written


if __name__ == "__main__":
    main()
