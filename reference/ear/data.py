"""Data for the reference EAR: Fashion-MNIST, sklearn digits, ImageNet folders and cached KL-16 latents.

- :func:`load_fashion_mnist`: the IDX files of the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist/``) or any folder holding them.
- :func:`load_digits`: sklearn's 8x8 digits (1,797 images), for tests.
- :class:`ImageFolder`: ``root/<class>/<image>`` with the ADM centre crop (:func:`center_crop_arr`) and random
  flips; unreadable files are skipped with a warning and counted, not a crash.
- :func:`cache_latents` (``python reference/ear/cache.py ...``, also under ``torchrun``): writes the KL-16
  posterior moments of every image and of its horizontal flip into one memory-mapped array per rank.
- :class:`CachedLatents`: reads those arrays (or MAR's one ``.npz`` per image), choosing the flipped
  moments with probability 1/2.
- :class:`StepBatches`: the deterministic, resumable batch order used by the trainer (epoch permutation and
  flips from ``(seed, epoch)``, rank-strided micro-batches, drop-last), so ``--resume`` continues exactly.
- :class:`TrainData`: what the trainer iterates: tokens and labels per micro-step, the skipped-item count,
  and the decoder from tokens back to images.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from reference.ear.autoencoder import ensure_autoencoder
from reference.ear.configs import DataConfig, RunConfig
from reference.ear.distributed import Dist, check_same_count
from reference.ear.tokenizer import AutoencoderKL, TokenDecoder, build_tokenizer, load_vae

__all__ = [
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "load_digits",
    "center_crop_arr",
    "ImageFolder",
    "CachedLatents",
    "StepBatches",
    "Skipped",
    "collate_skip",
    "check_labels",
    "TrainData",
    "raw_size",
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
RAW_SIZES = {"fashion_mnist": 28, "digits": 8}


def raw_size(dc: DataConfig) -> int | None:
    """Side of the dataset's original images (in-memory datasets are padded to ``image_size``); else ``None``."""
    return RAW_SIZES.get(dc.dataset)


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
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as e:  # the demo's extra ([ear]) lacks it; the tests' ([test]) has it
        raise ImportError(
            "the digits data set (preset 'tiny', the tests) needs scikit-learn: pip install -e '.[test]' "
            "or pip install scikit-learn"
        ) from e

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


class Skipped(NamedTuple):
    """An item that could not be read: its file and what was wrong with it."""

    path: str
    problem: str


def _parse_key(key) -> tuple[int, bool | None]:
    """Dataset keys are an index or ``(index, flip)``; ``flip=None`` means "draw it here"."""
    if isinstance(key, tuple):
        return int(key[0]), bool(key[1])
    return int(key), None


class ImageFolder(torch.utils.data.Dataset):
    """``root/<class>/<image>`` -> (image ``(3, S, S)`` in ``[-1, 1]``, label, relative path).

    A file that cannot be decoded yields a :class:`Skipped` (with a warning naming the file and the error);
    :func:`collate_skip` drops such items and returns them, so one corrupt JPEG does not stop an 800-epoch
    run and the trainer can count and report it. A key ``(index, flip)`` fixes the flip (the trainer's
    resumable flips); a plain index draws it.
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
            problem = f"cannot decode the image: {type(e).__name__}: {e}"
            warnings.warn(f"skipping {path}: {problem}", stacklevel=2)
            return Skipped(path, problem)
        if flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x = (
            torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float()
            / 127.5
            - 1.0
        )
        return x, label, os.path.relpath(path, self.root)

    def __getitem__(self, key):
        index, flip = _parse_key(key)
        if flip is None:
            flip = self.flip and bool(torch.rand(()) < 0.5)
        return self.load(index, flip and self.flip)


class CachedLatents(torch.utils.data.Dataset):
    """Cached KL-16 posterior moments -> (moments ``(2C, h, w)`` float32, label).

    Two layouts are read:

    - **packed** (what :func:`cache_latents` writes): ``classes.json`` and, per caching rank ``r``,
      ``latents-r<r>.npy`` (``(n_r, 2, 2C, h, w)`` float32: the moments of the image and of its horizontal
      flip) with ``latents-r<r>.json`` (``count``, ``labels``, ``paths``). The arrays are memory-mapped, lazily
      in each process (DataLoader workers included): one open file per shard instead of one per sample.
    - **per file** (MAR's ``main_cache.py``): ``<class>/<name>.npz`` with ``moments`` and ``moments_flip``.

    With ``flip=True`` the flipped moments are used with probability 1/2 (a key ``(index, flip)`` fixes the
    choice: the trainer draws it from the step, so ``--resume`` is exact).
    """

    def __init__(self, root: str | os.PathLike, flip: bool = True) -> None:
        self.root = Path(root)
        self.flip = flip
        self._arrays: list | None = None
        if (self.root / "classes.json").is_file():
            self.classes = json.loads((self.root / "classes.json").read_text())
            self.shards, labels, counts = [], [], []
            for meta_path in sorted(self.root.glob("latents-r*.json")):
                meta = json.loads(meta_path.read_text())
                npy = meta_path.with_suffix(".npy")
                if not npy.is_file():
                    raise FileNotFoundError(f"{npy} is missing (its index {meta_path.name} exists)")
                self.shards.append(npy)
                labels.append(np.asarray(meta["labels"][: meta["count"]], dtype=np.int64))
                counts.append(int(meta["count"]))
            if not self.shards:
                raise FileNotFoundError(
                    f"{self.root} has classes.json but no latents-r*.json shards"
                )
            # a compact per-item index (arrays, not Python tuples: 1.3M items cost about 15 MB)
            self.labels = np.concatenate(labels)
            self._shard = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
            self._row = np.concatenate([np.arange(c, dtype=np.int64) for c in counts])
            self.items = None
        else:
            self.items, self.classes = _scan_folder(self.root, (".npz",))
            self.labels = np.asarray([label for _, label in self.items], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self):  # memory maps are reopened in each worker, never pickled
        state = dict(self.__dict__)
        state["_arrays"] = None
        return state

    def __getitem__(self, key):
        index, flip = _parse_key(key)
        if flip is None:
            flip = bool(torch.rand(()) < 0.5)
        flip = flip and self.flip
        label = int(self.labels[index])
        if self.items is None:
            if self._arrays is None:
                self._arrays = [np.load(p, mmap_mode="r") for p in self.shards]
            k, i = int(self._shard[index]), int(self._row[index])
            moments = np.array(self._arrays[k][i, int(flip)], dtype=np.float32)
            return torch.from_numpy(moments), label
        path = self.items[index][0]
        try:
            with np.load(path) as d:
                moments = torch.from_numpy(
                    np.array(d["moments_flip" if flip else "moments"], dtype=np.float32)
                )
        except Exception as e:  # noqa: BLE001
            problem = f"cannot read the latent file: {type(e).__name__}: {e}"
            warnings.warn(f"skipping {path}: {problem}", stacklevel=2)
            return Skipped(path, problem)
        return moments, label


def collate_skip(batch: list):
    """Default collation after dropping :class:`Skipped` items; returns ``(collated or None, skipped list)``."""
    kept = [b for b in batch if not isinstance(b, Skipped)]
    skipped = [b for b in batch if isinstance(b, Skipped)]
    if not kept:
        return None, skipped
    return torch.utils.data.default_collate(kept), skipped


def check_labels(labels, num_classes: int, where: str) -> None:
    """Every label in ``[0, num_classes)`` (checked before training, not as an ``IndexError`` mid-run)."""
    labels = torch.as_tensor(labels)
    if labels.numel() == 0:
        raise ValueError(f"{where} holds no training items")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"{where} has labels in [{lo}, {hi}] but model.num_classes={num_classes} allows "
            f"[0, {num_classes - 1}]"
        )


# -- resumable batch order ---------------------------------------------------------------------------------
class StepBatches:
    """Indices of every micro-batch, in a deterministic order that can start at any optimizer step.

    Epoch ``e`` uses the permutation of ``range(n)`` drawn from a generator seeded with ``seed + e``; an
    optimizer step consumes ``global_batch = batch_size x world_size x accumulation_steps`` consecutive
    indices, and micro-step ``j`` of rank ``r`` takes the slice ``(j world_size + r) batch_size`` of them.
    Incomplete steps at the end of an epoch are dropped. :meth:`flips` gives each item's horizontal flip for
    an epoch from its own generator, so flips too are a function of the step (exact resume).
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
        self._flip_epoch, self._flip = -1, None

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        return torch.randperm(self.n, generator=g)

    def flips(self, epoch: int) -> torch.Tensor:
        """``(n,)`` bool: whether item ``i`` is flipped in ``epoch`` (probability 1/2, fixed by seed and epoch)."""
        if epoch != self._flip_epoch:
            g = torch.Generator().manual_seed(self.seed * 100003 + epoch + 0x5EED_F11B)
            self._flip_epoch, self._flip = epoch, torch.rand(self.n, generator=g) < 0.5
        return self._flip

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


# -- the trainer's view of the data ----------------------------------------------------------------------
class TrainData:
    """Training examples and how they become tokens (and tokens become images).

    In-memory datasets (Fashion-MNIST, digits) are indexed directly; file datasets (ImageNet, cached latents)
    go through a ``DataLoader`` whose batch sampler follows :class:`StepBatches` and hands each item its
    flip. Labels are checked against ``model.num_classes`` here, and under torchrun every rank must see the
    same number of items. Unreadable items are counted (:attr:`skipped`) and the first few kept with their
    problem (:attr:`skipped_examples`).

    Args:
        config: the run's :class:`~reference.ear.configs.RunConfig`.
        d: the process's :class:`~reference.ear.distributed.Dist`.
        vae_strict: passed to :func:`~reference.ear.tokenizer.load_vae`.
    """

    def __init__(self, config: RunConfig, d: Dist, *, vae_strict: bool = True) -> None:
        self.config = config
        dc = config.data
        self.device = d.device
        self.images = None
        self.dataset = None
        self.skipped = 0
        self.skipped_examples: list[Skipped] = []
        nc = config.model.num_classes
        if dc.dataset in ("fashion_mnist", "digits"):
            if dc.dataset == "fashion_mnist":
                imgs, labels = load_fashion_mnist(dc.data_dir, "train")
                where = f"Fashion-MNIST in {dc.data_dir or FASHION_MNIST_DIR}"
            else:
                imgs, labels = load_digits()
                where = "sklearn digits"
            if dc.subset is not None:
                imgs, labels = imgs[: dc.subset], labels[: dc.subset]
            check_labels(labels, nc, where)
            self.images = to_unit_range(imgs, pad_to=dc.image_size)  # (N, 1, S, S) in [-1, 1]
            self.labels = torch.as_tensor(labels, dtype=torch.long)
            self.n = len(self.labels)
        elif dc.dataset in ("imagenet", "imagenet_cached"):
            if dc.data_dir is None:
                raise ValueError(
                    f"data.dataset={dc.dataset!r} needs --data-dir (an ImageNet train folder or "
                    "its cached latents)"
                )
            if dc.dataset == "imagenet_cached":
                self.dataset = CachedLatents(dc.data_dir, flip=dc.flip)
            else:
                self.dataset = ImageFolder(dc.data_dir, image_size=dc.image_size, flip=dc.flip)
            if len(self.dataset.classes) > nc:
                raise ValueError(
                    f"{dc.data_dir} has {len(self.dataset.classes)} class folders but "
                    f"model.num_classes={nc}"
                )
            if isinstance(self.dataset, CachedLatents):
                check_labels(self.dataset.labels, nc, str(dc.data_dir))
            self.n = len(self.dataset)
        else:  # unreachable after config validation
            raise ValueError(f"unknown data.dataset {dc.dataset!r}")
        check_same_count(self.n, d)
        self.moments = None
        self.tokenizer_summary: dict | None = None
        if dc.tokenizer == "kl":
            # the first stage: the learned autoencoder (trained once, then cached)
            if self.images is None:
                raise ValueError(
                    f"data.tokenizer='kl' (the learned autoencoder) needs an in-memory dataset "
                    f"(fashion_mnist or digits); got data.dataset={dc.dataset!r}"
                )
            if dc.flip:
                raise ValueError(
                    "data.flip=true is not supported with data.tokenizer='kl'; set it false"
                )
            _, self.tokenizer_summary = ensure_autoencoder(dc, self.images.to(d.device), d)
        self.channels_last = (
            dc.dataset == "imagenet" and d.device.type == "cuda" and config.train.channels_last
        )
        self.tokenizer = build_tokenizer(
            dc, d.device, channels_last=self.channels_last, vae_strict=vae_strict
        )
        self.decoder = TokenDecoder(self.tokenizer, raw_size(dc))
        if dc.tokenizer == "kl":
            # posterior moments of every image, once; each step samples from them
            with torch.no_grad():
                self.moments = torch.cat(
                    [
                        self.tokenizer.vae.encode_moments(b.to(d.device))
                        for b in self.images.split(1000)
                    ]
                )
        if self.tokenizer.token_dim != config.model.token_dim:
            raise ValueError(
                f"model.token_dim={config.model.token_dim} but the tokenizer makes tokens of size "
                f"{self.tokenizer.token_dim} (data.patch_size={dc.patch_size})"
            )

    def to_tokens(self, batch: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens of a batch (images in ``[-1, 1]`` or cached moments); ``flip`` (in-memory images only)."""
        dc = self.config.data
        if dc.dataset == "imagenet_cached" or self.moments is not None:
            return self.tokenizer.moments_to_tokens(batch, sample=True)
        if dc.dataset == "imagenet":
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            return self.tokenizer.encode(batch, sample=True)
        if flip is not None:
            batch = torch.where(flip.to(batch.device)[:, None, None, None], batch.flip(-1), batch)
        return self.tokenizer.encode(batch)

    def _flips(self, batches: StepBatches, step: int, idx: torch.Tensor) -> torch.Tensor | None:
        if not self.config.data.flip:
            return None
        return batches.flips(step // batches.steps_per_epoch)[idx]

    def iterate(self, batches: StepBatches, start_step: int, total_steps: int):
        """Yield ``(step, micro)`` for ``start_step <= step < total_steps``.

        ``micro`` has one entry per micro-step: ``(tokens, labels)``, or ``None`` when every item of that
        micro-batch was unreadable.
        """
        if self.images is not None:
            for step, micro in batches.iterate(start_step):
                if step >= total_steps:
                    return
                out = []
                for idx in micro:
                    if self.moments is not None:  # learned tokenizer: sample the cached posteriors
                        x = self.moments[idx]
                        out.append((self.to_tokens(x), self.labels[idx].to(self.device)))
                        continue
                    x = self.images[idx].to(self.device, non_blocking=True)
                    flip = self._flips(batches, step, idx)
                    out.append((self.to_tokens(x, flip), self.labels[idx].to(self.device)))
                yield step, out
            return

        def micro_lists():
            for step, micro in batches.iterate(start_step):
                if step >= total_steps:
                    return
                for idx in micro:
                    flips = self._flips(batches, step, idx)
                    if flips is None:
                        yield [(i, False) for i in idx.tolist()]
                    else:
                        yield list(zip(idx.tolist(), flips.tolist(), strict=True))

        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=micro_lists(),
            num_workers=self.config.data.num_workers,
            collate_fn=collate_skip,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            # its own generator: creating the iterator must not draw from the global RNG, which a resume
            # restores to the state of the step it starts at
            generator=torch.Generator().manual_seed(self.config.train.seed * 100003 + start_step),
        )
        it = iter(loader)
        for step in range(start_step, total_steps):
            out = []
            for _ in range(batches.accum):
                batch, skipped = next(it)
                self.skipped += len(skipped)
                room = 5 - len(self.skipped_examples)
                if room > 0:
                    self.skipped_examples.extend(skipped[:room])
                if batch is None:
                    out.append(None)
                    continue
                x, y = batch[0], batch[1]
                x = x.to(self.device, non_blocking=True)
                out.append((self.to_tokens(x), y.to(self.device, non_blocking=True)))
            yield step, out

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens -> images in ``[0, 1]`` (``(N, C, H, W)``; pixel-space demos cropped back to the raw size)."""
        return self.decoder(tokens)


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
    vae: AutoencoderKL | None = None,
    vae_ch: int = 128,
    vae_num_res_blocks: int = 2,
) -> dict:
    """Encode every image of an ImageFolder and its horizontal flip with the KL-16 VAE; store the moments.

    Runs as one process or under ``torchrun`` (each rank takes a strided share). Rank ``r`` writes the packed
    layout of :class:`CachedLatents`: ``latents-r<r>.npy`` (``(n_r, 2, 2C, h, w)`` float32, written through
    a memory map) and ``latents-r<r>.json``; rank 0 also writes ``classes.json``. Unreadable images are
    skipped, counted and named. ``vae`` (an already built model) replaces loading ``vae_path``.
    Returns ``{"count", "skipped", "skipped_files"}`` for this rank.
    """
    import torch.distributed as dist

    distributed = "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if vae is None:
        vae = load_vae(
            vae_path, AutoencoderKL(embed_dim, ch=vae_ch, num_res_blocks=vae_num_res_blocks)
        )
    vae = vae.to(device).eval()
    ds = ImageFolder(data_path, image_size=image_size, flip=False)
    indices = list(range(rank, len(ds), world))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(ds, indices),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_skip,
        pin_memory=device.type == "cuda",
    )
    out_root = Path(cached_path)
    out_root.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        (out_root / "classes.json").write_text(json.dumps(ds.classes))
    arr = None
    count, labels, paths, skipped = 0, [], [], []
    for i, (batch, bad) in enumerate(loader):
        skipped.extend(bad)
        if batch is None:
            continue
        x, y, rel = batch
        x = x.to(device, non_blocking=True)
        with torch.no_grad():
            m = vae.encode_moments(x).float()
            mf = vae.encode_moments(x.flip(dims=[3])).float()
        both = torch.stack([m, mf], dim=1).cpu().numpy()
        if arr is None:
            arr = np.lib.format.open_memmap(
                out_root / f"latents-r{rank}.npy",
                mode="w+",
                dtype=np.float32,
                shape=(len(indices), *both.shape[1:]),
            )
        arr[count : count + len(both)] = both
        count += len(both)
        labels.extend(int(v) for v in y)
        paths.extend(rel)
        if rank == 0 and i % 50 == 0:
            print(f"[cache] batch {i}/{len(loader)}", flush=True)
    if arr is not None:
        arr.flush()
        del arr
    meta = {"count": count, "labels": labels, "paths": paths, "skipped": [list(s) for s in skipped]}
    (out_root / f"latents-r{rank}.json").write_text(json.dumps(meta))
    print(
        f"[cache] rank {rank}: {count} images cached, {len(skipped)} unreadable skipped"
        + "".join(f"\n  {s.path}: {s.problem}" for s in skipped[:5]),
        flush=True,
    )
    if distributed:
        dist.barrier()
    return {"count": count, "skipped": len(skipped), "skipped_files": [s.path for s in skipped]}
