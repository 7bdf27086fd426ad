"""Defects that would break the GPU / multi-node path, each reproduced on the CPU."""

import json
import os
import subprocess
import sys
import types
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg

from reference.ear import sampling as sampling_mod
from reference.ear.checkpoint import load_checkpoint, set_rng_state
from reference.ear.configs import apply_overrides, preset
from reference.ear.data import CachedLatents, cache_latents
from reference.ear.distributed import Dist
from reference.ear.metrics import folder_fid, resize_bilinear_tf1
from reference.ear.trainer import train

ROOT = Path(__file__).resolve().parents[2]


def _tiny(*sets):
    return apply_overrides(preset("tiny"), list(sets))


def test_resume_survives_a_device_move_of_the_checkpoint(tmp_path):
    train(_tiny("train.max_steps=2"), tmp_path, d=Dist(), progress=False)
    raw = torch.load(tmp_path / "checkpoint-last.pt", map_location="meta", weights_only=True)
    with pytest.raises((TypeError, RuntimeError)):  # what resuming with map_location=<cuda> did
        torch.set_rng_state(raw["rng"][0]["torch"])
    payload, _ = load_checkpoint(tmp_path, map_location="meta")
    assert next(iter(payload["model"].values())).device.type == "meta"
    state = payload["rng"][0]["torch"]
    assert state.device.type == "cpu" and state.dtype == torch.uint8
    before = torch.get_rng_state()
    set_rng_state(payload["rng"][0], torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), state)
    torch.set_rng_state(before)


def test_checkpoints_are_memory_mapped_and_freed_after_resume(tmp_path, monkeypatch):
    train(_tiny("train.max_steps=2"), tmp_path, d=Dist(), progress=False)
    seen, refs = [], []
    real_load = torch.load

    def recording_load(*a, **k):
        seen.append(k.get("mmap"))
        out = real_load(*a, **k)
        if isinstance(out, dict) and "model" in out:
            refs.extend(weakref.ref(t) for t in out["model"].values())
        return out

    monkeypatch.setattr(torch, "load", recording_load)
    train(_tiny("train.max_steps=4"), tmp_path, resume=tmp_path, d=Dist(), progress=False)
    assert seen and all(m is True for m in seen)
    import gc

    gc.collect()
    assert refs and all(r() is None for r in refs)  # the loaded copy is gone once training runs


def test_resume_with_another_global_batch_is_refused(tmp_path):
    train(_tiny("train.max_steps=2"), tmp_path, d=Dist(), progress=False)
    with pytest.raises(ValueError, match="global batch 32, this run has 16"):
        train(
            _tiny("train.max_steps=4", "train.batch_size=16"),
            tmp_path,
            resume=tmp_path,
            d=Dist(),
            progress=False,
        )
    # the same global batch as 16 x 2 accumulation steps is accepted
    out = train(
        _tiny("train.max_steps=4", "train.batch_size=16", "train.accumulation_steps=2"),
        tmp_path,
        resume=tmp_path,
        d=Dist(),
        progress=False,
    )
    assert out["final_step"] == 4


def test_a_rank_that_sees_fewer_items_fails_fast_on_every_rank(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / "tests" / "ear" / "ddp_count_worker.py"),
        str(tmp_path),
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    for r in (0, 1):
        msg = (tmp_path / f"rank{r}.txt").read_text()
        assert "rank 0: 1000, rank 1: 990" in msg, msg


def test_sample_grids_and_final_sampling_make_no_copy_of_the_model(tmp_path, monkeypatch):
    import copy

    real_deepcopy = copy.deepcopy

    def no_model_copies(obj, *a, **k):
        if isinstance(obj, torch.nn.Module):
            raise AssertionError("deepcopy of the model")
        return real_deepcopy(obj, *a, **k)

    monkeypatch.setattr(copy, "deepcopy", no_model_copies)
    out = train(
        _tiny("train.max_steps=4", "train.sample_every=2"), tmp_path, d=Dist(), progress=False
    )
    assert (tmp_path / "samples-step2.png").stat().st_size > 0
    model, ema = out["model"], out["ema"]
    raw = {n: p.detach().clone() for n, p in model.named_parameters()}
    datas = {n: p.data_ptr() for n, p in model.named_parameters()}
    with sampling_mod.ema_weights(model, ema) as m:
        assert not m.training
        for n, p in m.named_parameters():
            assert p.data_ptr() == ema[n].data_ptr()  # the EMA tensors themselves: no copy
    assert model.training
    for n, p in model.named_parameters():
        assert p.data_ptr() == datas[n] and torch.equal(p, raw[n])
        assert not torch.equal(ema[n], raw[n]) or n.startswith("head.")


def test_sampling_reads_only_the_weights_it_uses(tmp_path, monkeypatch):
    train(_tiny("train.max_steps=2"), tmp_path, d=Dist(), progress=False)
    real = sampling_mod.load_checkpoint

    class Untouchable(dict):
        def __getitem__(self, k):
            raise AssertionError("the optimizer state was read")

    def guarded(*a, **k):
        payload, cfg = real(*a, **k)
        payload["optimizer"] = Untouchable()
        return payload, cfg

    monkeypatch.setattr(sampling_mod, "load_checkpoint", guarded)
    model, _ = sampling_mod.load_for_sampling(tmp_path, torch.device("cpu"))
    ema = load_checkpoint(tmp_path)[0]["ema"]
    for n, p in model.named_parameters():
        assert torch.equal(p, ema[n])


def test_training_forward_needs_no_host_synchronisation():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.add(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    from reference.ear.model import build_model

    model = build_model(preset("tiny").model)
    # the mask count is drawn from the CPU generator as a Python int (a CPU read, never a device wait)
    assert isinstance(model.draw_num_masked(), int)
    model.draw_num_masked = lambda: 3
    with Ops() as ops:
        model(torch.randn(8, 4, 16), torch.randint(0, 10, (8,))).backward()
    # boolean-mask indexing (nonzero) and .item() would wait for the device
    assert not {"nonzero", "_local_scalar_dense", "masked_select"} & ops.names, ops.names
    assert "gather" in ops.names


def test_cached_latents_are_one_memory_mapped_array_per_rank(tmp_path, imagenet_folder, small_vae):
    bad = imagenet_folder(tmp_path / "imgs", per_class=3, classes=2, corrupt=1)
    vae = small_vae()
    with pytest.warns(UserWarning, match="broken0.JPEG"):
        info = cache_latents(
            str(tmp_path / "imgs"), str(tmp_path / "cache"), "", image_size=32, num_workers=0,
            batch_size=4, vae=vae,
        )  # fmt: skip
    assert info["count"] == 6 and info["skipped_files"] == [str(bad[0])]
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert files == ["classes.json", "latents-r0.json", "latents-r0.npy"]
    arr = np.load(tmp_path / "cache" / "latents-r0.npy", mmap_mode="r")
    assert isinstance(arr, np.memmap) and arr.shape == (7, 2, 8, 2, 2)  # capacity 7, 6 written
    ds = CachedLatents(tmp_path / "cache", flip=True)
    assert len(ds) == 6 and ds.classes == ["n00000000", "n00000001"]
    from reference.ear.data import ImageFolder

    imgs = ImageFolder(tmp_path / "imgs", image_size=32, flip=False)
    good = [i for i, (p, _) in enumerate(imgs.items) if "broken" not in p]
    for k, i in enumerate(good):
        x, label, _ = imgs[i]
        with torch.no_grad():
            m = vae.encode_moments(x[None])[0]
            mf = vae.encode_moments(x.flip(-1)[None])[0]
        a, la = ds[(k, False)]
        b, _ = ds[(k, True)]
        assert la == label
        torch.testing.assert_close(a, m, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b, mf, rtol=1e-5, atol=1e-6)
    # the arrays are opened lazily in each process and never pickled
    import pickle

    assert pickle.loads(pickle.dumps(ds))._arrays is None


def test_flips_on_the_cached_latent_path_resume_exactly(tmp_path, imagenet_folder, tiny_vae_ckpt):
    from reference.ear.tokenizer import AutoencoderKL, load_vae

    imagenet_folder(tmp_path / "imgs", per_class=4, classes=3, corrupt=0)
    vae = load_vae(tiny_vae_ckpt, AutoencoderKL(16, ch=8, num_res_blocks=1))
    cache_latents(
        str(tmp_path / "imgs"), str(tmp_path / "cache"), "", image_size=32, num_workers=0, vae=vae
    )
    sets = [
        f"data.data_dir={json.dumps(str(tmp_path / 'cache'))}",
        f"data.vae_path={json.dumps(str(tiny_vae_ckpt))}",
        "train.epochs=3",
        "data.num_workers=1",  # the flips must not depend on worker processes' random state
    ]
    cfg = apply_overrides(preset("tiny_kl16"), sets)
    full = train(cfg, tmp_path / "a", d=Dist(), progress=False)
    assert full["final_step"] == 9
    part = apply_overrides(cfg, ["train.max_steps=4"])
    train(part, tmp_path / "b", d=Dist(), progress=False)
    resumed = train(cfg, tmp_path / "b", resume=tmp_path / "b", d=Dist(), progress=False)
    for a, b in zip(full["model"].parameters(), resumed["model"].parameters(), strict=True):
        assert torch.equal(a, b)


# -- FID --------------------------------------------------------------------------------------------------------
class _FeatureNet(torch.nn.Module):
    """A deterministic stand-in for the Inception network: 16 features per image."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(16, 3 * 8 * 8, generator=g)

    def forward(self, x):
        return torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1) @ self.w.T


def _pngs(folder: Path, n: int, seed: int):
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            folder / f"{i:03d}.png"
        )


def test_fid_falls_back_when_torch_fidelity_rejects_the_statistics_file(tmp_path, monkeypatch):
    calls = []

    def calculate_metrics(**kw):
        calls.append(kw)
        raise ValueError(
            "Input descriptor 'input2' is not specified"
        )  # upstream torch-fidelity 0.3

    monkeypatch.setitem(
        sys.modules, "torch_fidelity", types.SimpleNamespace(calculate_metrics=calculate_metrics)
    )
    monkeypatch.setattr(
        "importlib.util.find_spec", lambda name, *a: object() if name == "torch_fidelity" else None
    )
    net = _FeatureNet()
    monkeypatch.setattr("reference.ear.metrics.inception_network", lambda device="cpu": net)
    _pngs(tmp_path / "gen", 40, 0)
    _pngs(tmp_path / "ref", 40, 1)
    from reference.ear.metrics import reference_batch_npz

    reference_batch_npz(tmp_path / "ref", tmp_path / "ref.npz", net)
    out = folder_fid(str(tmp_path / "gen"), str(tmp_path / "ref.npz"))
    assert calls and out["protocol"].startswith("fallback")

    # an independent FID: features by hand (TF1 resize written as a loop), scipy's sqrtm
    def feats(folder):
        from PIL import Image

        rows = []
        for f in sorted(folder.iterdir()):
            x = (
                torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1).double()
                / 255
            )
            idx = [min(int(np.floor(i * 32 / 299)), 31) for i in range(299)]
            hi = [min(i + 1, 31) for i in idx]
            fr = torch.tensor([i * 32 / 299 - np.floor(i * 32 / 299) for i in range(299)])
            y = x[:, idx] * (1 - fr)[None, :, None] + x[:, hi] * fr[None, :, None]
            y = y[:, :, idx] * (1 - fr) + y[:, :, hi] * fr
            rows.append(net(y[None].float() * 2 - 1).double()[0].numpy())
        return np.stack(rows)

    fg, fr_ = feats(tmp_path / "gen"), feats(tmp_path / "ref")
    mu1, mu2 = fg.mean(0), fr_.mean(0)
    s1, s2 = np.cov(fg, rowvar=False), np.cov(fr_, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    want = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    assert out["frechet_inception_distance"] == pytest.approx(want, rel=1e-4)
    with np.load(tmp_path / "ref.npz") as ref:
        assert ref["arr_0"].shape == (40, 32, 32, 3) and ref["arr_0"].dtype == np.uint8
        np.testing.assert_allclose(ref["mu"], mu2, rtol=1e-4, atol=1e-6)
    assert 0 <= out["precision"] <= 1 and 0 <= out["recall"] <= 1


def test_tf1_resize_matches_its_definition():
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    y = resize_bilinear_tf1(x, 11)
    for i in range(11):
        for j in range(11):
            si, sj = i * 5 / 11, j * 7 / 11
            i0, j0 = int(np.floor(si)), int(np.floor(sj))
            i1, j1 = min(i0 + 1, 4), min(j0 + 1, 6)
            a, b = si - i0, sj - j0
            v = (
                (1 - a) * (1 - b) * x[..., i0, j0]
                + (1 - a) * b * x[..., i0, j1]
                + a * (1 - b) * x[..., i1, j0]
                + a * b * x[..., i1, j1]
            )
            torch.testing.assert_close(y[..., i, j], v)
    assert not torch.allclose(
        y, torch.nn.functional.interpolate(x, size=(11, 11), mode="bilinear", align_corners=False)
    )
