"""Functional interface: one function per score, ``score(prediction, target, *, ...)``.

All scores are negatively oriented (lower is better). Sample-based scores take samples with the sample axis first,
``(m, *batch, *event)``, and a target ``(*batch, *event)``.
"""

from .crps import CRPS_ESTIMATORS, crps_ensemble
from .energy import ENERGY_ESTIMATORS, EnergyScoreTerms, energy_score, energy_score_terms
from .kernel import KERNEL_ESTIMATORS, KERNELS, kernel_score
from .variogram import VARIOGRAM_ESTIMATORS, variogram_score

__all__ = [
    "CRPS_ESTIMATORS",
    "ENERGY_ESTIMATORS",
    "KERNELS",
    "KERNEL_ESTIMATORS",
    "VARIOGRAM_ESTIMATORS",
    "EnergyScoreTerms",
    "crps_ensemble",
    "energy_score",
    "energy_score_terms",
    "kernel_score",
    "variogram_score",
]
