"""Device checks of the reference EAR, run on the CPU everywhere and also on CUDA where a GPU is present
(``benchmarks/gpu_check.sh`` runs this file on the GPU machine)."""

import pytest
import torch

from reference.ear.checkpoint import load_checkpoint
from reference.ear.configs import apply_overrides, preset
from reference.ear.distributed import Dist
from reference.ear.trainer import train
from scoringrules_torch.functional.energy import energy_score

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _dist(device: str) -> Dist:
    return Dist(device=torch.device(device))


@pytest.mark.parametrize("device", DEVICES)
def test_train_checkpoint_and_exact_resume_on_the_device(tmp_path, device):
    sets = ["train.log_every=1", "data.flip=true"]
    cfg = apply_overrides(preset("tiny"), [*sets, "train.max_steps=6"])
    full = train(cfg, tmp_path / "a", d=_dist(device), progress=False)
    train(
        apply_overrides(cfg, ["train.max_steps=3"]), tmp_path / "b", d=_dist(device), progress=False
    )
    resumed = train(cfg, tmp_path / "b", resume=tmp_path / "b", d=_dist(device), progress=False)
    for a, b in zip(full["model"].parameters(), resumed["model"].parameters(), strict=True):
        assert a.device.type == device
        # CUDA backward kernels (atomics) are not bitwise deterministic: exact on the CPU, close on CUDA
        tol = 0.0 if device == "cpu" else 1e-4
        torch.testing.assert_close(a, b, rtol=tol, atol=tol / 10)
    payload, _ = load_checkpoint(tmp_path / "a", map_location=device)
    assert next(iter(payload["model"].values())).device.type == device
    rng = payload["rng"][0]
    assert all(t.device.type == "cpu" for t in rng.values())
    assert ("cuda" in rng) == (device == "cuda")


@pytest.mark.parametrize("device", DEVICES)
def test_energy_score_on_the_device_matches_cdist(device):
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(8, 64, 16, generator=g, dtype=torch.float64)
    y = torch.randn(64, 16, generator=g, dtype=torch.float64)
    got = energy_score(samples.to(device).float(), y.to(device).float(), reduction="none")
    acc = torch.cdist(samples.permute(1, 0, 2), y[:, None]).squeeze(-1).mean(1)
    pair = torch.cdist(samples.permute(1, 0, 2), samples.permute(1, 0, 2))
    want = acc - pair.sum((1, 2)) / (2 * 8 * 7)  # the "fair" estimator
    torch.testing.assert_close(got.double().cpu(), want, rtol=2e-5, atol=2e-5)
