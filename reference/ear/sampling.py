"""Sampling from an EAR model: class labels, batched generation with timing, EMA weights, PNG grids.

- :func:`ema_weights`: a context in which the model's parameters *are* the EMA tensors (the parameter
  ``.data`` is swapped, nothing is copied when dtype and device agree), restored on exit. It replaces the
  deep copies of the model that sample grids used to make.
- :func:`load_for_sampling`: a model with the checkpoint's EMA (or raw) weights; the checkpoint is
  memory-mapped, so the optimizer state is never read.
- :func:`generate`: tokens for a list of labels in batches, with seconds per image measured as the official
  code does (device synchronised, first batch excluded).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import torch

from reference.ear.checkpoint import load_checkpoint
from reference.ear.configs import RunConfig, apply_overrides
from reference.ear.model import EAR, build_model

__all__ = [
    "save_grid",
    "class_labels",
    "generate",
    "ema_weights",
    "load_ema_",
    "load_for_sampling",
    "sample_grid",
]


def save_grid(images: torch.Tensor, path: str | os.PathLike, *, ncol: int, pad: int = 2) -> None:
    """Save ``images (N, C, H, W)`` in ``[0, 1]`` (float) or uint8 as one PNG grid with ``ncol`` columns."""
    from PIL import Image

    x = images.detach().cpu()
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float().clamp(0, 1)
    n, c, h, w = x.shape
    nrow = (n + ncol - 1) // ncol
    grid = torch.ones(c, nrow * (h + pad) + pad, ncol * (w + pad) + pad)
    for i in range(n):
        r, k = divmod(i, ncol)
        grid[
            :,
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + k * (w + pad) : pad + k * (w + pad) + w,
        ] = x[i]
    arr = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if c == 1:
        arr = arr[..., 0]
    scale = max(
        1, 96 // max(h, w)
    )  # small images (28x28) are enlarged so that the grid is readable
    im = Image.fromarray(arr)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    im.save(path)


def class_labels(num_images: int, num_classes: int) -> torch.Tensor:
    """``0..C-1``, each repeated ``num_images / C`` times (``num_images`` must be divisible by ``C``)."""
    if num_images % num_classes:
        raise ValueError(
            f"num_images ({num_images}) must be divisible by the number of classes ({num_classes})"
        )
    return torch.arange(num_classes).repeat_interleave(num_images // num_classes)


@torch.no_grad()
def generate(
    model,
    labels: torch.Tensor,
    *,
    num_iter: int,
    cfg: float,
    cfg_schedule: str,
    temperature: float,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
    progress: bool = False,
    decode=None,
    head_steps: int | None = None,
) -> tuple[torch.Tensor, float]:
    """Tokens for ``labels`` in batches; returns ``(tokens on CPU, seconds per image)``.

    ``head_steps`` sets the sampling steps of a diffusion head (``sample.head_steps``; ``None``: the head's
    default).

    With ``decode`` (tokens -> images in ``[0, 1]``), each batch is decoded on the device and the result is
    uint8 images on the CPU instead of float tokens. Seconds per image exclude the first batch (warm-up)
    when there is more than one batch, and the decoding.
    """
    model.eval()
    outs, times, counts = [], [], []
    batches = list(labels.split(batch_size))
    for i, lab in enumerate(batches):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            tok = model.sample(
                lab.to(device),
                num_iter=num_iter,
                cfg=cfg,
                cfg_schedule=cfg_schedule,
                temperature=temperature,
                head_steps=head_steps,
            )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
        counts.append(len(lab))
        if decode is not None:
            outs.append((decode(tok) * 255).round().to(torch.uint8).cpu())
        else:
            outs.append(tok.float().cpu())
        if progress:
            print(f"[sample] batch {i + 1}/{len(batches)}: {times[-1]:.2f} s", flush=True)
    if len(times) > 1:
        spi = sum(times[1:]) / sum(counts[1:])
    else:
        spi = times[0] / counts[0] if times else float("nan")
    return torch.cat(outs) if outs else torch.empty(0), spi


@contextlib.contextmanager
def ema_weights(model: EAR, ema: dict[str, torch.Tensor]):
    """Within the context, ``model`` (in eval mode) computes with the EMA parameters; restored on exit.

    The parameters' ``.data`` point at the EMA tensors (converted only where dtype or device differ), so no
    copy of the model is made; nothing may write to the parameters inside the context.
    """
    saved = []
    was_training = model.training
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in ema:
                e = ema[n]
                saved.append((p, p.data))
                p.data = (
                    e if (e.dtype, e.device) == (p.dtype, p.device) else e.to(p.device, p.dtype)
                )
    model.eval()
    try:
        yield model
    finally:
        for p, data in saved:
            p.data = data
        model.train(was_training)


@torch.no_grad()
def load_ema_(model: EAR, ema: dict[str, torch.Tensor]) -> EAR:
    """Copy the EMA values into ``model``'s parameters (in place; for the end of training) and set eval mode."""
    for n, p in model.named_parameters():
        p.copy_(ema[n])
    return model.eval()


def load_for_sampling(
    ckpt: str | os.PathLike,
    device: torch.device,
    *,
    ema: bool = True,
    overrides: list[str] | tuple[str, ...] = (),
) -> tuple[EAR, RunConfig]:
    """``(model in eval mode on device, config)`` from a checkpoint, with its EMA (or raw) weights.

    The checkpoint is memory-mapped: only the weights used are read (not the optimizer state, nor the raw
    weights when the EMA is used, apart from buffers).
    """
    payload, config = load_checkpoint(ckpt, map_location="cpu")
    config = apply_overrides(config, list(overrides))
    model = build_model(config.model)
    source = payload["ema"] if ema else payload["model"]
    state = {k: source[k] if k in source else payload["model"][k] for k in model.state_dict()}
    model.load_state_dict(state)
    del payload, source, state
    return model.to(device).eval(), config


def sample_grid(
    model: EAR, decode, config: RunConfig, path: str | os.PathLike, device: torch.device
) -> None:
    """A PNG grid: one row per class (at most 10), ``grid_per_class`` columns; global RNG left untouched."""
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
            head_steps=sc.head_steps,
        )
    save_grid(decode(tokens), Path(path), ncol=sc.grid_per_class)
