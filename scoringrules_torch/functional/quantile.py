r"""Scores of quantile and interval forecasts: the quantile (pinball) score, the interval score, the weighted
interval score and the CRPS approximated from quantiles.

Layout: a quantile forecast is a tensor ``quantiles`` of shape ``(*batch, q)`` with the quantile axis **last**
(``quantile_dim=-1``, as a network head emits it and as ``scoringrules`` lays it out), its levels ``levels`` of
shape ``(q,)`` (or broadcastable to ``(*batch, q)``), and the target ``(*batch)``.
"""

from __future__ import annotations

import torch

from .._internal.checks import check_floating, compute_dtype
from .._internal.reduction import check_reduction, reduce
from ._argcheck import as_tensor_param, check_nonnegative, check_open_unit

__all__ = ["crps_quantile", "interval_score", "quantile_score", "weighted_interval_score"]


def _check_dim(name: str, dim: int, nd: int, shape) -> int:
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{name} must be an int; got {type(dim).__name__}")
    if not -nd <= dim < nd:
        raise ValueError(f"{name}={dim} is out of range for a tensor of shape {tuple(shape)}")
    return dim


def _quantile_inputs(quantiles, target, levels, quantile_dim, *, qname="quantiles"):
    """Check and broadcast; return ``q (*batch, Q)``, ``y (*batch, 1)``, ``tau`` broadcastable, in compute dtype."""
    check_floating(qname, quantiles)
    check_floating("target", target)
    if quantiles.dim() < 1:
        raise ValueError(f"{qname} must have a quantile axis: shape (*batch, q); got a 0-d tensor")
    _check_dim("quantile_dim", quantile_dim, quantiles.dim(), quantiles.shape)
    q = quantiles.movedim(quantile_dim, -1)
    if q.shape[:-1] != target.shape:
        raise ValueError(
            f"{qname} must have shape (*batch, q) = (*target.shape, q) with the quantile axis at quantile_dim="
            f"{quantile_dim}; got {qname} shape {tuple(quantiles.shape)} and target shape {tuple(target.shape)}"
        )
    if q.device != target.device:
        raise ValueError(f"{qname} and target must be on the same device; got {q.device} and {target.device}")
    dtype = compute_dtype(q, target)
    tau = as_tensor_param("levels", levels, q, dtype=dtype)
    try:
        torch.broadcast_shapes(tau.shape, q.shape)
    except RuntimeError:
        raise ValueError(
            f"levels must have shape (q,) = ({q.shape[-1]},) or be broadcastable to (*batch, q) = "
            f"{tuple(q.shape)}; got shape {tuple(tau.shape)}"
        ) from None
    check_open_unit("levels", tau)
    return q.to(dtype), target.to(dtype).unsqueeze(-1), tau


def _pinball(q: torch.Tensor, y: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    # (1{y < q} - tau) (q - y) = tau (y - q)_+ + (1 - tau) (q - y)_+
    diff = q - y
    return torch.where(diff > 0, (1.0 - tau) * diff, -tau * diff)


def quantile_score(
    quantiles: torch.Tensor,
    target: torch.Tensor,
    *,
    levels,
    quantile_dim: int = -1,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Quantile score (pinball loss) of predicted quantiles, one value per level; lower is better.

    .. math::

        S_\tau(q, y) = \big(\mathbf 1\{y < q\} - \tau\big)(q - y)
        = \begin{cases} (1 - \tau)(q - y), & y < q, \\ \tau\,(y - q), & y \ge q, \end{cases}

    for a predicted :math:`\tau`-quantile :math:`q` (Koenker & Bassett 1978). It is proper for the
    :math:`\tau`-quantile: the expected score is minimised by any :math:`\tau`-quantile of the distribution of
    :math:`Y` (strictly consistent for it). It scores the quantile only, so as a score of the whole distribution it
    is proper but not strictly proper. With ``reduction="mean"`` this is the usual quantile-regression training
    loss: the mean over the batch and the levels.

    Args:
        quantiles: predicted quantiles, quantile axis last by default.
        target: observations.
        levels: quantile levels in the open interval (0, 1): a float, a sequence, or a tensor of shape ``(q,)`` or
            broadcastable to ``(*batch, q)`` (one set of levels per observation).
        quantile_dim: the axis of ``quantiles`` that indexes the levels.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - quantiles: :math:`(*\text{batch}, q)` (quantile axis at ``quantile_dim``)
        - target: :math:`(*\text{batch})`
        - levels: :math:`(q)` or broadcastable to :math:`(*\text{batch}, q)`
        - output: scalar, or :math:`(*\text{batch}, q)` with ``reduction="none"`` (the quantile axis last).

    Returns:
        The quantile score.

    Raises:
        ValueError: a level outside (0, 1), or shapes that do not match.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.quantile import quantile_score
        >>> q = torch.tensor([[0.5, 1.0, 2.0]])  # predicted 10 %, 50 % and 90 % quantiles of one observation
        >>> quantile_score(q, torch.tensor([1.5]), levels=[0.1, 0.5, 0.9], reduction="none")
        tensor([[0.1000, 0.2500, 0.0500]])

    References:
        Koenker, R. & Bassett, G. (1978). Regression quantiles. Econometrica 46.
        Gneiting, T. (2011). Quantiles as optimal point forecasts. Int. J. Forecasting 27.
    """
    check_reduction(reduction)
    q, y, tau = _quantile_inputs(quantiles, target, levels, quantile_dim)
    return reduce(_pinball(q, y, tau), reduction)


def crps_quantile(
    quantiles: torch.Tensor,
    target: torch.Tensor,
    *,
    levels,
    quantile_dim: int = -1,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""CRPS approximated from predicted quantiles: twice the mean pinball loss over the levels; lower is better.

    .. math::

        \mathrm{CRPS}(F, y) = 2\int_0^1 S_\tau\big(F^{-1}(\tau), y\big)\,d\tau
        \approx \frac{2}{Q}\sum_{i=1}^{Q} S_{\tau_i}(q_i, y),

    which is exact in the limit of many equally spaced levels (Laio & Tamea 2007; Gneiting & Ranjan 2011). As a
    score of the ``Q`` quantiles it is proper (a sum of proper quantile scores), not strictly proper for the whole
    distribution. Same values as ``scoringrules.crps_quantile``.

    Args:
        quantiles: predicted quantiles, quantile axis last by default.
        target: observations.
        levels: quantile levels in (0, 1), shape ``(q,)`` or broadcastable to ``(*batch, q)``.
        quantile_dim: the axis of ``quantiles`` that indexes the levels.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - quantiles: :math:`(*\text{batch}, q)`; target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The quantile-approximated CRPS.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.quantile import crps_quantile
        >>> q = torch.tensor([[0.5, 1.0, 2.0]])
        >>> crps_quantile(q, torch.tensor([1.5]), levels=[0.1, 0.5, 0.9], reduction="none")  # 2 * 0.4 / 3
        tensor([0.2667])

    References:
        Laio, F. & Tamea, S. (2007). Verification tools for probabilistic forecasts of continuous hydrological
        variables. HESS 11.
    """
    check_reduction(reduction)
    q, y, tau = _quantile_inputs(quantiles, target, levels, quantile_dim)
    return reduce(2.0 * _pinball(q, y, tau).mean(-1), reduction)


def _interval_inputs(lower, upper, target, alpha, interval_dim):
    check_floating("lower", lower)
    check_floating("upper", upper)
    check_floating("target", target)
    if lower.shape != upper.shape:
        raise ValueError(
            f"lower and upper must have the same shape; got {tuple(lower.shape)} and {tuple(upper.shape)}"
        )
    if lower.dim() == target.dim() + 1:  # several intervals per observation
        _check_dim("interval_dim", interval_dim, lower.dim(), lower.shape)
        lo, up = lower.movedim(interval_dim, -1), upper.movedim(interval_dim, -1)
        y = target.unsqueeze(-1)
        if lo.shape[:-1] != target.shape:
            raise ValueError(
                f"lower and upper must have shape (*batch, k) = (*target.shape, k) (interval axis at "
                f"interval_dim={interval_dim}) or the shape of target; got {tuple(lower.shape)} and target "
                f"shape {tuple(target.shape)}"
            )
    elif lower.shape == target.shape:
        lo, up, y = lower, upper, target
    else:
        raise ValueError(
            f"lower and upper must have the shape of target, or (*target.shape, k) for k intervals per "
            f"observation; got {tuple(lower.shape)} and target shape {tuple(target.shape)}"
        )
    dtype = compute_dtype(lo, up, y)
    a = as_tensor_param("alpha", alpha, lo, dtype=dtype)
    try:
        torch.broadcast_shapes(a.shape, lo.shape)
    except RuntimeError:
        raise ValueError(
            f"alpha must be broadcastable to the intervals' shape {tuple(lo.shape)} (one level per interval: "
            f"shape (k,)); got shape {tuple(a.shape)}"
        ) from None
    check_open_unit("alpha", a)
    return lo.to(dtype), up.to(dtype), y.to(dtype), a


def _interval(lo, up, y, a):
    below = torch.clamp(lo - y, min=0.0)
    above = torch.clamp(y - up, min=0.0)
    return (up - lo) + (2.0 / a) * (below + above)


def interval_score(
    lower: torch.Tensor,
    upper: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha,
    interval_dim: int = -1,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Interval (Winkler) score of central :math:`(1-\alpha)` prediction intervals; lower is better.

    .. math::

        \mathrm{IS}_\alpha([l, u], y) = (u - l) + \frac{2}{\alpha}(l - y)\,\mathbf 1\{y < l\}
        + \frac{2}{\alpha}(y - u)\,\mathbf 1\{y > u\}.

    Proper for the central interval: the expected score is minimised by :math:`l = F^{-1}(\alpha/2)`,
    :math:`u = F^{-1}(1 - \alpha/2)` (Gneiting & Raftery 2007, §6.2). It equals
    :math:`\frac{2}{\alpha}\big(S_{\alpha/2}(l, y) + S_{1-\alpha/2}(u, y)\big)` with the quantile scores of the two
    bounds. Proper, not strictly proper as a score of the distribution. ``lower > upper`` is not rejected (the
    width term is then negative, as in ``scoringrules``).

    Args:
        lower: lower bounds.
        upper: upper bounds, same shape as ``lower``.
        target: observations.
        alpha: interval levels in (0, 1) (the nominal coverage is :math:`1-\alpha`): a float, a sequence, or a
            tensor broadcastable to the intervals' shape (``(k,)`` for ``k`` intervals per observation).
        interval_dim: the axis that indexes the ``k`` intervals, when there are several per observation.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - lower, upper: :math:`(*\text{batch})`, or :math:`(*\text{batch}, k)` for ``k`` intervals each
        - target: :math:`(*\text{batch})`
        - output: scalar, or the intervals' shape (interval axis last) with ``reduction="none"``.

    Returns:
        The interval score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.quantile import interval_score
        >>> interval_score(torch.tensor([0.0]), torch.tensor([1.0]), torch.tensor([1.5]), alpha=0.2,
        ...                reduction="none")  # 1 + (2 / 0.2) * 0.5
        tensor([6.])

    References:
        Winkler, R. L. (1972). A decision-theoretic approach to interval estimation. JASA 67.
        Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and estimation. JASA 102.
    """
    check_reduction(reduction)
    lo, up, y, a = _interval_inputs(lower, upper, target, alpha, interval_dim)
    return reduce(_interval(lo, up, y, a), reduction)


def weighted_interval_score(
    median: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha,
    median_weight: float = 0.5,
    interval_weights=None,
    interval_dim: int = -1,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Weighted interval score of a median and ``K`` central prediction intervals; lower is better.

    .. math::

        \mathrm{WIS}(y) = \frac{1}{K + 1/2}\Big(w_0\,|y - m| + \sum_{k=1}^{K} w_k\,
        \mathrm{IS}_{\alpha_k}([l_k, u_k], y)\Big),

    with default weights :math:`w_0 = 1/2`, :math:`w_k = \alpha_k/2` (Bracher et al. 2021), for which WIS equals
    :math:`\frac{2}{2K+1}` times the sum of the quantile scores of the :math:`2K+1` quantiles: a discrete
    approximation of the CRPS. Proper for those quantiles (non-negative weights); not strictly proper for the
    distribution.

    Args:
        median: predicted medians.
        lower: lower bounds, ``(*batch, K)``.
        upper: upper bounds, ``(*batch, K)``.
        target: observations.
        alpha: the ``K`` interval levels in (0, 1), shape ``(K,)`` or broadcastable to ``(*batch, K)``.
        median_weight: :math:`w_0 \ge 0`.
        interval_weights: :math:`w_k \ge 0`, shape ``(K,)`` or broadcastable; default :math:`\alpha_k / 2`.
        interval_dim: the axis of ``lower``/``upper`` that indexes the intervals.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - median, target: :math:`(*\text{batch})`; lower, upper: :math:`(*\text{batch}, K)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The weighted interval score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.quantile import weighted_interval_score
        >>> lo, up = torch.tensor([[0.1, 0.2]]), torch.tensor([[0.9, 0.8]])
        >>> weighted_interval_score(torch.tensor([0.5]), lo, up, torch.tensor([0.3]), alpha=[0.1, 0.5],
        ...                         reduction="none")  # (0.5 * 0.2 + 0.05 * 0.8 + 0.25 * 0.6) / 2.5
        tensor([0.1160])

    References:
        Bracher, J., Ray, E. L., Gneiting, T. & Reich, N. G. (2021). Evaluating epidemic forecasts in an interval
        format. PLoS Comput. Biol. 17.
    """
    check_reduction(reduction)
    check_floating("median", median)
    if median.shape != target.shape:
        raise ValueError(
            f"median must have the shape of target; got {tuple(median.shape)} and {tuple(target.shape)}"
        )
    if lower.dim() != target.dim() + 1:
        raise ValueError(
            f"lower and upper must have shape (*target.shape, K) = (*{tuple(target.shape)}, K); got "
            f"{tuple(lower.shape)}"
        )
    lo, up, y, a = _interval_inputs(lower, upper, target, alpha, interval_dim)
    dtype = lo.dtype
    if isinstance(median_weight, bool) or not isinstance(median_weight, (int, float)):
        raise TypeError(f"median_weight must be a float; got {median_weight!r}")
    if not median_weight >= 0:
        raise ValueError(f"median_weight must be non-negative; got {median_weight!r}")
    if interval_weights is None:
        wk = a / 2.0
    else:
        wk = check_nonnegative(
            "interval_weights", as_tensor_param("interval_weights", interval_weights, lo, dtype=dtype)
        )
    k = lo.shape[-1]
    total = (wk * _interval(lo, up, y, a)).sum(-1) + median_weight * (y.squeeze(-1) - median.to(dtype)).abs()
    return reduce(total / (k + 0.5), reduction)
