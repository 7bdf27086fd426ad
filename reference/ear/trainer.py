"""The training loop of the reference EAR, as small named pieces.

Training as the official code does it: AdamW (0.9, 0.95); weight decay on backbone matrices only; the head's
2-D weights at ``lr x score_lrscale``; ``lr = blr x global_batch / 256``; linear warmup then constant (or
cosine); gradient clipping on the official loss scale (:func:`clip_gradients`); EMA of the parameters;
gradient accumulation (no gradient all-reduce on intermediate micro-steps); bf16 autocast on GPU.
Differences, on purpose: a non-finite loss or gradient skips the step (counted; ``max_consecutive_nonfinite``
in a row abort) instead of exiting; checkpoints hold only tensors and plain values, only finite weights, and
are written atomically; ``--resume`` continues mid-epoch with the same batches and random numbers.

Pieces, in the order :func:`train` uses them: :func:`prepare_run_dir` (orphaned temporaries, ``config.json``),
:func:`build_state` (model, EMA, optimizer), :func:`restore` (``--resume``), then per step :func:`set_lr`,
:func:`train_step` (forward/backward over the micro-steps, clipping, the all-ranks decision, optimizer and
EMA update), :func:`log_step`, :func:`write_checkpoint` / :func:`keep_checkpoint`, and sample grids through
:func:`~reference.ear.sampling.ema_weights` (no copy of the model).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from reference.ear.checkpoint import (
    all_finite,
    keep_copy,
    load_checkpoint,
    remove_orphans,
    resolve_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from reference.ear.configs import ModelConfig, RunConfig, TrainConfig
from reference.ear.data import StepBatches, TrainData
from reference.ear.distributed import Dist, all_reduce_sum, setup_distributed
from reference.ear.model import EAR, build_model, param_groups
from reference.ear.sampling import ema_weights, sample_grid

__all__ = [
    "TrainState",
    "lr_at",
    "schedule",
    "official_loss_factor",
    "clip_gradients",
    "configure_backends",
    "precision_context",
    "fused_adamw_supported",
    "build_optimizer",
    "compile_training",
    "prepare_run_dir",
    "build_state",
    "restore",
    "set_lr",
    "train_step",
    "write_checkpoint",
    "keep_checkpoint",
    "prepare_log",
    "log_step",
    "plot_loss",
    "train",
]

LOG_FIELDS = [
    "step",
    "epoch",
    "loss",
    "lr",
    "grad_norm",
    "skipped",
    "skipped_items",
    "elapsed_s",
    "steps_per_s",
]


# -- schedule and clipping -------------------------------------------------------------------------------
def lr_at(
    step: int, *, lr: float, warmup_steps: int, total_steps: int, schedule: str, min_lr: float
) -> float:
    """Linear warmup over ``warmup_steps`` (step ``s`` uses ``(s + 1) / warmup``), then constant or half-cosine.

    ``total_steps`` is the schedule's length (from ``train.epochs``), not where a run stops.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        span = max(1, total_steps - warmup_steps)
        frac = min(1.0, (step - warmup_steps) / span)
        return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))
    raise ValueError(f"train.lr_schedule must be 'constant' or 'cosine'; got {schedule!r}")


def schedule(tc: TrainConfig, steps_per_epoch: int) -> tuple[int, int, int]:
    """``(stop_step, schedule_steps, warmup_steps)``.

    The lr schedule always spans ``train.epochs``; ``train.max_steps`` (``--max-steps``) only stops the run
    earlier, so a run split into several ``--max-steps`` pieces follows the same schedule as one run.
    """
    schedule_steps = max(1, math.ceil(tc.epochs * steps_per_epoch))
    stop = schedule_steps if tc.max_steps is None else min(schedule_steps, tc.max_steps)
    return stop, schedule_steps, round(tc.warmup_epochs * steps_per_epoch)


def official_loss_factor(mc: ModelConfig) -> float:
    """How much larger the official code's loss is than ours for this head (2 for EAR's energy loss).

    Per token, EAR's loss is ``||x1 - y|| + ||x2 - y|| - tau ||x1 - x2||`` per sample pair; ours is the energy
    score estimate ``(||x1 - y|| + ||x2 - y||) / 2 - tau ||x1 - x2|| / 2``: exactly half, so our gradients are
    half. The diffusion and Gaussian heads use the official (MAR) scale or have no official counterpart: 1.
    """
    return 2.0 if mc.head == "implicit" else 1.0


def clip_gradients(params, grad_clip: float, factor: float) -> torch.Tensor:
    """Clip as the official code does, on its loss scale; returns the gradient norm on that scale.

    Our gradients are ``1 / factor`` of the official ones, so clipping ours at ``grad_clip / factor`` clips
    exactly when (and by the same ratio as) the official rule ``||g_official|| > grad_clip`` would. The
    returned (and logged) norm is ``factor x`` our norm, comparable with ``grad_clip``. ``grad_clip=0``: off.
    """
    max_norm = grad_clip / factor if grad_clip > 0 else float("inf")
    return torch.nn.utils.clip_grad_norm_(params, max_norm) * factor


# -- fast paths (switchable from TrainConfig) -----------------------------------------------------------------
def configure_backends(tc: TrainConfig, device: torch.device) -> None:
    """Process-wide CUDA settings of the training script: TF32 matmuls and convolutions (``train.tf32``).

    Only the training loop calls this; importing the library or the model never changes global state.
    """
    if device.type == "cuda" and tc.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def precision_context(tc: TrainConfig, device: torch.device):
    """``(autocast context, uses_bf16)`` for ``train.precision``: bf16 autocast needs no loss scaler."""
    if tc.precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"train.precision must be auto, bf16 or fp32; got {tc.precision!r}")
    use_bf16 = tc.precision == "bf16" or (tc.precision == "auto" and device.type == "cuda")
    if use_bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16), True
    return contextlib.nullcontext(), False


def fused_adamw_supported(device: torch.device) -> bool:
    """Whether this torch has a fused AdamW kernel for ``device`` (CUDA, and CPU since torch 2.4)."""
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        major, minor = (int(x) for x in torch.__version__.split(".")[:2])
        return (major, minor) >= (2, 4)
    return False


def build_optimizer(groups: list[dict], lr: float, tc: TrainConfig, device: torch.device):
    """AdamW over the parameter groups; the fused kernel when ``train.fused_optimizer`` and supported."""
    fused = bool(tc.fused_optimizer) and fused_adamw_supported(device)
    kwargs = {"fused": True} if fused else {"foreach": True}
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(tc.betas), weight_decay=0.0, **kwargs)


def compile_training(module: nn.Module, setting: bool | str) -> nn.Module:
    """``train.compile``: the module itself (False), ``torch.compile(module)`` (True) or with a named backend.

    The compiled wrapper shares the parameters of ``module``; checkpoints and the EMA read ``module`` itself.
    """
    if setting is False or setting is None:
        return module
    if setting is True:
        return torch.compile(module)
    if isinstance(setting, str):
        return torch.compile(module, backend=setting)
    raise ValueError(f"train.compile must be true, false or a backend name; got {setting!r}")


# -- state -------------------------------------------------------------------------------------------------
@dataclass
class TrainState:
    """Everything the loop updates: model, EMA (float32, by parameter name), optimizer and counters."""

    model: EAR
    ema: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    params: list[torch.nn.Parameter]
    ema_list: list[torch.Tensor]
    base_lr: float
    step: int = 0
    skipped_steps: int = 0  # steps skipped: non-finite loss / gradient, or no readable item
    skipped_items: int = 0  # unreadable data items, summed over the ranks
    consecutive_bad: int = 0
    consecutive_empty: int = 0
    updated_steps: int = 0  # optimizer steps taken in this process's session
    empty_steps: int = 0  # steps without a readable item in this session
    last_good: Path | None = None  # the newest checkpoint known to hold finite weights
    pending_items: int = field(default=0, repr=False)  # this rank's skipped items not yet reduced


def prepare_run_dir(run_dir: Path, config: RunConfig, d: Dist) -> None:
    """Create ``run_dir``, remove temporaries left by an interrupted save, write ``config.json`` (rank 0)."""
    if not d.main:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_orphans(run_dir)
    if removed:
        print(
            f"[train] removed {len(removed)} temporary file(s) of an interrupted save: "
            + ", ".join(p.name for p in removed),
            flush=True,
        )
    (run_dir / "config.json").write_text(config.to_json())


def build_state(config: RunConfig, d: Dist, global_batch: int) -> TrainState:
    """Model on ``d.device``, float32 EMA, AdamW over the official parameter groups."""
    tc = config.train
    model = build_model(config.model).to(d.device)
    ema = {n: p.detach().clone().float() for n, p in model.named_parameters()}
    groups = param_groups(model, weight_decay=tc.weight_decay, score_lrscale=tc.score_lrscale)
    base_lr = tc.lr if tc.lr is not None else tc.blr * global_batch / 256
    optimizer = build_optimizer(groups, base_lr, tc, d.device)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [p for p in model.parameters() if p.requires_grad]
    return TrainState(model, ema, optimizer, params, [ema[n] for n in names], base_lr)


def restore(
    state: TrainState, resume: str | os.PathLike, config: RunConfig, d: Dist, batches: StepBatches
) -> None:
    """Load model, EMA, optimizer, counters and RNG states from a checkpoint (``--resume``).

    The file is memory-mapped on the CPU and copied into the live tensors, then dropped: no second copy of
    the model stays on the device. A checkpoint written with another global batch is refused (a step would
    mean something else: the batch order, the lr and the epoch count all depend on it).
    """
    tc = config.train
    payload, _ = load_checkpoint(resume, map_location="cpu")
    saved_gb = payload.get("global_batch")
    if saved_gb is not None and int(saved_gb) != batches.global_batch:
        raise ValueError(
            f"cannot resume {resolve_checkpoint(resume)}: it was trained with global batch {int(saved_gb)}, "
            f"this run has {batches.global_batch} (train.batch_size {tc.batch_size} x world size "
            f"{d.world_size} x train.accumulation_steps {tc.accumulation_steps}); choose batch_size and "
            "accumulation_steps so that the product is the same"
        )
    state.model.load_state_dict(payload["model"])
    with torch.no_grad():
        for n in state.ema:
            state.ema[n].copy_(payload["ema"][n])
    groups = param_groups(state.model, weight_decay=tc.weight_decay, score_lrscale=tc.score_lrscale)
    state.optimizer.load_state_dict(payload["optimizer"])
    for g, fresh in zip(state.optimizer.param_groups, groups, strict=True):
        g["weight_decay"], g["lr_scale"] = (
            fresh["weight_decay"],
            fresh["lr_scale"],
        )  # stage-2 changes
    state.step = int(payload["step"])
    state.skipped_steps = int(payload.get("skipped_steps", 0))
    state.skipped_items = int(payload.get("skipped_items", 0))
    state.last_good = resolve_checkpoint(resume)
    rngs = payload["rng"]
    if len(rngs) == d.world_size:
        set_rng_state(rngs[d.rank], d.device)
    else:
        torch.manual_seed(tc.seed + d.rank + 1000003 * state.step)
        if d.main:
            print(
                f"[train] world size changed ({len(rngs)} -> {d.world_size}): RNG reseeded",
                flush=True,
            )
    del payload, rngs
    if d.main:
        print(f"[train] resumed from {state.last_good} at step {state.step}", flush=True)


# -- one step ------------------------------------------------------------------------------------------------
def set_lr(
    state: TrainState, step: int, tc: TrainConfig, schedule_steps: int, warmup: int
) -> float:
    """Set every group's lr for ``step`` (``lr_scale`` x the scheduled lr); return the scheduled lr."""
    lr_now = lr_at(
        step,
        lr=state.base_lr,
        warmup_steps=warmup,
        total_steps=schedule_steps,
        schedule=tc.lr_schedule,
        min_lr=tc.min_lr,
    )
    for g in state.optimizer.param_groups:
        g["lr"] = lr_now * g["lr_scale"]
    return lr_now


@dataclass
class StepResult:
    loss: torch.Tensor  # mean micro-step loss (device scalar)
    grad_norm: torch.Tensor  # on the official loss scale (device scalar)
    updated: bool  # the optimizer stepped
    nonfinite: bool  # some rank had a non-finite loss or gradient
    empty: bool  # no rank had a readable item
    stop: bool  # rank 0's time budget is spent


def train_step(
    state: TrainState,
    micro: list,
    *,
    forward,
    ddp,
    autocast,
    config: RunConfig,
    d: Dist,
    time_up: bool,
) -> StepResult:
    """Forward/backward over the micro-steps, clip, decide on every rank, step the optimizer and the EMA.

    ``micro`` holds ``(tokens, labels)`` per micro-step, or ``None`` for a micro-batch without a readable
    item; under DDP such a micro-step still runs (on a zero batch, with its loss multiplied by 0) so that the
    ranks' gradient all-reduces stay matched. One all-reduce carries the flags (non-finite loss, non-finite
    gradient, items read, rank 0's time budget); reading it is the step's only host synchronisation.
    """
    tc, mc = config.train, config.model
    loss_sum = torch.zeros((), device=d.device)
    items, used = 0, 0
    for j, entry in enumerate(micro):
        last = j == len(micro) - 1
        if entry is None:
            if not d.enabled:
                continue
            tokens = torch.zeros(1, mc.num_tokens, mc.token_dim, device=d.device)
            labels, weight = torch.zeros(1, dtype=torch.long, device=d.device), 0.0
        else:
            (tokens, labels), weight = entry, 1.0
            items += len(labels)
            used += 1
        ctx = (
            ddp.no_sync() if d.enabled and tc.ddp_no_sync and not last else contextlib.nullcontext()
        )
        with ctx:
            with autocast:
                loss = forward(tokens, labels)
            (loss * (weight / len(micro))).backward()
        if weight:
            loss_sum += loss.detach().float()
    loss_mean = loss_sum / max(1, used)
    grad_norm = clip_gradients(state.params, tc.grad_clip, official_loss_factor(mc))
    flags = torch.stack(
        [
            (~torch.isfinite(loss_mean)).float(),
            (~torch.isfinite(grad_norm)).float(),
            torch.full((), float(items), device=d.device),
            torch.full((), float(time_up and d.main), device=d.device),
        ]
    )
    if d.enabled:
        dist.all_reduce(flags)
    bad_loss, bad_grad, total_items, stop = flags.tolist()
    empty = total_items == 0
    nonfinite = (bad_loss > 0 or bad_grad > 0) and not empty
    if empty or nonfinite:
        state.optimizer.zero_grad(set_to_none=True)
        return StepResult(loss_mean, grad_norm, False, nonfinite, empty, stop > 0)
    state.optimizer.step()
    state.optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        torch._foreach_lerp_(
            state.ema_list, [p.detach().float() for p in state.params], 1.0 - tc.ema_rate
        )
    return StepResult(loss_mean, grad_norm, True, False, False, stop > 0)


def _abort_message(state: TrainState, what: str, step: int, advice: str) -> str:
    where = (
        f"The last checkpoint with finite weights is {state.last_good}"
        if state.last_good is not None
        else "No checkpoint with finite weights has been written in this run"
    )
    return f"{state.consecutive_bad} consecutive steps had {what} (last at step {step}); aborting. {advice} {where}."


def account(
    state: TrainState, res: StepResult, step: int, tc: TrainConfig, data: TrainData, d: Dist
):
    """Update the counters after a step; raise after too many bad steps in a row (on every rank)."""
    if res.updated:
        state.consecutive_bad = state.consecutive_empty = 0
        state.updated_steps += 1
        return
    state.skipped_steps += 1
    state.consecutive_bad += 1
    state.consecutive_empty = state.consecutive_empty + 1 if res.empty else 0
    state.empty_steps += int(res.empty)
    if d.main:
        why = "no readable data item" if res.empty else "non-finite loss/gradient"
        print(
            f"[train] step {step}: {why}, step skipped ({state.consecutive_bad} in a row, "
            f"{state.skipped_steps} in total)",
            flush=True,
        )
    if state.consecutive_bad >= tc.max_consecutive_nonfinite:
        if state.consecutive_empty >= state.consecutive_bad:
            examples = "; ".join(f"{s.path}: {s.problem}" for s in data.skipped_examples[:3])
            raise RuntimeError(
                f"no usable training data: {state.consecutive_bad} consecutive steps had no readable item "
                f"(last at step {step}; {data.skipped} unreadable items on this rank"
                f"{', e.g. ' + examples if examples else ''}). Check data.data_dir."
            )
        raise RuntimeError(
            _abort_message(
                state,
                "a non-finite loss or gradient",
                step,
                "Lower the learning rate (train.blr / train.lr), check the data, or use "
                "train.precision=fp32.",
            )
        )


# -- checkpoints ---------------------------------------------------------------------------------------
def _reduce_skipped_items(state: TrainState, data: TrainData, d: Dist) -> None:
    """Fold this rank's newly skipped items into the global count (a collective on every rank)."""
    local = data.skipped - state.pending_items
    state.pending_items = data.skipped
    state.skipped_items += int(all_reduce_sum([float(local)], d)[0])


def write_checkpoint(
    state: TrainState,
    run_dir: Path,
    step: int,
    config: RunConfig,
    d: Dist,
    batches: StepBatches,
    data: TrainData,
) -> Path | None:
    """Write ``checkpoint-last.pt`` (rank 0; every rank contributes its RNG state).

    Only finite weights are written: with a non-finite parameter or EMA value the file is left as it is and
    ``None`` is returned (every rank agrees: the weights are identical across ranks).
    """
    _reduce_skipped_items(state, data, d)
    rngs = [rng_state(d.device)]
    if d.enabled:
        gathered: list = [None] * d.world_size
        dist.all_gather_object(gathered, rngs[0])
        rngs = gathered
    if not all_finite(state.params + state.ema_list):
        if d.main:
            print(
                f"[train] step {step}: the weights or their EMA are not finite; checkpoint NOT written "
                f"(the last good one is {state.last_good})",
                flush=True,
            )
        return None
    path = run_dir / "checkpoint-last.pt"
    if d.main:
        save_checkpoint(
            path,
            {
                "model": state.model.state_dict(),
                "ema": state.ema,
                "optimizer": state.optimizer.state_dict(),
                "step": step,
                "epoch": step / batches.steps_per_epoch,
                "global_batch": batches.global_batch,
                "skipped_steps": state.skipped_steps,
                "skipped_items": state.skipped_items,
                "rng": rngs,
                "config_json": config.to_json(),
            },
            checksum=config.train.checksum,
        )
    state.last_good = path
    return path


def keep_checkpoint(run_dir: Path, step: int, d: Dist) -> None:
    """Copy ``checkpoint-last.pt`` to ``checkpoint-step<step>.pt`` atomically (rank 0)."""
    if d.main:
        keep_copy(run_dir / "checkpoint-last.pt", run_dir / f"checkpoint-step{step}.pt")


# -- logging ------------------------------------------------------------------------------------------------
def prepare_log(log_path: Path, start_step: int, resuming: bool, d: Dist) -> None:
    """A fresh ``log.csv`` with its header; on resume, keep only the rows up to ``start_step`` (the rows a
    crashed run wrote after its last checkpoint would otherwise appear twice)."""
    if not d.main:
        return
    rows = []
    if resuming and log_path.exists():
        with open(log_path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    if int(row["step"]) <= start_step:
                        rows.append(row)
                except (KeyError, TypeError, ValueError):
                    continue
    tmp = log_path.with_name(log_path.name + f".tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore", restval="")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, log_path)


@dataclass
class LogWindow:
    """Loss sums since the last log row (on the device: no synchronisation per step)."""

    loss: torch.Tensor
    n: int = 0
    t: float = 0.0
    step: int = 0


def log_step(
    state: TrainState,
    window: LogWindow,
    res: StepResult,
    *,
    done: int,
    lr_now: float,
    log_path: Path,
    t0: float,
    d: Dist,
    data: TrainData,
    steps_per_epoch: int,
    writer=None,
    bar=None,
    total_steps: int,
) -> None:
    """Reduce the window over the ranks and append one ``log.csv`` row (rank 0); start a new window."""
    _reduce_skipped_items(state, data, d)
    stats = torch.stack(
        [window.loss.double(), torch.full((), float(window.n), device=window.loss.device).double()]
    )
    if d.enabled:
        dist.all_reduce(stats)
    now = time.time()
    if d.main:
        total, n = stats.tolist()
        mean_loss = total / n if n > 0 else float("nan")
        gn = float(res.grad_norm)
        row = [
            done,
            f"{done / steps_per_epoch:.4f}",
            f"{mean_loss:.6f}",
            f"{lr_now:.6g}",
            f"{gn:.4f}",
            state.skipped_steps,
            state.skipped_items,
            f"{now - t0:.1f}",
            f"{(done - window.step) / max(1e-9, now - window.t):.3f}",
        ]
        with open(log_path, "a", newline="") as f:
            csv.writer(f).writerow(row)
        if writer is not None:
            writer.add_scalar("train/loss", mean_loss, done)
            writer.add_scalar("train/lr", lr_now, done)
            writer.add_scalar("train/grad_norm", gn, done)
            writer.add_scalar("train/skipped_steps", state.skipped_steps, done)
            writer.add_scalar("train/skipped_items", state.skipped_items, done)
        if bar is not None:
            bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr_now:.2e}")
        else:
            print(
                f"[train] step {done}/{total_steps} loss {mean_loss:.4f} lr {lr_now:.2e}",
                flush=True,
            )
    window.loss = torch.zeros((), device=window.loss.device)
    window.n, window.t, window.step = 0, now, done


def plot_loss(csv_path: Path, png_path: Path) -> None:
    """``loss.png`` from ``log.csv`` (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = [], []
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            if row["loss"] not in ("", "nan"):
                steps.append(int(row["step"]))
                losses.append(float(row["loss"]))
    if not steps:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, losses, lw=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (energy score)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = png_path.with_name(png_path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png_path)


def _writer_and_bar(
    config: RunConfig, run_dir: Path, d: Dist, progress: bool, stop: int, start: int
):
    writer = bar = None
    if d.main and config.train.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise ImportError(
                "train.tensorboard=true needs the tensorboard package (pip install tensorboard)"
            ) from e
        writer = SummaryWriter(str(run_dir / "tb"))
    if d.main and progress:
        try:
            from tqdm import tqdm

            bar = tqdm(
                total=stop, initial=start, desc=config.name, dynamic_ncols=True, mininterval=2.0
            )
        except ImportError:
            bar = None
    return writer, bar


# -- the loop --------------------------------------------------------------------------------------------------
def train(
    config: RunConfig,
    run_dir: str | os.PathLike,
    *,
    resume: str | os.PathLike | None = None,
    d: Dist | None = None,
    progress: bool = True,
) -> dict:
    """Train ``config`` in ``run_dir`` (created); returns a summary dict (also on non-main ranks).

    With ``resume``, the model, EMA, optimizer, step and RNG states come from that checkpoint and training
    continues exactly (same batches, same random numbers) to the configured end.
    """
    d = d if d is not None else setup_distributed()
    tc = config.train
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, config, d)
    torch.manual_seed(tc.seed + d.rank)

    data = TrainData(config, d)
    batches = StepBatches(
        data.n,
        batch_size=tc.batch_size,
        world_size=d.world_size,
        rank=d.rank,
        accumulation_steps=tc.accumulation_steps,
        seed=tc.seed,
    )
    state = build_state(config, d, batches.global_batch)
    stop_step, schedule_steps, warmup = schedule(tc, batches.steps_per_epoch)
    if resume is not None:
        restore(state, resume, config, d, batches)
    start_step = state.step

    autocast, use_bf16 = precision_context(tc, d.device)
    configure_backends(tc, d.device)
    ddp = (
        nn.parallel.DistributedDataParallel(
            state.model,
            device_ids=[d.local_rank] if d.device.type == "cuda" else None,
            gradient_as_bucket_view=True,
        )
        if d.enabled
        else state.model
    )
    if (
        d.enabled and resume is None
    ):  # DDP has broadcast rank 0's initial weights: the EMA starts from them
        with torch.no_grad():
            torch._foreach_copy_(state.ema_list, [p.detach().float() for p in state.params])
    forward = compile_training(ddp, tc.compile)
    log_path = run_dir / "log.csv"
    prepare_log(log_path, start_step, resume is not None, d)
    writer, bar = _writer_and_bar(config, run_dir, d, progress, stop_step, start_step)
    if d.main:
        print(
            f"[train] {config.name}: {sum(p.numel() for p in state.params) / 1e6:.2f}M parameters, "
            f"{data.n} examples, global batch {batches.global_batch}, {batches.steps_per_epoch} steps/epoch, "
            f"steps {start_step}->{stop_step}, lr {state.base_lr:.3g}, device {d.device}, world "
            f"{d.world_size}, {'bf16' if use_bf16 else 'fp32'}",
            flush=True,
        )

    t0 = time.time()
    window = LogWindow(torch.zeros((), device=d.device), 0, t0, start_step)
    final_step = start_step
    state.model.train()
    for step, micro in data.iterate(batches, start_step, stop_step):
        lr_now = set_lr(state, step, tc, schedule_steps, warmup)
        time_up = (
            tc.max_train_minutes is not None and (time.time() - t0) > 60.0 * tc.max_train_minutes
        )
        res = train_step(
            state, micro, forward=forward, ddp=ddp, autocast=autocast, config=config, d=d,
            time_up=time_up,
        )  # fmt: skip
        account(state, res, step, tc, data, d)
        if res.updated:
            window.loss += res.loss
            window.n += 1
        done = final_step = state.step = step + 1
        if bar is not None:
            bar.update(1)
        if done % tc.log_every == 0 or done == stop_step:
            log_step(
                state, window, res, done=done, lr_now=lr_now, log_path=log_path, t0=t0, d=d,
                data=data, steps_per_epoch=batches.steps_per_epoch, writer=writer, bar=bar,
                total_steps=stop_step,
            )  # fmt: skip
        if d.main and tc.plot_every and done % tc.plot_every == 0:
            plot_loss(log_path, run_dir / "loss.png")
        if tc.sample_every and done % tc.sample_every == 0 and done != stop_step and d.main:
            with ema_weights(state.model, state.ema):
                sample_grid(
                    state.model, data.decode, config, run_dir / f"samples-step{done}.png", d.device
                )
        periodic = tc.ckpt_every and done % tc.ckpt_every == 0 and done != stop_step
        keep = tc.keep_every and done % tc.keep_every == 0
        if periodic or keep:
            written = write_checkpoint(state, run_dir, done, config, d, batches, data)
            if keep and written is not None:
                keep_checkpoint(run_dir, done, d)
        if res.stop:
            if d.main:
                print(
                    f"[train] stopping at step {done}: train.max_train_minutes={tc.max_train_minutes} "
                    "reached",
                    flush=True,
                )
            break
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    if final_step > start_step and state.updated_steps == 0:
        examples = "; ".join(f"{s.path}: {s.problem}" for s in data.skipped_examples[:3])
        n = final_step - start_step
        why = (
            f"no usable training data: none of the {n} steps of this run had a readable item"
            if state.empty_steps == n
            else f"no step of this run updated the weights ({n} steps, all skipped for a non-finite "
            "loss or gradient or for want of readable data)"
        )
        raise RuntimeError(
            f"{why}; {data.skipped} unreadable items on this rank"
            f"{', e.g. ' + examples if examples else ''}. Nothing was trained."
        )
    write_checkpoint(state, run_dir, final_step, config, d, batches, data)
    train_seconds = time.time() - t0
    if d.main:
        plot_loss(log_path, run_dir / "loss.png")
        print(
            f"[train] done: {final_step} steps in {train_seconds:.0f} s, {state.skipped_steps} steps "
            f"skipped, {state.skipped_items} unreadable data items skipped; checkpoint "
            f"{run_dir / 'checkpoint-last.pt'}",
            flush=True,
        )
    return {
        "model": state.model,
        "ema": state.ema,
        "data": data,
        "final_step": final_step,
        "total_steps": stop_step,
        "train_seconds": train_seconds,
        "skipped_steps": state.skipped_steps,
        "skipped_items": state.skipped_items,
        "dist": d,
    }
