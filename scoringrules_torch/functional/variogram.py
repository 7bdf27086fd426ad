"""Variogram score of order p (Scheuerer & Hamill, 2015) for multivariate ensembles."""

from __future__ import annotations

import torch

from .._internal.blocks import blocks
from .._internal.checks import (
    check_choice,
    check_floating,
    check_nonneg_weights,
    check_positive_number,
    flatten_multivariate,
)
from .._internal.ensemble_ext import ensemble_extensions
from .._internal.pairwise import no_autocast, safe_pow
from .._internal.reduction import check_reduction, reduce

__all__ = ["VARIOGRAM_ESTIMATORS", "variogram_score"]

#: Estimators of the variogram score.
VARIOGRAM_ESTIMATORS = ("nrg", "fair")
def _increments(xc: torch.Tensor) -> torch.Tensor:
    """``x_k - x_l`` for all component pairs: ``(m, b, d)`` -> ``(m, b, d, d)``."""
    return xc.unsqueeze(-1) - xc.unsqueeze(-2)


class _VariogramMoments(torch.autograd.Function):
    """First and second weighted moments over members of ``g_i = |x_ik - x_il|^p``: two ``(B, d, d)`` tensors.

    Observations are processed in cache-sized blocks; the backward recomputes each block's increments and applies
    ``dg/dx = p g / (x_k - x_l)`` (0 where the increment is 0, where ``|.|^p`` has no derivative for ``p < 1``), so
    nothing larger than a block is ever held and the gradient is finite for every ``p > 0``.
    """

    @staticmethod
    def forward(ctx, x, w, p: float):  # type: ignore[override]
        m, b, d = x.shape
        first = x.new_empty(b, d, d)
        second = x.new_empty(b, d, d)
        for start, stop in blocks(b, m * d * d, x.device):
            g = _increments(x[:, start:stop]).abs_()
            g = g.sqrt_() if p == 0.5 else g.pow_(p)
            wg = g * w[:, start:stop, None, None]
            first[start:stop] = wg.sum(0)
            second[start:stop] = wg.mul_(g).sum(0)
        ctx.p = p
        ctx.save_for_backward(x, w)
        return first, second

    @staticmethod
    def backward(ctx, grad_first, grad_second):  # type: ignore[override]
        x, w = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward: differentiate a plain-autograd recomputation
            g = safe_pow(_increments(x).abs(), ctx.p)
            wg = g * w[..., None, None]
            inputs = [t for t, need in zip((x, w), ctx.needs_input_grad[:2], strict=True) if need]
            grads = iter(torch.autograd.grad((wg.sum(0), (wg * g).sum(0)), inputs, (grad_first, grad_second),
                                             create_graph=True))
            return (next(grads) if ctx.needs_input_grad[0] else None,
                    next(grads) if ctx.needs_input_grad[1] else None, None)
        m, b, d = x.shape
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(w) if ctx.needs_input_grad[1] else None
        for start, stop in blocks(b, m * d * d, x.device):
            delta = _increments(x[:, start:stop])
            g = delta.abs()
            g = g.sqrt_() if ctx.p == 0.5 else g.pow_(ctx.p)
            g1, g2 = grad_first[start:stop], grad_second[start:stop]
            if grad_w is not None:
                grad_w[:, start:stop] = (g * (g1 + g2 * g)).sum((-2, -1))
            if grad_x is not None:
                # dL/d delta_i,kl = w_i p (G1 + 2 G2 g) g / delta; 0/0 where delta == 0 (there g == 0 too) -> 0.
                coef = torch.addcmul(g1 * ctx.p, g2 * (2.0 * ctx.p), g).mul_(g)
                coef.mul_(w[:, start:stop, None, None]).div_(delta).nan_to_num_(nan=0.0)
                grad_x[:, start:stop] = coef.sum(-1) - coef.sum(-2)
        return grad_x, grad_w, None


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
    nan_policy: str = "propagate",
    process_group=None,
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
    gradient). Observations are processed in cache-sized blocks with an analytic backward that recomputes each
    block, so extra memory is :math:`O(B d^2)` plus one block, never the dense :math:`(B, m, d, d)` tensor.

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
        nan_policy: ``"propagate"`` | ``"omit"`` | ``"raise"``, as in
            :func:`~scoringrules_torch.functional.crps_ensemble`.
        process_group: ``torch.distributed`` group over which the members are split, as in
            :func:`~scoringrules_torch.functional.crps_ensemble`.

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
    if nan_policy != "propagate" or process_group is not None:
        return ensemble_extensions(variogram_score, samples, target, event_rank=1, sample_dim=sample_dim,
                                   member_weights=member_weights, reduction=reduction, nan_policy=nan_policy,
                                   process_group=process_group, min_members=2 if estimator == "fair" else 1,
                                   moments=True, p=p, weights=weights, estimator=estimator)
    p = check_positive_number("p", p)
    x, y, w, batch_shape = flatten_multivariate(
        samples,
        target,
        sample_dim=sample_dim,
        min_members=2 if estimator == "fair" else 1,
        member_weights=member_weights,
    )
    m, b, d = x.shape
    if weights is None:
        pair_w = None
    else:
        check_floating("weights", weights)
        if weights.shape[-2:] != (d, d) or weights.shape[:-2] not in (torch.Size(), batch_shape):
            raise ValueError(
                f"weights must have shape (d, d) = {(d, d)} or (*batch, d, d) = {(*batch_shape, d, d)}; "
                f"got {tuple(weights.shape)}"
            )
        if weights.device != x.device:
            raise ValueError(f"weights must be on the device of samples ({x.device}); got {weights.device}")
        check_nonneg_weights("weights", weights)
        pair_w = weights.to(x.dtype).reshape(-1, d, d)  # (1 or B, d, d)

    gy = safe_pow(_increments(y).abs(), p)  # (B, d, d)
    member_w = x.new_full((m, b), 1.0 / m) if w is None else w
    with no_autocast(x.device):
        first, second = _VariogramMoments.apply(x, member_w, float(p))
    if estimator == "nrg":
        sq = (gy - first) ** 2
    else:
        norm = 1.0 - (1.0 / m if w is None else (w * w).sum(0).reshape(-1, 1, 1))
        sq = gy * gy - 2.0 * gy * first + second - (second - first * first) / norm
    values = sq.sum((-2, -1)) if pair_w is None else (pair_w * sq).sum((-2, -1))
    return reduce(values.reshape(batch_shape), reduction)
