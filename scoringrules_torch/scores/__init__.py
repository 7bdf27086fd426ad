"""The score Modules: thin ``nn.Module`` wrappers, one file per family of scores.

Each ``forward`` is one call of the matching function of :mod:`scoringrules_torch.functional` with the settings
stored at construction (where they are validated).
"""

from .categorical import BrierScore, RankedProbabilityScore, SphericalScore
from .density import HyvarinenScore, LogScore
from .quantile import IntervalScore, QuantileScore
from .sample import CRPS, EnergyScore, KernelScore, VariogramScore

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
]
