"""Functional interface: one function per score, ``score(prediction, target, *, ...)``.

All scores are negatively oriented (lower is better). Sample-based scores take samples with the sample axis first,
``(m, *batch, *event)``, and a target ``(*batch, *event)``.
"""

from .categorical import (
    brier_score,
    brier_score_from_logits,
    categorical_log_score,
    rls_score,
    rps_score,
    spherical_score,
    spherical_score_from_logits,
)
from .crps_closed import Logistic, crps, register_crps, registered_crps_types
from .crps_sample import CRPS_ESTIMATORS, crps_ensemble
from .dss import dss_ensemble, dss_ensemble_mv, dss_moments, dss_moments_mv, error_spread_score
from .energy import ENERGY_ESTIMATORS, EnergyScoreTerms, energy_score, energy_score_terms
from .ensemble_log import clogs_ensemble, logs_ensemble, silverman_bandwidth
from .hyvarinen import (
    HYVARINEN_METHODS,
    denoising_score_matching,
    hyvarinen_score,
    register_hyvarinen,
)
from .kernel import KERNEL_ESTIMATORS, KERNELS, kernel_score
from .log import gaussian_mixture, log_score, normal_mixture
from .multi_target import (
    MULTI_TARGET_ESTIMATORS,
    multi_target_energy_score,
    multi_target_kernel_score,
)
from .quantile import crps_quantile, interval_score, quantile_score, weighted_interval_score
from .variogram import VARIOGRAM_ESTIMATORS, variogram_score
from .weighted import (
    owcrps_ensemble,
    owenergy_score,
    owkernel_score,
    owvariogram_score,
    twcrps_ensemble,
    twenergy_score,
    twkernel_score,
    twvariogram_score,
    vrcrps_ensemble,
    vrenergy_score,
    vrkernel_score,
    vrvariogram_score,
)

__all__ = [
    "CRPS_ESTIMATORS",
    "ENERGY_ESTIMATORS",
    "EnergyScoreTerms",
    "HYVARINEN_METHODS",
    "KERNELS",
    "KERNEL_ESTIMATORS",
    "MULTI_TARGET_ESTIMATORS",
    "Logistic",
    "VARIOGRAM_ESTIMATORS",
    "brier_score",
    "brier_score_from_logits",
    "categorical_log_score",
    "clogs_ensemble",
    "crps",
    "crps_ensemble",
    "crps_quantile",
    "denoising_score_matching",
    "dss_ensemble",
    "dss_ensemble_mv",
    "dss_moments",
    "dss_moments_mv",
    "energy_score",
    "energy_score_terms",
    "error_spread_score",
    "gaussian_mixture",
    "hyvarinen_score",
    "interval_score",
    "kernel_score",
    "log_score",
    "multi_target_energy_score",
    "multi_target_kernel_score",
    "logs_ensemble",
    "normal_mixture",
    "owcrps_ensemble",
    "owenergy_score",
    "owkernel_score",
    "owvariogram_score",
    "quantile_score",
    "register_crps",
    "register_hyvarinen",
    "registered_crps_types",
    "rls_score",
    "rps_score",
    "silverman_bandwidth",
    "spherical_score",
    "spherical_score_from_logits",
    "twcrps_ensemble",
    "twenergy_score",
    "twkernel_score",
    "twvariogram_score",
    "variogram_score",
    "vrcrps_ensemble",
    "vrenergy_score",
    "vrkernel_score",
    "vrvariogram_score",
    "weighted_interval_score",
]
