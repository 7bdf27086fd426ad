"""Observation blocking shared by the pairwise engine and the variogram score (private).

On a CPU, blocks of about ``2**18`` elements stay in cache (callers with few passes per block may ask for more); on accelerators blocks only bound memory
(``2**26`` elements), so one block is the usual case. Under ``torch.compile`` there is one block: the compiler
fuses the elementwise work itself, and one block keeps the graph small.
"""

from __future__ import annotations

import torch

__all__ = ["blocks"]

BLOCK_ELEMENTS = 1 << 18
BLOCK_ELEMENTS_ACCELERATOR = 1 << 26


def blocks(b: int, size: int, device: torch.device, cpu_elements: int | None = None) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges over ``b`` observations, each needing ``size`` elements of work memory.

    ``cpu_elements`` overrides the CPU budget ``BLOCK_ELEMENTS`` (accelerators always use theirs).
    """
    if torch.compiler.is_compiling():
        return [(0, b)]
    cpu = BLOCK_ELEMENTS if cpu_elements is None else cpu_elements
    budget = cpu if device.type == "cpu" else BLOCK_ELEMENTS_ACCELERATOR
    step = max(1, budget // max(1, size))
    return [(start, min(b, start + step)) for start in range(0, b, step)]
