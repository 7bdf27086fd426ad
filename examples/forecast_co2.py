"""Probabilistic forecasting of the weekly Mauna Loa CO2 series with every head of the library.

The data is statsmodels' bundled ``co2`` data set (weekly CO2 at Mauna Loa, March 1958 to December 2001, in ppm;
no download). The forecaster is autoregressive on the weekly **changes** ``d_t = x_t - x_{t-1}`` (standardised
with the training period's mean and standard deviation):

- a small network maps the last 53 changes (a year plus one week, so the seasonal lag is inside the window) to a
  hidden state ``z`` (``LagNet``; kept small, and trained with early stopping on a held-out part of the training
  period, because 2,000 weeks are few and an overfitted forecaster is over-confident);
- a head turns ``z`` into the predictive law of the next change; the model code never changes, the head is the
  one line in ``make_head``;
- :func:`scoringrules_torch.heads.rollout` draws ``m`` trajectories of ``H`` weekly changes by feeding each draw
  back into the history; their cumulative sums added to the last observed level are trajectories of levels.

The trajectories are scored on the levels, in ppm, on the test period (the last 20 % of the series, never seen
in training) with the library's own scores: the CRPS at each horizon, the energy score of the whole
``H``-week trajectory (which also judges the dependence between weeks), and the coverage of central 80 %
intervals. The baseline is a seasonal naive forecast (``x_t`` plus last year's change over the same weeks)
with its own training-period errors resampled as whole trajectories (an empirical, dependence-preserving
ensemble).

Run:  python examples/forecast_co2.py                     (about 3 minutes on one CPU core)
      python examples/forecast_co2.py --quick             (a short series and few steps: the CI test)
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from scoringrules_torch.heads import (
    DiffusionHead,
    GaussianHead,
    GaussianMixtureHead,
    ImplicitGeneratorHead,
    PredictiveHead,
    interval_coverage,
    rollout,
    score_trajectories,
)

LAGS = 53
COND_DIM = 64
HEADS = ("implicit", "diffusion", "mixture", "gaussian")
PNG = Path(__file__).resolve().parent.parent / "docs" / "_static" / "forecast_co2.png"


def load_co2() -> tuple[np.ndarray, np.ndarray]:
    """Weekly CO2 in ppm (the 59 missing weeks linearly interpolated) and the week dates."""
    import statsmodels.api as sm

    frame = sm.datasets.co2.load_pandas().data
    series = frame["co2"].interpolate(limit_direction="both")
    return series.to_numpy(dtype=np.float64), frame.index.to_numpy()


# ---------------------------------------------------------------------------------------------------------------
# model: any history -> z network, plus any head
# ---------------------------------------------------------------------------------------------------------------
class LagNet(nn.Module):
    """``history (N, L, 1)`` of standardised changes -> ``z (N, COND_DIM)`` from the last ``LAGS`` of them."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(LAGS, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
            nn.Linear(width, COND_DIM),
        )  # fmt: skip

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.net(history[:, -LAGS:, 0])


def make_head(name: str, *, sampling_steps: int = 100) -> PredictiveHead:
    """The one line that changes between runs (every head at its default size for a 1-D target)."""
    if name == "implicit":  # EAR: generator trained by the energy score
        return ImplicitGeneratorHead(1, COND_DIM, num_samples=8)
    if (
        name == "diffusion"
    ):  # MAR: denoiser trained by denoising score matching, x0 clipped by default
        return DiffusionHead(1, COND_DIM, num_sampling_steps=sampling_steps)
    if name == "mixture":  # GIVT: mixture of Gaussians trained by the log score
        return GaussianMixtureHead(1, COND_DIM, num_components=4, hidden=64)
    if name == "gaussian":  # a Gaussian trained by the log score
        return GaussianHead(1, COND_DIM, hidden=64)
    raise ValueError(f"head must be one of {HEADS}; got {name!r}")


class Forecaster(nn.Module):
    def __init__(self, head: PredictiveHead) -> None:
        super().__init__()
        self.body = LagNet()
        self.head = head

    def loss(self, windows: torch.Tensor) -> torch.Tensor:
        """``windows (B, LAGS + 1)``: the first ``LAGS`` changes predict the last one."""
        z = self.body(windows[:, :LAGS, None])
        return self.head.loss(z, windows[:, LAGS:])


# ---------------------------------------------------------------------------------------------------------------
# data preparation, training, forecasting
# ---------------------------------------------------------------------------------------------------------------
class Data:
    """The level series, its standardised changes, and the train/test split."""

    def __init__(self, levels: np.ndarray, dates: np.ndarray, test_fraction: float = 0.2) -> None:
        self.levels, self.dates = levels, dates
        changes = np.diff(levels)  # changes[i] = x[i + 1] - x[i]
        self.n_train = int(
            len(levels) * (1 - test_fraction)
        )  # levels[:n_train] are the training weeks
        train = changes[: self.n_train - 1]
        self.mu, self.sd = float(train.mean()), float(train.std())
        self.std_changes = (changes - self.mu) / self.sd

    def training_windows(self) -> torch.Tensor:
        d = torch.from_numpy(self.std_changes[: self.n_train - 1]).float()
        return d.unfold(0, LAGS + 1, 1)  # (n, LAGS + 1)

    def origins(self, horizon: int, every: int) -> np.ndarray:
        """Forecast origins t (last observed week) in the test period with a full horizon after them."""
        return np.arange(self.n_train, len(self.levels) - horizon, every)

    def histories(self, origins: np.ndarray) -> torch.Tensor:
        # the changes up to and including x[t] - x[t-1], i.e. std_changes[t - LAGS : t]
        return torch.stack([torch.tensor(self.std_changes[t - LAGS : t]).float() for t in origins])[
            ..., None
        ]

    def targets(self, origins: np.ndarray, horizon: int) -> torch.Tensor:
        return torch.stack([torch.tensor(self.levels[t + 1 : t + 1 + horizon]) for t in origins])[
            ..., None
        ]

    def to_levels(self, std_changes: torch.Tensor, origins: np.ndarray) -> torch.Tensor:
        """``(m, B, H, 1)`` standardised changes -> level trajectories in ppm."""
        start = torch.tensor(self.levels[origins]).reshape(1, -1, 1, 1)
        return start + torch.cumsum(std_changes.double() * self.sd + self.mu, dim=2)


def train(
    name: str, data: Data, *, steps: int, batch: int, lr: float, seed: int, sampling_steps: int
) -> Forecaster:
    """Adam on random training windows; the last sixth of the training period is held out, and the
    parameters with the lowest held-out loss (the head's own proper score, checked every 25 steps) are kept:
    the series is short and a forecaster that overfits is over-confident."""
    torch.manual_seed(seed)
    model = Forecaster(make_head(name, sampling_steps=sampling_steps))
    windows = data.training_windows()
    n_val = len(windows) // 6
    fit, held_out = windows[:-n_val], windows[-n_val:]
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    best, best_state = math.inf, copy.deepcopy(model.state_dict())
    for step in range(steps):
        rows = torch.randint(0, fit.shape[0], (batch,), generator=gen)
        loss = model.loss(fit[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        sched.step()
        if (step + 1) % 25 == 0 or step + 1 == steps:
            with torch.no_grad(), torch.random.fork_rng():
                torch.manual_seed(
                    seed + 12345
                )  # the same noise for every check of a stochastic loss
                held = model.loss(held_out).item()
            if held < best:
                best, best_state = held, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval()


def seasonal_baseline(
    data: Data, origins: np.ndarray, horizon: int, m: int, seed: int
) -> torch.Tensor:
    """Seasonal naive ``x_t + (x_{t+h-52} - x_{t-52})`` plus resampled training-period error trajectories."""
    x = data.levels

    def point(t: int) -> np.ndarray:
        h = np.arange(1, horizon + 1)
        return x[t] + x[t + h - 52] - x[t - 52]

    train_origins = np.arange(52, data.n_train - horizon)
    errors = np.stack([x[t + 1 : t + 1 + horizon] - point(t) for t in train_origins])  # (n, H)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(errors), size=(m, len(origins)))
    paths = np.stack([point(t) for t in origins])[None] + errors[pick]  # (m, B, H)
    return torch.from_numpy(paths)[..., None]


def evaluate(paths: torch.Tensor, target: torch.Tensor) -> dict[str, np.ndarray | float]:
    scores = score_trajectories(paths, target)
    return {
        "crps": scores.crps.numpy(),
        "energy": scores.energy.item(),
        "coverage80": interval_coverage(paths, target, level=0.8).numpy(),
    }


def plot(data: Data, origin: int, paths: dict[str, torch.Tensor], index: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(paths)
    fig, axes = plt.subplots(
        math.ceil(len(names) / 3), min(3, len(names)), figsize=(13, 6.5), squeeze=False
    )
    past = np.arange(origin - 52, origin + 1)
    for ax, name in zip(axes.flat, names, strict=False):
        horizon = paths[name].shape[2]
        future = np.arange(origin + 1, origin + 1 + horizon)
        for k in range(min(25, paths[name].shape[0])):
            ax.plot(future, paths[name][k, index, :, 0].numpy(), color="C0", alpha=0.25, lw=0.8)
        lo, hi = np.quantile(paths[name][:, index, :, 0].numpy(), [0.1, 0.9], axis=0)
        ax.fill_between(future, lo, hi, color="C0", alpha=0.15, label="80 % interval")
        ax.plot(past, data.levels[past], color="k", lw=1.2, label="observed")
        ax.plot(future, data.levels[future], color="C3", lw=1.2, label="what happened")
        ax.set_title(name)
        ax.set_xlabel(f"week (origin {str(data.dates[origin])[:10]})")
        ax.set_ylabel("CO2 (ppm)")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def format_table(results: dict[str, dict], horizon: int) -> str:
    steps = [h for h in (1, 4, 13, 26) if h <= horizon]
    head = " | ".join(f"CRPS h={h}" for h in steps)
    lines = [
        f"| forecaster | {head} | mean CRPS | energy score | 80 % coverage h=1 | h={horizon} | mean |",
        "|---" * (len(steps) + 6) + "|",
    ]
    for name, r in results.items():
        crps = " | ".join(f"{r['crps'][h - 1]:.3f}" for h in steps)
        cov = r["coverage80"]
        lines.append(
            f"| {name} | {crps} | {r['crps'].mean():.3f} | {r['energy']:.3f} | {cov[0]:.2f} | "
            f"{cov[-1]:.2f} | {cov.mean():.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--horizon", type=int, default=26)
    parser.add_argument("--samples", type=int, default=100, help="trajectories per origin")
    parser.add_argument("--every", type=int, default=13, help="weeks between forecast origins")
    parser.add_argument("--sampling-steps", type=int, default=100, help="diffusion head")
    parser.add_argument("--weeks", type=int, default=None, help="use only the first N weeks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--png", type=Path, default=None, help=f"plot path (default {PNG.name} in docs)"
    )
    parser.add_argument("--quick", action="store_true", help="short series, few steps (CI)")
    args = parser.parse_args(argv)
    if args.png is None and not args.quick:  # the quick run never overwrites the docs' figure
        args.png = PNG
    if args.quick:
        args.steps, args.horizon, args.samples, args.every = 200, 8, 32, 26
        args.sampling_steps, args.weeks = 20, args.weeks or 700
    levels, dates = load_co2()
    if args.weeks:
        levels, dates = levels[: args.weeks], dates[: args.weeks]
    data = Data(levels, dates)
    origins = data.origins(args.horizon, args.every)
    target = data.targets(origins, args.horizon)
    results: dict[str, dict] = {}
    all_paths: dict[str, torch.Tensor] = {}
    for name in args.heads:
        start = time.process_time()
        model = train(
            name, data, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
            sampling_steps=args.sampling_steps,
        )  # fmt: skip
        train_s = time.process_time() - start
        torch.manual_seed(args.seed + 1)
        start = time.process_time()
        changes = rollout(
            model.body, model.head, data.histories(origins), horizon=args.horizon,
            num_samples=args.samples,
        )  # fmt: skip
        paths = data.to_levels(changes, origins)
        results[name] = {**evaluate(paths, target), "train_s": train_s,
                         "forecast_s": time.process_time() - start}  # fmt: skip
        all_paths[name] = paths
        print(
            f"{name:>10}: energy {results[name]['energy']:.3f}, CRPS h=1 {results[name]['crps'][0]:.3f}"
            f" h={args.horizon} {results[name]['crps'][-1]:.3f}, 80% coverage "
            f"{results[name]['coverage80'].mean():.2f} (train {train_s:.0f} s, forecast "
            f"{results[name]['forecast_s']:.0f} s CPU)",
            flush=True,
        )
    base = seasonal_baseline(data, origins, args.horizon, args.samples, args.seed)
    results["seasonal naive"] = evaluate(base, target)
    all_paths["seasonal naive"] = base
    print(format_table(results, args.horizon))
    print(f"{len(origins)} origins x {args.samples} trajectories x {args.horizon} weeks")
    if args.png:
        plot(data, int(origins[len(origins) // 2]), all_paths, len(origins) // 2, args.png)
    return results


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
