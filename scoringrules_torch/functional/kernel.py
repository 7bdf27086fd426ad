"""Kernel scores (maximum mean discrepancy to the observation) for multivariate ensembles."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .._internal.checks import check_choice, check_positive_number, flatten_multivariate
from .._internal.ensemble_ext import ensemble_extensions
from .._internal.pairwise import (
    Radial,
    pairwise_radial_sum,
    pairwise_sq_dist,
    power_radial,
    safe_pow,
    shifted_sq_dist,
    sq_dist_to_target,
)
from .._internal.reduction import check_reduction, reduce
from .energy import check_beta

__all__ = ["KERNELS", "KERNEL_ESTIMATORS", "kernel_score"]

#: Built-in kernels (all radial: functions of the squared distance).
KERNELS = ("gaussian", "laplacian", "inverse_multiquadric", "energy")
#: Estimators of the kernel score.
KERNEL_ESTIMATORS = ("fair", "nrg", "akr", "akr_circperm")
_MIN_MEMBERS = {"fair": 2}

KernelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _radial(kernel: str, bandwidths: list[float] | None, beta: float) -> Radial:
    """The kernel as a function of the squared distance ``s``, summed over ``bandwidths``.

    ``bandwidths=None`` means one bandwidth per observation, passed as ``h`` (broadcasting against ``s``).
    """
    if kernel == "energy":  # -r^beta: the kernel score is then exactly the energy score
        power = power_radial(beta / 2.0)
        return Radial(lambda s, h=None: -power.value(s), lambda s, v, h=None: power.deriv(s, v.neg_()).neg_())

    def each(h):
        return [h] if bandwidths is None else bandwidths

    if kernel == "gaussian":
        def value(s, h=None):
            return sum(torch.exp(-0.5 * s / (b * b)) for b in each(h))

        def deriv(s, v, h=None):
            bs = each(h)
            if len(bs) == 1:
                return v.mul_(-0.5 / (bs[0] * bs[0]))
            return sum(torch.exp(-0.5 * s / (b * b)) * (-0.5 / (b * b)) for b in bs)
    elif kernel == "laplacian":
        def value(s, h=None):
            r = safe_pow(s, 0.5)
            return sum(torch.exp(-r / b) for b in each(h))

        def deriv(s, v, h=None):
            # d/ds exp(-sqrt(s)/b) = -exp(-r/b) / (2 b r) is unbounded at s = 0, where the pair's gradient is 0
            # (x_i - x_j = 0). It must be exactly 0 there, not merely finite: the fused backward forms
            # sum_j G_ij x_i - sum_j G_ij x_j, and a huge G_ij of a coincident pair swamps the other pairs' terms
            # by rounding (a 15 % gradient error when two members other than the first coincide).
            r = s.sqrt().clamp_min(torch.finfo(s.dtype).tiny)
            g = sum(torch.exp(-r / b) * (-0.5 / b) for b in each(h)) / r
            return g.masked_fill_(s == 0, 0.0)
    else:  # inverse multiquadric
        def value(s, h=None):
            return sum(torch.rsqrt(1.0 + s / (b * b)) for b in each(h))

        def deriv(s, v, h=None):
            bs = each(h)
            if len(bs) == 1:
                return v.pow_(3).mul_(-0.5 / (bs[0] * bs[0]))
            return sum(torch.rsqrt(1.0 + s / (b * b)) ** 3 * (-0.5 / (b * b)) for b in bs)
    return Radial(value, deriv)


def diagonal_included(estimator: str) -> bool:
    return estimator == "nrg"


def _median_bandwidth(x: torch.Tensor) -> torch.Tensor:
    """Median heuristic per observation: median distance between distinct members (no gradient). ``(B,)``."""
    with torch.no_grad():
        s = pairwise_sq_dist(x.detach())  # (B, m, m)
        m = s.shape[-1]
        iu = torch.triu_indices(m, m, offset=1, device=s.device)
        med = s[:, iu[0], iu[1]].median(dim=-1).values.sqrt()  # (B,)
        # Degenerate ensembles (all members equal) fall back to bandwidth 1.
        return torch.where(med > 0, med, torch.ones_like(med))


def check_bandwidth(bandwidth) -> str | list[float]:
    """Validate ``bandwidth`` without the data: ``"median"``, or the list of positive bandwidths as floats.

    A positive number (a Python number, a numpy scalar or a 0-d tensor) or a non-empty sequence of them.
    """
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise ValueError(
                f"bandwidth must be a positive number, 'median' or a sequence of positive numbers; "
                f"got {bandwidth!r}"
            )
        return bandwidth
    if isinstance(bandwidth, Sequence):
        values = list(bandwidth)
        if not values:
            raise ValueError("bandwidth sequence must not be empty")
        return [check_positive_number("bandwidth", v) for v in values]
    return [check_positive_number("bandwidth", bandwidth)]


def _bandwidths(bandwidth, x: torch.Tensor) -> tuple[list[float] | None, torch.Tensor | None]:
    """Validate ``bandwidth``; return fixed bandwidths, or ``None`` and the per-observation median ``(B,)``."""
    checked = check_bandwidth(bandwidth)
    if checked != "median":
        return checked, None
    if x.shape[0] < 2:
        raise ValueError(
            f"bandwidth='median' is the median distance between distinct members and needs m >= 2 "
            f"members; got m={x.shape[0]}"
        )
    return None, _median_bandwidth(x)


def kernel_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    kernel: str | KernelFn = "gaussian",
    bandwidth: float | str | Sequence[float] = 1.0,
    beta: float = 1.0,
    estimator: str = "fair",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
    nan_policy: str = "propagate",
    process_group=None,
) -> torch.Tensor:
    r"""Kernel score of an ensemble against an observed target; lower is better.

    .. math::

        S_k(F, y) = \tfrac12\mathbb{E}\,k(X, X') + \tfrac12 k(y, y) - \mathbb{E}\,k(X, y),

    which is half the squared maximum mean discrepancy between :math:`F` and the point mass at :math:`y`; it is
    strictly proper when :math:`k` is characteristic (Gaussian, Laplacian, inverse multiquadric) and proper for
    any positive definite kernel. Negatively oriented, and equal to ``scoringrules``' ``gksmv_ensemble`` for
    ``kernel="gaussian", bandwidth=1.0``.

    Kernels (:math:`r = \|x - x'\|`, bandwidth :math:`h`):

    * ``"gaussian"``: :math:`\exp(-r^2 / (2h^2))`;
    * ``"laplacian"``: :math:`\exp(-r / h)`;
    * ``"inverse_multiquadric"``: :math:`(1 + r^2/h^2)^{-1/2}`;
    * ``"energy"``: :math:`-r^\beta` (conditionally negative definite; the kernel score is then exactly the energy
      score, and ``bandwidth`` is ignored);
    * a callable ``k(a, b)`` taking two broadcastable tensors ``(..., d)`` and returning ``(...)``
      (evaluated pair by pair: slower and with a dense :math:`(B, m, m, d)` intermediate). Its gradient is
      autograd's: for a kernel of the distance, build the distance with ``torch.linalg.vector_norm`` (gradient 0
      at ``a == b``) rather than ``sqrt`` of a sum (``0 * inf = NaN`` where members coincide, and on the
      :math:`i = j` terms of ``"nrg"``; ``"fair"`` never differentiates the :math:`i = j` terms).

    Built-in kernels give every pair of coincident members a zero gradient, in any position of the ensemble,
    also for kernels whose derivative is unbounded at distance 0 (``"laplacian"``, ``"energy"`` with
    :math:`\beta < 1`).

    ``bandwidth`` is a positive float, ``"median"`` (the median distance between distinct members of each
    ensemble, treated as a constant for gradients), or a sequence of floats: the kernel is then the sum of the
    kernels at each bandwidth (a multi-scale kernel, characteristic if one of them is).

    .. warning::
        ``bandwidth="median"`` makes the kernel depend on the forecast itself, and the resulting score is **not
        proper**: a forecast wider than the truth gets a wider kernel and a lower expected score (the propriety
        tests exhibit this). Use it for evaluation heuristics only; train with a fixed bandwidth or a fixed
        multi-scale set (e.g. the median distance of the *data*, computed once).

    Estimators: ``"fair"`` (default; :math:`\frac{1}{m(m-1)}\sum_{i\ne j} k(x_i, x_j)`, unbiased), ``"nrg"``
    (includes :math:`i = j`), ``"akr"`` and ``"akr_circperm"`` (:math:`O(m)`, circular partners as in
    :func:`energy_score`).

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        kernel: a built-in kernel name or a callable.
        bandwidth: positive float, ``"median"``, or a sequence of positive floats.
        beta: exponent of the ``"energy"`` kernel, in :math:`(0, 2]`.
        estimator: ``"fair"`` | ``"nrg"`` | ``"akr"`` | ``"akr_circperm"``.
        member_weights: optional non-negative weights of shape ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        nan_policy: ``"propagate"`` | ``"omit"`` | ``"raise"``, as in
            :func:`~scoringrules_torch.functional.crps_ensemble` (with ``"omit"`` the ``"median"`` bandwidth
            also sees the dropped members, replaced by the target).
        process_group: ``torch.distributed`` group over which the members are split, as in
            :func:`~scoringrules_torch.functional.crps_ensemble`.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`
        - target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The kernel score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional import kernel_score
        >>> samples = torch.zeros(2, 1, 3)  # both members at the target
        >>> kernel_score(samples, torch.zeros(1, 3))  # 1/2 + 1/2 - 1
        tensor(0.)
        >>> far = torch.full((2, 1, 3), 100.0)  # both members far away: 1/2 * 1 + 1/2 * 1 - 0
        >>> kernel_score(far, torch.zeros(1, 3))
        tensor(1.)

    References:
        Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and estimation. JASA 102.
        Gretton, A. et al. (2012). A kernel two-sample test. JMLR 13.
    """
    check_reduction(reduction)
    check_choice("estimator", estimator, KERNEL_ESTIMATORS)
    if nan_policy != "propagate" or process_group is not None:
        return ensemble_extensions(kernel_score, samples, target, event_rank=1, sample_dim=sample_dim,
                                   member_weights=member_weights, reduction=reduction, nan_policy=nan_policy,
                                   process_group=process_group, min_members=_MIN_MEMBERS.get(estimator, 1),
                                   kernel=kernel, bandwidth=bandwidth, beta=beta, estimator=estimator)
    if not callable(kernel):
        check_choice("kernel", kernel, KERNELS)
    if kernel == "energy":
        beta = check_beta(beta)
    x, y, w, batch_shape = flatten_multivariate(
        samples,
        target,
        sample_dim=sample_dim,
        min_members=_MIN_MEMBERS.get(estimator, 1),
        member_weights=member_weights,
    )
    m = x.shape[0]
    if callable(kernel):
        _bandwidths(bandwidth, x)  # validate anyway, for consistent errors
        k_xy = kernel(x, y.unsqueeze(0))  # (m, B)
        k_yy = kernel(y, y)  # (B,)
        if estimator in ("fair", "nrg"):
            xb = x.transpose(0, 1)
            a, b = xb.unsqueeze(2), xb.unsqueeze(1)
            if not diagonal_included(estimator):
                # The i == i terms are dropped: evaluate them on detached copies so that a kernel whose gradient
                # is undefined at a == b (e.g. one built on sqrt) cannot put 0 * inf = NaN into every gradient.
                eye = torch.eye(m, dtype=torch.bool, device=x.device).unsqueeze(-1)
                a, b = a.expand(-1, -1, m, -1), b.expand(-1, m, -1, -1)
                a, b = torch.where(eye, a.detach(), a), torch.where(eye, a.detach(), b)
            k_xx = kernel(a, b)  # (B, m, m)
        else:
            shift = 1 if estimator == "akr" else m // 2
            k_shift = kernel(x, torch.roll(x, shifts=shift, dims=0))  # (m, B)
    else:
        bandwidths, h = _bandwidths(bandwidth, x) if kernel != "energy" else ([], None)
        radial = _radial(kernel, bandwidths, beta)
        k_xy = radial.value(sq_dist_to_target(x, y), h)  # a per-observation h (B,) broadcasts over (m, B)
        k_yy = radial.value(torch.zeros_like(y[:, 0]), h)
        if estimator in ("fair", "nrg"):
            total = pairwise_radial_sum(x, w, radial, diagonal=diagonal_included(estimator), h=h)
        else:
            shift = 1 if estimator == "akr" else m // 2
            k_shift = radial.value(shifted_sq_dist(x, shift), h)

    cross = k_xy.mean(0) if w is None else (w * k_xy).sum(0)
    if estimator in ("fair", "nrg"):
        if callable(kernel):
            if not diagonal_included(estimator):
                k_xx = k_xx.masked_fill(torch.eye(m, dtype=torch.bool, device=x.device), 0.0)
            wb = None if w is None else w.transpose(0, 1)
            total = k_xx.sum((-2, -1)) if wb is None else torch.einsum("bi,bij,bj->b", wb, k_xx, wb)
        if w is None:
            within = total / (m * (m - 1) if estimator == "fair" else m * m)
        else:
            within = total if estimator == "nrg" else total / (1.0 - (w * w).sum(0))
    else:
        within = k_shift.mean(0) if w is None else (w * k_shift).sum(0)
    values = 0.5 * within + 0.5 * k_yy - cross
    return reduce(values.reshape(batch_shape), reduction)
