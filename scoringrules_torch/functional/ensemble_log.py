r"""Log scores of an ensemble through a Gaussian kernel density estimate: the ensemble log score and the censored /
conditional likelihood scores of a threshold interval."""

from __future__ import annotations

import math

import torch

from .._internal.checks import check_floating, check_sample_target, compute_dtype, move_sample_dim
from .._internal.reduction import check_reduction, reduce
from ._argcheck import as_tensor_param, check_positive

__all__ = ["clogs_ensemble", "logs_ensemble", "silverman_bandwidth"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def silverman_bandwidth(samples: torch.Tensor, *, sample_dim: int = 0) -> torch.Tensor:
    r"""Silverman's rule-of-thumb bandwidth of a univariate ensemble (as ``scoringrules``).

    .. math::

        h = 1.06\,\min\big(\hat\sigma, \mathrm{IQR}/1.34\big)\, m^{-1/5},

    with :math:`\hat\sigma` the standard deviation with divisor :math:`m - 1` and the interquartile range from
    linearly interpolated quantiles. Differentiable in the members.

    Args:
        samples: ensemble members, sample axis first by default (at least 2).
        sample_dim: the axis of ``samples`` that indexes members.

    Shape:
        - samples: :math:`(m, *\text{batch})`
        - output: :math:`(*\text{batch})`.

    Returns:
        The bandwidths (zero for an ensemble without spread).

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.ensemble_log import silverman_bandwidth
        >>> silverman_bandwidth(torch.tensor([[0.0], [1.0], [2.0], [3.0]]))  # 1.06 min(1.291, 1.5/1.34) 4^(-1/5)
        tensor([0.8992])
    """
    x = move_sample_dim(check_floating("samples", samples), sample_dim)
    m = x.shape[0]
    if m < 2:
        raise ValueError(f"Silverman's bandwidth needs at least 2 members; got m={m}")
    xc = x.to(compute_dtype(x))
    sigma = xc.std(0, correction=1)
    q = torch.quantile(xc, torch.tensor([0.25, 0.75], dtype=xc.dtype, device=xc.device), dim=0)
    iqr = q[1] - q[0]
    return 1.06 * torch.minimum(sigma, iqr / 1.34) * m ** (-0.2)


def _inputs(samples, target, bandwidth, sample_dim):
    x = move_sample_dim(check_floating("samples", samples), sample_dim)
    check_sample_target(x, target, event_rank=0, min_members=2 if bandwidth is None else 1)
    dtype = compute_dtype(x, target)
    x, y = x.to(dtype), target.to(dtype)
    if bandwidth is None:
        h = silverman_bandwidth(x)
    else:
        h = as_tensor_param("bandwidth", bandwidth, y, dtype=dtype)
        try:
            h = torch.broadcast_to(h, y.shape)
        except RuntimeError:
            raise ValueError(
                f"bandwidth must be a float or broadcastable to the batch shape {tuple(y.shape)}; got shape "
                f"{tuple(h.shape)}"
            ) from None
    check_positive("bandwidth" if bandwidth is not None else "the Silverman bandwidth (ensemble spread)", h)
    return x, y, h


def _log_kde(x: torch.Tensor, y: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    z = (y - x) / h
    m = x.shape[0]
    return torch.logsumexp(-0.5 * z * z, dim=0) - math.log(m) - torch.log(h) - _LOG_SQRT_2PI


def logs_ensemble(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    bandwidth=None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Log score of the Gaussian kernel density estimate of a univariate ensemble; lower is better.

    .. math::

        \mathrm{LS}(F, y) = -\log \frac{1}{m}\sum_{i=1}^{m} \frac{1}{h}\,\varphi\Big(\frac{y - x_i}{h}\Big),

    with Silverman's bandwidth (:func:`silverman_bandwidth`, as ``scoringrules.logs_ensemble``) unless
    ``bandwidth`` is given. Computed as a log-sum-exp, so it stays finite in the far tails (``scoringrules``
    takes the log of the summed densities, which underflows to ``inf``). It is the (strictly proper) log score of
    the smoothed forecast; as a score of the distribution the members are drawn from it is a plug-in estimate,
    biased at finite :math:`m`, and with the default bandwidth the kernel depends on the forecast.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        bandwidth: a positive float or tensor broadcastable to the batch shape; ``None``: Silverman's rule (needs
            at least 2 members with spread).
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch})`; target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The ensemble log score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.ensemble_log import logs_ensemble
        >>> logs_ensemble(torch.zeros(3, 1), torch.zeros(1), bandwidth=1.0)  # -log phi(0) = log sqrt(2 pi)
        tensor(0.9189)

    References:
        Silverman, B. W. (1986). Density Estimation for Statistics and Data Analysis.
        Krüger, F., Lerch, S., Thorarinsdottir, T. & Gneiting, T. (2021). Predictive inference based on Markov
        chain Monte Carlo output. Int. Stat. Rev. 89.
    """
    check_reduction(reduction)
    x, y, h = _inputs(samples, target, bandwidth, sample_dim)
    return reduce(-_log_kde(x, y, h), reduction)


def clogs_ensemble(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    a: float = -math.inf,
    b: float = math.inf,
    bandwidth=None,
    censored: bool = True,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Censored or conditional likelihood score of an ensemble's kernel density on :math:`(a, b)`; lower is better.

    With the kernel density :math:`\hat f` and its distribution function :math:`\hat F` (see
    :func:`logs_ensemble`) and :math:`\hat P = \hat F(b) - \hat F(a)`:

    * censored (``censored=True``, default; Diks, Panchenko & van Dijk 2011):
      :math:`-\log \hat f(y)` for :math:`y \in (a, b)`, :math:`-\log(1 - \hat P)` otherwise;
    * conditional (``censored=False``): :math:`-\log \hat f(y) + \log \hat P` for :math:`y \in (a, b)`, 0 otherwise.

    Both focus the log score on the region of interest and are proper (the censored score strictly, for the
    distribution censored outside :math:`(a, b)`; the conditional score is blind to the mass outside). As
    ``scoringrules.clogs_ensemble``. :math:`1 - \hat P` is computed from the two tails,
    :math:`\frac1m\sum_i \Phi(\frac{a - x_i}{h}) + \Phi(\frac{x_i - b}{h})`, in log space.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        a: lower end of the region of interest.
        b: upper end.
        bandwidth: a positive float or tensor broadcastable to the batch shape; ``None``: Silverman's rule.
        censored: the censored (``True``) or conditional (``False``) likelihood score.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch})`; target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The censored or conditional likelihood score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.ensemble_log import clogs_ensemble
        >>> x = torch.zeros(4, 1)
        >>> clogs_ensemble(x, torch.tensor([-1.0]), b=0.0, bandwidth=1.0)  # below b: -log phi(1)
        tensor(1.4189)
        >>> clogs_ensemble(x, torch.tensor([2.0]), b=0.0, bandwidth=1.0)  # above b: -log(1 - Phi(0)) = log 2
        tensor(0.6931)

    References:
        Diks, C., Panchenko, V. & van Dijk, D. (2011). Likelihood-based scoring rules for comparing density
        forecasts in tails. J. Econometrics 163.
    """
    check_reduction(reduction)
    if not isinstance(censored, bool):
        raise TypeError(f"censored must be a bool; got {type(censored).__name__}")
    for name, v in (("a", a), ("b", b)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise TypeError(f"{name} must be a float (possibly infinite); got {v!r}")
    if not a < b:
        raise ValueError(f"the region of interest needs a < b; got a={a!r}, b={b!r}")
    x, y, h = _inputs(samples, target, bandwidth, sample_dim)
    m = x.shape[0]
    log_f = _log_kde(x, y, h)
    za, zb = (a - x) / h, (b - x) / h
    log_m = math.log(m)
    inside = (y > a) & (y < b)
    if censored:
        # log(1 - P) = log( mean Phi(za) + mean Phi(-zb) )
        log_out = torch.logaddexp(
            torch.logsumexp(torch.special.log_ndtr(za), 0), torch.logsumexp(torch.special.log_ndtr(-zb), 0)
        ) - log_m
        values = torch.where(inside, -log_f, -log_out)
    else:
        log_p = torch.log((torch.special.ndtr(zb) - torch.special.ndtr(za)).mean(0))
        values = torch.where(inside, -log_f + log_p, torch.zeros_like(log_f))
    return reduce(values, reduction)
