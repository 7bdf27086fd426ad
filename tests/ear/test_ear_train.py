"""Trainer: learning on digits, checkpoints, exact resume, non-finite steps, 2-process gloo DDP."""

import csv
import os
import time
from pathlib import Path

import pytest
import torch

from reference.ear import model as ear_model
from reference.ear.checkpoint import load_checkpoint
from reference.ear.configs import RunConfig, apply_overrides, preset
from reference.ear.distributed import Dist
from reference.ear.trainer import lr_at, train

ROOT = Path(__file__).resolve().parents[2]


def _tiny(*sets):
    return apply_overrides(preset("tiny"), list(sets))


def _losses(run_dir):
    with open(Path(run_dir) / "log.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def test_tiny_preset_learns_on_digits(tmp_path):
    cfg = _tiny("train.max_steps=40", "train.log_every=1", "train.sample_every=20")
    out = train(cfg, tmp_path, d=Dist(), progress=False)
    assert (tmp_path / "samples-step20.png").stat().st_size > 0
    losses = _losses(tmp_path)
    assert len(losses) == 40 and out["final_step"] == 40
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.9 * first, (first, last)
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_checkpoint_round_trip_is_weights_only_and_atomic(tmp_path):
    cfg = _tiny("train.max_steps=3")
    out = train(cfg, tmp_path, d=Dist(), progress=False)
    payload = torch.load(tmp_path / "checkpoint-last.pt", map_location="cpu", weights_only=True)
    assert {"model", "ema", "optimizer", "step", "rng", "config_json"} <= set(payload)
    assert payload["step"] == 3
    assert RunConfig.from_json(payload["config_json"]) == cfg
    assert RunConfig.from_json((tmp_path / "config.json").read_text()) == cfg
    assert not [
        p for p in os.listdir(tmp_path) if ".tmp" in p
    ]  # the temporary file was renamed away
    model = ear_model.build_model(cfg.model)
    model.load_state_dict(payload["model"])
    for n, p in out["model"].named_parameters():
        assert torch.equal(p, model.state_dict()[n])
        assert torch.equal(out["ema"][n], payload["ema"][n])
    p2, c2 = load_checkpoint(tmp_path)
    assert c2 == cfg and p2["step"] == 3


def test_resume_continues_exactly(tmp_path):
    # dropout, class dropout, random masks, flips and the head's noise all draw random numbers
    sets = ("data.flip=true", "train.log_every=1", "train.ckpt_every=1000")
    full = train(_tiny(*sets, "train.max_steps=9"), tmp_path / "a", d=Dist(), progress=False)
    train(_tiny(*sets, "train.max_steps=4"), tmp_path / "b", d=Dist(), progress=False)
    resumed = train(
        _tiny(*sets, "train.max_steps=9"),
        tmp_path / "b",
        resume=tmp_path / "b",
        d=Dist(),
        progress=False,
    )
    assert resumed["final_step"] == 9
    for (n, a), (_, b) in zip(
        full["model"].named_parameters(), resumed["model"].named_parameters(), strict=True
    ):
        assert torch.equal(a, b), n
        assert torch.equal(full["ema"][n], resumed["ema"][n]), n
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    # and a different seed does not give the same parameters (the comparison can fail)
    other = train(
        _tiny(*sets, "train.max_steps=9", "train.seed=5"), tmp_path / "c", d=Dist(), progress=False
    )
    assert not torch.equal(next(other["model"].parameters()), next(full["model"].parameters()))


def test_non_finite_loss_skips_the_step_and_many_in_a_row_abort(tmp_path, monkeypatch):
    original = ear_model.EAR.forward
    calls = {"n": 0}

    def flaky(self, tokens, labels):
        calls["n"] += 1
        loss = original(self, tokens, labels)
        return loss * float("nan") if calls["n"] in (2, 3) else loss

    monkeypatch.setattr(ear_model.EAR, "forward", flaky)
    out = train(_tiny("train.max_steps=6"), tmp_path / "a", d=Dist(), progress=False)
    assert out["skipped_steps"] == 2
    assert all(torch.isfinite(p).all() for p in out["model"].parameters())

    monkeypatch.setattr(
        ear_model.EAR, "forward", lambda self, t, y: original(self, t, y) * float("inf")
    )
    with pytest.raises(RuntimeError, match="3 consecutive steps had a non-finite loss"):
        train(
            _tiny("train.max_steps=6", "train.max_consecutive_nonfinite=3"),
            tmp_path / "b",
            d=Dist(),
            progress=False,
        )


def test_lr_schedule_warmup_then_constant_or_cosine():
    kw = dict(lr=1.0, warmup_steps=4, total_steps=10, min_lr=0.0)
    assert [lr_at(s, schedule="constant", **kw) for s in range(6)] == [
        0.25,
        0.5,
        0.75,
        1.0,
        1.0,
        1.0,
    ]
    cos = [lr_at(s, schedule="cosine", **kw) for s in range(4, 10)]
    assert cos[0] == 1.0 and all(b < a for a, b in zip(cos, cos[1:], strict=False))


def test_two_process_gloo_ddp_keeps_parameters_in_sync(tmp_path, run_ddp_tiny):
    run_ddp_tiny(tmp_path)
    p0 = torch.load(tmp_path / "params-rank0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "params-rank1.pt", weights_only=True)
    init = ear_model.build_model(
        preset("tiny").model
    )  # same seed-independent shapes; values must have moved
    moved = 0
    for n in p0:
        assert torch.equal(p0[n], p1[n]), n
        moved += int(not torch.equal(p0[n], init.state_dict()[n]))
    assert moved > 0
    payload = torch.load(tmp_path / "checkpoint-last.pt", weights_only=True)
    assert payload["step"] == 6 and len(payload["rng"]) == 2
    assert not torch.equal(
        payload["rng"][0]["torch"], payload["rng"][1]["torch"]
    )  # ranks draw different masks


def test_sample_cli_writes_grid_npz_and_pngs_from_the_ema_weights(tmp_path):
    import json

    import numpy as np

    from reference.ear import sample

    train(_tiny("train.max_steps=2"), tmp_path, d=Dist(), progress=False)
    sample.main(
        [
            "--ckpt",
            str(tmp_path),
            "--num-images",
            "20",
            "--batch-size",
            "8",
            "--cfg",
            "1.5",
            "--png-folder",
            str(tmp_path / "pngs"),
            "--device",
            "cpu",
        ]
    )
    tag = "cfg1.5-t1-it4"
    with np.load(tmp_path / f"samples-{tag}.npz") as d:
        assert d["images"].shape == (20, 1, 8, 8) and d["images"].dtype == np.uint8
        assert d["labels"].tolist() == [c for c in range(10) for _ in range(2)]
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 20
    info = json.loads((tmp_path / f"samples-{tag}.json").read_text())
    assert info["ema"] and info["cfg"] == 1.5 and info["seconds_per_image"] > 0
    with pytest.raises(ValueError, match="divisible"):
        sample.main(["--ckpt", str(tmp_path), "--num-images", "15", "--device", "cpu"])


def test_auto_threads_leave_busy_cores_alone(monkeypatch):
    from reference.ear import distributed as train_mod

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(train_mod.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(
        train_mod, "busy_cores", lambda: 1.3
    )  # another process on one core right now
    train_mod.set_cpu_threads("auto")
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(train_mod, "busy_cores", lambda: 0.05)
    train_mod.set_cpu_threads("auto")
    assert torch.get_num_threads() == 2
    monkeypatch.setattr(
        train_mod, "busy_cores", lambda: None
    )  # no /proc/stat: the load average decides
    monkeypatch.setattr(train_mod.os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    train_mod.set_cpu_threads("auto")
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(train_mod.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    train_mod.set_cpu_threads("auto")
    assert torch.get_num_threads() == 2
    train_mod.set_cpu_threads("3")
    assert torch.get_num_threads() == 3


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc/stat")
def test_busy_cores_sees_a_busy_process():
    import multiprocessing as mp

    from reference.ear import distributed as train_mod

    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    proc = ctx.Process(target=_spin, args=(stop,))
    proc.start()
    try:
        time.sleep(0.5)
        busy = train_mod.busy_cores(interval=1.0)
    finally:
        stop.set()
        proc.join()
    assert busy is not None and 0.7 <= busy <= os.cpu_count()


def _spin(stop) -> None:
    while not stop.is_set():
        pass


def test_stage2_preset_and_explicit_preset_on_resume(tmp_path):
    from reference.ear.train import make_config, parse_args

    s1, s2 = preset("ear_b"), preset("ear_b_stage2")
    assert (s2.train.epochs, s2.train.blr, s2.model.train_temperature) == (800, 7e-5, 0.99)
    assert s2.model == apply_overrides(s1, ["model.train_temperature=0.99"]).model
    global_batch = 32 * 32 * 2  # the paper's layout: 32 per GPU x 32 GPUs x 2 accumulation steps
    assert s2.train.blr * global_batch / 256 == pytest.approx(5.6e-4)
    assert s1.train.blr * global_batch / 256 == pytest.approx(8e-4)
    with torch.device("meta"):
        assert ear_model.build_model(s2.model).head.train_temperature == 0.99
    train(_tiny("train.max_steps=2", "train.lr=0.005"), tmp_path, d=Dist(), progress=False)
    resumed = make_config(parse_args(["--resume", str(tmp_path)]))
    assert resumed.train.lr == 0.005  # the checkpoint's config
    replaced = make_config(
        parse_args(["--resume", str(tmp_path), "--preset", "tiny", "--set", "train.epochs=2"])
    )
    assert replaced.train.lr == preset("tiny").train.lr and replaced.train.epochs == 2
