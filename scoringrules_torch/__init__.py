"""scoringrules_torch: strictly proper scoring rules as PyTorch losses.

The score Modules live at the top level; the functional interface in :mod:`scoringrules_torch.functional`,
predictive heads in :mod:`scoringrules_torch.heads`, the propriety-testing harness in
:mod:`scoringrules_torch.testing`.
"""

from . import distributions, functional, heads, testing
from ._internal.distributed import scale_grad_for_ddp
from .scores import (
    CRPS,
    BrierScore,
    EnergyScore,
    HyvarinenScore,
    IntervalScore,
    KernelScore,
    LogScore,
    QuantileScore,
    RankedProbabilityScore,
    SphericalScore,
    VariogramScore,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "CRPS",
    "BrierScore",
    "EnergyScore",
    "HyvarinenScore",
    "IntervalScore",
    "KernelScore",
    "LogScore",
    "QuantileScore",
    "RankedProbabilityScore",
    "SphericalScore",
    "VariogramScore",
    "distributions",
    "functional",
    "scale_grad_for_ddp",
    "heads",
    "testing",
    "__version__",
]
