"""The benchmark script runs end to end at tiny sizes and reports every peer it knows about."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_scores_quick_runs_and_reports_ratios(tmp_path):
    out = tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_scores.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    for peer in ("properscoring", "scoringrules torch", "torch.cdist", "ours [fair, float32]", "ours [fair, float64]"):
        assert peer in text
    assert "Ratios" in text and "faster" in text
    # like with like: every ratio pairs a peer with our row of the same estimator and dtype
    ratio_lines = [line for line in text.splitlines() if line.startswith("- ") and " vs ours [" in line]
    assert len(ratio_lines) >= 8
    for line in ratio_lines:
        peer_tag = line.split(": ", 1)[1].split(" vs ours ")[0].rsplit("[", 1)[1].split("]")[0]
        ours_tag = line.split(" vs ours [", 1)[1].split("]")[0]
        assert peer_tag == ours_tag, line
    import json

    rows = json.loads((tmp_path / "r.json").read_text())
    assert all({"case", "impl", "estimator", "dtype", "fwd"} <= set(r) for r in rows)
    assert any(r["impl"].startswith("ours") and r["dtype"] == "float64" for r in rows)


def test_bench_ear_tiny_measures_every_variant_and_both_heads(tmp_path):
    import json

    out, js = tmp_path / "ear.md", tmp_path / "ear.json"
    proc = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "bench_ear.py"), "--size", "tiny", "--threads", "1",
            "--variants", "plain,default", "--steps", "2", "--warmup", "1", "--sample-images", "4",
            "--num-iter", "2", "--diffusion-steps", "5", "--matmul-n", "256", "--output", str(out),
            "--json", str(js),
        ],
        capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(js.read_text())
    plain, default = res["training"]["plain"], res["training"]["default"]
    for r in (plain, default):
        assert r["model_flops_per_step"] > 0 and r["images_per_s"] > 0
        assert abs(r["mfu"] - r["model_flops_per_s"] / r["peak_flops_used"]) < 1e-12
        assert r["tokens_per_s"] == r["images_per_s"] * 4  # the tiny preset has 4 tokens per image
    # the plain path runs the head on every position, the default only on the masked ones (same masks; with
    # 4 tokens a step often masks all of them, so the counts may tie)
    assert plain["model_flops_per_step"] >= default["model_flops_per_step"]
    s = res["sampling"]
    assert s["latency_ratio"] == s["diffusion_seconds_per_image"] / s["implicit_seconds_per_image"]
    assert "| plain |" in out.read_text() and "head only" in out.read_text()
