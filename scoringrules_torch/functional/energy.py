"""Energy score (Gneiting & Raftery, 2007) for multivariate ensembles."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch

from .._internal.checks import check_choice, check_real_number, flatten_multivariate
from .._internal.ensemble_ext import almost_fair_factor, check_alpha, ensemble_extensions
from .._internal.pairwise import (
    pairwise_radial_sum,
    power_radial,
    safe_pow,
    shifted_sq_dist,
    sq_dist_to_target,
)
from .._internal.reduction import check_reduction, reduce

__all__ = ["ENERGY_ESTIMATORS", "EnergyScoreTerms", "energy_score", "energy_score_terms"]

#: Estimators of the energy score, in the order the documentation lists them.
ENERGY_ESTIMATORS = ("fair", "nrg", "pairs", "akr", "akr_circperm", "afes")
_MIN_MEMBERS = {"fair": 2, "nrg": 1, "pairs": 2, "akr": 1, "akr_circperm": 1, "afes": 2}
_beta2_warned = False


class EnergyScoreTerms(NamedTuple):
    """The two terms of the energy score: ``score = accuracy - spread``.

    Attributes:
        accuracy: estimate of :math:`\\mathbb{E}\\|X - y\\|^\\beta` (how far the forecast is from the target).
        spread: estimate of :math:`\\tfrac12 \\mathbb{E}\\|X - X'\\|^\\beta` (how diverse the forecast is).
    """

    accuracy: torch.Tensor
    spread: torch.Tensor


def check_beta(beta: float) -> float:
    """Validate the energy exponent: ``0 < beta <= 2``; warn once that ``beta = 2`` is not strictly proper."""
    global _beta2_warned
    value = check_real_number("beta", beta)  # a number, a numpy scalar or a 0-d tensor
    if not 0.0 < value <= 2.0:
        raise ValueError(
            f"beta must be in (0, 2] (strictly proper for 0 < beta < 2, proper for beta = 2); got {beta!r}"
        )
    beta = value
    if beta == 2.0 and not _beta2_warned:
        _beta2_warned = True
        warnings.warn(
            "energy score with beta=2 is proper but not strictly proper: it only compares means "
            "(any forecast with the right mean is optimal). Use 0 < beta < 2 to train a generative model.",
            UserWarning,
            stacklevel=3,
        )
    return float(beta)


def _terms(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    beta: float,
    estimator: str,
    member_weights: torch.Tensor | None,
    sample_dim: int,
    alpha: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Size]:
    """Per-observation accuracy and spread terms, flattened to ``(B,)``, and the batch shape."""
    check_choice("estimator", estimator, ENERGY_ESTIMATORS)
    alpha = check_alpha(alpha, estimator, "afes")
    beta = check_beta(beta)
    if estimator == "pairs" and member_weights is not None:
        raise ValueError(
            "estimator='pairs' pairs independent draws and takes no member_weights; use 'fair' or 'nrg' "
            "for a weighted ensemble"
        )
    x, y, w, batch_shape = flatten_multivariate(
        samples,
        target,
        sample_dim=sample_dim,
        min_members=_MIN_MEMBERS[estimator],
        member_weights=member_weights,
    )
    m = x.shape[0]
    if estimator == "pairs" and m % 2:
        raise ValueError(
            f"estimator='pairs' needs an even number of samples (sample i is paired with sample i + m/2); got m={m}"
        )
    q = beta / 2.0
    err = safe_pow(sq_dist_to_target(x, y), q)  # (m, B)
    accuracy = err.mean(0) if w is None else (w * err).sum(0)

    if estimator == "afes":  # almost fair: alpha * fair + (1 - alpha) * nrg
        total = pairwise_radial_sum(x, w, power_radial(q), diagonal=True)
        spread = 0.5 * total * almost_fair_factor(alpha, m, w) / (m * m if w is None else 1.0)
    elif estimator in ("fair", "nrg"):
        total = pairwise_radial_sum(x, w, power_radial(q), diagonal=True)  # the diagonal is exactly 0
        if w is None:
            denom = m * (m - 1) if estimator == "fair" else m * m
            spread = 0.5 * total / denom
        else:
            spread = 0.5 * total
            if estimator == "fair":
                spread = spread / (1.0 - (w * w).sum(0))
    elif estimator == "pairs":
        h = m // 2
        diff = x[:h] - x[h:]
        dist = safe_pow((diff * diff).sum(-1), q)  # (m/2, B)
        spread = 0.5 * dist.mean(0)
    else:
        shift = 1 if estimator == "akr" else m // 2
        dist = safe_pow(shifted_sq_dist(x, shift), q)  # (m, B)
        spread = 0.5 * (dist.mean(0) if w is None else (w * dist).sum(0))
    return accuracy, spread, batch_shape


def energy_score(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    beta: float = 1.0,
    estimator: str = "fair",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
    alpha: float | None = None,
    nan_policy: str = "propagate",
    process_group=None,
) -> torch.Tensor:
    r"""Energy score of an ensemble (samples) against an observed target; lower is better.

    .. math::

        \mathrm{ES}_\beta(F, y) = \mathbb{E}\|X - y\|^\beta - \tfrac12 \mathbb{E}\|X - X'\|^\beta,
        \qquad X, X' \overset{iid}{\sim} F,

    with the Euclidean norm over the last (event) axis. For :math:`0 < \beta < 2` it is strictly proper; for
    :math:`\beta = 2` it is proper only (it reduces to the squared error of the mean; a warning is issued once).
    This is the negatively oriented form of Gneiting & Raftery (2007): the paper's positively oriented
    :math:`S = -\mathrm{ES}`. EAR's training loss :math:`\|x_1 - y\| + \|x_2 - y\| - \|x_1 - x_2\|` is
    :math:`2\times` the ``"pairs"`` estimate with two samples.

    Estimators of the spread term :math:`\tfrac12\mathbb{E}\|X - X'\|^\beta` from :math:`m` members
    (the accuracy term is always the sample mean of :math:`\|x_i - y\|^\beta`):

    * ``"fair"`` (default): U-statistic :math:`\frac{1}{2m(m-1)}\sum_{i\neq j}\|x_i - x_j\|^\beta`; unbiased for
      the score of the distribution the members are drawn from. :math:`O(m^2 d)`; needs :math:`m \ge 2`.
    * ``"nrg"``: V-statistic with :math:`\frac{1}{2m^2}`; the exact score of the empirical distribution (biased
      upwards as an estimate of the score of :math:`F`). :math:`O(m^2 d)`. As a *training loss* with a small
      :math:`m` it is improper: its spread term carries the weight :math:`(m-1)/m`, like a training temperature
      below 1, so it rewards under-dispersed generators; train with ``"fair"`` or ``"pairs"``.
    * ``"pairs"``: EAR's disjoint pairs, :math:`\frac{1}{m}\sum_{k < m/2}\|x_k - x_{k+m/2}\|^\beta`; unbiased,
      :math:`O(m d)`, higher variance; needs an even :math:`m` and no member weights.
    * ``"akr"``: approximate kernel representation with circular neighbours,
      :math:`\frac{1}{2m}\sum_i \|x_i - x_{i-1}\|^\beta`; :math:`O(md)`, unbiased for i.i.d. members.
    * ``"akr_circperm"``: as ``"akr"`` with partner :math:`x_{i - \lfloor m/2 \rfloor}`.
    * ``"afes"``: almost-fair energy score, ``alpha * fair + (1 - alpha) * nrg`` (the multivariate analogue of
      the almost-fair CRPS of AIFS-CRPS); proper only for ``alpha = 1``.

    With ``member_weights`` :math:`w` (normalised to sum to one) the sums become weighted, and ``"fair"`` divides
    the weighted pair sum by :math:`1 - \sum_i w_i^2`, as in ``scoringrules``.

    Pairwise distances come from a shared engine that is exact on coincident samples (zero gradient where two
    samples coincide, e.g. at the initialisation of a zero-initialised generator), accumulates in float32 for
    half-precision inputs, and uses a translated Gram matrix for large event dimensions.

    Args:
        samples: ensemble members, sample axis first by default.
        target: observations.
        beta: exponent :math:`\beta \in (0, 2]`.
        estimator: one of ``"fair"``, ``"nrg"``, ``"pairs"``, ``"akr"``, ``"akr_circperm"``.
        member_weights: optional non-negative weights of shape ``(m,)`` or ``(m, *batch)``.
        sample_dim: the axis of ``samples`` that indexes members.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` over the batch.
        alpha: weight of ``"fair"`` in ``"afes"``, in :math:`(0, 1]` (default 0.95); only with ``"afes"``.
        nan_policy: ``"propagate"`` | ``"omit"`` | ``"raise"``, as in
            :func:`~scoringrules_torch.functional.crps_ensemble`.
        process_group: ``torch.distributed`` group over which the members are split, as in
            :func:`~scoringrules_torch.functional.crps_ensemble`.

    Shape:
        - samples: :math:`(m, *\text{batch}, d)` (sample axis at ``sample_dim``)
        - target: :math:`(*\text{batch}, d)`
        - output: scalar, or :math:`(*\text{batch})` with ``reduction="none"``. Float32 for half-precision inputs,
          otherwise the inputs' dtype.

    Returns:
        The energy score.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional import energy_score
        >>> samples = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]]])  # m=2 members, batch 1, d=2
        >>> target = torch.tensor([[0.0, 0.0]])
        >>> energy_score(samples, target)  # (0 + 5)/2 - 5/2
        tensor(0.)
        >>> energy_score(samples, target, estimator="nrg")  # (0 + 5)/2 - (2 * 5)/(2 * 4)
        tensor(1.2500)

    References:
        Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and estimation. JASA 102.
        Shao, C., Meng, F. & Zhou, J. (2025). Continuous visual autoregressive generation via score maximization.
    """
    check_reduction(reduction)
    if nan_policy != "propagate" or process_group is not None:
        return ensemble_extensions(energy_score, samples, target, event_rank=1, sample_dim=sample_dim,
                                   member_weights=member_weights, reduction=reduction, nan_policy=nan_policy,
                                   process_group=process_group, min_members=_MIN_MEMBERS.get(estimator, 1),
                                   beta=beta, estimator=estimator, alpha=alpha)
    accuracy, spread, batch_shape = _terms(samples, target, beta=beta, estimator=estimator,
                                           member_weights=member_weights, sample_dim=sample_dim, alpha=alpha)
    return reduce((accuracy - spread).reshape(batch_shape), reduction)


def energy_score_terms(
    samples: torch.Tensor,
    target: torch.Tensor,
    *,
    beta: float = 1.0,
    estimator: str = "fair",
    member_weights: torch.Tensor | None = None,
    sample_dim: int = 0,
    reduction: str = "mean",
) -> EnergyScoreTerms:
    r"""The accuracy and spread terms of :func:`energy_score`, each reduced like the score.

    ``accuracy`` estimates :math:`\mathbb{E}\|X - y\|^\beta` and ``spread`` estimates
    :math:`\tfrac12\mathbb{E}\|X - X'\|^\beta`, so ``accuracy - spread`` equals :func:`energy_score` with the same
    arguments. Practitioners log both: a collapsing generator shows a spread going to zero.

    Args:
        samples, target, beta, estimator, member_weights, sample_dim, reduction: as in :func:`energy_score`.

    Shape:
        As :func:`energy_score`, for each of the two terms.

    Returns:
        :class:`EnergyScoreTerms` ``(accuracy, spread)``.

    Examples:
        >>> import torch
        >>> from scoringrules_torch.functional import energy_score_terms
        >>> samples = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]]])
        >>> acc, spread = energy_score_terms(samples, torch.zeros(1, 2))
        >>> acc, spread
        (tensor(2.5000), tensor(2.5000))
    """
    check_reduction(reduction)
    accuracy, spread, batch_shape = _terms(
        samples, target, beta=beta, estimator=estimator, member_weights=member_weights, sample_dim=sample_dim
    )
    return EnergyScoreTerms(
        reduce(accuracy.reshape(batch_shape), reduction), reduce(spread.reshape(batch_shape), reduction)
    )
