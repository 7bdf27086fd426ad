"""Measure the bias and the spread of every ensemble estimator against closed forms; write a Markdown table.

For each score and estimator, ``n`` observations ``y_b`` are drawn, and for each one an ensemble of ``m`` i.i.d.
members from the forecast ``F = N(0, I_d)``. The estimate minus the exact score of ``F`` at ``y_b``
(:mod:`scoringrules_torch.testing.closed_forms`) is averaged over ``b`` (the bias, with its standard error) and
its standard deviation is reported (the estimator's own noise; the variation of the exact score with ``y`` is
removed). Everything runs in float64.

Usage (writes ``docs/_static/estimator_stats.md``, which ``docs/estimators.md`` includes)::

    OMP_NUM_THREADS=1 python docs/_scripts/estimator_stats.py
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scoringrules_torch.functional.crps_sample import CRPS_ESTIMATORS, crps_ensemble  # noqa: E402
from scoringrules_torch.functional.energy import ENERGY_ESTIMATORS, energy_score  # noqa: E402
from scoringrules_torch.functional.kernel import KERNEL_ESTIMATORS, kernel_score  # noqa: E402
from scoringrules_torch.functional.variogram import VARIOGRAM_ESTIMATORS, variogram_score  # noqa: E402
from scoringrules_torch.testing import closed_forms  # noqa: E402

OUT = ROOT / "docs" / "_static" / "estimator_stats.md"


def rows(n: int, m: int, d: int, seed: int) -> list[tuple[str, str, float, float, float, float]]:
    """``(score, estimator, exact mean, bias, standard error of the bias, sd)`` for every estimator."""
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    y = 0.5 + torch.randn(n, d, generator=g, dtype=f64)  # observations, not from F: a realistic mismatch
    x = torch.randn(m, n, d, generator=g, dtype=f64)  # members of F = N(0, I_d)
    zero, one = torch.zeros(n, d, dtype=f64), torch.ones(n, dtype=f64)
    cases = [
        ("energy score (beta=1)", ENERGY_ESTIMATORS, lambda e: energy_score(x, y, estimator=e, reduction="none"),
         closed_forms.energy_score_normal(zero, one, y)),
        ("CRPS", CRPS_ESTIMATORS, lambda e: crps_ensemble(x[..., 0], y[:, 0], estimator=e, reduction="none"),
         closed_forms.crps_normal(zero[:, 0], one, y[:, 0])),
        ("Gaussian kernel score (h=1)", KERNEL_ESTIMATORS,
         lambda e: kernel_score(x, y, estimator=e, reduction="none"),
         closed_forms.kernel_score_normal(zero, one, y, bandwidth=1.0)),
        ("variogram score (p=0.5)", VARIOGRAM_ESTIMATORS,
         lambda e: variogram_score(x, y, estimator=e, reduction="none"),
         closed_forms.variogram_score_normal(zero, torch.eye(d, dtype=f64).expand(n, d, d), y, p=0.5)),
    ]
    out = []
    for score, estimators, fn, exact in cases:
        for est in estimators:
            err = fn(est) - exact
            sd = err.std().item()
            out.append((score, est, exact.mean().item(), err.mean().item(), sd / math.sqrt(n), sd))
    return out


def render(table, n: int, m: int, d: int, seed: int) -> str:
    lines = [
        f"Forecast $F = N(0, I_d)$, observations $y \\sim N(0.5, I_d)$, $m = {m}$ members, $d = {d}$ "
        f"(the CRPS uses the first coordinate), {n:,} observations, float64, seed {seed}. "
        "Bias = mean of (estimate - exact score of $F$), with its standard error; sd = standard deviation of "
        "(estimate - exact), i.e. the estimator's own noise. Made by `docs/_scripts/estimator_stats.py` "
        f"(torch {torch.__version__}, Python {platform.python_version()}).",
        "",
        "| score | estimator | exact score (mean over $y$) | bias ± s.e. | bias / sd | sd |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for score, est, exact, bias, se, sd in table:
        lines.append(
            f"| {score} | `{est}` | {exact:.4f} | {bias:+.4f} ± {se:.4f} | {bias / sd:+.2f} | {sd:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="observations")
    ap.add_argument("--m", type=int, default=8, help="ensemble members")
    ap.add_argument("--d", type=int, default=8, help="dimension")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    text = render(rows(args.n, args.m, args.d, args.seed), args.n, args.m, args.d, args.seed)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return args.out


if __name__ == "__main__":
    main()
