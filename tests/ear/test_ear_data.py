"""Data: IDX reading, the missing-dataset message, resumable batch order, corrupt images."""

import gzip
import struct
import warnings

import numpy as np
import pytest
import torch

from reference.ear.data import (
    ImageFolder,
    StepBatches,
    center_crop_arr,
    collate_skip,
    load_digits,
    load_fashion_mnist,
)


def _write_idx(path, arr, compress):
    header = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + b"".join(
        struct.pack(">I", s) for s in arr.shape
    )
    data = header + arr.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reader_on_synthetic_idx_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    sfx = ".gz" if compress else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", imgs, compress)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", labels, compress)
    x, y = load_fashion_mnist(tmp_path, "test")
    assert np.array_equal(x, imgs) and np.array_equal(y, labels.astype(np.int64))
    assert x.flags.writeable


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist(tmp_path, "valid")


def test_digits_are_rescaled_to_bytes():
    from sklearn.datasets import load_digits as sk

    x, y = load_digits()
    d = sk()
    assert x.shape == (1797, 8, 8) and x.dtype == np.uint8 and x.max() == 255
    assert np.array_equal(np.round(d.images * 255 / 16).astype(np.uint8), x) and np.array_equal(
        y, d.target
    )


def test_step_batches_partition_each_epoch_across_ranks_and_micro_steps():
    n, bs, world, accum = 103, 4, 2, 3
    per_rank = [
        StepBatches(n, batch_size=bs, world_size=world, rank=r, accumulation_steps=accum, seed=7)
        for r in range(world)
    ]
    spe = per_rank[0].steps_per_epoch
    assert spe == n // (bs * world * accum)
    its = [b.iterate(0) for b in per_rank]
    seen = []
    for _ in range(spe):
        for it in its:
            _, micro = next(it)
            assert len(micro) == accum and all(len(m) == bs for m in micro)
            seen.extend(torch.cat(micro).tolist())
    assert len(seen) == len(set(seen)) == spe * bs * world * accum  # no repeats within an epoch
    # the next epoch is a different permutation, and resuming at step k gives the same batches
    tail = [
        next(
            StepBatches(
                n, batch_size=bs, world_size=world, rank=1, accumulation_steps=accum, seed=7
            ).iterate(k)
        )
        for k in range(spe + 2)
    ]
    it1 = per_rank[1].iterate(0)
    for k in range(spe + 2):
        step, micro = next(it1)
        assert step == tail[k][0] and all(
            torch.equal(a, b) for a, b in zip(micro, tail[k][1], strict=True)
        )
    with pytest.raises(ValueError, match="fewer than one global batch"):
        StepBatches(10, batch_size=8, world_size=2, rank=0, accumulation_steps=1, seed=0)


def test_center_crop_is_square_of_the_requested_size():
    from PIL import Image

    im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 900, 3), dtype=np.uint8))
    out = center_crop_arr(im, 256)
    assert out.size == (256, 256)


def test_corrupt_image_is_skipped_with_a_warning_and_counted(tmp_path):
    from PIL import Image

    (tmp_path / "cls_a").mkdir()
    (tmp_path / "cls_b").mkdir()
    Image.fromarray(np.zeros((40, 50, 3), dtype=np.uint8)).save(tmp_path / "cls_a" / "ok.png")
    (tmp_path / "cls_b" / "broken.jpg").write_bytes(b"not a jpeg at all")
    ds = ImageFolder(tmp_path, image_size=32, flip=False)
    assert len(ds) == 2 and ds.classes == ["cls_a", "cls_b"]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        items = [ds[i] for i in range(2)]
    assert any("broken.jpg" in str(x.message) for x in w)
    batch, skipped = collate_skip(items)
    assert len(skipped) == 1 and skipped[0].path.endswith("broken.jpg")
    assert "cannot decode" in skipped[0].problem
    x, y, _ = batch
    assert x.shape == (1, 3, 32, 32) and x.min() >= -1 and y.tolist() == [0]
