"""The one command end to end on a tiny text (seconds), its outputs, and its clear errors."""

import json
import subprocess
import sys

import pytest
import torch
from calm_support import one_thread_fixture, tiny_text_fixture  # noqa: F401 (fixtures)

from reference.calm.configs import RunConfig, apply_overrides, preset
from reference.calm.run import ROOT_HINT, load_checkpoint, main


def test_time_cap_reports_fraction(tiny_text, tmp_path):
    res = main(["--preset", "tiny", "--text", str(tiny_text), "--out", str(tmp_path / "r"),
                "--set", "train.lm_flops=1e12", "--set", "train.lm_minutes=0.002"])
    assert 0.0 < res["baseline"]["fraction_completed"] < 1.0
    assert res["baseline"]["train_flops"] < 1e12


def test_command_line_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        main(["--preset", "tiny", "--text", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "r")])
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ValueError, match="unknown field 'widht'"):
        apply_overrides(preset("tiny"), ["model.widht=3"])
    with pytest.raises(ValueError, match="section.field=value"):
        apply_overrides(preset("tiny"), ["width=3"])
    with pytest.raises(TypeError, match="model.width must be int"):
        apply_overrides(preset("tiny"), ["model.width=\"wide\""])
    with pytest.raises(ValueError, match="multiple of model.chunk"):
        apply_overrides(preset("tiny"), ["model.context=18"])
    with pytest.raises(ValueError, match="form 1/n"):
        apply_overrides(preset("tiny"), ["eval.temperatures=[1.0, 0.4]"])
    short = tmp_path / "short.txt"
    short.write_text("a b\nc d\n")
    with pytest.raises(ValueError, match="too few|fewer than one evaluation block"):
        main(["--preset", "tiny", "--text", str(short), "--out", str(tmp_path / "s")])


def test_run_end_to_end_by_path_on_tiny_text(tiny_text, tmp_path):
    """`python reference/calm/run.py --text ...` from another directory: every output, equal FLOP budgets."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(ROOT_HINT / "reference" / "calm" / "run.py"), "--preset", "tiny", "--text",
         str(tiny_text), "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| BrierLM |" in proc.stdout
    for name in ("results.json", "results.md", "config.json", "tokenizer.json", "autoencoder.pt", "calm.pt",
                 "baseline.pt"):
        assert (out / name).is_file(), name
    res = json.loads((out / "results.json").read_text())
    budget = res["config"]["train"]["lm_flops"]
    for name in ("calm", "baseline"):
        r = res[name]
        assert len(r["brier_n"]) == 4 and 0.0 <= r["brierlm"] <= 100.0
        assert r["fraction_completed"] == 1.0 and r["steps"] == r["planned_steps"]
        # equal budgets: each model's FLOPs are within one step below the budget
        assert r["train_flops"] <= budget < r["train_flops"] + r["flops_per_step"]
    assert res["baseline"]["heldout_perplexity"] > 1.0
    assert 0.0 <= res["autoencoder"]["heldout_token_accuracy"] <= 1.0
    assert {"calm_T1", "calm_T0.5", "baseline_T1", "baseline_T0.5"} <= set(res["samples"])
    assert RunConfig.from_dict(json.loads((out / "config.json").read_text())).data.source == "text"
    ckpt = load_checkpoint(out / "calm.pt")
    assert isinstance(ckpt["model"]["head.final.linear.weight"], torch.Tensor)
    assert "| BrierLM |" in (out / "results.md").read_text()


@pytest.mark.parametrize(
    "override,match",
    [
        ("train.threads=0", "train.threads must be >= 1"),
        ("model.depth=0", "model.depth must be >= 1"),
        ("eval.prompt_tokens=3", "multiple of model.chunk"),
        ("train.lm_flops=0", "lm_flops"),
        ("data.source=\"wiki\"", "'kjv' or 'text'"),
        ("model.num_samples=1", "num_samples must be >= 2"),
        ("model.chunk=2", "model.chunk must be >= 4"),
    ],
)
def test_config_values_are_checked(override, match):
    with pytest.raises(ValueError, match=match):
        apply_overrides(preset("tiny"), [override])
