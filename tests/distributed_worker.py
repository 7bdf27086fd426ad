"""One rank of the distributed-ensemble tests (``tests/test_distributed.py`` starts ``W`` of these).

Usage: ``python distributed_worker.py RANK WORLD PORT OUT_DIR``, or :func:`main` in a forked process (what the
tests do: a fork does not pay the import of torch again). The rank joins a gloo group over TCP, runs every
case of :data:`CASES` on its share of the members of a deterministic ensemble, and saves what it got (values,
gradients of its own members and weights, error messages, bytes exchanged) to ``OUT_DIR/rank{RANK}.pt``. The test
process rebuilds the same ensembles with :func:`make_case` and compares with one process scoring all members.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch._dynamo  # noqa: F401  (DDP imports it lazily; imported here once, before the ranks are forked)
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scoringrules_torch._internal import ensemble_ext  # noqa: E402
from scoringrules_torch._internal.distributed import LAST_EXCHANGE, scale_grad_for_ddp  # noqa: E402
from scoringrules_torch.functional.crps_sample import crps_ensemble  # noqa: E402
from scoringrules_torch.functional.energy import energy_score  # noqa: E402
from scoringrules_torch.functional.kernel import kernel_score  # noqa: E402
from scoringrules_torch.functional.variogram import variogram_score  # noqa: E402
from scoringrules_torch.scores.sample import CRPS  # noqa: E402

FUNCTIONS = {"crps": crps_ensemble, "energy": energy_score, "kernel": kernel_score, "variogram": variogram_score}

# (name, score, keyword arguments, weights: None | "m" | "mB", sample_dim, reduction, nan: None | "propagate"...)
CASES = [
    ("crps-fair", "crps", {"estimator": "fair"}, None, 0, "none", None),
    ("crps-nrg", "crps", {"estimator": "nrg"}, None, 0, "mean", None),
    ("crps-afcrps", "crps", {"estimator": "afcrps", "alpha": 0.8}, None, 0, "none", None),
    ("crps-pwm", "crps", {"estimator": "pwm"}, None, 0, "sum", None),
    ("crps-qd-weights", "crps", {"estimator": "qd"}, "mB", 0, "none", None),
    ("crps-fair-weights", "crps", {"estimator": "fair"}, "m", 0, "none", None),
    ("crps-afcrps-weights", "crps", {"estimator": "afcrps", "alpha": 0.5}, "mB", 0, "mean", None),
    ("crps-fair-sampledim", "crps", {"estimator": "fair"}, None, 1, "none", None),
    ("energy-fair", "energy", {"estimator": "fair"}, None, 0, "none", None),
    ("energy-nrg-beta", "energy", {"estimator": "nrg", "beta": 0.5}, None, 0, "none", None),
    ("energy-afes-weights", "energy", {"estimator": "afes", "alpha": 0.9}, "mB", 0, "none", None),
    ("energy-fair-sampledim", "energy", {"estimator": "fair"}, "m", 2, "mean", None),
    ("kernel-fair", "kernel", {"estimator": "fair", "bandwidth": 1.5}, None, 0, "none", None),
    ("kernel-nrg-weights", "kernel", {"estimator": "nrg", "kernel": "laplacian"}, "mB", 0, "none", None),
    ("variogram-nrg", "variogram", {"estimator": "nrg"}, None, 0, "none", None),
    ("variogram-fair-weights", "variogram", {"estimator": "fair", "p": 1.0}, "m", 0, "none", None),
    # The same scores from all-reduced moments instead of gathered members ("-moments": forced in the worker).
    ("variogram-nrg-moments", "variogram", {"estimator": "nrg"}, None, 0, "none", None),
    ("variogram-fair-moments", "variogram", {"estimator": "fair", "p": 1.0}, "mB", 1, "mean", None),
    ("crps-nan-propagate", "crps", {"estimator": "fair"}, None, 0, "none", "propagate"),
    ("crps-nan-omit", "crps", {"estimator": "fair"}, None, 0, "none", "omit"),
    ("crps-nan-raise", "crps", {"estimator": "fair"}, None, 0, "none", "raise"),
    ("energy-nan-omit", "energy", {"estimator": "fair"}, "mB", 0, "mean", "omit"),
    ("energy-nan-propagate", "energy", {"estimator": "fair"}, None, 0, "none", "propagate"),
    ("energy-nan-raise", "energy", {"estimator": "fair"}, None, 0, "none", "raise"),
    ("kernel-nan-omit", "kernel", {"estimator": "fair"}, None, 0, "none", "omit"),
    ("variogram-nan-omit", "variogram", {"estimator": "fair"}, None, 0, "none", "omit"),
]

BATCH = (3, 2)
DIM = 3


def counts_for(world: int) -> list[int]:
    """Uneven member counts per rank (with 4 ranks, one rank holds no member)."""
    return {1: [6], 2: [2, 5], 4: [3, 0, 4, 3]}[world]


def make_case(index: int, world: int):
    """The full ensemble of case ``index``: ``(samples, target, weights)`` in the case's layout, float64."""
    name, score, _, weights, sample_dim, _, nan = CASES[index]
    g = torch.Generator().manual_seed(1000 + index)
    m = sum(counts_for(world))
    event = () if score == "crps" else (DIM,)
    x = torch.randn((m, *BATCH, *event), generator=g, dtype=torch.float64)
    y = torch.randn((*BATCH, *event), generator=g, dtype=torch.float64)
    if nan is not None:
        # A NaN in one member of the last rank, at one observation.
        x[m - 1, 0, 1] = float("nan")
    w = None
    if weights == "m":
        w = torch.rand(m, generator=g, dtype=torch.float64) + 0.1
    elif weights == "mB":
        w = torch.rand((m, *BATCH), generator=g, dtype=torch.float64) + 0.1
        w = w.movedim(0, sample_dim)  # member weights follow sample_dim, like the samples
    x = x.movedim(0, sample_dim)
    return x, y, w


def shard(x: torch.Tensor, w, sample_dim: int, counts: list[int], rank: int):
    """This rank's members (and weights)."""
    start = sum(counts[:rank])
    xs = x.narrow(sample_dim, start, counts[rank])
    ws = None if w is None else w.narrow(sample_dim if w.dim() > 1 else 0, start, counts[rank])
    return xs, ws


def run_case(index: int, x, y, w, process_group):
    """Value and gradients (members, weights) of case ``index``; ``("error", message)`` if it raises."""
    name, score, kwargs, _, sample_dim, reduction, nan = CASES[index]
    x = x.clone().requires_grad_(True)
    w = None if w is None else w.clone().requires_grad_(True)
    extra = {} if nan is None else {"nan_policy": nan}
    try:
        value = FUNCTIONS[score](x, y, sample_dim=sample_dim, reduction=reduction, member_weights=w,
                                 process_group=process_group, **kwargs, **extra)
    except ValueError as err:
        return {"error": str(err)}
    # A fixed, non-uniform cotangent so that every output element matters.
    cot = torch.linspace(0.5, 1.5, value.numel(), dtype=value.dtype).reshape(value.shape)
    finite = torch.isfinite(value)
    (value.where(finite, 0.0) * cot).sum().backward()
    return {
        "value": value.detach(),
        "grad_x": x.grad,
        "grad_w": None if w is None else w.grad,
    }


# --- DDP: members from one shared model ---------------------------------------------------------------------


def ddp_model():
    torch.manual_seed(7)
    return torch.nn.Sequential(torch.nn.Linear(4 + 2, 8), torch.nn.Tanh(), torch.nn.Linear(8, DIM)).double()


def ddp_data(world: int):
    """Inputs ``(B, 4)``, targets ``(B, d)`` and the noise of every member ``(m, B, 2)`` (split over ranks)."""
    g = torch.Generator().manual_seed(99)
    inputs = torch.randn(5, 4, generator=g, dtype=torch.float64)
    target = torch.randn(5, DIM, generator=g, dtype=torch.float64)
    noise = torch.randn(sum(counts_for(world)), 5, 2, generator=g, dtype=torch.float64)
    return inputs, target, noise


def members(model, inputs, noise):
    """Members ``(m, B, d)``: the model applied to the inputs with each member's noise."""
    m = noise.shape[0]
    z = torch.cat([inputs.expand(m, -1, -1), noise], dim=-1)
    return model(z)


def main(rank: int, world: int, port: str, out: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    group = dist.group.WORLD
    counts = counts_for(world)
    results = {}
    for index, case in enumerate(CASES):
        x, y, w = make_case(index, world)
        xs, ws = shard(x, w, case[4], counts, rank)
        ensemble_ext.MOMENTS_EXCHANGE = "always" if case[0].endswith("-moments") else "auto"
        results[case[0]] = run_case(index, xs, y, ws, group)
        if case[0] in ("energy-fair", "variogram-nrg-moments"):
            results["bytes-" + case[0]] = dict(LAST_EXCHANGE)
    ensemble_ext.MOMENTS_EXCHANGE = "auto"

    # Ranks passing different batch shapes: a clear error on every rank, before any member is exchanged.
    x, y, _ = make_case(0, world)
    xs, _ = shard(x, None, 0, counts, rank)
    if rank == world - 1:
        xs, y = xs[:, :2], y[:2]
    try:
        crps_ensemble(xs, y, process_group=group)
        results["shape-error"] = None
    except ValueError as err:
        results["shape-error"] = str(err)

    # The Module forwards process_group.
    x, y, _ = make_case(0, world)
    xs, _ = shard(x, None, 0, counts, rank)
    results["module"] = CRPS(estimator="afcrps", alpha=0.7, process_group=group, reduction="none")(xs, y)

    # DDP: each rank draws its members from the shared model; gradients after DDP's averaging.
    model = DistributedDataParallel(ddp_model())
    inputs, target, noise = ddp_data(world)
    local_noise = noise[sum(counts[:rank]) : sum(counts[: rank + 1])]
    loss = energy_score(members(model, inputs, local_noise), target, process_group=group)
    scale_grad_for_ddp(loss, group).backward()
    results["ddp-loss"] = loss.detach()
    results["ddp-grads"] = {n: p.grad.clone() for n, p in model.module.named_parameters()}

    torch.save(results, out / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
