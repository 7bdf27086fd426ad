"""Variogram score of order p (Scheuerer & Hamill, 2015) for multivariate ensembles."""

from __future__ import annotations

import torch

from ._checks import check_choice, check_floating, flatten_multivariate
from ._pairwise import safe_pow
from ._reduction import check_reduction, reduce

__all__ = ["VARIOGRAM_ESTIMATORS", "variogram_score"]

#: Estimators of the variogram score.
VARIOGRAM_ESTIMATORS = ("nrg", "fair")
# Largest (chunk, B, d(d-1)/2) block of component differences held at once (64 MiB in float32).
_CHUNK_ELEMENTS = 1 << 24


def _variogram_moments(
    x: torch.Tensor, iu: torch.Tensor, p: float, w: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """First and second weighted moments over members of ``|x_k - x_l|^p`` for the pairs ``iu``.

    ``x (m, B, d)`` -> two ``(B, P)`` tensors: ``sum_i w_i g_i`` and ``sum_i w_i g_i^2`` (``w_i = 1/m`` if
    ``w`` is None). Members are processed in chunks, each under activation checkpointing, so neither the forward
    nor the backward holds more than one ``(chunk, B, P)`` block.
    """
    m, b, _ = x.shape
    npairs = iu.shape[1]
    rows = max(1, min(m, _CHUNK_ELEMENTS // max(1, b * npairs)))
    first = x.new_zeros(b, npairs)
    second = x.new_zeros(b, npairs)

    def block(xc: torch.Tensor, wc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = safe_pow((xc[..., iu[0]] - xc[..., iu[1]]).abs(), p)  # (c, B, P)
        wg = wc.unsqueeze(-1) * g
        return wg.sum(0), (wg * g).sum(0)

    weights = torch.full((m, b), 1.0 / m, dtype=x.dtype, device=x.device) if w is None else w
    for start in range(0, m, rows):
        xc, wc = x[start : start + rows], weights[start : start + rows]
        if rows < m and torch.is_grad_enabled() and xc.requires_grad:
            f, s = torch.utils.checkpoint.checkpoint(block, xc, wc, use_reentrant=False)
        else:
            f, s = block(xc, wc)
        first = first + f
        second = second + s
    return first, second


def variogram_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    p: float = 0.5,
    weights: torch.Tensor | None = None,
    estimator: str = "nrg",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Variogram score of order :math:`p` of an ensemble against an observed target; lower is better.

    .. math::

        \mathrm{VS}_p(F, y) = \sum_{k, l} w_{kl}\,\big(|y_k - y_l|^p - \mathbb{E}|X_k - X_l|^p\big)^2 .

    Proper but **not strictly proper**: it only sees the pairwise variograms of the components, so it cannot tell
    apart forecasts that differ by a common shift of all components (or that share all :math:`\mathbb{E}|X_k -
    X_l|^p`). Use it together with a strictly proper score (e.g. the energy score) to reward correct dependence
    structure. Negatively oriented.

    Estimators of the squared expectation from :math:`m` members, with :math:`g_i = |x_{ik} - x_{il}|^p`:

    * ``"nrg"`` (default, as ``scoringrules``): plug-in :math:`\big(\gamma_y - \bar g\big)^2`;
    * ``"fair"``: unbiased for the score of the distribution of the members,
      :math:`\gamma_y^2 - 2\gamma_y\bar g + \frac{(\sum_i g_i)^2 - \sum_i g_i^2}{m(m-1)}`
      (weighted: :math:`\gamma_y^2 - 2\gamma_y\bar g_w + \sum_i w_i g_i^2 - (\sum_i w_i g_i^2 - \bar g_w^2)/(1 -
      \sum_i w_i^2)`). Computed in :math:`O(m d^2)` (not the :math:`O(m^2 d^2)` pair sum).

    Gradients are finite for every :math:`p > 0` (the :math:`|0|^p` diagonal and coincident components get a zero
    gradient), and members are processed in checkpointed chunks, so memory stays bounded for large :math:`m d^2`.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        p: order :math:`p > 0` of the variogram (0.5 is the usual choice).
        weights: optional non-negative pair weights :math:`w_{kl}` of shape ``(d, d)`` or ``(*batch, d, d)``
            (default: all ones, summing over all ordered pairs :math:`k, l` as ``scoringrules`` does).
        estimator: ``"nrg"`` or ``"fair"``.
        member_weights: optional non-negative member weights of shape ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`
        - target: :math:`(*\text{batch}, d)`
        - weights: :math:`(d, d)` or :math:`(*\text{batch}, d, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The variogram score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional import variogram_score
        >>> target = torch.tensor([[0.0, 1.0]])
        >>> samples = torch.tensor([[[5.0, 6.0]], [[-2.0, -1.0]]])  # same increments as the target
        >>> variogram_score(samples, target)  # blind to the common shift: not strictly proper
        tensor(0.)
        >>> variogram_score(torch.zeros(2, 1, 2), target, p=1.0)  # 2 ordered pairs * (1 - 0)^2
        tensor(2.)

    References:
        Scheuerer, M. & Hamill, T. M. (2015). Variogram-based proper scoring rules for probabilistic forecasts of
        multivariate quantities. Monthly Weather Review 143.
    """
    check_reduction(reduction)
    check_choice("estimator", estimator, VARIOGRAM_ESTIMATORS)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        raise ValueError(f"p must be a positive number; got {p!r}")
    x, y, w, batch_shape = flatten_multivariate(
        samples,
        target,
        sample_dim=sample_dim,
        min_members=2 if estimator == "fair" else 1,
        member_weights=member_weights,
    )
    m, b, d = x.shape
    iu = torch.triu_indices(d, d, offset=1, device=x.device)  # pairs k < l (the diagonal contributes 0)
    if weights is None:
        pair_w = x.new_full((1, iu.shape[1]), 2.0)
    else:
        check_floating("weights", weights)
        if weights.shape[-2:] != (d, d) or weights.shape[:-2] not in (torch.Size(), batch_shape):
            raise ValueError(
                f"weights must have shape (d, d) = {(d, d)} or (*batch, d, d) = {(*batch_shape, d, d)}; "
                f"got {tuple(weights.shape)}"
            )
        wt = weights.to(x.dtype).reshape(-1, d, d)
        pair_w = wt[:, iu[0], iu[1]] + wt[:, iu[1], iu[0]]  # both orders of each pair, (1 or B, P)

    gy = safe_pow((y[:, iu[0]] - y[:, iu[1]]).abs(), p)  # (B, P)
    first, second = _variogram_moments(x, iu, float(p), w)
    if estimator == "nrg":
        sq = (gy - first) ** 2
    else:
        norm = 1.0 - (1.0 / m if w is None else (w * w).sum(0).unsqueeze(-1))
        sq = gy * gy - 2.0 * gy * first + second - (second - first * first) / norm
    values = (pair_w * sq).sum(-1)
    return reduce(values.reshape(batch_shape), reduction)
