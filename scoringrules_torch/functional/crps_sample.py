"""Continuous ranked probability score (CRPS) of univariate ensembles."""

from __future__ import annotations

import torch

from .._internal.checks import check_choice, flatten_univariate
from .._internal.ensemble_ext import afcrps_values, check_alpha, ensemble_extensions
from .._internal.reduction import check_reduction, reduce

__all__ = ["CRPS_ESTIMATORS", "crps_ensemble"]

#: Estimators of the ensemble CRPS.
CRPS_ESTIMATORS = ("fair", "nrg", "pwm", "int", "qd", "akr", "akr_circperm", "afcrps")
_MIN_MEMBERS = {"fair": 2, "pwm": 2, "afcrps": 2}


def _fast_sort_ok(x: torch.Tensor) -> bool:
    """Whether the members can be sorted by numpy: values only (no gradient), on the CPU, in eager mode."""
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not x.requires_grad
        and not torch.compiler.is_compiling()
        and _np_sort is not None
        and not _is_wrapped(x)
    )


def _is_wrapped(x: torch.Tensor) -> bool:
    """A tensor under a ``torch.func`` transform (``vmap``, ``grad``) has no numpy view."""
    check = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)
    return bool(check(x)) if check is not None else False


def _load_np_sort():
    try:
        from numpy import sort
    except ImportError:  # pragma: no cover - numpy is a dependency of this package
        return None
    return sort


_np_sort = _load_np_sort()


def _sorted_values(x: torch.Tensor) -> torch.Tensor:
    """``x (B, m)`` sorted along the last axis, values only.

    Without a gradient on the CPU this uses numpy's sort, whose vectorised sorting of short rows is an order of
    magnitude faster than ``torch.sort`` (which also computes the indices); the values are the same.
    """
    if _fast_sort_ok(x):
        return torch.from_numpy(_np_sort(x.numpy(), axis=-1))
    return torch.sort(x, dim=-1).values


def _sorted_with_weights(
    x: torch.Tensor, w: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sort members along the last axis; return sorted values, their weights and inclusive cumulative weights.

    For equal weights the weights and cumulative weights are ``(m,)`` vectors that broadcast.
    """
    m = x.shape[-1]
    if w is None:
        xs = _sorted_values(x)
    else:
        xs, idx = torch.sort(x, dim=-1)
    if w is None:
        ws = torch.full((m,), 1.0 / m, dtype=x.dtype, device=x.device)
        cum = torch.arange(1, m + 1, dtype=x.dtype, device=x.device) / m
    else:
        ws = torch.gather(w, -1, idx)
        cum = torch.cumsum(ws, dim=-1)
    return xs, ws, cum


def _crps_values(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, estimator: str) -> torch.Tensor:
    """Per-observation CRPS for ``x (m, B)``, ``y (B,)``; ``w`` normalised ``(m, B)`` or ``None``."""
    m = x.shape[0]
    if w is None and estimator in ("fair", "nrg", "qd") and _fast_sort_ok(x) and not y.requires_grad:
        return _crps_values_no_grad(x, y, estimator)
    # Members last (contiguous rows sort fast), measured from the target: translation invariance removes the
    # cancellation of large offsets.
    x = (x - y.unsqueeze(0)).T.contiguous()  # (B, m)
    w = None if w is None else w.T.contiguous()
    absx = x.abs()
    accuracy = absx.mean(-1) if w is None else (w * absx).sum(-1)

    if estimator in ("fair", "nrg"):
        # sum_{i,j} w_i w_j |x_i - x_j| = 2 sum_i w_(i) x_(i) (C_{i-1} + C_i - 1) on the sorted ensemble.
        xs, ws, cum = _sorted_with_weights(x, w)
        coef = ws * (2.0 * cum - ws - 1.0)
        pair_sum = 2.0 * (xs @ coef if w is None else (xs * coef).sum(-1))
        if estimator == "nrg":
            return accuracy - 0.5 * pair_sum
        norm = 1.0 - (ws * ws).sum(-1)
        return accuracy - 0.5 * pair_sum / norm
    if estimator == "pwm":
        # Probability weighted moments: E|X - y| + beta_0 - 2 beta_1.
        xs, ws, cum = _sorted_with_weights(x, w)
        beta0 = (ws * xs).sum(-1)
        beta1 = (ws * xs * (cum - ws)).sum(-1) / (1.0 - (ws * ws).sum(-1))
        return accuracy + beta0 - 2.0 * beta1
    if estimator == "qd":
        # Quantile decomposition: 2 sum_i w_(i) (1{x_(i) > y} - a_i)(x_(i) - y), a_i = C_i - w_(i)/2.
        xs, ws, cum = _sorted_with_weights(x, w)
        a = cum - 0.5 * ws
        coef = torch.where(xs > 0, 1.0 - a, -a)
        return 2.0 * (ws * coef * xs).sum(-1)
    if estimator == "int":
        # Integral form: sum over the gaps of the sorted (members + target) of (F_m - 1{z >= y})^2 * gap.
        wts = torch.full_like(x, 1.0 / m) if w is None else w
        z = torch.cat([x, torch.zeros_like(y).unsqueeze(-1)], dim=-1)
        zw = torch.cat([wts, torch.zeros_like(y).unsqueeze(-1)], dim=-1)
        zs, idx = torch.sort(z, dim=-1, stable=True)
        cdf = torch.cumsum(torch.gather(zw, -1, idx), dim=-1)
        step = (zs >= 0).to(x.dtype)
        gaps = zs[:, 1:] - zs[:, :-1]
        return (gaps * (cdf[:, :-1] - step[:, :-1]) ** 2).sum(-1)
    # akr / akr_circperm: neighbours in the given member order (circular).
    shift = 1 if estimator == "akr" else m // 2
    dist = (x - torch.roll(x, shifts=shift, dims=-1)).abs()
    spread = dist.mean(-1) if w is None else (w * dist).sum(-1)
    return accuracy - 0.5 * spread


# Elements per block of the no-gradient path (1 MiB in float64: stays in a per-core cache).
_NO_GRAD_BLOCK = 1 << 17


def _crps_values_no_grad(x: torch.Tensor, y: torch.Tensor, estimator: str) -> torch.Tensor:
    """Equal-weight ``fair``/``nrg``/``qd`` without a gradient: the same sorted-ensemble formulas in fewer passes.

    ``x (m, B)``, ``y (B,)``. One pass writes the members minus the target as contiguous rows, numpy sorts them in
    place, one matrix-vector product applies the rank coefficients, and one in-place pass gives the accuracy term.
    """
    m, b = x.shape
    ranks = torch.arange(1, m + 1, dtype=x.dtype, device=x.device)
    if estimator == "qd":  # 2/m sum_i (1{x_(i) > y} - a_i) x_(i), a_i = (i - 1/2)/m
        coef = (ranks - 0.5) / m
    else:  # sum_{i,j} |x_i - x_j| = 2 sum_i (2i - 1 - m) x_(i)
        coef = (2.0 * ranks - 1.0 - m) * 2.0
    out = x.new_empty(b)
    # Rows in cache-sized blocks through one reused buffer: no large allocation (page faults cost more than the
    # arithmetic here), and every pass over a block stays in cache.
    step = max(1, _NO_GRAD_BLOCK // m)
    buf = x.new_empty(min(b, step), m)
    for start in range(0, b, step):
        stop = min(b, start + step)
        xt = buf[: stop - start]
        torch.sub(x[:, start:stop].T, y[start:stop].unsqueeze(-1), out=xt)  # measured from the target
        xt.numpy().sort(axis=-1)  # in place: numpy's vectorised sort of short rows
        ordered = xt @ coef
        if estimator == "qd":
            out[start:stop] = (2.0 / m) * (xt.clamp_min_(0.0).sum(-1) - ordered)
        else:
            accuracy = xt.abs_().sum(-1) / m
            out[start:stop] = accuracy - ordered / (2.0 * m * (m - 1) if estimator == "fair" else 2.0 * m * m)
    return out


def crps_ensemble(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    estimator: str = "fair",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
    alpha: float | None = None,
    nan_policy: str = "propagate",
    process_group=None,
) -> torch.Tensor:
    r"""CRPS of a univariate ensemble against observations; lower is better.

    .. math::

        \mathrm{CRPS}(F, y) = \int_{-\infty}^{\infty} \big(F(z) - \mathbf 1\{z \ge y\}\big)^2\,dz
        = \mathbb{E}|X - y| - \tfrac12 \mathbb{E}|X - X'|,

    the one-dimensional energy score with :math:`\beta = 1`; strictly proper. Negatively oriented (the
    positively oriented score is :math:`-\mathrm{CRPS}`).

    Estimators from :math:`m` members :math:`x_1, \dots, x_m` (sorted: :math:`x_{(1)} \le \dots \le x_{(m)}`):

    * ``"fair"`` (default): spread term :math:`\frac{1}{2m(m-1)}\sum_{i\ne j}|x_i - x_j|`; unbiased for the
      CRPS of the distribution the members are drawn from. Computed on the sorted ensemble in
      :math:`O(m\log m)`; needs :math:`m\ge 2`.
    * ``"pwm"``: probability weighted moments, :math:`\mathbb{E}|X-y| + \beta_0 - 2\beta_1`; equals ``"fair"``.
    * ``"nrg"``: :math:`\frac{1}{2m^2}\sum_{i,j}|x_i - x_j|`: the CRPS of the empirical distribution (biased as an
      estimate of the CRPS of :math:`F`). :math:`O(m\log m)` here.
    * ``"qd"`` (quantile decomposition) and ``"int"`` (integral of the squared CDF difference): both equal
      ``"nrg"``; :math:`O(m\log m)`.
    * ``"akr"`` / ``"akr_circperm"``: :math:`O(m)` approximations using the partners :math:`x_{i-1}` /
      :math:`x_{i-\lfloor m/2\rfloor}` (circular, in the given member order).
    * ``"afcrps"``: almost-fair CRPS of AIFS-CRPS (Lang et al. 2024), ``alpha * fair + (1 - alpha) * nrg``, i.e.
      the spread term of ``"nrg"`` weighted by :math:`1 - \epsilon` with :math:`\epsilon = (1 - \alpha)/m`
      over the ``"fair"`` normalisation. Proper only for ``alpha = 1`` (see the CRPS docs page).

    With ``member_weights`` (normalised to sum to one) every estimator uses weighted sums; ``"fair"`` and
    ``"pwm"`` divide the pair term by :math:`1-\sum_i w_i^2` (as ``scoringrules``). Note: for ``"akr_circperm"``
    with weights and an even :math:`m`, ``scoringrules`` 0.10 uses partner :math:`x_{i+(m-1)//2}`; this function
    uses the same partner :math:`x_{i-m//2}` with and without weights.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        estimator: one of ``"fair"``, ``"nrg"``, ``"pwm"``, ``"int"``, ``"qd"``, ``"akr"``, ``"akr_circperm"``.
        member_weights: optional non-negative weights of shape ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        alpha: weight of ``"fair"`` in ``"afcrps"``, in :math:`(0, 1]` (default 0.95, as AIFS-CRPS); only with
            ``estimator="afcrps"``.
        nan_policy: ``"propagate"`` (default), ``"omit"`` (drop NaN members per observation; observations with a
            NaN target or too few valid members are NaN with ``reduction="none"`` and left out of the mean/sum)
            or ``"raise"`` (see the "Missing values" section of the CRPS page).
        process_group: a ``torch.distributed`` process group whose ranks each hold some members of the same
            ensemble (same targets); the score of the whole ensemble (members in rank order) is returned on every
            rank, with each rank's gradient that of the score w.r.t. its own members. See the "Distributed
            ensembles" docs page.

    Shape:
        - samples: :math:`(m, *\text{batch})` (sample axis at ``sample_dim``)
        - target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The CRPS.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional import crps_ensemble
        >>> samples = torch.tensor([[0.0], [1.0]])  # m=2 members, one observation
        >>> crps_ensemble(samples, torch.tensor([0.0]))  # (0 + 1)/2 - (2 * 1)/(2 * 2)
        tensor(0.)
        >>> crps_ensemble(samples, torch.tensor([0.0]), estimator="nrg")  # (0 + 1)/2 - (2 * 1)/(2 * 4)
        tensor(0.2500)

    References:
        Matheson, J. E. & Winkler, R. L. (1976). Scoring rules for continuous probability distributions.
        Ferro, C. A. T. (2014). Fair scores for ensemble forecasts. QJRMS 140.
        Zamo, M. & Naveau, P. (2018). Estimation of the CRPS for ensemble forecasts. Math. Geosci. 50.
    """
    check_reduction(reduction)
    check_choice("estimator", estimator, CRPS_ESTIMATORS)
    alpha = check_alpha(alpha, estimator, "afcrps")
    if nan_policy != "propagate" or process_group is not None:
        return ensemble_extensions(crps_ensemble, samples, target, event_rank=0, sample_dim=sample_dim,
                                   member_weights=member_weights, reduction=reduction, nan_policy=nan_policy,
                                   process_group=process_group, min_members=_MIN_MEMBERS.get(estimator, 1),
                                   estimator=estimator, alpha=alpha)
    x, y, w, batch_shape = flatten_univariate(
        samples,
        target,
        sample_dim=sample_dim,
        min_members=_MIN_MEMBERS.get(estimator, 1),
        member_weights=member_weights,
    )
    if estimator == "afcrps":
        return reduce(afcrps_values(_crps_values(x, y, w, "nrg"), x, y, w, alpha).reshape(batch_shape), reduction)
    return reduce(_crps_values(x, y, w, estimator).reshape(batch_shape), reduction)
