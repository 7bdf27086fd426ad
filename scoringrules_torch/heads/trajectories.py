"""Autoregressive rollouts with any head, and scores for the trajectories they draw."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from scoringrules_torch._internal.checks import check_floating
from scoringrules_torch._internal.reduction import check_reduction
from scoringrules_torch.functional.crps_sample import crps_ensemble
from scoringrules_torch.functional.energy import energy_score
from scoringrules_torch.heads.base import PredictiveHead, check_int, check_optional_int, check_real

__all__ = ["rollout", "score_trajectories", "interval_coverage", "TrajectoryScores"]


def _step_temperatures(
    temperature: float | torch.Tensor | Sequence[float], horizon: int
) -> list[float | torch.Tensor]:
    if isinstance(temperature, torch.Tensor) and temperature.dim() == 0:
        return [temperature] * horizon
    if isinstance(temperature, torch.Tensor) or isinstance(temperature, (list, tuple)):
        if len(temperature) != horizon:
            raise ValueError(
                f"temperature must be a number or have one entry per step (horizon={horizon}); got "
                f"{len(temperature)} entries"
            )
        return list(temperature)
    return [temperature] * horizon  # the head validates numbers


@torch.no_grad()
def rollout(
    model: Callable[[torch.Tensor], torch.Tensor],
    head: PredictiveHead,
    history: torch.Tensor,
    *,
    horizon: int,
    num_samples: int = 1,
    temperature: float | torch.Tensor | Sequence[float] = 1.0,
    max_context: int | None = None,
    sample_kwargs: dict[str, Any] | None = None,
) -> torch.Tensor:
    r"""Draw ``num_samples`` autoregressive trajectories of length ``horizon`` after each history.

    At every step the ``model`` maps the history so far to hidden states ``z``, the ``head`` draws the next
    token from ``z`` at the last position, and the draw is appended to the history: the feedback loop of
    ancestral sampling, so the trajectories are draws from the model's joint law of the next ``horizon``
    tokens. All ``m = num_samples`` trajectories of all ``B`` histories run as one batch of ``m * B``
    sequences (one model call and one head call per step).

    Args:
        model: a callable ``history (N, L, token_dim) -> z``, with ``z`` either ``(N, L, cond_dim)`` (a hidden
            state per position; the last one predicts the next token) or ``(N, cond_dim)``. Any module that
            maps a history to ``z`` works (a GRU, a causal transformer, ...); it runs under ``torch.no_grad``.
        head: any :class:`~scoringrules_torch.heads.PredictiveHead`.
        history: observed tokens ``(B, L, token_dim)``.
        horizon: number of steps ``H >= 1`` to draw.
        num_samples: trajectories per history ``m``.
        temperature: the head's sampling temperature: a number, or one per step (a sequence or a 1-D tensor
            of length ``H``; each entry a number, or a tensor broadcastable to the ``m * B`` trajectories).
        max_context: if given, the model sees only the last ``max_context`` tokens (for models with a fixed
            context length).
        sample_kwargs: extra keywords for ``head.sample`` (e.g. ``{"spread": 1.2}`` for the implicit
            generator or ``{"num_steps": 50}`` for the diffusion head).

    Returns:
        Trajectories ``(m, B, H, token_dim)`` (sample-first) in the dtype of the head's draws.

    Shape:
        - history: ``(B, L, token_dim)``
        - output: ``(m, B, H, token_dim)``

    Examples:
        >>> import torch
        >>> from scoringrules_torch.heads import GaussianHead
        >>> from scoringrules_torch.heads.trajectories import rollout, score_trajectories
        >>> _ = torch.manual_seed(0)
        >>> gru = torch.nn.GRU(1, 16, batch_first=True)
        >>> model = lambda x: gru(x)[0]                  # (N, L, 1) -> (N, L, 16)
        >>> head = GaussianHead(1, 16)
        >>> paths = rollout(model, head, torch.randn(4, 10, 1), horizon=6, num_samples=50)
        >>> paths.shape
        torch.Size([50, 4, 6, 1])
        >>> scores = score_trajectories(paths, torch.randn(4, 6, 1))
        >>> scores.crps.shape, scores.energy.shape
        (torch.Size([6]), torch.Size([]))
    """
    if not callable(model):
        raise TypeError(f"model must be callable (history -> z); got {type(model).__name__}")
    if not isinstance(head, PredictiveHead):
        raise TypeError(
            f"head must follow the PredictiveHead protocol (loss, sample, token_dim, cond_dim); got "
            f"{type(head).__name__}"
        )
    check_floating("history", history)
    if history.dim() != 3 or history.shape[-1] != head.token_dim:
        raise ValueError(
            f"history must have shape (B, L, token_dim) with token_dim={head.token_dim}; got "
            f"{tuple(history.shape)}"
        )
    if history.shape[0] == 0 or history.shape[1] == 0:
        raise ValueError(
            f"history must hold at least one sequence of length >= 1; got {tuple(history.shape)}"
        )
    horizon = check_int("horizon", horizon, 1)
    m = check_int("num_samples", num_samples, 1)
    max_context = check_optional_int("max_context", max_context, 1)
    if sample_kwargs is not None and not isinstance(sample_kwargs, dict):
        raise TypeError(f"sample_kwargs must be a dict or None; got {type(sample_kwargs).__name__}")
    temps = _step_temperatures(temperature, horizon)
    b, length, d = history.shape
    seq = history.unsqueeze(0).expand(m, b, length, d).reshape(m * b, length, d)
    draws = []
    for step in range(horizon):
        context = seq if max_context is None else seq[:, -max_context:]
        z = model(context)
        if not isinstance(z, torch.Tensor) or z.dim() not in (2, 3) or z.shape[0] != m * b:
            raise ValueError(
                f"model must return z of shape (N, L, cond_dim) or (N, cond_dim) for a history of shape "
                f"(N, L, token_dim) = {tuple(context.shape)}; got "
                f"{tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__}"
            )
        if z.dim() == 3:
            z = z[:, -1]
        nxt = head.sample(z, temps[step], **(sample_kwargs or {}))
        draws.append(nxt)
        seq = torch.cat([seq, nxt[:, None].to(seq.dtype)], dim=1)
    out = torch.stack(draws, dim=1)  # (m * B, H, d)
    return out.reshape(m, b, horizon, d)


class TrajectoryScores(NamedTuple):
    """Scores of forecast trajectories (negatively oriented; lower is better).

    Attributes:
        crps: CRPS per horizon step, summed over the token dimensions: ``(H,)`` averaged over the batch, or
            ``(B, H)`` with ``reduction="none"``.
        energy: energy score of the whole trajectory (a point in ``R^(H * token_dim)``): a scalar averaged
            over the batch, or ``(B,)`` with ``reduction="none"``.
    """

    crps: torch.Tensor
    energy: torch.Tensor


def _check_trajectories(trajectories: torch.Tensor, target: torch.Tensor) -> None:
    check_floating("trajectories", trajectories)
    check_floating("target", target)
    if target.dim() != 3 or trajectories.shape[1:] != target.shape or trajectories.dim() != 4:
        raise ValueError(
            f"trajectories must have shape (m, B, H, token_dim) and target (B, H, token_dim); got "
            f"trajectories {tuple(trajectories.shape)} and target {tuple(target.shape)}"
        )


def score_trajectories(
    trajectories: torch.Tensor,
    target: torch.Tensor,
    *,
    estimator: str = "fair",
    beta: float = 1.0,
    reduction: str = "mean",
) -> TrajectoryScores:
    r"""CRPS per horizon and energy score over the horizon of sampled trajectories.

    ``crps[h]`` is :func:`~scoringrules_torch.functional.crps_ensemble` of the ``m`` draws at step ``h``,
    summed over token dimensions; ``energy`` is :func:`~scoringrules_torch.functional.energy_score` of the
    trajectories as points in :math:`\mathbb R^{H d}`, which also judges the dependence between steps (a
    forecaster with the right marginals but independent steps scores worse than one with the right joint law).

    Args:
        trajectories: draws ``(m, B, H, token_dim)``, e.g. from :func:`rollout`.
        target: the observed continuations ``(B, H, token_dim)``.
        estimator: ``"fair"`` (default, unbiased) or ``"nrg"`` (see the estimators page).
        beta: energy-score exponent in ``(0, 2]``.
        reduction: ``"mean"`` over the batch ``B`` (default), ``"sum"`` or ``"none"``.

    Shape:
        - trajectories: ``(m, B, H, token_dim)``; target: ``(B, H, token_dim)``
        - crps: ``(H,)`` (``(B, H)`` with ``reduction="none"``); energy: ``()`` (``(B,)``)

    Examples:
        >>> import torch
        >>> paths = torch.zeros(10, 2, 3, 1)
        >>> score_trajectories(paths, torch.ones(2, 3, 1)).crps
        tensor([1., 1., 1.])
    """
    _check_trajectories(trajectories, target)
    check_reduction(reduction)
    m, b, h, d = trajectories.shape
    crps = crps_ensemble(trajectories, target, estimator=estimator, reduction="none").sum(-1)
    energy = energy_score(
        trajectories.reshape(m, b, h * d),
        target.reshape(b, h * d),
        estimator=estimator,
        beta=beta,
        reduction="none",
    )
    if reduction == "mean":
        return TrajectoryScores(crps.mean(0), energy.mean())
    if reduction == "sum":
        return TrajectoryScores(crps.sum(0), energy.sum())
    return TrajectoryScores(crps, energy)


def interval_coverage(
    trajectories: torch.Tensor, target: torch.Tensor, *, level: float = 0.8
) -> torch.Tensor:
    r"""Fraction of observations inside the central ``level`` prediction interval, per horizon step.

    The interval at each (history, step, dimension) runs between the empirical ``(1 - level)/2`` and
    ``(1 + level)/2`` quantiles of the ``m`` draws (``torch.quantile``, linear interpolation). A calibrated
    forecaster covers about ``level`` of the observations; less means too narrow, more too wide.

    Args:
        trajectories: draws ``(m, B, H, token_dim)``.
        target: observations ``(B, H, token_dim)``.
        level: nominal coverage in ``(0, 1)``.

    Returns:
        ``(H,)``: the coverage at each step, averaged over the batch and the token dimensions.

    Examples:
        >>> import torch
        >>> paths = torch.linspace(-1, 1, 101).reshape(101, 1, 1, 1).expand(101, 1, 2, 1)
        >>> interval_coverage(paths, torch.tensor([[[0.5], [0.9]]]), level=0.8)
        tensor([1., 0.])
    """
    _check_trajectories(trajectories, target)
    level = check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    x = (
        trajectories.float()
        if trajectories.dtype in (torch.float16, torch.bfloat16)
        else trajectories
    )
    qs = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=x.dtype, device=x.device)
    lo, hi = torch.quantile(x, qs, dim=0)
    y = target.to(x.dtype)
    inside = ((y >= lo) & (y <= hi)).to(x.dtype)
    return inside.mean(dim=(0, 2))
