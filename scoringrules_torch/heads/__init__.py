"""Predictive heads for continuous autoregressive models, all with one protocol.

The protocol is :class:`PredictiveHead` (its docstring is the source of truth).

- :class:`ImplicitGeneratorHead` — EAR's noise-modulated MLP generator, trained by a sample-based score
  (energy by default);
- :class:`GaussianHead` — diagonal Gaussian, trained by the log score, closed-form CRPS or the energy score;
- :class:`GaussianMixtureHead` — mixture of diagonal Gaussians (GIVT-like), trained by the log score;
- :class:`DiffusionHead` — MAR-like per-token diffusion, trained by denoising score matching;
- :class:`DistributionalDiffusionHead` — few-step diffusion whose denoiser draws samples of the clean token,
  trained by the generalised energy score (De Bortoli et al. 2025);
- :func:`guide`, :func:`cfg_scale_schedule` — classifier-free guidance on hidden states;
- :func:`rollout`, :func:`score_trajectories`, :func:`interval_coverage` — autoregressive trajectories from
  any model and head, and their scores.
"""

from scoringrules_torch.heads.base import ExplicitHead, PredictiveHead
from scoringrules_torch.heads.diffusion import DiffusionHead
from scoringrules_torch.heads.distributional_diffusion import DistributionalDiffusionHead
from scoringrules_torch.heads.gaussian import GaussianHead
from scoringrules_torch.heads.guidance import cfg_scale_schedule, guide
from scoringrules_torch.heads.implicit import ImplicitGeneratorHead, ScoreTerms
from scoringrules_torch.heads.mixture import GaussianMixtureHead
from scoringrules_torch.heads.trajectories import (
    TrajectoryScores,
    interval_coverage,
    rollout,
    score_trajectories,
)

__all__ = [
    "PredictiveHead",
    "ExplicitHead",
    "ImplicitGeneratorHead",
    "ScoreTerms",
    "GaussianHead",
    "GaussianMixtureHead",
    "DiffusionHead",
    "DistributionalDiffusionHead",
    "guide",
    "cfg_scale_schedule",
    "rollout",
    "score_trajectories",
    "interval_coverage",
    "TrajectoryScores",
]
