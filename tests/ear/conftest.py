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
