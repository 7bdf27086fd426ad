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
    for peer in ("properscoring", "scoringrules torch", "torch.cdist", "ours fair"):
        assert peer in text
    assert "Ratios" in text and "faster" in text
    assert (tmp_path / "r.json").exists()
