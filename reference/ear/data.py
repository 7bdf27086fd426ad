"""Data for the reference EAR: Fashion-MNIST, sklearn digits, ImageNet folders and cached KL-16 latents.

- :func:`load_fashion_mnist`: the IDX files of the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist/``) or any folder holding them.
- :func:`load_digits`: sklearn's 8x8 digits (1,797 images), for tests.
- :class:`ImageFolder`: ``root/<class>/<image>`` with the ADM centre crop (:func:`center_crop_arr`) and random
  flips; unreadable files are skipped with a warning and counted, not a crash.
- :func:`cache_latents` (``python reference/ear/data.py cache ...``, also under ``torchrun``): writes the KL-16
  posterior moments of every image and of its horizontal flip to ``<cached>/<class>/<name>.npz``
  (keys ``moments`` and ``moments_flip``), as MAR's ``main_cache.py`` does.
- :class:`CachedLatents`: reads those files, choosing the flipped moments with probability 1/2.
- :class:`StepBatches`: the deterministic, resumable batch order used by the trainer (epoch permutation from
  ``(seed, epoch)``, rank-strided micro-batches, drop-last), so ``--resume`` continues exactly.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "load_digits",
    "center_crop_arr",
    "ImageFolder",
    "CachedLatents",
    "StepBatches",
    "cache_latents",
]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {data[:4]!r})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != math.prod(shape):
        raise ValueError(f"{path}: IDX header says shape {shape} but holds {arr.size} values")
    return arr.reshape(shape).copy()


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64 from the IDX files.

    Args:
        data_dir: folder with ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``; default
            ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``).
        split: ``"train"`` (60,000) or ``"test"`` (10,000).
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    root = Path(data_dir if data_dir is not None else FASHION_MNIST_DIR)
    paths = []
    for stem in _FILES[split]:
        cands = [root / (stem + ".gz"), root / stem]
        found = next((p for p in cands if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(
                f"Fashion-MNIST file {stem}[.gz] not found in {str(root)!r}. Install the Debian package "
                "(as root): apt-get update && apt-get install -y dataset-fashion-mnist  -- it puts the IDX "
                f"files in {FASHION_MNIST_DIR}. Or download them from "
                "https://github.com/zalandoresearch/fashion-mnist and pass --data-dir <folder>."
            )
        paths.append(found)
    images, labels = _read_idx(paths[0]), _read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"unexpected Fashion-MNIST shapes {images.shape} and {labels.shape} in {root}"
        )
    return images, labels.astype(np.int64)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits: images ``(1797, 8, 8)`` uint8 in 0..255 (levels 0..16 rescaled) and labels int64."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    return images, d.target.astype(np.int64)


def to_unit_range(images: np.ndarray | torch.Tensor, pad_to: int | None = None) -> torch.Tensor:
    """uint8 ``(N, H, W)`` or ``(N, C, H, W)`` -> float32 ``(N, C, S, S)`` in ``[-1, 1]``, zero-padded (value -1) to ``pad_to``."""
    x = torch.as_tensor(images)
    if x.dim() == 3:
        x = x[:, None]
    x = x.float() / 127.5 - 1.0
    if pad_to is not None and pad_to != x.shape[-1]:
        total = pad_to - x.shape[-1]
        if total < 0:
            raise ValueError(f"cannot pad images of size {x.shape[-1]} to {pad_to}")
        lo = total // 2
        x = torch.nn.functional.pad(x, (lo, total - lo, lo, total - lo), value=-1.0)
    return x


# -- ImageNet ------------------------------------------------------------------------------------------
def center_crop_arr(pil_image, image_size: int):
    """ADM's centre crop: halve with a box filter while the short side >= 2 x size, bicubic-resize the short
    side to ``image_size``, then crop the centre ``image_size x image_size``."""
    from PIL import Image

    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(
        tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC
    )
    arr = np.array(pil_image)
    top = (arr.shape[0] - image_size) // 2
    left = (arr.shape[1] - image_size) // 2
    return Image.fromarray(arr[top : top + image_size, left : left + image_size])


_IMG_EXT = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _scan_folder(root: Path, ext: tuple[str, ...]) -> tuple[list[tuple[str, int]], list[str]]:
    if not root.is_dir():
        raise FileNotFoundError(
            f"data folder {str(root)!r} does not exist (expected root/<class>/<file>)"
        )
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise FileNotFoundError(
            f"no class sub-folders in {str(root)!r} (expected root/<class>/<file>)"
        )
    items = []
    for i, c in enumerate(classes):
        for dirpath, _, files in sorted(os.walk(root / c)):
            for f in sorted(files):
                if f.lower().endswith(ext):
                    items.append((os.path.join(dirpath, f), i))
    return items, classes


class ImageFolder(torch.utils.data.Dataset):
    """``root/<class>/<image>`` -> (image ``(3, S, S)`` in ``[-1, 1]``, label, relative path).

    A file that cannot be decoded yields ``None`` (with a warning); :func:`collate_skip` drops such items and
    counts them, so one corrupt JPEG does not stop an 800-epoch run.
    """

    def __init__(self, root: str | os.PathLike, image_size: int = 256, flip: bool = True) -> None:
        self.root = Path(root)
        self.items, self.classes = _scan_folder(self.root, _IMG_EXT)
        self.image_size, self.flip = image_size, flip

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int, flip: bool):
        from PIL import Image

        path, label = self.items[index]
        try:
            with Image.open(path) as im:
                img = center_crop_arr(im.convert("RGB"), self.image_size)
        except Exception as e:  # noqa: BLE001 - any decoding error skips the file
            warnings.warn(
                f"skipping unreadable image {path}: {type(e).__name__}: {e}", stacklevel=2
            )
            return None
        if flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x = (
            torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float()
            / 127.5
            - 1.0
        )
        return x, label, os.path.relpath(path, self.root)

    def __getitem__(self, index: int):
        return self.load(index, self.flip and bool(torch.rand(()) < 0.5))


class CachedLatents(torch.utils.data.Dataset):
    """``cached/<class>/<name>.npz`` with ``moments`` and ``moments_flip`` -> (moments ``(2C, h, w)``, label).

    With ``flip=True`` the flipped image's moments are used with probability 1/2 (the cached path's only
    augmentation). The trainer samples the posterior from the moments and scales by 0.2325.
    """

    def __init__(self, root: str | os.PathLike, flip: bool = True) -> None:
        self.root = Path(root)
        self.items, self.classes = _scan_folder(self.root, (".npz",))
        self.flip = flip

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        try:
            with np.load(path) as d:
                key = "moments_flip" if self.flip and bool(torch.rand(()) < 0.5) else "moments"
                moments = torch.from_numpy(np.array(d[key], dtype=np.float32))
        except Exception as e:  # noqa: BLE001
            warnings.warn(
                f"skipping unreadable latent file {path}: {type(e).__name__}: {e}", stacklevel=2
            )
            return None
        return moments, label


def collate_skip(batch: list):
    """Default collation after dropping ``None`` items; returns ``(collated, num_skipped)``."""
    kept = [b for b in batch if b is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return None, skipped
    return torch.utils.data.default_collate(kept), skipped


# -- resumable batch order ---------------------------------------------------------------------------------
class StepBatches:
    """Indices of every micro-batch, in a deterministic order that can start at any optimizer step.

    Epoch ``e`` uses the permutation of ``range(n)`` drawn from a generator seeded with ``seed + e``; an
    optimizer step consumes ``global_batch = batch_size x world_size x accumulation_steps`` consecutive
    indices, and micro-step ``j`` of rank ``r`` takes the slice ``(j world_size + r) batch_size`` of them.
    Incomplete steps at the end of an epoch are dropped.
    """

    def __init__(
        self,
        n: int,
        *,
        batch_size: int,
        world_size: int,
        rank: int,
        accumulation_steps: int,
        seed: int,
    ):
        self.n, self.bs, self.world, self.rank = n, batch_size, world_size, rank
        self.accum, self.seed = accumulation_steps, seed
        self.global_batch = batch_size * world_size * accumulation_steps
        self.steps_per_epoch = n // self.global_batch
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"the dataset has {n} items, fewer than one global batch of {self.global_batch} "
                f"(batch_size {batch_size} x world_size {world_size} x accumulation_steps {accumulation_steps})"
            )

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        return torch.randperm(self.n, generator=g)

    def iterate(self, start_step: int) -> Iterator[tuple[int, list[torch.Tensor]]]:
        """Yield ``(step, [index tensor per micro-step])`` forever from ``start_step``."""
        step = start_step
        epoch, perm = -1, None
        while True:
            e, s = divmod(step, self.steps_per_epoch)
            if e != epoch:
                epoch, perm = e, self.permutation(e)
            base = s * self.global_batch
            micro = []
            for j in range(self.accum):
                lo = base + (j * self.world + self.rank) * self.bs
                micro.append(perm[lo : lo + self.bs])
            yield step, micro
            step += 1


# -- latent caching -------------------------------------------------------------------------------------
def cache_latents(
    data_path: str,
    cached_path: str,
    vae_path: str,
    *,
    image_size: int = 256,
    batch_size: int = 128,
    num_workers: int = 8,
    embed_dim: int = 16,
) -> None:
    """Encode every image of an ImageFolder and its horizontal flip with the KL-16 VAE; store the moments.

    Runs as one process or under ``torchrun`` (each rank takes a strided share; ``(N, 2C, h, w)`` float32
    moments written as ``<cached_path>/<relative path>.npz``). Existing files are overwritten.
    """
    import torch.distributed as dist

    from reference.ear.tokenizer import AutoencoderKL, load_vae

    distributed = "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    vae = load_vae(vae_path, AutoencoderKL(embed_dim)).to(device)
    ds = ImageFolder(data_path, image_size=image_size, flip=False)
    indices = list(range(rank, len(ds), world))
    sub = torch.utils.data.Subset(ds, indices)
    loader = torch.utils.data.DataLoader(
        sub,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_skip,
        pin_memory=device.type == "cuda",
    )
    skipped = 0
    out_root = Path(cached_path)
    for i, (batch, nskip) in enumerate(loader):
        skipped += nskip
        if batch is None:
            continue
        x, _, rel = batch
        x = x.to(device, non_blocking=True)
        with torch.no_grad():
            m = vae.encode_moments(x).float().cpu().numpy()
            mf = vae.encode_moments(x.flip(dims=[3])).float().cpu().numpy()
        for k, r in enumerate(rel):
            dst = out_root / (os.path.splitext(r)[0] + ".npz")
            dst.parent.mkdir(parents=True, exist_ok=True)
            np.savez(dst, moments=m[k], moments_flip=mf[k])
        if rank == 0 and i % 50 == 0:
            print(f"[cache] batch {i}/{len(loader)}", flush=True)
    print(f"[cache] rank {rank}: done, {skipped} unreadable images skipped", flush=True)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="EAR data tools")
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache", help="cache KL-16 latents of an ImageNet folder (torchrun-able)")
    c.add_argument(
        "--data-path", required=True, help="ImageNet train folder (root/<class>/<image>)"
    )
    c.add_argument("--cached-path", required=True)
    c.add_argument("--vae-path", default="pretrained_models/vae/kl16.ckpt")
    c.add_argument("--image-size", type=int, default=256)
    c.add_argument("--batch-size", type=int, default=128)
    c.add_argument("--num-workers", type=int, default=8)
    args = parser.parse_args(argv)
    cache_latents(
        args.data_path,
        args.cached_path,
        args.vae_path,
        image_size=args.image_size,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
