"""Run by the EAR tests under torchrun: rank 1 sees fewer training items than rank 0.

Argument: an output folder; each rank writes ``rank<r>.txt`` with the error it raised (or ``no error``).
"""

import sys
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reference.ear.configs import apply_overrides, preset  # noqa: E402
from reference.ear.data import TrainData  # noqa: E402
from reference.ear.distributed import setup_distributed  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(1)
    d = setup_distributed("cpu")
    subset = 1000 if d.rank == 0 else 990  # e.g. a node whose copy of the data folder is incomplete
    config = apply_overrides(preset("tiny"), [f"data.subset={subset}"])
    try:
        TrainData(config, d)
        msg = "no error"
    except RuntimeError as e:
        msg = str(e)
    (Path(sys.argv[1]) / f"rank{d.rank}.txt").write_text(msg)
    torch.distributed.destroy_process_group()
