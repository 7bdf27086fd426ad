"""Closed-form scores and expected scores, as oracles for the Monte Carlo harness.

All functions are written in torch (float64 recommended) and follow the library's orientation: lower is better.

* :func:`crps_normal` / :func:`expected_crps_normal`: CRPS of a Gaussian, and its expectation under a Gaussian truth.
* :func:`energy_score_normal`: energy score (any ``beta`` in ``(0, 2]``) of an isotropic Gaussian
  ``N(loc, scale^2 I_d)``, through the moments of the non-central chi distribution.
* :func:`expected_energy_score_beta2`: ``E_Q ES_2(P, Y) = ||mean_P - mean_Q||^2 + tr Cov_Q`` for any ``P``, ``Q``
  with finite second moments (it depends on ``P`` only through its mean: proper, not strictly).
* :func:`expected_log_score`: ``E_Q[-log p(Y)] = H(Q) + KL(Q || P)`` wherever torch registers the KL divergence.
* :func:`kernel_score_normal`: Gaussian-kernel score of an isotropic Gaussian.
* :func:`variogram_score_normal`: variogram score of order ``p`` of a multivariate Gaussian.

References:
    T. Gneiting, A. E. Raftery, A. H. Westveld and T. Goldman (2005). Calibrated probabilistic forecasting using
    ensemble model output statistics and minimum CRPS estimation. Monthly Weather Review 133, 1098-1118.

    T. Gneiting and A. E. Raftery (2007). Strictly proper scoring rules, prediction, and estimation.
    Journal of the American Statistical Association 102(477), 359-378.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "crps_normal",
    "expected_crps_normal",
    "energy_score_normal",
    "expected_energy_score_beta2",
    "expected_log_score",
    "kernel_score_normal",
    "mean_abs_normal",
    "variogram_score_normal",
]

_SQRT_PI = math.sqrt(math.pi)


def _phi(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _Phi(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-z / math.sqrt(2.0))


def mean_abs_normal(mean: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """``E|Z|`` for ``Z ~ N(mean, variance)`` (the mean of a folded normal).

    .. math::

        \\mathbb{E}|Z| = \\sigma \\sqrt{2/\\pi}\\, e^{-\\mu^2 / (2\\sigma^2)} + \\mu\\,(2\\Phi(\\mu/\\sigma) - 1).

    Args:
        mean: ``mu``.
        variance: ``sigma^2 > 0``.

    Returns:
        ``E|Z|``, broadcast over the inputs.

    Examples:
        >>> import torch
        >>> round(mean_abs_normal(torch.tensor(0.0), torch.tensor(1.0)).item(), 6)  # sqrt(2 / pi)
        0.797885
    """
    mean, variance = torch.as_tensor(mean), torch.as_tensor(variance)
    sd = variance.sqrt()
    return sd * math.sqrt(2.0 / math.pi) * torch.exp(-0.5 * mean**2 / variance) + mean * (
        2.0 * _Phi(mean / sd) - 1.0
    )


def crps_normal(loc: torch.Tensor, scale: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CRPS of ``N(loc, scale^2)`` at ``target`` (Gneiting et al., 2005).

    .. math::

        \\mathrm{CRPS}(N(\\mu, \\sigma^2), y) = \\sigma\\left[z(2\\Phi(z) - 1) + 2\\varphi(z) -
        \\tfrac{1}{\\sqrt\\pi}\\right], \\qquad z = (y - \\mu)/\\sigma.

    Args:
        loc: ``mu``.
        scale: ``sigma > 0``.
        target: ``y``.

    Shape:
        All inputs broadcast; the output has the broadcast shape.

    Returns:
        The CRPS (lower is better).

    Examples:
        >>> import torch
        >>> round(crps_normal(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(0.0)).item(), 6)
        0.233695
    """
    z = (target - loc) / scale
    return scale * (z * (2.0 * _Phi(z) - 1.0) + 2.0 * _phi(z) - 1.0 / _SQRT_PI)


def expected_crps_normal(
    P: torch.distributions.Normal, Q: torch.distributions.Normal
) -> torch.Tensor:
    """``E_{Y~Q} CRPS(P, Y)`` for Gaussians ``P = N(mu, sigma^2)`` and ``Q = N(m, tau^2)``.

    With ``CRPS(P, y) = E|X - y| - E|X - X'|/2`` and ``X - Y ~ N(mu - m, sigma^2 + tau^2)``:

    .. math::

        \\mathbb{E}_Q \\mathrm{CRPS}(P, Y) = \\mathbb{E}|N(\\mu - m, \\sigma^2 + \\tau^2)| - \\sigma/\\sqrt\\pi.

    Args:
        P: the forecast, ``torch.distributions.Normal``.
        Q: the truth, ``torch.distributions.Normal``.

    Returns:
        The expected CRPS, shape = broadcast batch shape of ``P`` and ``Q``.

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> Q = Normal(torch.tensor(0.0), torch.tensor(1.0))
        >>> round(expected_crps_normal(Q, Q).item(), 6)  # 2 / sqrt(pi) - 1 / sqrt(pi)
        0.56419
    """
    for name, d in (("P", P), ("Q", Q)):
        if not isinstance(d, torch.distributions.Normal):
            raise TypeError(f"{name} must be a torch.distributions.Normal; got {type(d).__name__}")
    return mean_abs_normal(P.loc - Q.loc, P.scale**2 + Q.scale**2) - P.scale / _SQRT_PI


def _log_hyp1f1_kummer_positive(
    a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, terms: int
) -> torch.Tensor:
    # log 1F1(a; b; x) for a, b > 0, x >= 0: every series term is positive, summed in log space.
    k = torch.arange(terms, dtype=x.dtype, device=x.device)
    shape = x.shape
    a, b, x = (t.reshape(-1, 1) for t in torch.broadcast_tensors(a, b, x))
    log_x = torch.log(x.clamp_min(torch.finfo(x.dtype).tiny))
    log_terms = (
        torch.lgamma(a + k)
        - torch.lgamma(a)
        - torch.lgamma(b + k)
        + torch.lgamma(b)
        + k * log_x
        - torch.lgamma(k + 1.0)
    )
    log_terms = torch.where((k == 0) | (x > 0), log_terms, torch.full_like(log_terms, -math.inf))
    return torch.logsumexp(log_terms, dim=-1).reshape(shape)


def _noncentral_moment(beta: float, d: int, lam2: torch.Tensor, terms: int) -> torch.Tensor:
    # E ||Z||^beta for Z ~ N(nu, I_d) with ||nu||^2 = lam2:
    #   2^(beta/2) Gamma((d+beta)/2) / Gamma(d/2) * 1F1(-beta/2; d/2; -lam2/2)
    # and by Kummer's transformation 1F1(a; b; -x) = exp(-x) 1F1(b - a; b; x).
    half_d = torch.tensor(d / 2.0, dtype=lam2.dtype, device=lam2.device)
    a = half_d + beta / 2.0
    x = lam2 / 2.0
    log_f = -x + _log_hyp1f1_kummer_positive(a.expand_as(x), half_d.expand_as(x), x, terms)
    log_c = (beta / 2.0) * math.log(2.0) + math.lgamma((d + beta) / 2.0) - math.lgamma(d / 2.0)
    return torch.exp(log_c + log_f)


def energy_score_normal(
    loc: torch.Tensor,
    scale: torch.Tensor,
    target: torch.Tensor,
    *,
    beta: float = 1.0,
    terms: int = 400,
) -> torch.Tensor:
    """Energy score of the isotropic Gaussian ``N(loc, scale^2 I_d)`` at ``target``.

    .. math::

        \\mathrm{ES}_\\beta(P, y) = \\mathbb{E}\\|X - y\\|^\\beta - \\tfrac12 \\mathbb{E}\\|X - X'\\|^\\beta,
        \\qquad \\mathbb{E}\\|Z\\|^\\beta = 2^{\\beta/2}\\,\\frac{\\Gamma((d+\\beta)/2)}{\\Gamma(d/2)}\\,
        {}_1F_1\\!\\left(-\\tfrac\\beta2; \\tfrac d2; -\\tfrac{\\lambda^2}2\\right)

    for ``Z ~ N(nu, I_d)``, ``lambda = ||nu||`` (moments of the non-central chi distribution); here
    ``X - y = scale * Z`` with ``nu = (loc - y) / scale``, and ``X - X' = sqrt(2) * scale * Z`` with ``nu = 0``.
    The confluent hypergeometric function is summed after Kummer's transformation, where all terms are positive.
    For ``d = 1``, ``beta = 1`` this is :func:`crps_normal`.

    Args:
        loc: mean, ``(*batch, d)``.
        scale: standard deviation per component (shared by all components), ``(*batch)`` or a float.
        target: ``(*batch, d)``.
        beta: exponent in ``(0, 2]``.
        terms: number of series terms (400 is accurate to round-off for ``||loc - target|| / scale`` up to ~20).

    Shape:
        - loc, target: ``(*batch, d)``; scale: broadcastable to ``(*batch)``.
        - Output: ``(*batch)``.

    Returns:
        The energy score (lower is better).

    Examples:
        >>> import torch
        >>> loc, y = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
        >>> es = energy_score_normal(loc, torch.tensor(1.0, dtype=torch.float64), y)
        >>> crps = crps_normal(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(1.0))
        >>> abs(es.item() - crps.item()) < 1e-6
        True
    """
    if not 0 < beta <= 2:
        raise ValueError(f"beta must be in (0, 2]; got {beta!r}")
    loc, target = torch.broadcast_tensors(torch.as_tensor(loc), torch.as_tensor(target))
    if loc.dim() < 1:
        raise ValueError(
            f"loc and target must have an event dimension (*batch, d); got shape {tuple(loc.shape)}"
        )
    d = loc.shape[-1]
    scale = torch.as_tensor(scale, dtype=loc.dtype, device=loc.device)
    lam2 = ((loc - target) ** 2).sum(-1) / scale**2
    acc = scale**beta * _noncentral_moment(beta, d, lam2, terms)
    spread = (math.sqrt(2.0) * scale) ** beta * _noncentral_moment(
        beta, d, torch.zeros_like(lam2), terms
    )
    return acc - 0.5 * spread


def expected_energy_score_beta2(
    P: torch.distributions.Distribution, Q: torch.distributions.Distribution
) -> torch.Tensor:
    """``E_{Y~Q} ES_2(P, Y)`` for the energy score with ``beta = 2``.

    .. math::

        \\mathrm{ES}_2(P, y) = \\mathbb{E}\\|X - y\\|^2 - \\tfrac12\\mathbb{E}\\|X - X'\\|^2 = \\|\\mu_P - y\\|^2,
        \\qquad \\mathbb{E}_Q \\mathrm{ES}_2(P, Y) = \\|\\mu_P - \\mu_Q\\|^2 + \\operatorname{tr}\\Sigma_Q.

    It depends on ``P`` only through its mean: proper, but not strictly proper.

    Args:
        P: forecast with ``.mean``.
        Q: truth with ``.mean`` and ``.variance``.

    Returns:
        The expected score (a scalar tensor for event rank 0 or 1).

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> P = Normal(torch.tensor(1.0), torch.tensor(5.0))
        >>> Q = Normal(torch.tensor(0.0), torch.tensor(2.0))
        >>> expected_energy_score_beta2(P, Q).item()
        5.0
    """
    diff = P.mean - Q.mean
    return (diff**2).sum(-1) + Q.variance.sum(-1) if diff.dim() > 0 else diff**2 + Q.variance


def expected_log_score(
    P: torch.distributions.Distribution, Q: torch.distributions.Distribution
) -> torch.Tensor:
    """``E_{Y~Q}[-log p(Y)] = H(Q) + KL(Q || P)``: the expected logarithmic score (cross-entropy).

    Uses :func:`torch.distributions.kl_divergence` and ``Q.entropy()``; raises ``NotImplementedError`` where
    torch has no closed form for the pair.

    Args:
        P: forecast.
        Q: truth.

    Returns:
        The expected log score (nats).

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> Q = Normal(torch.tensor(0.0), torch.tensor(1.0))
        >>> P = Normal(torch.tensor(1.0), torch.tensor(1.0))
        >>> round(expected_log_score(P, Q).item() - expected_log_score(Q, Q).item(), 6)  # KL = 1/2
        0.5
    """
    return Q.entropy() + torch.distributions.kl_divergence(Q, P)


def kernel_score_normal(
    loc: torch.Tensor, scale: torch.Tensor, target: torch.Tensor, *, bandwidth: float = 1.0
) -> torch.Tensor:
    """Gaussian-kernel score of the isotropic Gaussian ``N(loc, scale^2 I_d)`` at ``target``.

    With :math:`k(x, x') = \\exp(-\\|x - x'\\|^2 / (2h^2))` and
    :math:`S_k(P, y) = \\tfrac12 \\mathbb{E}k(X, X') + \\tfrac12 k(y, y) - \\mathbb{E}k(X, y)`:

    .. math::

        \\mathbb{E}k(X, y) = \\Big(\\frac{h^2}{h^2 + s^2}\\Big)^{d/2}
        \\exp\\Big(-\\frac{\\|\\mu - y\\|^2}{2(h^2 + s^2)}\\Big), \\qquad
        \\mathbb{E}k(X, X') = \\Big(\\frac{h^2}{h^2 + 2s^2}\\Big)^{d/2}.

    Args:
        loc: mean, ``(*batch, d)``.
        scale: standard deviation ``s`` of every component, broadcastable to ``(*batch)``.
        target: ``(*batch, d)``.
        bandwidth: ``h > 0``.

    Shape:
        Output ``(*batch)``.

    Returns:
        The kernel score (lower is better; 0 for a point mass at the target).

    Examples:
        >>> import torch
        >>> tiny = torch.tensor(1e-12, dtype=torch.float64)
        >>> kernel_score_normal(torch.zeros(2, dtype=torch.float64), tiny, torch.zeros(2, dtype=torch.float64)).item()
        0.0
    """
    loc, target = torch.broadcast_tensors(torch.as_tensor(loc), torch.as_tensor(target))
    d = loc.shape[-1]
    s2 = torch.as_tensor(scale, dtype=loc.dtype, device=loc.device) ** 2
    h2 = float(bandwidth) ** 2
    r2 = ((loc - target) ** 2).sum(-1)
    k_xy = (h2 / (h2 + s2)) ** (d / 2.0) * torch.exp(-0.5 * r2 / (h2 + s2))
    k_xx = (h2 / (h2 + 2.0 * s2)) ** (d / 2.0)
    return 0.5 * k_xx + 0.5 - k_xy


def variogram_score_normal(
    loc: torch.Tensor,
    covariance: torch.Tensor,
    target: torch.Tensor,
    *,
    p: float = 0.5,
    weights: torch.Tensor | None = None,
    terms: int = 400,
) -> torch.Tensor:
    """Variogram score of order ``p`` of ``N(loc, covariance)`` at ``target``.

    .. math::

        \\mathrm{VS}_p(P, y) = \\sum_{k,l} w_{kl}\\big(|y_k - y_l|^p - \\mathbb{E}|X_k - X_l|^p\\big)^2,

    where :math:`X_k - X_l \\sim N(\\mu_k - \\mu_l, v_{kl})`, :math:`v_{kl} = \\Sigma_{kk} + \\Sigma_{ll} -
    2\\Sigma_{kl}`, and :math:`\\mathbb{E}|N(a, v)|^p = v^{p/2}\\, 2^{p/2}\\,\\Gamma(\\tfrac{1+p}{2})/\\sqrt\\pi\\;
    {}_1F_1(-\\tfrac p2; \\tfrac12; -\\tfrac{a^2}{2v})` (as in :func:`energy_score_normal` with ``d = 1``).

    Args:
        loc: mean ``(*batch, d)``.
        covariance: ``(*batch, d, d)``.
        target: ``(*batch, d)``.
        p: order ``p > 0``.
        weights: pair weights ``(d, d)`` (default all ones: every ordered pair).
        terms: series terms for the confluent hypergeometric function.

    Shape:
        Output ``(*batch)``.

    Returns:
        The variogram score (lower is better).

    Examples:
        >>> import torch
        >>> loc, y = torch.zeros(2, dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
        >>> cov = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)  # X_1 = X_2 almost surely
        >>> variogram_score_normal(loc, cov, y, p=1.0).item()  # 2 ordered pairs * (1 - 0)^2
        2.0
    """
    loc, target = torch.broadcast_tensors(torch.as_tensor(loc), torch.as_tensor(target))
    cov = torch.as_tensor(covariance, dtype=loc.dtype, device=loc.device)
    var = cov.diagonal(dim1=-2, dim2=-1)
    v = var[..., :, None] + var[..., None, :] - 2.0 * cov  # (*batch, d, d)
    a = loc[..., :, None] - loc[..., None, :]
    pos = v > 1e-300
    v_safe = torch.where(pos, v, torch.ones_like(v))
    moment = v_safe ** (p / 2.0) * _noncentral_moment(p, 1, a**2 / v_safe, terms)
    moment = torch.where(pos, moment, a.abs() ** p)
    gamma_y = (target[..., :, None] - target[..., None, :]).abs() ** p
    sq = (gamma_y - moment) ** 2
    if weights is not None:
        sq = sq * torch.as_tensor(weights, dtype=loc.dtype, device=loc.device)
    return sq.sum((-2, -1))
