"""The trainer never says less than the truth: faults injected into checkpoints, logs, weights, data, configs."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from reference.ear import checkpoint as ckpt_mod
from reference.ear.checkpoint import keep_copy, load_checkpoint, remove_orphans
from reference.ear.configs import apply_overrides, preset
from reference.ear.data import StepBatches, TrainData
from reference.ear.distributed import Dist
from reference.ear.trainer import train


def _tiny(*sets):
    return apply_overrides(preset("tiny"), list(sets))


def _log(run_dir):
    with open(Path(run_dir) / "log.csv") as f:
        return list(csv.DictReader(f))


def _params_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


# -- configs -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "error", "words"),
    [
        ("train.batch_size=abc", TypeError, "train.batch_size must be an integer; got 'abc'"),
        ("train.batch_size=2.5", TypeError, "train.batch_size"),
        ("train.log_every=0", ValueError, "train.log_every must be >= 1; got 0"),
        ("train.ema_rate=2", ValueError, "train.ema_rate must be in [0, 1)"),
        ('train.lr_schedule="cosin"', ValueError, "train.lr_schedule must be one of"),
        ("train.betas=[0.9]", TypeError, "train.betas"),
        ("train.betas=[0.9, 1.5]", ValueError, "train.betas"),
        ("train.epochs=true", TypeError, "train.epochs"),
        ("train.grad_clip=-1", ValueError, "train.grad_clip"),
        ("model.beta=2.5", ValueError, "model.beta must be in (0, 2]"),
        ("model.label_drop_prob=1", ValueError, "model.label_drop_prob"),
        ('model.head="mlp"', ValueError, "model.head must be one of"),
        ("model.num_heads=3", ValueError, "divisible by model.num_heads"),
        ("sample.temperature=0", ValueError, "sample.temperature must be > 0"),
        ("data.num_workers=-1", ValueError, "data.num_workers"),
        ("eval.num_images=null", TypeError, "eval.num_images"),
        ("train.max_train_minutes=nan", TypeError, "train.max_train_minutes"),
    ],
)
def test_every_bad_override_is_refused_when_the_config_is_built(override, error, words):
    with pytest.raises(error) as e:
        apply_overrides(preset("tiny"), [override])
    assert words in str(e.value)


def test_good_overrides_are_kept_and_the_command_line_reports_bad_ones():
    from reference.ear.train import main

    c = apply_overrides(
        preset("tiny"), ["train.lr=null", "train.epochs=2", 'train.compile="eager"']
    )
    assert c.train.lr is None and c.train.epochs == 2.0 and c.train.compile == "eager"
    with pytest.raises(SystemExit, match="train.log_every must be >= 1"):
        main(["--preset", "tiny", "--set", "train.log_every=0", "--no-progress"])


# -- checkpoints and logs ---------------------------------------------------------------------------------------
def test_kept_copies_are_atomic_and_orphans_are_removed_at_start(tmp_path, monkeypatch):
    out = train(
        _tiny("train.max_steps=4", "train.keep_every=2"), tmp_path, d=Dist(), progress=False
    )
    assert out["final_step"] == 4
    kept = tmp_path / "checkpoint-step2.pt"
    assert load_checkpoint(kept)[0]["step"] == 2
    before = kept.read_bytes()
    # a copy killed half-way leaves the kept file as it was, and a temporary behind
    real = shutil.copyfileobj

    def dies_half_way(fi, fo, length=0):
        fo.write(fi.read(1000))
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(ckpt_mod.shutil, "copyfileobj", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        keep_copy(tmp_path / "checkpoint-last.pt", kept)
    monkeypatch.setattr(ckpt_mod.shutil, "copyfileobj", real)
    assert kept.read_bytes() == before
    orphans = [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert len(orphans) == 1 and orphans[0].stat().st_size == 1000
    (tmp_path / "checkpoint-last.pt.tmp-4242").write_bytes(b"x" * 10)  # a killed save
    train(
        _tiny("train.max_steps=6", "train.keep_every=2"),
        tmp_path,
        resume=tmp_path,
        d=Dist(),
        progress=False,
    )
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert load_checkpoint(tmp_path / "checkpoint-step6.pt")[0]["step"] == 6
    assert remove_orphans(tmp_path) == []


def test_resume_from_an_earlier_checkpoint_writes_no_duplicate_log_rows(tmp_path):
    sets = ("train.log_every=1", "train.keep_every=3", "train.ckpt_every=1000")
    full = train(_tiny(*sets, "train.max_steps=8"), tmp_path / "a", d=Dist(), progress=False)
    # a run that logged up to step 6 but whose newest usable checkpoint is step 3 (a crash after step 6)
    train(_tiny(*sets, "train.max_steps=6"), tmp_path / "b", d=Dist(), progress=False)
    resumed = train(
        _tiny(*sets, "train.max_steps=8"),
        tmp_path / "b",
        resume=tmp_path / "b" / "checkpoint-step3.pt",
        d=Dist(),
        progress=False,
    )
    rows = _log(tmp_path / "b")
    assert [int(r["step"]) for r in rows] == list(range(1, 9))
    assert [r["loss"] for r in rows] == [r["loss"] for r in _log(tmp_path / "a")]
    assert _params_equal(full["model"], resumed["model"])


def test_non_finite_weights_are_never_checkpointed_and_the_abort_names_a_finite_checkpoint(
    tmp_path, monkeypatch
):
    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def poisoned(self, *a, **k):  # the third update turns the weights into NaN (finite gradients)
        out = real_step(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 3:
            with torch.no_grad():
                for g in self.param_groups:
                    for p in g["params"]:
                        p.fill_(float("nan"))
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", poisoned)
    cfg = _tiny("train.max_steps=20", "train.ckpt_every=2", "train.max_consecutive_nonfinite=4")
    with pytest.raises(RuntimeError, match="4 consecutive steps had a non-finite") as e:
        train(cfg, tmp_path, d=Dist(), progress=False)
    named = tmp_path / "checkpoint-last.pt"
    assert str(named) in str(e.value)
    payload, _ = load_checkpoint(named)
    assert (
        payload["step"] == 2
    )  # the step-4 and step-6 checkpoints would have held NaN: not written
    for part in ("model", "ema"):
        assert all(torch.isfinite(t).all() for t in payload[part].values())


def test_cosine_schedule_split_across_max_steps_runs_equals_one_run(tmp_path):
    sets = ('train.lr_schedule="cosine"', "train.epochs=0.3", "train.log_every=1")
    one = train(_tiny(*sets), tmp_path / "one", d=Dist(), progress=False)
    assert one["final_step"] == 17  # ceil(0.3 * 1797 // 32)
    train(_tiny(*sets, "train.max_steps=7"), tmp_path / "two", d=Dist(), progress=False)
    two = train(_tiny(*sets), tmp_path / "two", resume=tmp_path / "two", d=Dist(), progress=False)
    assert _params_equal(one["model"], two["model"])
    lrs = [float(r["lr"]) for r in _log(tmp_path / "two")]
    assert lrs == [float(r["lr"]) for r in _log(tmp_path / "one")] and lrs[-1] < 0.05 * max(lrs)


def test_checkpoint_checksum_is_written_and_verified_on_load(tmp_path):
    train(_tiny("train.max_steps=2", "train.checksum=true"), tmp_path, d=Dist(), progress=False)
    side = tmp_path / "checkpoint-last.pt.sha256"
    assert side.read_text().strip() == ckpt_mod.file_sha256(tmp_path / "checkpoint-last.pt")
    assert load_checkpoint(tmp_path)[0]["step"] == 2
    data = bytearray((tmp_path / "checkpoint-last.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside a tensor
    (tmp_path / "checkpoint-last.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its checksum"):
        load_checkpoint(tmp_path)


# -- the VAE, labels and unreadable data --------------------------------------------------------------------------
def test_vae_loading_is_strict_by_default(tmp_path, small_vae):
    from reference.ear.tokenizer import load_vae

    empty = tmp_path / "empty.ckpt"
    torch.save({"model": {}}, empty)
    with pytest.raises(ValueError, match="none of the VAE's"):
        load_vae(empty, small_vae())
    with pytest.raises(ValueError, match="none of the VAE's"):
        load_vae(empty, small_vae(), strict=False)
    state = dict(small_vae().state_dict())
    state.pop("decoder.conv_out.weight")
    partial = tmp_path / "partial.ckpt"
    torch.save({"model": state}, partial)
    with pytest.raises(KeyError, match="decoder.conv_out.weight"):
        load_vae(partial, small_vae())
    with pytest.warns(UserWarning, match="missing"):
        load_vae(partial, small_vae(), strict=False)


def test_labels_outside_the_class_range_fail_before_training(tmp_path):
    cfg = _tiny("model.num_classes=5")
    with pytest.raises(ValueError, match=r"labels in \[0, 9\] but model.num_classes=5"):
        train(cfg, tmp_path, d=Dist(), progress=False)


def _folder_config(root, vae, *sets):
    return apply_overrides(
        preset("tiny_kl16"),
        [
            'data.dataset="imagenet"',
            f"data.data_dir={json.dumps(str(root))}",
            f"data.vae_path={json.dumps(str(vae))}",
            "data.flip=false",
            *sets,
        ],
    )


def test_unreadable_items_are_counted_in_the_log_the_summary_and_metrics_json(
    tmp_path, imagenet_folder, tiny_vae_ckpt, capsys
):
    from reference.ear.train import main

    bad = imagenet_folder(tmp_path / "imgs", per_class=4, classes=3, corrupt=1)
    cfg = _folder_config(tmp_path / "imgs", tiny_vae_ckpt, "train.max_steps=9", "train.epochs=3")
    (tmp_path / "cfg.json").write_text(cfg.to_json())
    run = tmp_path / "run"
    try:
        with pytest.warns(UserWarning, match="broken0.JPEG: cannot decode the image"):
            result = main(
                ["--config", str(tmp_path / "cfg.json"), "--run-dir", str(run), "--no-progress"]
            )
    finally:
        torch.set_flush_denormal(
            False
        )  # main() turns it on for CPU runs; the suite runs without it
    # the corrupt file's index, counted independently from the batch order
    data = TrainData(cfg, Dist())
    bad_index = [i for i, (p, _) in enumerate(data.dataset.items) if Path(p) == bad[0]][0]
    batches = StepBatches(13, batch_size=4, world_size=1, rank=0, accumulation_steps=1, seed=0)
    it = batches.iterate(0)
    expected = sum(int((next(it)[1][0] == bad_index).sum()) for _ in range(9))
    assert expected > 0
    assert result["skipped_items"] == expected
    assert int(_log(run)[-1]["skipped_items"]) == expected
    assert json.loads((run / "metrics.json").read_text())["skipped_items"] == expected
    assert f"{expected} unreadable data items skipped" in capsys.readouterr().out


def test_a_run_without_readable_data_fails_with_a_clear_error(
    tmp_path, imagenet_folder, tiny_vae_ckpt
):
    root = tmp_path / "imgs"
    imagenet_folder(root, per_class=0, classes=2, corrupt=8)
    cfg = _folder_config(root, tiny_vae_ckpt)
    with pytest.warns(UserWarning, match="cannot decode"):
        with pytest.raises(RuntimeError, match="no usable training data: none of the 2 steps") as e:
            train(cfg, tmp_path / "run", d=Dist(), progress=False)
    assert "broken" in str(e.value) and "cannot decode the image" in str(e.value)
    cfg = _folder_config(root, tiny_vae_ckpt, "train.epochs=5", "train.max_consecutive_nonfinite=3")
    with pytest.warns(UserWarning, match="cannot decode"):
        with pytest.raises(RuntimeError, match="no usable training data: 3 consecutive steps"):
            train(cfg, tmp_path / "run2", d=Dist(), progress=False)
    assert not (tmp_path / "run" / "checkpoint-last.pt").exists()
