"""Cache the KL-16 latents of an ImageNet folder (one process, or several under ``torchrun``)::

    torchrun --nproc_per_node=8 reference/ear/cache.py --data-path /data/imagenet/train \\
        --cached-path /data/imagenet-kl16 --vae-path pretrained_models/vae/kl16.ckpt --batch-size 128

Each image and its horizontal flip are encoded once; rank ``r`` writes its share as one memory-mapped array
``latents-r<r>.npy`` with an index ``latents-r<r>.json`` (see :func:`reference.ear.data.cache_latents`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reference.ear.data import cache_latents

__all__ = ["main"]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        description="Cache KL-16 latents of an ImageNet folder (torchrun-able)."
    )
    p.add_argument(
        "--data-path", required=True, help="ImageNet train folder (root/<class>/<image>)"
    )
    p.add_argument("--cached-path", required=True)
    p.add_argument("--vae-path", default="pretrained_models/vae/kl16.ckpt")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--num-workers", type=int, default=8)
    p.add_argument("--embed-dim", type=int, default=16)
    p.add_argument(
        "--vae-ch", type=int, default=128, help="VAE base channels (128: the official KL-16)"
    )
    p.add_argument("--vae-num-res-blocks", type=int, default=2)
    args = p.parse_args(argv)
    out = cache_latents(
        args.data_path,
        args.cached_path,
        args.vae_path,
        image_size=args.image_size,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        embed_dim=args.embed_dim,
        vae_ch=args.vae_ch,
        vae_num_res_blocks=args.vae_num_res_blocks,
    )
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    return out


if __name__ == "__main__":
    main()
