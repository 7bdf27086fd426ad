"""Train an ensemble forecaster whose members are split over processes (``process_group=``), as AIFS-CRPS / FGN do.

Data: the monthly Niño-3 sea-surface temperature, 1950-2010 (``statsmodels.datasets.elnino``, bundled with
statsmodels, no download). From the last 12 monthly anomalies (and the calendar month) the model forecasts the
anomalies of the next ``--leads`` months. Years before 2000 train, 2000-2010 are held out.

Model: a small MLP with *noise injection* (a fresh Gaussian noise vector is concatenated to the input of every
hidden layer, as in FGN's functional-noise generators): each noise draw is one ensemble member. Loss: the
almost-fair CRPS of AIFS-CRPS (``estimator="afcrps"``, alpha 0.95) of the whole ensemble, summed over leads.

Distribution: under ``torchrun --nproc_per_node=W`` the model is wrapped in ``DistributedDataParallel``, every rank
sees the *same* batch and draws only its share of the members; ``crps_ensemble(..., process_group=WORLD)`` scores
the full ensemble on every rank, and ``scale_grad_for_ddp`` makes DDP's gradient average equal to the gradient of
one process holding all members. The member noise is drawn from one seed and sliced per rank, so a run with W
processes follows the same trajectory as the single-process run (up to float rounding).

Run (CPU, gloo, one thread per process):

    torchrun --standalone --nproc_per_node=2 examples/distributed_ensemble.py
    python examples/distributed_ensemble.py                 # one process, all members

Prints the loss curve, the median step time, and the fair CRPS (deg C) on the held-out years of the trained
ensemble and of a climatological ensemble (the training years' values for the same calendar month).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoringrules_torch._internal.distributed import LAST_EXCHANGE, scale_grad_for_ddp  # noqa: E402
from scoringrules_torch.functional.crps_sample import crps_ensemble  # noqa: E402

NOISE = 8


@functools.lru_cache(maxsize=1)
def load_elnino() -> tuple[torch.Tensor, torch.Tensor]:
    """Monthly temperatures ``(T,)`` (deg C) and their years ``(T,)``."""
    from statsmodels.datasets import elnino

    frame = elnino.load_pandas().data
    values = torch.tensor(frame.iloc[:, 1:].to_numpy(), dtype=torch.float32)  # (years, 12)
    years = torch.tensor(frame["YEAR"].to_numpy(), dtype=torch.float32)
    return values.reshape(-1), years.repeat_interleave(12)


def make_data(window: int, leads: int, split_year: float = 2000.0):
    """Windows of anomalies: inputs ``(N, window + 2)``, targets ``(N, leads)``, target months, train mask."""
    series, years = load_elnino()
    months = torch.arange(series.numel()) % 12
    train_t = years < split_year
    clim = torch.stack([series[train_t & (months == k)].mean() for k in range(12)])
    anom = series - clim[months]
    scale = anom[train_t].std()
    anom = anom / scale
    n = series.numel() - window - leads + 1
    idx = torch.arange(n)
    x = torch.stack([anom[i : i + window] for i in range(n)])
    first = idx + window  # index of the first forecast month
    phase = 2 * torch.pi * months[first].float() / 12
    x = torch.cat([x, torch.sin(phase)[:, None], torch.cos(phase)[:, None]], dim=1)
    y = torch.stack([anom[i + window : i + window + leads] for i in range(n)])
    target_months = torch.stack([months[i + window : i + window + leads] for i in range(n)])
    train = years[first + leads - 1] < split_year  # every target month of a training window is before the split
    test = years[first] >= split_year
    return x, y, target_months, train, test, anom, months, train_t, scale


class NoisyMLP(nn.Module):
    """``f(x, z)``: Gaussian noise concatenated to the input of every hidden layer; one noise draw per member."""

    def __init__(self, inputs: int, outputs: int, hidden: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(inputs + NOISE, hidden)
        self.l2 = nn.Linear(hidden + NOISE, hidden)
        self.out = nn.Linear(hidden + NOISE, outputs)

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x (B, inputs)``, ``noise (m, B, 3, NOISE)`` -> members ``(m, B, outputs)``."""
        h = x.expand(noise.shape[0], -1, -1)
        h = torch.relu(self.l1(torch.cat([h, noise[..., 0, :]], -1)))
        h = torch.relu(self.l2(torch.cat([h, noise[..., 1, :]], -1)))
        return self.out(torch.cat([h, noise[..., 2, :]], -1))


def my_members(total: int, rank: int, world: int) -> slice:
    """This rank's members: an even split, the first ``total % world`` ranks take one more."""
    base, extra = divmod(total, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=8, help="ensemble size over all processes")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--window", type=int, default=12)
    p.add_argument("--leads", type=int, default=3)
    p.add_argument("--alpha", type=float, default=0.95, help="almost-fair CRPS weight (1 = fair)")
    p.add_argument("--eval-members", type=int, default=50)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=str, default=None, help="write the results as JSON here (rank 0)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    group = None
    rank = 0
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        rank, group = dist.get_rank(), dist.group.WORLD
    log = print if rank == 0 else (lambda *a, **k: None)

    x, y, target_months, train, test, anom, months, train_t, scale = make_data(args.window, args.leads)
    torch.manual_seed(args.seed)
    model = NoisyMLP(x.shape[1], args.leads, args.hidden)
    net = model
    if group is not None:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    mine = my_members(args.members, rank, world)
    noise_gen = torch.Generator().manual_seed(args.seed + 1)
    xt, yt = x[train], y[train]
    log(f"{world} process(es), {args.members} members ({mine.stop - mine.start} on rank 0), "
        f"{xt.shape[0]} training windows, {int(test.sum())} held-out")

    curve, times, exchange = [], [], {}
    for step in range(args.steps):
        t0 = time.perf_counter()
        # Every rank draws the noise of all members from the same seed and keeps its own rows.
        noise = torch.randn(args.members, xt.shape[0], 3, NOISE, generator=noise_gen)[mine]
        loss = crps_ensemble(net(xt, noise), yt, estimator="afcrps", alpha=args.alpha, process_group=group)
        opt.zero_grad(set_to_none=True)
        (loss if group is None else scale_grad_for_ddp(loss, group)).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        curve.append(float(loss.detach()))
        exchange = dict(LAST_EXCHANGE) if group is not None else {}
        if step % args.log_every == 0 or step == args.steps - 1:
            log(f"step {step:5d}  afCRPS {curve[-1]:.4f}")

    # Held-out evaluation: fair CRPS in deg C, trained ensemble vs climatology.
    with torch.no_grad():
        g = torch.Generator().manual_seed(args.seed + 2)
        xe, ye = x[test], y[test]
        noise = torch.randn(args.eval_members, xe.shape[0], 3, NOISE, generator=g)
        noise = noise[my_members(args.eval_members, rank, world)]
        model_lead = crps_ensemble(model(xe, noise) * scale, ye * scale, process_group=group, reduction="none")
        clim = torch.stack([anom[train_t & (months == k)] for k in range(12)])  # (12, train years)
        clim_members = clim[target_months[test]].permute(2, 0, 1)  # (years, N_test, leads)
        clim_lead = crps_ensemble(clim_members * scale, ye * scale, reduction="none")
        model_lead, clim_lead = model_lead.mean(0), clim_lead.mean(0)  # per lead time
        model_crps, clim_crps = float(model_lead.mean()), float(clim_lead.mean())
    steady = sorted(times[min(5, len(times) - 1) :])
    result = {
        "world_size": world,
        "members": args.members,
        "steps": args.steps,
        "loss_curve": curve,
        "median_step_s": steady[len(steady) // 2],
        "heldout_fair_crps_model": model_crps,
        "heldout_fair_crps_climatology": clim_crps,
        "heldout_fair_crps_model_per_lead": model_lead.tolist(),
        "heldout_fair_crps_climatology_per_lead": clim_lead.tolist(),
        "bytes_per_training_call": exchange,
    }
    log(f"median step time {1000 * result['median_step_s']:.1f} ms ({world} process(es))")
    if exchange:
        log(f"per training call each rank sent {exchange['sent']} B and received {exchange['received']} B "
            f"({exchange['collective']} of {exchange['payload']} B)")
    log(f"held-out fair CRPS (deg C): ensemble {model_crps:.3f}, climatology {clim_crps:.3f}")
    log("  per lead (months 1..): ensemble " + " ".join(f"{v:.3f}" for v in model_lead.tolist())
        + ", climatology " + " ".join(f"{v:.3f}" for v in clim_lead.tolist()))
    if args.out and rank == 0:
        Path(args.out).write_text(json.dumps(result, indent=1))
    if group is not None:
        import torch.distributed as dist

        dist.destroy_process_group()
    return result


if __name__ == "__main__":
    main()
