"""Train the reference EAR; with no arguments, the CPU demo (class-conditional Fashion-MNIST).

One code path for one CPU process and for N GPUs under ``torchrun`` (DDP; gloo on CPU, NCCL on GPU)::

    python reference/ear/train.py                                   # demo: train, sample, evaluate (CPU)
    python reference/ear/train.py --preset tiny --run-dir runs/t    # seconds, sklearn digits
    torchrun --nproc_per_node=8 reference/ear/train.py --preset ear_b --data-dir /data/imagenet-kl16
    python reference/ear/train.py --resume runs/demo-20250101-120000  # continue exactly where it stopped

Training as the official code does it: AdamW (0.9, 0.95); weight decay on backbone matrices only; the head's
2-D weights at ``lr x score_lrscale``; ``lr = blr x global_batch / 256``; linear warmup then constant (or
cosine); gradient clipping; EMA of the parameters; gradient accumulation (no gradient all-reduce on
intermediate micro-steps); bf16 autocast on GPU. Differences, on purpose: a non-finite loss or gradient skips
the step (counted; ``max_consecutive_nonfinite`` in a row abort) instead of exiting; checkpoints hold only
tensors and plain values (config as JSON, RNG states of every rank) and are written atomically; ``--resume``
continues mid-epoch with the same batches and random numbers.

Outputs in the run folder: ``config.json``, ``checkpoint-last.pt``, ``log.csv``, ``loss.png``, sample grids
``samples-step<N>.png`` / ``samples.png`` and, when evaluation is on, ``samples.npz`` and ``metrics.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch
import torch.distributed as dist
from torch import nn

from reference.ear.configs import RunConfig, TrainConfig, apply_overrides, preset
from reference.ear.data import StepBatches, to_unit_range
from reference.ear.model import EAR, build_model, param_groups

__all__ = [
    "Dist",
    "setup_distributed",
    "TrainData",
    "build_data",
    "train",
    "main",
    "load_checkpoint",
    "configure_backends",
    "precision_context",
    "build_optimizer",
    "fused_adamw_supported",
    "compile_training",
]


# -- distributed set-up ------------------------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    enabled: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str | None = None) -> Dist:
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
            dist.init_process_group("nccl" if use_cuda else "gloo")
        return Dist(dist.get_rank(), dist.get_world_size(), local, dev, True)
    return Dist(0, 1, 0, torch.device("cuda" if use_cuda else "cpu"), False)


def _broadcast_object(obj, d: Dist):
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# -- data ------------------------------------------------------------------------------------------------
class TrainData:
    """Training examples and how they become tokens.

    In-memory datasets (Fashion-MNIST, digits) are indexed directly; file datasets (ImageNet, cached latents)
    go through a ``DataLoader`` whose batch sampler follows :class:`~reference.ear.data.StepBatches`.
    """

    def __init__(self, config: RunConfig, d: Dist) -> None:
        self.config = config
        dc = config.data
        self.device = d.device
        self.tokenizer = None
        self.channels_last = (
            False  # channels-last VAE encoder on raw images (CUDA, train.channels_last)
        )
        self.images = None
        self.dataset = None
        if dc.dataset in ("fashion_mnist", "digits"):
            from reference.ear.data import load_digits, load_fashion_mnist
            from reference.ear.tokenizer import PatchTokenizer

            if dc.dataset == "fashion_mnist":
                imgs, labels = load_fashion_mnist(dc.data_dir, "train")
            else:
                imgs, labels = load_digits()
            if dc.subset is not None:
                imgs, labels = imgs[: dc.subset], labels[: dc.subset]
            self.raw_size = imgs.shape[-1]
            self.images = to_unit_range(imgs, pad_to=dc.image_size)  # (N, 1, S, S) in [-1, 1]
            self.labels = torch.as_tensor(labels, dtype=torch.long)
            self.tokenizer = PatchTokenizer(dc.image_size, dc.patch_size, channels=1)
            self.n = len(self.labels)
        elif dc.dataset in ("imagenet", "imagenet_cached"):
            from reference.ear.data import CachedLatents, ImageFolder
            from reference.ear.tokenizer import AutoencoderKL, KLTokenizer, load_vae

            if dc.data_dir is None:
                raise ValueError(
                    f"data.dataset={dc.dataset!r} needs --data-dir (an ImageNet train folder or "
                    "its cached latents)"
                )
            if dc.dataset == "imagenet_cached":
                self.dataset = CachedLatents(dc.data_dir, flip=dc.flip)
            else:
                self.dataset = ImageFolder(dc.data_dir, image_size=dc.image_size, flip=dc.flip)
            vae = load_vae(dc.vae_path, AutoencoderKL(dc.vae_embed_dim)).to(d.device)
            self.channels_last = (
                dc.dataset == "imagenet" and d.device.type == "cuda" and config.train.channels_last
            )
            if self.channels_last:
                vae = vae.to(memory_format=torch.channels_last)
            self.tokenizer = KLTokenizer(vae, scale=dc.vae_scale, patch_size=dc.patch_size)
            self.n = len(self.dataset)
        else:
            raise ValueError(
                f"data.dataset must be fashion_mnist, digits, imagenet or imagenet_cached; got {dc.dataset!r}"
            )
        if self.tokenizer.token_dim != config.model.token_dim:
            raise ValueError(
                f"model.token_dim={config.model.token_dim} but the tokenizer makes tokens of size "
                f"{self.tokenizer.token_dim} (data.patch_size={dc.patch_size})"
            )
        self.skipped = 0

    def to_tokens(self, batch: torch.Tensor) -> torch.Tensor:
        dc = self.config.data
        if dc.dataset == "imagenet_cached":
            return self.tokenizer.moments_to_tokens(batch, sample=True)
        if dc.dataset == "imagenet":
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            return self.tokenizer.encode(batch, sample=True)
        if dc.flip:
            flip = torch.rand(batch.shape[0], device=batch.device) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
        return self.tokenizer.encode(batch)

    def iterate(self, batches: StepBatches, start_step: int, total_steps: int):
        """Yield ``(step, [(tokens, labels) per micro-step])`` for ``start_step <= step < total_steps``."""
        if self.images is not None:
            for step, micro in batches.iterate(start_step):
                if step >= total_steps:
                    return
                out = []
                for idx in micro:
                    x = self.images[idx].to(self.device, non_blocking=True)
                    out.append((self.to_tokens(x), self.labels[idx].to(self.device)))
                yield step, out
            return
        from reference.ear.data import collate_skip

        def micro_lists():
            for step, micro in batches.iterate(start_step):
                if step >= total_steps:
                    return
                for idx in micro:
                    yield idx.tolist()

        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=micro_lists(),
            num_workers=self.config.data.num_workers,
            collate_fn=collate_skip,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        it = iter(loader)
        for step in range(start_step, total_steps):
            out = []
            for _ in range(batches.accum):
                batch, skipped = next(it)
                self.skipped += skipped
                if batch is None:
                    continue
                x, y = batch[0], batch[1]
                x = x.to(self.device, non_blocking=True)
                out.append((self.to_tokens(x), y.to(self.device, non_blocking=True)))
            yield step, out

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens -> images in ``[0, 1]`` (``(N, C, H, W)``; pixel-space demos are cropped back to the raw size)."""
        if self.config.data.tokenizer == "patch":
            x = self.tokenizer.decode(tokens.float())
            s, r = x.shape[-1], self.raw_size
            if r != s:
                lo = (s - r) // 2
                x = x[..., lo : lo + r, lo : lo + r]
        else:
            grid = int(round(math.sqrt(tokens.shape[1])))
            x = self.tokenizer.decode(tokens.float(), grid)
        return ((x.clamp(-1, 1) + 1) / 2).float()


def build_data(config: RunConfig, d: Dist) -> TrainData:
    return TrainData(config, d)


# -- schedule, EMA, checkpoints ---------------------------------------------------------------------------
def lr_at(
    step: int, *, lr: float, warmup_steps: int, total_steps: int, schedule: str, min_lr: float
) -> float:
    """Linear warmup over ``warmup_steps`` (step ``s`` uses ``(s + 1) / warmup``), then constant or half-cosine."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        span = max(1, total_steps - warmup_steps)
        frac = min(1.0, (step - warmup_steps) / span)
        return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))
    raise ValueError(f"train.lr_schedule must be 'constant' or 'cosine'; got {schedule!r}")


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(path: Path, payload: dict) -> None:
    """``torch.save`` to a temporary file in the same folder, flush to disk, then rename over ``path``."""
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoint-last.pt"
    if not p.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {str(p)!r} (give a checkpoint file or a run folder)"
        )
    return p


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[dict, RunConfig]:
    """Load a checkpoint with ``weights_only=True``; return ``(payload, config)``."""
    p = resolve_checkpoint(path)
    payload = torch.load(p, map_location=map_location, weights_only=True)
    return payload, RunConfig.from_json(payload["config_json"])


def ema_model(model: EAR, ema: dict[str, torch.Tensor]) -> EAR:
    """A copy of ``model`` (eval mode) whose parameters are the EMA values."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(ema[n])
    return m.eval()


# -- sample grids and the loss plot -----------------------------------------------------------------------
def sample_grid(
    model: EAR, data: TrainData, config: RunConfig, path: Path, device: torch.device
) -> None:
    """A PNG grid: one row per class (at most 10), ``grid_per_class`` columns; global RNG left untouched."""
    from reference.ear.sample import save_grid

    sc = config.sample
    rows = min(10, config.model.num_classes)
    labels = torch.arange(rows, device=device).repeat_interleave(sc.grid_per_class)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.train.seed + 12345)
        tokens = model.sample(
            labels,
            num_iter=sc.num_iter,
            cfg=sc.cfg,
            cfg_schedule=sc.cfg_schedule,
            temperature=sc.temperature,
        )
    save_grid(data.decode(tokens), path, ncol=sc.grid_per_class)


def plot_loss(csv_path: Path, png_path: Path) -> None:
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


# -- fast paths (switchable from TrainConfig) -----------------------------------------------------------------
def configure_backends(tc: TrainConfig, device: torch.device) -> None:
    """Process-wide CUDA settings of the training script: TF32 matmuls and convolutions (``train.tf32``).

    Only the training script calls this; importing the library or the model never changes global state.
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


# -- the training loop -------------------------------------------------------------------------------------
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
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(config.to_json())
    torch.manual_seed(tc.seed + d.rank)

    data = build_data(config, d)
    model = build_model(config.model).to(d.device)
    ema = {n: p.detach().clone().float() for n, p in model.named_parameters()}
    groups = param_groups(model, weight_decay=tc.weight_decay, score_lrscale=tc.score_lrscale)
    batches = StepBatches(
        data.n,
        batch_size=tc.batch_size,
        world_size=d.world_size,
        rank=d.rank,
        accumulation_steps=tc.accumulation_steps,
        seed=tc.seed,
    )
    base_lr = tc.lr if tc.lr is not None else tc.blr * batches.global_batch / 256
    optimizer = build_optimizer(groups, base_lr, tc, d.device)
    total_steps = max(1, math.ceil(tc.epochs * batches.steps_per_epoch))
    if tc.max_steps is not None:
        total_steps = min(total_steps, tc.max_steps)
    warmup_steps = round(tc.warmup_epochs * batches.steps_per_epoch)

    start_step, skipped_total, consecutive = 0, 0, 0
    if resume is not None:
        payload, _ = load_checkpoint(resume, map_location=d.device)
        model.load_state_dict(payload["model"])
        for n in ema:
            ema[n].copy_(payload["ema"][n])
        optimizer.load_state_dict(payload["optimizer"])
        for g, fresh in zip(
            optimizer.param_groups, groups, strict=True
        ):  # the config wins (stage-2 changes)
            g["weight_decay"], g["lr_scale"] = fresh["weight_decay"], fresh["lr_scale"]
        start_step = int(payload["step"])
        skipped_total = int(payload.get("skipped_steps", 0))
        rngs = payload["rng"]
        if len(rngs) == d.world_size:
            _set_rng_state(rngs[d.rank], d.device)
        else:
            torch.manual_seed(tc.seed + d.rank + 1000003 * start_step)
            if d.main:
                print(
                    f"[train] world size changed ({len(rngs)} -> {d.world_size}): RNG reseeded",
                    flush=True,
                )
        if d.main:
            print(
                f"[train] resumed from {resolve_checkpoint(resume)} at step {start_step}",
                flush=True,
            )

    autocast, use_bf16 = precision_context(tc, d.device)
    configure_backends(tc, d.device)
    ddp = (
        nn.parallel.DistributedDataParallel(
            model, device_ids=[d.local_rank] if d.device.type == "cuda" else None
        )
        if d.enabled
        else model
    )
    forward = compile_training(ddp, tc.compile)
    params = [p for p in model.parameters() if p.requires_grad]
    ema_names = [n for n, p in model.named_parameters() if p.requires_grad]
    ema_list = [ema[n] for n in ema_names]

    log_path = run_dir / "log.csv"
    fields = ["step", "epoch", "loss", "lr", "grad_norm", "skipped", "elapsed_s", "steps_per_s"]
    if d.main and (resume is None or not log_path.exists()):
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(fields)

    writer = None
    if d.main and tc.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise ImportError(
                "train.tensorboard=true needs the tensorboard package (pip install tensorboard)"
            ) from e
        writer = SummaryWriter(str(run_dir / "tb"))
    bar = None
    if d.main and progress:
        try:
            from tqdm import tqdm

            bar = tqdm(
                total=total_steps,
                initial=start_step,
                desc=config.name,
                dynamic_ncols=True,
                mininterval=2.0,
            )
        except ImportError:
            bar = None
    if d.main:
        print(
            f"[train] {config.name}: {sum(p.numel() for p in params) / 1e6:.2f}M parameters, {data.n} examples, "
            f"global batch {batches.global_batch}, {batches.steps_per_epoch} steps/epoch, steps "
            f"{start_step}->{total_steps}, lr {base_lr:.3g}, device {d.device}, world {d.world_size}, "
            f"{'bf16' if use_bf16 else 'fp32'}",
            flush=True,
        )

    def checkpoint(step: int) -> None:
        rngs = [_rng_state(d.device)]
        if d.enabled:
            gathered = [None] * d.world_size
            dist.all_gather_object(gathered, {k: v.cpu() for k, v in rngs[0].items()})
            rngs = gathered
        if d.main:
            save_checkpoint(
                run_dir / "checkpoint-last.pt",
                {
                    "model": model.state_dict(),
                    "ema": {n: t.clone() for n, t in ema.items()},
                    "optimizer": optimizer.state_dict(),
                    "step": step,
                    "epoch": step / batches.steps_per_epoch,
                    "skipped_steps": skipped_total,
                    "rng": [{k: v.cpu() for k, v in r.items()} for r in rngs],
                    "config_json": config.to_json(),
                },
            )

    t0 = time.time()
    log_loss, log_n, last_log_t, last_log_step = 0.0, 0, t0, start_step
    final_step = start_step
    model.train()
    for step, micro in data.iterate(batches, start_step, total_steps):
        lr_now = lr_at(
            step,
            lr=base_lr,
            warmup_steps=warmup_steps,
            total_steps=total_steps,
            schedule=tc.lr_schedule,
            min_lr=tc.min_lr,
        )
        for g in optimizer.param_groups:
            g["lr"] = lr_now * g["lr_scale"]
        loss_sum = torch.zeros((), device=d.device)
        for j, (tokens, labels) in enumerate(micro):
            sync = j == len(micro) - 1
            skip_sync = d.enabled and tc.ddp_no_sync and not sync
            ctx = ddp.no_sync() if skip_sync else contextlib.nullcontext()
            with ctx:
                with autocast:
                    loss = forward(tokens, labels)
                (loss / len(micro)).backward()
            loss_sum += loss.detach().float()
        loss_mean = loss_sum / max(1, len(micro))
        max_norm = tc.grad_clip if tc.grad_clip and tc.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        # every rank must take the same decision: non-finite loss anywhere, or time is up (rank 0's clock)
        time_up = (
            tc.max_train_minutes is not None and (time.time() - t0) > 60.0 * tc.max_train_minutes
        )
        flags = torch.stack(
            [
                (~torch.isfinite(loss_mean)).float(),
                (~torch.isfinite(grad_norm)).float(),
                torch.tensor(float(time_up and d.main), device=d.device),
            ]
        )
        if d.enabled:
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        bad = bool(flags[0] > 0 or flags[1] > 0)
        if bad:
            optimizer.zero_grad(set_to_none=True)
            skipped_total += 1
            consecutive += 1
            if d.main:
                print(
                    f"[train] step {step}: non-finite loss/gradient, step skipped "
                    f"({consecutive} in a row, {skipped_total} in total)",
                    flush=True,
                )
            if consecutive >= tc.max_consecutive_nonfinite:
                raise RuntimeError(
                    f"{consecutive} consecutive steps had a non-finite loss or gradient (last at step {step}); "
                    f"aborting. Lower the learning rate (train.blr / train.lr), check the data, or use "
                    f"train.precision=fp32. The last good checkpoint is {run_dir / 'checkpoint-last.pt'}"
                )
        else:
            consecutive = 0
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                torch._foreach_lerp_(
                    ema_list, [p.detach().float() for p in params], 1.0 - tc.ema_rate
                )
            log_loss += float(loss_mean)
            log_n += 1
        done = final_step = step + 1
        if bar is not None:
            bar.update(1)
        if done % tc.log_every == 0 or done == total_steps:
            stats = torch.tensor([log_loss, float(log_n)], device=d.device, dtype=torch.float64)
            if d.enabled:
                dist.all_reduce(stats)
            now = time.time()
            if d.main:
                mean_loss = float(stats[0] / stats[1]) if stats[1] > 0 else float("nan")
                row = [
                    done,
                    f"{done / batches.steps_per_epoch:.4f}",
                    f"{mean_loss:.6f}",
                    f"{lr_now:.6g}",
                    f"{float(grad_norm):.4f}",
                    skipped_total,
                    f"{now - t0:.1f}",
                    f"{(done - last_log_step) / max(1e-9, now - last_log_t):.3f}",
                ]
                with open(log_path, "a", newline="") as f:
                    csv.writer(f).writerow(row)
                if writer is not None:
                    writer.add_scalar("train/loss", mean_loss, done)
                    writer.add_scalar("train/lr", lr_now, done)
                    writer.add_scalar("train/grad_norm", float(grad_norm), done)
                    writer.add_scalar("train/skipped_steps", skipped_total, done)
                if bar is not None:
                    bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr_now:.2e}")
                else:
                    print(
                        f"[train] step {done}/{total_steps} loss {mean_loss:.4f} lr {lr_now:.2e}",
                        flush=True,
                    )
            log_loss, log_n, last_log_t, last_log_step = 0.0, 0, now, done
        if d.main and tc.plot_every and done % tc.plot_every == 0:
            plot_loss(log_path, run_dir / "loss.png")
        if tc.sample_every and done % tc.sample_every == 0 and done != total_steps and d.main:
            sample_grid(
                ema_model(model, ema), data, config, run_dir / f"samples-step{done}.png", d.device
            )
        if tc.ckpt_every and done % tc.ckpt_every == 0 and done != total_steps:
            checkpoint(done)
        if tc.keep_every and done % tc.keep_every == 0:
            if not (tc.ckpt_every and done % tc.ckpt_every == 0 and done != total_steps):
                checkpoint(done)  # every rank takes part (RNG states are gathered)
            if d.main:
                shutil.copyfile(
                    run_dir / "checkpoint-last.pt", run_dir / f"checkpoint-step{done}.pt"
                )
        if flags[2] > 0:
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
    checkpoint(final_step)
    train_seconds = time.time() - t0
    if d.main:
        plot_loss(log_path, run_dir / "loss.png")
        print(
            f"[train] done: {final_step} steps in {train_seconds:.0f} s, {skipped_total} skipped; "
            f"checkpoint {run_dir / 'checkpoint-last.pt'}",
            flush=True,
        )
    return {
        "model": model,
        "ema": ema,
        "data": data,
        "final_step": final_step,
        "total_steps": total_steps,
        "train_seconds": train_seconds,
        "skipped_steps": skipped_total,
        "dist": d,
    }


# -- command line -------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--preset",
        help="demo (default), tiny, ear_b, ear_l, ear_h, ear_{b,l,h}_stage2; with --resume, replaces the "
        "checkpoint's config",
    )
    p.add_argument("--config", help="a config.json to start from instead of a preset")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override a config field (repeatable), e.g. --set train.epochs=800",
    )
    p.add_argument(
        "--run-dir", help="output folder (default runs/<name>-<timestamp>, or the resumed run's)"
    )
    p.add_argument("--resume", help="checkpoint file or run folder to continue from")
    p.add_argument("--data-dir", help="dataset folder (shortcut for --set data.data_dir=...)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument(
        "--no-eval", action="store_true", help="skip sampling and evaluation after training"
    )
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--threads",
        default="auto",
        help="torch CPU threads: a number, or auto (the cores not busy during one second before training, at "
        "least 1; OMP_NUM_THREADS wins when set)",
    )
    return p.parse_args(argv)


def make_config(args: argparse.Namespace) -> RunConfig:
    if args.config:
        config = RunConfig.from_json(Path(args.config).read_text())
    elif args.preset:
        config = preset(args.preset)
    elif args.resume:
        _, config = load_checkpoint(args.resume)
    else:
        config = preset("demo")
    overrides = list(args.set)
    if args.data_dir:
        overrides.append(f"data.data_dir={json.dumps(args.data_dir)}")
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    return apply_overrides(config, overrides)


def _busy_cores(interval: float = 1.0) -> float | None:
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


def _set_cpu_threads(threads: str) -> None:
    """Pick torch's intra-op thread count for a single CPU process.

    Torch threads that share cores with other busy processes wait on each other at every parallel region: on a
    2-core machine with one other busy process, 2 threads ran a demo step 5-10x slower than 1 thread. ``auto``
    therefore uses the cores not busy during one second before training (``/proc/stat``; the 1-minute load
    average where that is not available), at least one.
    """
    if threads != "auto":
        torch.set_num_threads(max(1, int(threads)))
        return
    if "OMP_NUM_THREADS" in os.environ:
        return
    cores = os.cpu_count() or 1
    busy = _busy_cores()
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


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    d = setup_distributed(args.device)
    if d.device.type == "cpu" and not d.enabled:
        torch.set_flush_denormal(True)
        _set_cpu_threads(args.threads)
    config = make_config(args)
    if args.run_dir:
        run_dir = Path(args.run_dir)
    elif args.resume:
        run_dir = resolve_checkpoint(args.resume).parent
    else:
        run_dir = Path("runs") / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(_broadcast_object(str(run_dir), d))
    t_start = time.time()
    result = train(config, run_dir, resume=args.resume, d=d, progress=not args.no_progress)
    if d.enabled:
        dist.barrier()
        dist.destroy_process_group()
    if not d.main:
        return result
    model = ema_model(result["model"], result["ema"])
    if config.sample.compile:
        model.compile_for_sampling()
    sample_grid(model, result["data"], config, run_dir / "samples.png", d.device)
    print(f"[train] sample grid: {run_dir / 'samples.png'}", flush=True)
    if config.eval.enabled and not args.no_eval:
        from reference.ear.evaluate import evaluate_run

        metrics = evaluate_run(model, result["data"], config, run_dir, device=d.device)
        metrics["train_seconds"] = round(result["train_seconds"], 1)
        metrics["train_steps"] = result["final_step"]
        metrics["skipped_steps"] = result["skipped_steps"]
        metrics["total_seconds"] = round(time.time() - t_start, 1)
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        result["metrics"] = metrics
        print(f"[train] metrics: {run_dir / 'metrics.json'}", flush=True)
    print(
        f"[train] run folder: {run_dir.resolve()}\n"
        f"        loss plot {run_dir / 'loss.png'}, samples {run_dir / 'samples.png'}, "
        f"log {run_dir / 'log.csv'}, total {time.time() - t_start:.0f} s",
        flush=True,
    )
    return result


if __name__ == "__main__":
    main()
