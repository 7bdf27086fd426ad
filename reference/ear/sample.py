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
Only the weights used are read from the checkpoint (it is memory-mapped), and each batch is decoded on the
device and kept as uint8 on the host.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch
import torch.distributed as dist

from reference.ear.data import raw_size
from reference.ear.distributed import setup_distributed
from reference.ear.sampling import class_labels, generate, load_for_sampling, save_grid
from reference.ear.tokenizer import TokenDecoder, build_tokenizer

__all__ = ["parse_args", "main"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    d = setup_distributed(args.device)
    model, config = load_for_sampling(args.ckpt, d.device, ema=not args.no_ema, overrides=args.set)
    sc = config.sample
    num_images = args.num_images or sc.num_images
    num_iter = args.num_iter or sc.num_iter
    cfg = sc.cfg if args.cfg is None else args.cfg
    schedule = args.cfg_schedule or sc.cfg_schedule
    temperature = sc.temperature if args.temperature is None else args.temperature
    bs = args.batch_size or sc.batch_size
    labels = class_labels(num_images, config.model.num_classes)
    if sc.compile:
        model.compile_for_sampling()
    decode = TokenDecoder(build_tokenizer(config.data, d.device), raw_size(config.data))

    torch.manual_seed(args.seed + d.rank)
    chunks = list(labels.split(bs))
    mine_chunks = chunks[d.rank :: d.world_size]
    mine = torch.cat(mine_chunks) if mine_chunks else labels[:0]
    u8, spi = generate(
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
        decode=decode,
        head_steps=sc.head_steps,
    )
    ckpt = Path(args.ckpt)
    out = Path(args.out) if args.out else (ckpt if ckpt.is_dir() else ckpt.parent)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"cfg{cfg:g}-t{temperature:g}-it{num_iter}"
    suffix = f"-rank{d.rank}" if d.enabled else ""
    np.savez_compressed(out / f"samples-{tag}{suffix}.npz", images=u8.numpy(), labels=mine.numpy())
    if args.png_folder:
        from PIL import Image

        folder = Path(args.png_folder)
        folder.mkdir(parents=True, exist_ok=True)
        start = list(range(d.rank, len(chunks), d.world_size))
        offsets = [sum(len(c) for c in chunks[:i]) for i in start]
        k = 0
        for off, i in zip(offsets, start, strict=True):
            for j in range(len(chunks[i])):
                arr = u8[k].numpy().transpose(1, 2, 0)
                Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(
                    folder / f"{off + j:06d}.png"
                )
                k += 1
    if d.main:
        per = min(sc.grid_per_class, num_images // config.model.num_classes)
        rows = min(10, config.model.num_classes)
        # the first `per` images of each class among this process's share
        idx = torch.cat([torch.nonzero(mine == c).flatten()[:per] for c in range(rows)])
        save_grid(u8[idx], out / f"samples-{tag}.png", ncol=per)
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


if __name__ == "__main__":
    main()
