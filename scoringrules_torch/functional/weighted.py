r"""Weighted ensemble scores: threshold-weighted (``tw``), outcome-weighted (``ow``) and vertically re-scaled (``vr``)
versions of the CRPS, the energy score, the variogram score and the kernel scores (Allen, Ginsbourger & Ziegel
2023), built on :func:`crps_ensemble`, :func:`energy_score`, :func:`variogram_score` and :func:`kernel_score`.

* **threshold-weighted**: the score of the forecast and the observation after a *chaining function* :math:`v`,
  :math:`\mathrm{tw}S(F, y) = S(v_\# F, v(y))`; the default chaining clamps to :math:`[a, b]` (componentwise for
  multivariate scores), which for the CRPS is the indicator weight :math:`w(z) = \mathbf 1\{a \le z \le b\}` of
  Gneiting & Ranjan (2011).
* **outcome-weighted**: with a weight function :math:`w \ge 0`, :math:`\mathrm{ow}S(F, y) = w(y)\,S(F_w, y)`, where
  :math:`F_w` is :math:`F` re-weighted by :math:`w` (members re-weighted by :math:`w(x_i)`, normalised).
* **vertically re-scaled**: the kernel score of the kernel :math:`w(x)\,k(x, x')\,w(x')`; for the CRPS and the
  energy score :math:`k(x, x') = \|x\|^\beta + \|x'\|^\beta - \|x - x'\|^\beta` (origin :math:`x_0 = 0`), which
  gives :math:`\mathbb E[\rho(X, y) w(X)] w(y) - \tfrac12\mathbb E[\rho(X, X') w(X) w(X')] + (\mathbb E[\rho(X,
  0) w(X)] - \rho(y, 0) w(y))(\mathbb E w(X) - w(y))` with :math:`\rho(x, x') = \|x - x'\|^\beta`.

All are proper (not strictly: they ignore what the weight ignores). Callables are vectorised: ``v_func`` maps a
tensor to a tensor of the same shape (univariate: elementwise; multivariate: on the last axis, ``(..., d) ->
(..., d)``), ``w_func`` returns non-negative weights, elementwise (univariate) or ``(..., d) -> (...)``
(multivariate).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._internal.checks import check_choice, check_floating, move_sample_dim
from .._internal.reduction import check_reduction, reduce
from ._argcheck import check_nonnegative
from .crps_sample import CRPS_ESTIMATORS, crps_ensemble
from .energy import ENERGY_ESTIMATORS, check_beta, energy_score
from .kernel import KERNEL_ESTIMATORS, kernel_score
from .variogram import VARIOGRAM_ESTIMATORS, variogram_score

__all__ = [
    "owcrps_ensemble",
    "owenergy_score",
    "owkernel_score",
    "owvariogram_score",
    "twcrps_ensemble",
    "twenergy_score",
    "twkernel_score",
    "twvariogram_score",
    "vrcrps_ensemble",
    "vrenergy_score",
    "vrkernel_score",
    "vrvariogram_score",
]

Fn = Callable[[torch.Tensor], torch.Tensor]
_INF = math.inf
_VR_ESTIMATORS = ("fair", "nrg")
_VR_KERNELS = ("gaussian", "laplacian", "inverse_multiquadric")


# ------------------------------------------------------------------------------------------------- helpers


def _bound(name: str, v, like: torch.Tensor):
    if isinstance(v, torch.Tensor):
        check_floating(name, v)
        return v.to(device=like.device, dtype=like.dtype)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise TypeError(f"{name} must be a float (possibly infinite) or a tensor; got {v!r}")
    return float(v)


def _is_default(a, b) -> bool:
    return (
        not isinstance(a, torch.Tensor)
        and not isinstance(b, torch.Tensor)
        and a == -_INF
        and b == _INF
    )


def _bounds(a, b, like: torch.Tensor):
    a, b = _bound("a", a, like), _bound("b", b, like)
    ok = (
        (torch.as_tensor(a) < torch.as_tensor(b)).all()
        if not torch.compiler.is_compiling()
        else True
    )
    if not bool(ok):
        raise ValueError(
            f"the threshold interval needs a < b (componentwise); got a={a!r}, b={b!r}"
        )
    return a, b


def _check_callable(name: str, f) -> None:
    if f is not None and not callable(f):
        raise TypeError(f"{name} must be callable or None; got {type(f).__name__}")


def _chain(v_func: Fn | None, a, b, x: torch.Tensor) -> Fn:
    """The chaining function: ``v_func``, or clamping to ``[a, b]``."""
    _check_callable("v_func", v_func)
    if v_func is not None:
        if not _is_default(a, b):
            raise ValueError("give either v_func or the thresholds a, b, not both")
        return v_func
    lo, hi = _bounds(a, b, x)
    return lambda t: (
        torch.clamp(t, min=lo, max=hi)
        if isinstance(lo, float) and isinstance(hi, float)
        else (
            torch.minimum(
                torch.maximum(t, torch.as_tensor(lo, dtype=t.dtype, device=t.device)),
                torch.as_tensor(hi, dtype=t.dtype, device=t.device),
            )
        )
    )


def _weight_fn(w_func: Fn | None, a, b, x: torch.Tensor, *, multivariate: bool) -> Fn:
    """The weight function: ``w_func``, or the indicator of ``[a, b]`` (of the box, for multivariate)."""
    _check_callable("w_func", w_func)
    if w_func is not None:
        if not _is_default(a, b):
            raise ValueError("give either w_func or the thresholds a, b, not both")
        return w_func
    lo, hi = _bounds(a, b, x)

    def indicator(t: torch.Tensor) -> torch.Tensor:
        inside = (t >= torch.as_tensor(lo, dtype=t.dtype, device=t.device)) & (
            t <= torch.as_tensor(hi, dtype=t.dtype, device=t.device)
        )
        return (inside.all(-1) if multivariate else inside).to(t.dtype)

    return indicator


def _apply_chain(v: Fn, t: torch.Tensor, name: str) -> torch.Tensor:
    out = v(t)
    if not isinstance(out, torch.Tensor) or out.shape != t.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"v_func must return a tensor of the shape of its input {tuple(t.shape)} ({name}); got {got}"
        )
    return out


def _apply_weight(w: Fn, t: torch.Tensor, shape, name: str, dtype: torch.dtype) -> torch.Tensor:
    out = w(t)
    if not isinstance(out, torch.Tensor):
        out = torch.as_tensor(out, dtype=dtype, device=t.device)
    if out.shape != shape:
        raise ValueError(
            f"w_func must return one weight per {'member' if name == 'samples' else 'observation'}, shape "
            f"{tuple(shape)} for {name} of shape {tuple(t.shape)}; got {tuple(out.shape)}"
        )
    out = out.to(dtype)
    return check_nonnegative("w_func", out, what=f"({name})")


def _prepare(samples, target, sample_dim, event_rank):
    samples = move_sample_dim(check_floating("samples", samples), sample_dim)
    check_floating("target", target)
    if samples.dim() != target.dim() + 1 or samples.shape[1:] != target.shape:
        expected = "(m, *batch, d)" if event_rank else "(m, *batch)"
        raise ValueError(
            f"samples must have shape {expected} = (m, *target.shape) with the sample axis first (see "
            f"sample_dim); got samples shape {tuple(samples.shape)} and target shape {tuple(target.shape)}"
        )
    if event_rank and target.dim() < 1:
        raise ValueError(f"target must have shape (*batch, d); got shape {tuple(target.shape)}")
    return samples, target


def _outcome_weights(samples, target, w_func, a, b, member_weights, *, multivariate):
    """Member weights ``member_weights * w(x)`` (sample axis first) and observation weights ``w(y)``."""
    dtype = torch.promote_types(samples.dtype, target.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    w = _weight_fn(w_func, a, b, samples, multivariate=multivariate)
    shape_x = samples.shape[:-1] if multivariate else samples.shape
    shape_y = target.shape[:-1] if multivariate else target.shape
    wx = _apply_weight(w, samples, shape_x, "samples", dtype)
    wy = _apply_weight(w, target, shape_y, "target", dtype)
    if member_weights is not None:
        check_floating("member_weights", member_weights)
        mw = member_weights.to(dtype)
        if mw.dim() == 1 and mw.shape[0] == shape_x[0]:
            mw = mw.reshape((-1,) + (1,) * (len(shape_x) - 1))
        check_nonnegative("member_weights", mw)
        wx = wx * mw
    return wx, wy


def _ow_combine(wx: torch.Tensor, wy: torch.Tensor, score) -> torch.Tensor:
    """``w(y) S(F_w, y)``: 0 where ``w(y) = 0``; NaN where ``w(y) > 0`` but every member has weight zero.

    Rows without member weight are scored with uniform weights internally, so their (unused) values and gradients
    stay finite.
    """
    empty = wx.sum(0) == 0
    safe = torch.where(empty.unsqueeze(0), torch.ones_like(wx), wx)
    values = score(safe)
    out = torch.where(empty, torch.full_like(values, float("nan")), wy * values)
    return torch.where(wy == 0, torch.zeros_like(out), out)


def _energy_kernel(beta: float, weight: Fn) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``w(a) w(b) (|a|^beta + |b|^beta - |a - b|^beta)`` on ``(..., d)`` tensors, with finite gradients at 0."""

    def power(s: torch.Tensor) -> torch.Tensor:
        pos = s > 0
        return torch.where(
            pos, torch.where(pos, s, torch.ones_like(s)) ** (beta / 2.0), torch.zeros_like(s)
        )

    def k(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        s_uv = ((u - v) ** 2).sum(-1)
        return weight(u) * weight(v) * (power((u**2).sum(-1)) + power((v**2).sum(-1)) - power(s_uv))

    return k


def _radial_kernel(
    kernel, bandwidth, weight: Fn
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if callable(kernel):

        def k(u, v):
            return weight(u) * kernel(u, v) * weight(v)

        return k
    check_choice("kernel", kernel, _VR_KERNELS)
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)) or not bandwidth > 0:
        raise ValueError(f"bandwidth must be a positive float; got {bandwidth!r}")
    h = float(bandwidth)

    def k(u, v):
        s = ((u - v) ** 2).sum(-1)
        if kernel == "gaussian":
            base = torch.exp(-0.5 * s / (h * h))
        elif kernel == "laplacian":
            pos = s > 0
            base = torch.exp(
                -torch.where(
                    pos, torch.where(pos, s, torch.ones_like(s)).sqrt(), torch.zeros_like(s)
                )
                / h
            )
        else:
            base = torch.rsqrt(1.0 + s / (h * h))
        return weight(u) * base * weight(v)

    return k


def _as_vector_weight(w: Fn, *, multivariate: bool) -> Fn:
    """A weight on ``(..., d)`` tensors (univariate weights act on ``(..., 1)``), checked non-negative."""
    if multivariate:
        return lambda t: w(t).to(t.dtype)
    return lambda t: w(t.squeeze(-1)).to(t.dtype)


# ------------------------------------------------------------------------------------------------- CRPS


def twcrps_ensemble(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    v_func: Fn | None = None,
    a: float = -_INF,
    b: float = _INF,
    estimator: str = "fair",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Threshold-weighted CRPS of a univariate ensemble, :math:`\mathrm{CRPS}(v_\# F, v(y))`; lower is better.

    .. math::

        \mathrm{twCRPS}(F, y) = \int \big(F(z) - \mathbf 1\{y \le z\}\big)^2\,dv(z)
        = \mathbb E|v(X) - v(y)| - \tfrac12\mathbb E|v(X) - v(X')|,

    for a non-decreasing chaining function :math:`v`; ``v_func=None`` with thresholds ``a``, ``b`` uses
    :math:`v(z) = \min(\max(z, a), b)`, the chaining function of the weight :math:`\mathbf 1\{a \le z \le b\}`.
    Proper; not strictly proper (blind outside :math:`[a, b]`). Every estimator of :func:`crps_ensemble` applies.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        v_func: chaining function, elementwise (``None``: clamp to ``[a, b]``).
        a: lower threshold (with ``v_func=None``).
        b: upper threshold (with ``v_func=None``).
        estimator: an estimator of :func:`crps_ensemble` (default ``"fair"``; ``scoringrules`` uses ``"qd"``).
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch})`; target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The threshold-weighted CRPS.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.weighted import twcrps_ensemble
        >>> x = torch.tensor([[-3.0], [0.5]])  # members below the threshold all look alike
        >>> twcrps_ensemble(x, torch.tensor([-1.0]), a=0.0, estimator="nrg")  # CRPS of {0, 0.5} at 0
        tensor(0.1250)

    References:
        Gneiting, T. & Ranjan, R. (2011). Comparing density forecasts using threshold- and quantile-weighted
        scoring rules. J. Bus. Econ. Stat. 29.
        Allen, S., Ginsbourger, D. & Ziegel, J. (2023). Evaluating forecasts for high-impact events using
        transformed kernel scores. SIAM/ASA J. Uncertainty Quantification 11.
    """
    check_reduction(reduction)
    check_choice("estimator", estimator, CRPS_ESTIMATORS)
    x, y = _prepare(samples, target, sample_dim, 0)
    v = _chain(v_func, a, b, x)
    return crps_ensemble(
        _apply_chain(v, x, "samples"),
        _apply_chain(v, y, "target"),
        estimator=estimator,
        member_weights=member_weights,
        reduction=reduction,
    )


def owcrps_ensemble(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    w_func: Fn | None = None,
    a: float = -_INF,
    b: float = _INF,
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Outcome-weighted CRPS of a univariate ensemble, :math:`w(y)\,\mathrm{CRPS}(F_w, y)`; lower is better.

    .. math::

        \mathrm{owCRPS}(F, y) = w(y)\Big(\mathbb E_{F_w}|X - y| - \tfrac12 \mathbb E_{F_w}|X - X'|\Big),
        \qquad dF_w(x) \propto w(x)\,dF(x),

    estimated with the plug-in (``"nrg"``) estimator on the members re-weighted by :math:`w(x_i)` (times
    ``member_weights``), as ``scoringrules``. Proper, not strictly. Zero where :math:`w(y) = 0`; undefined (NaN)
    where :math:`w(y) > 0` but every member has weight zero (``scoringrules`` gives NaN in both cases).

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        w_func: non-negative weight function, elementwise (``None``: :math:`\mathbf 1\{a \le z \le b\}`).
        a: lower threshold (with ``w_func=None``).
        b: upper threshold (with ``w_func=None``).
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch})`; target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The outcome-weighted CRPS.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.weighted import owcrps_ensemble
        >>> x = torch.tensor([[-3.0], [0.5], [1.5]])
        >>> owcrps_ensemble(x, torch.tensor([1.0]), a=0.0)  # CRPS of {0.5, 1.5} at 1 (member -3 weighs 0)
        tensor(0.2500)
    """
    check_reduction(reduction)
    x, y = _prepare(samples, target, sample_dim, 0)
    wx, wy = _outcome_weights(x, y, w_func, a, b, member_weights, multivariate=False)
    values = _ow_combine(
        wx, wy, lambda mw: crps_ensemble(x, y, estimator="nrg", member_weights=mw, reduction="none")
    )
    return reduce(values, reduction)


def vrcrps_ensemble(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    w_func: Fn | None = None,
    a: float = -_INF,
    b: float = _INF,
    estimator: str = "fair",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Vertically re-scaled CRPS of a univariate ensemble; lower is better.

    .. math::

        \mathrm{vrCRPS}(F, y) = \mathbb E\big[|X - y|\,w(X)\big]w(y) - \tfrac12\mathbb E\big[|X - X'|\,w(X)w(X')\big]
        + \big(\mathbb E[|X|\,w(X)] - |y|\,w(y)\big)\big(\mathbb E[w(X)] - w(y)\big),

    the kernel score of :math:`w(x)\,(|x| + |x'| - |x - x'|)\,w(x')` (Allen et al. 2023). Proper, not strictly.
    Estimators: ``"fair"`` (default; pairs :math:`i \ne j`) and ``"nrg"`` (all pairs, as ``scoringrules``). Memory
    :math:`O(B m^2)`.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        w_func: non-negative weight function, elementwise (``None``: :math:`\mathbf 1\{a \le z \le b\}`).
        a: lower threshold (with ``w_func=None``).
        b: upper threshold (with ``w_func=None``).
        estimator: ``"fair"`` | ``"nrg"``.
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch})`; target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The vertically re-scaled CRPS.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.crps_sample import crps_ensemble
        >>> from scoringrules_torch.functional.weighted import vrcrps_ensemble
        >>> x, y = torch.randn(8, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
        >>> torch.allclose(vrcrps_ensemble(x, y), crps_ensemble(x, y))  # w = 1: the CRPS
        True
    """
    check_reduction(reduction)
    check_choice("estimator", estimator, _VR_ESTIMATORS)
    x, y = _prepare(samples, target, sample_dim, 0)
    w = _weight_fn(w_func, a, b, x, multivariate=False)
    _outcome_weights(
        x, y, w, -_INF, _INF, member_weights, multivariate=False
    )  # validates the weights
    k = _energy_kernel(1.0, _as_vector_weight(w, multivariate=False))
    one = y.dim() == 0  # a single observation: the kernel score needs an explicit batch dimension
    xe, ye = (x.unsqueeze(1), y.unsqueeze(0)) if one else (x, y)
    out = kernel_score(
        xe.unsqueeze(-1),
        ye.unsqueeze(-1),
        kernel=k,
        estimator=estimator,
        member_weights=member_weights,
        reduction=reduction,
    )
    return out.reshape(()) if one else out


# ------------------------------------------------------------------------------------------------- energy


def twenergy_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    v_func: Fn | None = None,
    a=-_INF,
    b=_INF,
    beta: float = 1.0,
    estimator: str = "fair",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Threshold-weighted energy score, :math:`\mathrm{ES}_\beta(v_\# F, v(y))`; lower is better.

    The energy score of the chained members :math:`v(x_i)` against :math:`v(y)`, for a chaining function
    :math:`v: \mathbb R^d \to \mathbb R^d` (``v_func``, applied to ``(..., d)`` tensors) or, with
    ``v_func=None``, componentwise clamping to the box :math:`[a, b]` (``a``, ``b`` floats or ``(d,)`` tensors).
    Proper, not strictly. Every estimator of :func:`energy_score` applies.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        v_func: chaining function on ``(..., d)`` tensors (``None``: clamp to ``[a, b]``).
        a: lower thresholds (with ``v_func=None``).
        b: upper thresholds (with ``v_func=None``).
        beta: exponent in :math:`(0, 2]`.
        estimator: an estimator of :func:`energy_score` (default ``"fair"``; ``scoringrules``: ``"nrg"``).
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The threshold-weighted energy score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.weighted import twenergy_score
        >>> x = torch.tensor([[[-2.0, 3.0]], [[-1.0, 4.0]]])
        >>> twenergy_score(x, torch.tensor([[-5.0, 9.0]]), a=0.0)  # (0, 3), (0, 4) vs (0, 9): (6 + 5)/2 - 1/2
        tensor(5.)
    """
    check_reduction(reduction)
    check_choice("estimator", estimator, ENERGY_ESTIMATORS)
    x, y = _prepare(samples, target, sample_dim, 1)
    v = _chain(v_func, a, b, x)
    return energy_score(
        _apply_chain(v, x, "samples"),
        _apply_chain(v, y, "target"),
        beta=beta,
        estimator=estimator,
        member_weights=member_weights,
        reduction=reduction,
    )


def owenergy_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    w_func: Fn | None = None,
    a=-_INF,
    b=_INF,
    beta: float = 1.0,
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Outcome-weighted energy score, :math:`w(y)\,\mathrm{ES}_\beta(F_w, y)` (plug-in estimator); lower is better.

    Members re-weighted by :math:`w(x_i)` (times ``member_weights``) and the ``"nrg"`` estimator, as
    ``scoringrules``. ``w_func`` maps ``(..., d)`` to ``(...)``; ``None`` uses the indicator of the box
    :math:`[a, b]`. Proper, not strictly; 0 where :math:`w(y) = 0`, NaN where :math:`w(y) > 0` and every member
    weighs 0.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        w_func: non-negative weight function ``(..., d) -> (...)``.
        a: lower thresholds of the box (with ``w_func=None``).
        b: upper thresholds of the box (with ``w_func=None``).
        beta: exponent in :math:`(0, 2]`.
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The outcome-weighted energy score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.weighted import owenergy_score
        >>> x = torch.tensor([[[3.0, 4.0]], [[-9.0, 0.0]]])
        >>> owenergy_score(x, torch.zeros(1, 2), a=-1.0)  # only the first member counts: ||(3, 4)||
        tensor(5.)
    """
    check_reduction(reduction)
    x, y = _prepare(samples, target, sample_dim, 1)
    wx, wy = _outcome_weights(x, y, w_func, a, b, member_weights, multivariate=True)
    values = _ow_combine(
        wx,
        wy,
        lambda mw: energy_score(
            x, y, beta=beta, estimator="nrg", member_weights=mw, reduction="none"
        ),
    )
    return reduce(values, reduction)


def vrenergy_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    w_func: Fn | None = None,
    a=-_INF,
    b=_INF,
    beta: float = 1.0,
    estimator: str = "fair",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Vertically re-scaled energy score; lower is better.

    .. math::

        \mathrm{vrES}(F, y) = \mathbb E[\|X - y\|^\beta w(X)]w(y) - \tfrac12\mathbb E[\|X - X'\|^\beta w(X)w(X')]
        + \big(\mathbb E[\|X\|^\beta w(X)] - \|y\|^\beta w(y)\big)\big(\mathbb E w(X) - w(y)\big).

    Proper, not strictly. Estimators ``"fair"`` (default) and ``"nrg"`` (as ``scoringrules``). Memory
    :math:`O(B m^2 d)`.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        w_func: non-negative weight function ``(..., d) -> (...)`` (``None``: indicator of the box ``[a, b]``).
        a: lower thresholds of the box (with ``w_func=None``).
        b: upper thresholds of the box (with ``w_func=None``).
        beta: exponent in :math:`(0, 2]`.
        estimator: ``"fair"`` | ``"nrg"``.
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The vertically re-scaled energy score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.energy import energy_score
        >>> from scoringrules_torch.functional.weighted import vrenergy_score
        >>> x, y = torch.randn(6, 4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
        >>> torch.allclose(vrenergy_score(x, y), energy_score(x, y))  # w = 1: the energy score
        True
    """
    check_reduction(reduction)
    check_choice("estimator", estimator, _VR_ESTIMATORS)
    beta = check_beta(beta)
    x, y = _prepare(samples, target, sample_dim, 1)
    w = _weight_fn(w_func, a, b, x, multivariate=True)
    _outcome_weights(
        x, y, w, -_INF, _INF, member_weights, multivariate=True
    )  # validates the weights
    k = _energy_kernel(beta, _as_vector_weight(w, multivariate=True))
    return kernel_score(
        x, y, kernel=k, estimator=estimator, member_weights=member_weights, reduction=reduction
    )


# ------------------------------------------------------------------------------------------------- variogram


def twvariogram_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    v_func: Fn | None = None,
    a=-_INF,
    b=_INF,
    p: float = 0.5,
    weights: torch.Tensor | None = None,
    estimator: str = "nrg",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Threshold-weighted variogram score, :math:`\mathrm{VS}_p(v_\# F, v(y))`; lower is better.

    The variogram score of the chained members against the chained observation (chaining ``v_func`` on
    ``(..., d)`` tensors, or componentwise clamping to ``[a, b]``). Proper, not strictly.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        v_func: chaining function on ``(..., d)`` tensors (``None``: clamp to ``[a, b]``).
        a: lower thresholds (with ``v_func=None``).
        b: upper thresholds (with ``v_func=None``).
        p: order of the variogram.
        weights: optional pair weights ``(d, d)`` or ``(*batch, d, d)`` (see :func:`variogram_score`).
        estimator: ``"nrg"`` (default, as ``scoringrules``) | ``"fair"``.
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The threshold-weighted variogram score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.weighted import twvariogram_score
        >>> x = torch.tensor([[[0.0, 9.0]], [[0.0, 5.0]]])
        >>> twvariogram_score(x, torch.tensor([[0.0, 1.0]]), b=1.0, p=1.0)  # all clamp to (0, 1)
        tensor(0.)
    """
    check_reduction(reduction)
    check_choice("estimator", estimator, VARIOGRAM_ESTIMATORS)
    x, y = _prepare(samples, target, sample_dim, 1)
    v = _chain(v_func, a, b, x)
    return variogram_score(
        _apply_chain(v, x, "samples"),
        _apply_chain(v, y, "target"),
        p=p,
        weights=weights,
        estimator=estimator,
        member_weights=member_weights,
        reduction=reduction,
    )


def owvariogram_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    w_func: Fn | None = None,
    a=-_INF,
    b=_INF,
    p: float = 0.5,
    weights: torch.Tensor | None = None,
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Outcome-weighted variogram score, :math:`w(y)\,\mathrm{VS}_p(F_w, y)` (plug-in); lower is better.

    Members re-weighted by :math:`w(x_i)` (times ``member_weights``); ``w_func`` maps ``(..., d)`` to ``(...)``
    (``None``: indicator of the box ``[a, b]``). Proper, not strictly; 0 where :math:`w(y) = 0`, NaN where
    :math:`w(y) > 0` and every member weighs 0.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        w_func: non-negative weight function ``(..., d) -> (...)``.
        a: lower thresholds of the box (with ``w_func=None``).
        b: upper thresholds of the box (with ``w_func=None``).
        p: order of the variogram.
        weights: optional pair weights ``(d, d)`` or ``(*batch, d, d)``.
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The outcome-weighted variogram score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.weighted import owvariogram_score
        >>> x = torch.tensor([[[0.0, 2.0]], [[50.0, 0.0]]])
        >>> owvariogram_score(x, torch.tensor([[0.0, 1.0]]), b=10.0, p=1.0)  # (1 - 2)^2 twice
        tensor(2.)
    """
    check_reduction(reduction)
    x, y = _prepare(samples, target, sample_dim, 1)
    wx, wy = _outcome_weights(x, y, w_func, a, b, member_weights, multivariate=True)
    values = _ow_combine(
        wx,
        wy,
        lambda mw: variogram_score(
            x, y, p=p, weights=weights, estimator="nrg", member_weights=mw, reduction="none"
        ),
    )
    return reduce(values, reduction)


def vrvariogram_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    w_func: Fn | None = None,
    a=-_INF,
    b=_INF,
    p: float = 0.5,
    weights: torch.Tensor | None = None,
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Vertically re-scaled variogram score (plug-in estimator); lower is better.

    With :math:`\gamma_{kl}(x) = |x_k - x_l|^p` the variogram score is the kernel score of the linear kernel
    :math:`2\sum_{kl} w_{kl}\gamma_{kl}(x)\gamma_{kl}(x')` up to a term in :math:`y`; re-scaling it by
    :math:`w(x)w(x')` gives

    .. math::

        \mathrm{vrVS}(F, y) = \sum_{k,l} w_{kl}\Big(\mathbb E\big[w(X)\gamma_{kl}(X)\big] - w(y)\gamma_{kl}(y)\Big)^2,

    which equals the three-term form of ``scoringrules.vrvs_ensemble`` (:math:`O(m d^2)`, no member pairs).
    Proper, not strictly.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        w_func: non-negative weight function ``(..., d) -> (...)`` (``None``: indicator of the box ``[a, b]``).
        a: lower thresholds of the box (with ``w_func=None``).
        b: upper thresholds of the box (with ``w_func=None``).
        p: order of the variogram.
        weights: optional pair weights ``(d, d)`` or ``(*batch, d, d)``.
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The vertically re-scaled variogram score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.variogram import variogram_score
        >>> from scoringrules_torch.functional.weighted import vrvariogram_score
        >>> x, y = torch.randn(6, 4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
        >>> torch.allclose(vrvariogram_score(x, y), variogram_score(x, y))  # w = 1: the variogram score
        True
    """
    check_reduction(reduction)
    x, y = _prepare(samples, target, sample_dim, 1)
    wx, wy = _outcome_weights(x, y, w_func, a, b, None, multivariate=True)
    dtype = wx.dtype
    m, d = x.shape[0], x.shape[-1]
    if member_weights is None:
        pi = torch.full(x.shape[:-1], 1.0 / m, dtype=dtype, device=x.device)
    else:
        check_floating("member_weights", member_weights)
        pi = member_weights.to(dtype)
        if pi.dim() == 1 and pi.shape[0] == m:
            pi = pi.reshape((m,) + (1,) * (x.dim() - 2)).expand(x.shape[:-1])
        if pi.shape != x.shape[:-1]:
            raise ValueError(
                f"member_weights must have shape (m,) or (m, *batch) = {tuple(x.shape[:-1])}; got "
                f"{tuple(member_weights.shape)}"
            )
        check_nonnegative("member_weights", pi)
        pi = pi / pi.sum(0, keepdim=True)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        raise ValueError(f"p must be a positive float; got {p!r}")

    def gamma(t: torch.Tensor) -> torch.Tensor:  # (..., d) -> (..., d, d), finite gradients at 0
        diff = (t.unsqueeze(-1) - t.unsqueeze(-2)).abs()
        pos = diff > 0
        return torch.where(
            pos, torch.where(pos, diff, torch.ones_like(diff)) ** p, torch.zeros_like(diff)
        )

    xd, yd = x.to(dtype), y.to(dtype)
    mean_x = ((pi * wx).unsqueeze(-1).unsqueeze(-1) * gamma(xd)).sum(0)  # (*batch, d, d)
    diff = mean_x - wy.unsqueeze(-1).unsqueeze(-1) * gamma(yd)
    if weights is None:
        values = (diff * diff).sum((-2, -1))
    else:
        check_floating("weights", weights)
        if weights.shape[-2:] != (d, d):
            raise ValueError(
                f"weights must have shape (d, d) = {(d, d)} or (*batch, d, d); got {tuple(weights.shape)}"
            )
        values = (weights.to(dtype) * diff * diff).sum((-2, -1))
    return reduce(values, reduction)


# ------------------------------------------------------------------------------------------------- kernels


def twkernel_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    v_func: Fn | None = None,
    a=-_INF,
    b=_INF,
    kernel="gaussian",
    bandwidth=1.0,
    estimator: str = "fair",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Threshold-weighted kernel score, :math:`S_k(v_\# F, v(y))`; lower is better.

    The kernel score (:func:`kernel_score`) of the chained members against the chained observation (chaining
    ``v_func`` on ``(..., d)`` tensors, or componentwise clamping to ``[a, b]``). For a univariate ensemble add a
    trailing axis of size 1. ``kernel="gaussian", bandwidth=1.0`` is ``scoringrules``' ``twgksmv_ensemble`` /
    ``twgksuv_ensemble``. Proper, not strictly.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        v_func: chaining function on ``(..., d)`` tensors (``None``: clamp to ``[a, b]``).
        a: lower thresholds (with ``v_func=None``).
        b: upper thresholds (with ``v_func=None``).
        kernel: a kernel of :func:`kernel_score` (name or callable).
        bandwidth: its bandwidth.
        estimator: an estimator of :func:`kernel_score` (default ``"fair"``; ``scoringrules``: ``"nrg"``).
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The threshold-weighted kernel score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.weighted import twkernel_score
        >>> x = torch.tensor([[[-4.0]], [[-7.0]]])
        >>> twkernel_score(x, torch.tensor([[-1.0]]), a=0.0)  # everything clamps to 0
        tensor(0.)
    """
    check_reduction(reduction)
    check_choice("estimator", estimator, KERNEL_ESTIMATORS)
    x, y = _prepare(samples, target, sample_dim, 1)
    v = _chain(v_func, a, b, x)
    return kernel_score(
        _apply_chain(v, x, "samples"),
        _apply_chain(v, y, "target"),
        kernel=kernel,
        bandwidth=bandwidth,
        estimator=estimator,
        member_weights=member_weights,
        reduction=reduction,
    )


def owkernel_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    w_func: Fn | None = None,
    a=-_INF,
    b=_INF,
    kernel="gaussian",
    bandwidth=1.0,
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Outcome-weighted kernel score, :math:`w(y)\,S_k(F_w, y)` (plug-in estimator); lower is better.

    Members re-weighted by :math:`w(x_i)` (times ``member_weights``); ``w_func`` maps ``(..., d)`` to ``(...)``
    (``None``: indicator of the box ``[a, b]``). ``kernel="gaussian", bandwidth=1.0`` is ``scoringrules``'
    ``owgksmv_ensemble`` / ``owgksuv_ensemble`` (univariate: a trailing axis of size 1). Proper, not strictly.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        w_func: non-negative weight function ``(..., d) -> (...)``.
        a: lower thresholds of the box (with ``w_func=None``).
        b: upper thresholds of the box (with ``w_func=None``).
        kernel: a kernel of :func:`kernel_score` (name or callable).
        bandwidth: its bandwidth.
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The outcome-weighted kernel score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.weighted import owkernel_score
        >>> x = torch.tensor([[[0.0]], [[-9.0]]])
        >>> owkernel_score(x, torch.zeros(1, 1), a=-1.0)  # only the member at the target counts
        tensor(0.)
    """
    check_reduction(reduction)
    x, y = _prepare(samples, target, sample_dim, 1)
    wx, wy = _outcome_weights(x, y, w_func, a, b, member_weights, multivariate=True)
    values = _ow_combine(
        wx,
        wy,
        lambda mw: kernel_score(
            x,
            y,
            kernel=kernel,
            bandwidth=bandwidth,
            estimator="nrg",
            member_weights=mw,
            reduction="none",
        ),
    )
    return reduce(values, reduction)


def vrkernel_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    w_func: Fn | None = None,
    a=-_INF,
    b=_INF,
    kernel="gaussian",
    bandwidth: float = 1.0,
    estimator: str = "fair",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Vertically re-scaled kernel score: the kernel score of :math:`w(x)\,k(x, x')\,w(x')`; lower is better.

    .. math::

        \mathrm{vr}S_k(F, y) = \tfrac12\mathbb E[k(X, X')w(X)w(X')] + \tfrac12 k(y, y)w(y)^2 - \mathbb E[k(X, y)
        w(X)]\,w(y).

    ``kernel`` is ``"gaussian"``, ``"laplacian"``, ``"inverse_multiquadric"`` (fixed positive ``bandwidth``) or a
    callable ``k(u, v)`` on ``(..., d)`` tensors. ``"gaussian"`` with bandwidth 1 is ``scoringrules``'
    ``vrgksmv_ensemble`` / ``vrgksuv_ensemble`` (univariate: a trailing axis of size 1). Estimators ``"fair"``
    (default) and ``"nrg"`` (as ``scoringrules``). Proper, not strictly. Memory :math:`O(B m^2 d)`.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        w_func: non-negative weight function ``(..., d) -> (...)`` (``None``: indicator of the box ``[a, b]``).
        a: lower thresholds of the box (with ``w_func=None``).
        b: upper thresholds of the box (with ``w_func=None``).
        kernel: ``"gaussian"`` | ``"laplacian"`` | ``"inverse_multiquadric"`` | a callable.
        bandwidth: positive bandwidth of a named kernel.
        estimator: ``"fair"`` | ``"nrg"``.
        member_weights: optional non-negative member weights ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The vertically re-scaled kernel score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.kernel import kernel_score
        >>> from scoringrules_torch.functional.weighted import vrkernel_score
        >>> x, y = torch.randn(6, 4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
        >>> torch.allclose(vrkernel_score(x, y), kernel_score(x, y))  # w = 1: the kernel score
        True
    """
    check_reduction(reduction)
    check_choice("estimator", estimator, _VR_ESTIMATORS)
    x, y = _prepare(samples, target, sample_dim, 1)
    w = _weight_fn(w_func, a, b, x, multivariate=True)
    _outcome_weights(
        x, y, w, -_INF, _INF, member_weights, multivariate=True
    )  # validates the weights
    k = _radial_kernel(kernel, bandwidth, _as_vector_weight(w, multivariate=True))
    return kernel_score(
        x, y, kernel=k, estimator=estimator, member_weights=member_weights, reduction=reduction
    )
