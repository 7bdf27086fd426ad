r"""Dawid-Sebastiani scores (from an ensemble or from a mean and a (co)variance) and the error-spread score."""

from __future__ import annotations

import torch

from .._internal.checks import check_floating, check_sample_target, compute_dtype, move_sample_dim
from .._internal.reduction import check_reduction, reduce
from ._argcheck import check_positive

__all__ = ["dss_ensemble", "dss_ensemble_mv", "dss_moments", "dss_moments_mv", "error_spread_score"]


def _check_bias(bias) -> bool:
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool; got {type(bias).__name__}")
    return bias


def _dss_mv_values(mean: torch.Tensor, cov: torch.Tensor, y: torch.Tensor, name: str) -> torch.Tensor:
    """``(y - mu)^T Sigma^{-1} (y - mu) + log det Sigma`` through a Cholesky factor."""
    chol, info = torch.linalg.cholesky_ex(cov)
    if not torch.compiler.is_compiling() and bool((info != 0).any()):
        raise ValueError(
            f"{name} must be symmetric positive definite; the Cholesky factorisation failed for "
            f"{int((info != 0).sum())} of {info.numel()} matrices (an ensemble needs m > d members with "
            "linearly independent deviations)"
        )
    diff = (y - mean).unsqueeze(-1)
    z = torch.linalg.solve_triangular(chol, diff, upper=False).squeeze(-1)
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return (z * z).sum(-1) + logdet


def dss_moments(
    mean: torch.Tensor,
    variance: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Dawid-Sebastiani score of a forecast given by its mean and variance; lower is better.

    .. math::

        \mathrm{DSS}(F, y) = \frac{(y - \mu_F)^2}{\sigma_F^2} + \log \sigma_F^2 ,

    (Dawid & Sebastiani 1999): twice the Gaussian negative log-likelihood minus :math:`\log 2\pi`. Proper, not
    strictly proper: its expectation depends on :math:`F` only through :math:`\mu_F` and :math:`\sigma_F^2`, and
    is minimised by the true mean and variance (for any true distribution with finite variance).

    Args:
        mean: forecast means.
        variance: forecast variances, positive.
        target: observations.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - mean, variance, target: broadcastable to :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The Dawid-Sebastiani score.

    Raises:
        ValueError: a non-positive variance.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.dss import dss_moments
        >>> dss_moments(torch.tensor([0.0]), torch.tensor([4.0]), torch.tensor([2.0]))  # 1 + log 4
        tensor(2.3863)

    References:
        Dawid, A. P. & Sebastiani, P. (1999). Coherent dispersion criteria for optimal experimental design. Ann.
        Stat. 27.
        Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and estimation. JASA 102.
    """
    check_reduction(reduction)
    for name, t in (("mean", mean), ("variance", variance), ("target", target)):
        check_floating(name, t)
    dtype = compute_dtype(mean, variance, target)
    var = check_positive("variance", variance.to(dtype))
    return reduce((target.to(dtype) - mean.to(dtype)) ** 2 / var + torch.log(var), reduction)


def dss_moments_mv(
    mean: torch.Tensor,
    covariance: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Multivariate Dawid-Sebastiani score of a forecast given by its mean vector and covariance matrix.

    .. math::

        \mathrm{DSS}(F, y) = (y - \mu_F)^\top \Sigma_F^{-1} (y - \mu_F) + \log\det\Sigma_F ,

    computed through a Cholesky factor (no explicit inverse or determinant). Proper, not strictly proper (only the
    first two moments count).

    Args:
        mean: forecast mean vectors.
        covariance: forecast covariance matrices, symmetric positive definite.
        target: observations.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - mean, target: :math:`(*\text{batch}, d)`; covariance: :math:`(*\text{batch}, d, d)` (broadcastable)
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The multivariate Dawid-Sebastiani score.

    Raises:
        ValueError: a covariance that is not positive definite, or shapes that do not match.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.dss import dss_moments_mv
        >>> dss_moments_mv(torch.zeros(2), torch.eye(2) * 2, torch.tensor([2.0, 0.0]))  # 4 / 2 + log 4
        tensor(3.3863)
    """
    check_reduction(reduction)
    for name, t in (("mean", mean), ("covariance", covariance), ("target", target)):
        check_floating(name, t)
    if covariance.dim() < 2 or covariance.shape[-1] != covariance.shape[-2] or covariance.shape[-1] != mean.shape[-1]:
        raise ValueError(
            f"covariance must have shape (*batch, d, d) with d = mean.shape[-1] = {mean.shape[-1]}; got "
            f"{tuple(covariance.shape)}"
        )
    if target.shape[-1:] != mean.shape[-1:]:
        raise ValueError(f"target must have shape (*batch, d) with d = {mean.shape[-1]}; got {tuple(target.shape)}")
    dtype = compute_dtype(mean, covariance, target)
    return reduce(
        _dss_mv_values(mean.to(dtype), covariance.to(dtype), target.to(dtype), "covariance"), reduction
    )


def dss_ensemble(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    bias: bool = False,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Dawid-Sebastiani score of a univariate ensemble (its mean and variance); lower is better.

    .. math::

        \mathrm{DSS} = \frac{(y - \bar x)^2}{s^2} + \log s^2 ,\qquad
        s^2 = \frac{1}{m - 1}\sum_i (x_i - \bar x)^2 \ (\text{``bias=True``}: \tfrac1m),

    as ``scoringrules.dssuv_ensemble``. Proper for the mean and variance, not strictly proper; a plug-in estimate
    from the members (not unbiased for the score of the distribution they are drawn from).

    Args:
        samples: ensemble members, sample axis first by default (at least 2).
        target: observations.
        bias: divide the variance by :math:`m` rather than :math:`m - 1`.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch})`; target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The Dawid-Sebastiani score (``inf``/NaN for an ensemble with zero spread).

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.dss import dss_ensemble
        >>> dss_ensemble(torch.tensor([[-1.0], [1.0]]), torch.tensor([2.0]))  # s^2 = 2: 4 / 2 + log 2
        tensor(2.6931)
    """
    check_reduction(reduction)
    bias = _check_bias(bias)
    x = move_sample_dim(check_floating("samples", samples), sample_dim)
    check_sample_target(x, target, event_rank=0, min_members=1 if bias else 2)
    dtype = compute_dtype(x, target)
    x, y = x.to(dtype), target.to(dtype)
    mean = x.mean(0)
    var = x.var(0, correction=0 if bias else 1)
    return reduce((y - mean) ** 2 / var + torch.log(var), reduction)


def dss_ensemble_mv(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    bias: bool = False,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Multivariate Dawid-Sebastiani score of an ensemble (its mean vector and covariance); lower is better.

    .. math::

        \mathrm{DSS} = (y - \bar x)^\top S^{-1}(y - \bar x) + \log\det S ,\qquad
        S = \frac{1}{m - 1}\sum_i (x_i - \bar x)(x_i - \bar x)^\top\ (\text{``bias=True``}: \tfrac1m),

    as ``scoringrules.dssmv_ensemble`` (which inverts each matrix in a Python loop; here one batched Cholesky
    factorisation). Needs :math:`m > d` members for :math:`S` to be invertible. Proper, not strictly.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        bias: divide the covariance by :math:`m` rather than :math:`m - 1`.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)`; target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The multivariate Dawid-Sebastiani score.

    Raises:
        ValueError: a singular ensemble covariance.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.dss import dss_ensemble, dss_ensemble_mv
        >>> x, y = torch.randn(10, 4, 1, dtype=torch.float64), torch.randn(4, 1, dtype=torch.float64)
        >>> torch.allclose(dss_ensemble_mv(x, y), dss_ensemble(x[..., 0], y[..., 0]))  # d = 1
        True
    """
    check_reduction(reduction)
    bias = _check_bias(bias)
    x = move_sample_dim(check_floating("samples", samples), sample_dim)
    check_sample_target(x, target, event_rank=1, min_members=2)
    dtype = compute_dtype(x, target)
    x, y = x.to(dtype), target.to(dtype)
    m = x.shape[0]
    mean = x.mean(0)
    dev = x - mean
    cov = torch.einsum("m...i,m...j->...ij", dev, dev) / (m if bias else m - 1)
    return reduce(_dss_mv_values(mean, cov, y, "the ensemble covariance"), reduction)


def error_spread_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Error-spread score of a univariate ensemble (Christensen et al. 2015); lower is better.

    .. math::

        \mathrm{ESS} = \big(s^2 - e^2 - e\,s\,g\big)^2,\qquad e = \bar x - y,\
        s^2 = \frac{1}{m - 1}\sum_i (x_i - \bar x)^2,\ g = \frac{1}{(m - 1)(m - 2)}\sum_i
        \Big(\frac{x_i - \bar x}{s}\Big)^3 ,

    a function of the ensemble mean, spread and skewness, proper for those moments (not strictly proper). The
    skewness normalisation :math:`1/((m-1)(m-2))` is that of ``scoringrules.error_spread_score`` (the usual
    adjusted sample skewness has an extra factor :math:`m`); the values agree with it. Needs :math:`m \ge 3`.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - samples: :math:`(m, *\text{batch})`; target: :math:`(*\text{batch})`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``.

    Returns:
        The error-spread score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional.dss import error_spread_score
        >>> error_spread_score(torch.tensor([[-1.0], [0.0], [1.0]]), torch.tensor([0.0]))  # (1 - 0 - 0)^2
        tensor(1.)

    References:
        Christensen, H. M., Moroz, I. M. & Palmer, T. N. (2015). Evaluation of ensemble forecast uncertainty
        using a new proper score: application to medium-range and seasonal forecasts. QJRMS 141.
    """
    check_reduction(reduction)
    x = move_sample_dim(check_floating("samples", samples), sample_dim)
    check_sample_target(x, target, event_rank=0, min_members=3)
    dtype = compute_dtype(x, target)
    x, y = x.to(dtype), target.to(dtype)
    m = x.shape[0]
    mean = x.mean(0)
    dev = x - mean
    s = torch.sqrt((dev * dev).sum(0) / (m - 1))
    g = ((dev / s) ** 3).sum(0) / ((m - 1) * (m - 2))
    e = mean - y
    return reduce((s * s - e * e - e * s * g) ** 2, reduction)
