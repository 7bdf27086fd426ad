"""Functional interface: one function per score, ``score(prediction, target, *, ...)``.

All scores are negatively oriented (lower is better). Sample-based scores take samples with the sample axis first,
``(m, *batch, *event)``, and a target ``(*batch, *event)``.
"""

from .crps_closed import Logistic, crps, register_crps, registered_crps_types
from .crps_sample import CRPS_ESTIMATORS, crps_ensemble
from .energy import ENERGY_ESTIMATORS, EnergyScoreTerms, energy_score, energy_score_terms
from .hyvarinen import (
    HYVARINEN_METHODS,
    denoising_score_matching,
    hyvarinen_score,
    register_hyvarinen,
)
from .kernel import KERNEL_ESTIMATORS, KERNELS, kernel_score
from .log import gaussian_mixture, log_score, normal_mixture
from .variogram import VARIOGRAM_ESTIMATORS, variogram_score

__all__ = [
    "CRPS_ESTIMATORS",
    "ENERGY_ESTIMATORS",
    "HYVARINEN_METHODS",
    "KERNELS",
    "KERNEL_ESTIMATORS",
    "VARIOGRAM_ESTIMATORS",
    "EnergyScoreTerms",
    "Logistic",
    "crps",
    "crps_ensemble",
    "denoising_score_matching",
    "energy_score",
    "energy_score_terms",
    "gaussian_mixture",
    "hyvarinen_score",
    "kernel_score",
    "log_score",
    "normal_mixture",
    "register_crps",
    "register_hyvarinen",
    "registered_crps_types",
    "variogram_score",
]
