"""Classifier-free guidance for heads: mix hidden states, then call the head once."""

from __future__ import annotations

import torch

from scoringrules_torch._internal.checks import check_choice

__all__ = ["guide", "cfg_scale_schedule"]


def guide(
    z_cond: torch.Tensor, z_uncond: torch.Tensor, scale: float | torch.Tensor
) -> torch.Tensor:
    r"""Classifier-free guidance in hidden-state space: ``z_u + s (z_c - z_u)``.

    EAR applies guidance to the backbone's hidden states *before* its generator head and then draws one
    sample from the head (unlike MAR, which mixes the denoiser's epsilon predictions at every diffusion step).
    ``s = 1`` returns ``z_cond``; ``s > 1`` extrapolates away from the unconditional state.

    Args:
        z_cond: hidden states computed with the condition (e.g. the class embedding).
        z_uncond: hidden states computed with the null condition.
        scale: guidance scale ``s``, a number or a tensor broadcastable to ``z_cond`` (e.g. ``(B, 1, 1)`` for
            a per-sample scale).

    Shape:
        - z_cond, z_uncond: ``(*positions, cond_dim)`` (same shape)
        - output: same shape as ``z_cond``

    Returns:
        The guided hidden state, to pass to ``head.sample``.

    Examples:
        >>> import torch
        >>> zc, zu = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
        >>> guide(zc, zu, 3.0)
        tensor([3., 4.])

    References:
        Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022.
        Shao, Meng & Zhou, "Continuous Visual Autoregressive Generation via Score Maximization", ICML 2025.
    """
    if not isinstance(z_cond, torch.Tensor) or not isinstance(z_uncond, torch.Tensor):
        raise TypeError(
            f"z_cond and z_uncond must be tensors; got {type(z_cond).__name__} and "
            f"{type(z_uncond).__name__}"
        )
    if z_cond.shape != z_uncond.shape:
        raise ValueError(
            f"z_cond and z_uncond must have the same shape; got {tuple(z_cond.shape)} and "
            f"{tuple(z_uncond.shape)}"
        )
    return z_uncond + scale * (z_cond - z_uncond)


def cfg_scale_schedule(
    cfg: float, num_tokens: int, next_masked: int, *, schedule: str = "linear"
) -> float:
    r"""Guidance scale for one step of a masked-AR sampler (EAR/MAR's schedules).

    ``"linear"``: ``s = 1 + (cfg - 1) (num_tokens - next_masked) / num_tokens``, i.e. the guidance grows with
    the fraction of tokens that will have been generated after this step (it starts near 1 and, because the
    samplers clamp ``next_masked >= 1`` before the last step, tops out at ``1 + (cfg - 1)(N - 1)/N``).
    ``"constant"``: ``s = cfg``.

    Args:
        cfg: nominal guidance scale (EAR-B: 3.0).
        num_tokens: tokens per sequence ``N`` (256 for a 16x16 latent).
        next_masked: tokens still masked after this step, ``0 <= next_masked <= num_tokens``.
        schedule: ``"linear"`` (default) or ``"constant"``.

    Returns:
        The scale ``s`` for :func:`guide`.

    Examples:
        >>> cfg_scale_schedule(3.0, 256, 255)
        1.0078125
        >>> cfg_scale_schedule(3.0, 256, 1)
        2.9921875
        >>> cfg_scale_schedule(3.0, 256, 128, schedule="constant")
        3.0

    References:
        Li et al., "Autoregressive Image Generation without Vector Quantization", NeurIPS 2024 (MAR).
    """
    check_choice("schedule", schedule, ("linear", "constant"))
    if isinstance(num_tokens, bool) or not isinstance(num_tokens, int) or num_tokens < 1:
        raise ValueError(f"num_tokens must be a positive int; got {num_tokens!r}")
    if (
        isinstance(next_masked, bool)
        or not isinstance(next_masked, int)
        or not 0 <= next_masked <= num_tokens
    ):
        raise ValueError(
            f"next_masked must be an int in [0, num_tokens={num_tokens}]; got {next_masked!r}"
        )
    if schedule == "constant":
        return float(cfg)
    return 1.0 + (cfg - 1.0) * (num_tokens - next_masked) / num_tokens
