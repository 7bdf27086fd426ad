"""Test set-up for the reference EAR (reference/ear is not an installed package)."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _one_thread():
    """The reference-model tests are small; one thread avoids oversubscribing a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def run_ddp_tiny():
    """A function ``(run_dir, *overrides)`` that trains the tiny preset in 2 gloo processes (``ddp_worker.py``)."""
    import os
    import subprocess

    def run(run_dir, *overrides):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(ROOT / "tests" / "ear" / "ddp_worker.py"),
            str(run_dir),
            *overrides,
        ]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    return run


@pytest.fixture
def small_vae():
    """A function ``(seed=0)`` that builds a small KL VAE (the official layout at 8 base channels, 32 x 32)."""
    from reference.ear.tokenizer import AutoencoderKL

    def build(seed: int = 0):
        torch.manual_seed(seed)
        return AutoencoderKL(
            4,
            ch=8,
            ch_mult=(1, 1, 2, 2, 4),
            num_res_blocks=1,
            resolution=32,
            attn_resolutions=(2,),
            groups=4,
        )

    return build


@pytest.fixture
def imagenet_folder(tmp_path):
    """A function ``(root, per_class=4, classes=3, corrupt=1)``: an ImageNet-style folder of JPEGs.

    Class sub-folders ``n0000000<c>`` hold ``per_class`` random 40 x 48 JPEGs each; ``corrupt`` more files
    named ``broken<k>.JPEG`` hold bytes that are no image. Returns the sorted list of corrupt paths.
    """
    import numpy as np
    from PIL import Image

    def build(root, per_class: int = 4, classes: int = 3, corrupt: int = 1):
        rng = np.random.default_rng(0)
        bad = []
        for c in range(classes):
            d = root / f"n0000000{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"img{i}.JPEG", format="JPEG")
        for k in range(corrupt):
            p = root / f"n0000000{k % classes}" / f"broken{k}.JPEG"
            p.write_bytes(b"\xff\xd8 this is not a jpeg")
            bad.append(p)
        return sorted(bad)

    return build


@pytest.fixture
def tiny_vae_ckpt(tmp_path):
    """Path of a randomly initialised KL VAE checkpoint (official layout, 16 latent channels, 8 base channels,
    1 block per level: the ``tiny_kl16`` preset's ``data.vae_ch`` / ``data.vae_num_res_blocks``)."""
    from reference.ear.tokenizer import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(16, ch=8, num_res_blocks=1)
    path = tmp_path / "vae" / "kl16-tiny.ckpt"
    path.parent.mkdir()
    torch.save({"model": vae.state_dict()}, path)
    return path
