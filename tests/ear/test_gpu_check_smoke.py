"""``benchmarks/gpu_check.sh --smoke``: the GPU readiness script runs end to end on the CPU at tiny sizes."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke_runs_every_step_and_writes_its_results(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    res = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke", "--out", str(tmp_path),
         "--python", sys.executable],
        env=env, capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    summary = (tmp_path / "summary.md").read_text()
    for step in ("facts", "tests", "round_trip", "bench_ear", "scores", "train_ear_b"):
        assert f"- {step}: ok" in summary, summary
    assert json.loads((tmp_path / "scores.json").read_text())["ok"]
    train = json.loads((tmp_path / "train-ear-b.json").read_text())
    assert train["finite"] and train["loss_last"] < train["loss_first"]
    bench = json.loads((tmp_path / "bench_ear.json").read_text())
    assert bench["training"]["default"]["images_per_s"] > 0
    assert bench["sampling"]["implicit_seconds_per_image"] > 0
    assert "step 40" in (tmp_path / "round_trip.log").read_text()
