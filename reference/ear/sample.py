"""Sample from a trained EAR checkpoint (EMA weights): PNG grid, ``.npz`` of samples, seconds per image.

::

    python reference/ear/sample.py --ckpt runs/demo-XXXX                       # 1,000 demo samples + grid
    torchrun --nproc_per_node=8 reference/ear/sample.py --ckpt runs/ear_b --num-images 50000 \\
        --cfg 3.0 --temperature 0.7 --num-iter 64 --batch-size 128 --png-folder runs/ear_b/samples50k

The sampler is the masked-AR one of the official code: 64 steps (``--num-iter``) of a cosine schedule over a
random order, classifier-free guidance on the backbone state with the linear schedule (``--cfg``), and
``--temperature`` = tau_infer, which scales only the AdaLN shifts of the generator's residual blocks.
Labels are ``0..C-1`` each repeated ``num_images / C`` times; under torchrun rank ``r`` takes every
``world``-th batch. Seconds per image are measured as the official code does: wall time per batch (device
synchronised), the first (warm-up) batch excluded, divided by the images generated on that process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch

__all__ = ["save_grid", "generate", "class_labels", "main"]


def save_grid(images: torch.Tensor, path: str | os.PathLike, *, ncol: int, pad: int = 2) -> None:
    """Save ``images (N, C, H, W)`` in ``[0, 1]`` as one PNG grid with ``ncol`` columns (rows filled in order)."""
    from PIL import Image

    x = images.detach().float().clamp(0, 1).cpu()
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
) -> tuple[torch.Tensor, float]:
    """Tokens for ``labels`` in batches; returns ``(tokens on CPU, seconds per image)``.

    Seconds per image exclude the first batch (warm-up) when there is more than one batch.
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
            )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
        counts.append(len(lab))
        outs.append(tok.float().cpu())
        if progress:
            print(f"[sample] batch {i + 1}/{len(batches)}: {times[-1]:.2f} s", flush=True)
    if len(times) > 1:
        spi = sum(times[1:]) / sum(counts[1:])
    else:
        spi = times[0] / counts[0] if times else float("nan")
    return torch.cat(outs) if outs else torch.empty(0), spi


def main(argv: list[str] | None = None) -> None:
    import torch.distributed as dist

    from reference.ear.configs import apply_overrides
    from reference.ear.model import build_model
    from reference.ear.train import Dist, TrainData, ema_model, load_checkpoint, setup_distributed

    p = argparse.ArgumentParser(description="Sample from an EAR checkpoint (EMA weights).")
    p.add_argument("--ckpt", required=True, help="checkpoint file or run folder")
    p.add_argument("--num-images", type=int)
    p.add_argument("--num-iter", type=int)
    p.add_argument("--cfg", type=float)
    p.add_argument("--cfg-schedule", choices=("linear", "constant"))
    p.add_argument("--temperature", type=float, help="tau_infer")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--out", help="output folder (default: the checkpoint's folder)")
    p.add_argument("--png-folder", help="also write one PNG per image here (for FID tools)")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--set", action="append", default=[], help="config override, e.g. data.vae_path=..."
    )
    p.add_argument("--device")
    args = p.parse_args(argv)

    d: Dist = setup_distributed(args.device)
    payload, config = load_checkpoint(args.ckpt, map_location="cpu")
    config = apply_overrides(config, args.set)
    sc = config.sample
    num_images = args.num_images or sc.num_images
    num_iter = args.num_iter or sc.num_iter
    cfg = sc.cfg if args.cfg is None else args.cfg
    schedule = args.cfg_schedule or sc.cfg_schedule
    temperature = sc.temperature if args.temperature is None else args.temperature
    bs = args.batch_size or sc.batch_size

    model = build_model(config.model)
    model.load_state_dict(payload["model"])
    if not args.no_ema:
        model = ema_model(model, payload["ema"])
    model = model.to(d.device).eval()
    if sc.compile:
        model.compile_for_sampling()
    data = TrainData.__new__(TrainData)  # decoder only: no training data needed
    _init_decoder(data, config, d)

    torch.manual_seed(args.seed + d.rank)
    labels = class_labels(num_images, config.model.num_classes)
    chunks = list(labels.split(bs))
    mine = (
        torch.cat(chunks[d.rank :: d.world_size]) if chunks[d.rank :: d.world_size] else labels[:0]
    )
    tokens, spi = generate(
        model,
        mine,
        num_iter=num_iter,
        cfg=cfg,
        cfg_schedule=schedule,
        temperature=temperature,
        batch_size=bs,
        device=d.device,
        bf16=d.device.type == "cuda",
        progress=d.main,
    )
    images = (
        torch.cat([data.decode(t.to(d.device)).cpu() for t in tokens.split(bs)])
        if len(tokens)
        else tokens
    )
    out = (
        Path(args.out)
        if args.out
        else Path(args.ckpt if Path(args.ckpt).is_dir() else Path(args.ckpt).parent)
    )
    out.mkdir(parents=True, exist_ok=True)
    tag = f"cfg{cfg:g}-t{temperature:g}-it{num_iter}"
    suffix = f"-rank{d.rank}" if d.enabled else ""
    u8 = (images * 255).round().to(torch.uint8).numpy()
    np.savez_compressed(out / f"samples-{tag}{suffix}.npz", images=u8, labels=mine.numpy())
    if args.png_folder:
        from PIL import Image

        folder = Path(args.png_folder)
        folder.mkdir(parents=True, exist_ok=True)
        start = [i for i in range(len(chunks)) if i % d.world_size == d.rank]
        offsets = [sum(len(c) for c in chunks[:i]) for i in start]
        k = 0
        for off, i in zip(offsets, start, strict=True):
            for j in range(len(chunks[i])):
                arr = u8[k].transpose(1, 2, 0)
                Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(
                    folder / f"{off + j:06d}.png"
                )
                k += 1
    if d.main:
        per = min(sc.grid_per_class, num_images // config.model.num_classes)
        rows = min(10, config.model.num_classes)
        # the first `per` images of each class among this process's share
        idx = torch.cat([torch.nonzero(mine == c).flatten()[:per] for c in range(rows)])
        save_grid(images[idx].float() / 1.0, out / f"samples-{tag}.png", ncol=per)
        info = {
            "num_images": num_images,
            "num_iter": num_iter,
            "cfg": cfg,
            "cfg_schedule": schedule,
            "temperature": temperature,
            "seconds_per_image": spi,
            "batch_size": bs,
            "world_size": d.world_size,
            "device": str(d.device),
            "ema": not args.no_ema,
        }
        (out / f"samples-{tag}.json").write_text(json.dumps(info, indent=2))
        print(json.dumps(info, indent=2))
        print(
            f"[sample] wrote {out / f'samples-{tag}.png'} and samples-{tag}{suffix}.npz", flush=True
        )
    if d.enabled:
        dist.barrier()
        dist.destroy_process_group()


def _init_decoder(data, config, d) -> None:
    """Give a bare ``TrainData`` just what ``decode`` needs (no dataset loaded)."""
    from reference.ear.tokenizer import AutoencoderKL, KLTokenizer, PatchTokenizer, load_vae

    dc = config.data
    data.config, data.device = config, d.device
    if dc.tokenizer == "patch":
        data.tokenizer = PatchTokenizer(dc.image_size, dc.patch_size, channels=1)
        data.raw_size = {"fashion_mnist": 28, "digits": 8}.get(dc.dataset, dc.image_size)
    else:
        vae = load_vae(dc.vae_path, AutoencoderKL(dc.vae_embed_dim)).to(d.device)
        data.tokenizer = KLTokenizer(vae, scale=dc.vae_scale, patch_size=dc.patch_size)


if __name__ == "__main__":
    main()
