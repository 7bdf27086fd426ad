"""Process set-up: one CPU process or ``torchrun`` DDP (gloo on CPU, NCCL on GPU), and CPU thread choice.

- :func:`setup_distributed` returns a :class:`Dist` (rank, world size, device); the process group gets a long
  collective timeout (``timeout_minutes``, default 60) because rank 0 alone writes the checkpoints, which take
  minutes for EAR-H on a network file system while the other ranks wait in the next collective.
- :func:`broadcast_object` and :func:`check_same_count` are the small collectives of the set-up phase:
  every rank must see the same number of training items, or the ranks would compute different step totals and
  the job would hang in its last collective.
- :func:`set_cpu_threads` picks torch's thread count for a single CPU process from the cores that are idle
  right now (:func:`busy_cores`, from ``/proc/stat``).
"""

from __future__ import annotations

import datetime
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "Dist",
    "setup_distributed",
    "broadcast_object",
    "check_same_count",
    "all_reduce_sum",
    "busy_cores",
    "set_cpu_threads",
]


@dataclass
class Dist:
    """Where this process sits: ``rank`` of ``world_size``, its ``device``; ``enabled`` under torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    enabled: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str | None = None, *, timeout_minutes: float = 60.0) -> Dist:
    """Initialise ``torch.distributed`` when launched by torchrun (``RANK``/``WORLD_SIZE`` set), else 1 process.

    GPU: one device per process (``LOCAL_RANK``), NCCL. CPU: gloo (one thread per process is best on a
    small machine: torchrun sets ``OMP_NUM_THREADS=1``).
    """
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if "RANK" in os.environ and world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if use_cuda:
            torch.cuda.set_device(local)
            dev = torch.device("cuda", local)
        else:
            dev = torch.device("cpu")
        if not dist.is_initialized():
            dist.init_process_group(
                "nccl" if use_cuda else "gloo",
                timeout=datetime.timedelta(minutes=timeout_minutes),
            )
        return Dist(dist.get_rank(), dist.get_world_size(), local, dev, True)
    return Dist(0, 1, 0, torch.device("cuda" if use_cuda else "cpu"), False)


def broadcast_object(obj, d: Dist):
    """Rank 0's ``obj`` on every rank (picklable objects; identity in one process)."""
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_same_count(n: int, d: Dist, what: str = "training items") -> None:
    """Raise on every rank unless all ranks see the same ``n`` (names each rank's count)."""
    if not d.enabled:
        return
    counts: list = [None] * d.world_size
    dist.all_gather_object(counts, int(n))
    if len(set(counts)) > 1:
        per_rank = ", ".join(f"rank {r}: {c}" for r, c in enumerate(counts))
        raise RuntimeError(
            f"the ranks see different numbers of {what} ({per_rank}); every rank must read the same "
            "data folder (a shared file system, or identical copies), or the ranks would run different "
            "numbers of steps and hang"
        )


def all_reduce_sum(values: list[float], d: Dist) -> list[float]:
    """Sum of ``values`` (floats) over the ranks, computed in float64 on the rank's device."""
    if not d.enabled:
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return t.tolist()


def busy_cores(interval: float = 1.0) -> float | None:
    """Cores busy with other work right now: the non-idle share of ``/proc/stat`` over ``interval`` seconds.

    ``None`` where ``/proc/stat`` is missing (not Linux). Unlike the 1-minute load average, this does not
    count work that has just ended (e.g. the ``pip install`` before the demo).
    """

    def read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        if len(fields) < 5:
            return None
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]), idle

    a = read()
    if a is None:
        return None
    time.sleep(interval)
    b = read()
    if b is None or b[0] <= a[0]:
        return None
    busy_share = 1.0 - (b[1] - a[1]) / (b[0] - a[0])
    return max(0.0, busy_share) * (os.cpu_count() or 1)


def set_cpu_threads(threads: str) -> None:
    """Pick torch's intra-op thread count for a single CPU process.

    Torch threads that share cores with other busy processes wait on each other at every parallel region: on a
    2-core machine with one other busy process, 2 threads ran a demo step 5-10x slower than 1 thread. ``auto``
    therefore uses the cores not busy during one second before training (``/proc/stat``; the 1-minute load
    average where that is not available), at least one. ``OMP_NUM_THREADS`` wins when set.
    """
    if threads != "auto":
        try:
            n = int(threads)
        except ValueError:
            raise ValueError(f"--threads must be a number or 'auto'; got {threads!r}") from None
        torch.set_num_threads(max(1, n))
        return
    if "OMP_NUM_THREADS" in os.environ:
        return
    cores = os.cpu_count() or 1
    busy = busy_cores()
    how = "busy over the last second"
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            return
        how = "1-minute load average"
    n = max(1, min(cores, cores - round(busy)))
    torch.set_num_threads(n)
    print(
        f"[train] {n} torch thread(s): {cores} cores, {busy:.2f} {how} "
        "(set --threads or OMP_NUM_THREADS to override)",
        flush=True,
    )
