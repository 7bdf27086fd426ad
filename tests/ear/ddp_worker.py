"""Run by the EAR tests under torchrun: train the tiny preset with DDP, save each rank's parameters.

Arguments: the run folder, then any number of extra ``section.field=value`` overrides.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reference.ear.train import main  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(1)
    run_dir = sys.argv[1]
    result = main(
        [
            "--preset",
            "tiny",
            "--run-dir",
            run_dir,
            "--no-progress",
            "--device",
            "cpu",
            "--set",
            "train.accumulation_steps=2",
            "--set",
            "train.batch_size=8",
            "--set",
            "train.max_steps=6",
            "--set",
            "train.log_every=1",
            "--no-eval",
            *[arg for item in sys.argv[2:] for arg in ("--set", item)],
        ]
    )
    rank = result["dist"].rank
    torch.save(
        {n: p.detach().clone() for n, p in result["model"].named_parameters()},
        Path(run_dir) / f"params-rank{rank}.pt",
    )
