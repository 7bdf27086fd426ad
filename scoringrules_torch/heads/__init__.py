"""Predictive heads for continuous autoregressive models, all with one protocol.

The protocol is described on the Architecture page of the docs ("Conventions for heads").

- :class:`ImplicitGeneratorHead` — EAR's noise-modulated MLP generator, trained by a sample-based score
  (energy by default);
- :class:`GaussianHead` — diagonal Gaussian, trained by the log score, closed-form CRPS or the energy score;
- :class:`GaussianMixtureHead` — mixture of diagonal Gaussians (GIVT-like), trained by the log score;
- :class:`DiffusionHead` — MAR-like per-token diffusion, trained by denoising score matching;
- :func:`guide`, :func:`cfg_scale_schedule` — classifier-free guidance on hidden states.
"""

from scoringrules_torch.heads.base import ExplicitHead, PredictiveHead
from scoringrules_torch.heads.diffusion import DiffusionHead
from scoringrules_torch.heads.gaussian import GaussianHead
from scoringrules_torch.heads.guidance import cfg_scale_schedule, guide
from scoringrules_torch.heads.implicit import ImplicitGeneratorHead, ScoreTerms
from scoringrules_torch.heads.mixture import GaussianMixtureHead

__all__ = [
    "PredictiveHead",
    "ExplicitHead",
    "ImplicitGeneratorHead",
    "ScoreTerms",
    "GaussianHead",
    "GaussianMixtureHead",
    "DiffusionHead",
    "guide",
    "cfg_scale_schedule",
]
