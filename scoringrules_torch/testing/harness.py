"""Monte Carlo propriety checks for scoring rules, with common random numbers.

A scoring rule ``S(P, y)`` (negatively oriented: lower is better) is *proper* relative to a class of
distributions if, for every true distribution ``Q`` and every forecast ``P`` in the class,

.. math::

    \\mathbb{E}_{Y \\sim Q}\\, S(Q, Y) \\le \\mathbb{E}_{Y \\sim Q}\\, S(P, Y),

and *strictly proper* if equality holds only for ``P = Q`` (Gneiting & Raftery, 2007).  The functions here
estimate both sides by Monte Carlo and decide with a paired standard error:

* the *same* observations ``y_1, ..., y_n ~ Q`` are scored under ``P`` and under ``Q`` (common random numbers), so
  the per-observation differences ``d_i = S(P, y_i) - S(Q, y_i)`` are i.i.d. and the standard error of their mean,
  ``sd(d) / sqrt(n)``, is far smaller than that of either expected score;
* a sample-based score (``kind="samples"``) gets, for each observation, its own ensemble of ``n_samples`` draws, and
  the ensembles of ``P`` and ``Q`` are drawn from the same random seed, so that two distributions of one family
  share their base noise (reparameterised sampling) and the pairing stays tight.

All randomness comes from ``seed`` inside :func:`torch.random.fork_rng`, so a check is reproducible and leaves the
global random state untouched.

References:
    T. Gneiting and A. E. Raftery (2007). Strictly proper scoring rules, prediction, and estimation.
    Journal of the American Statistical Association 102(477), 359-378.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch

__all__ = [
    "ExpectedScore",
    "ScoreComparison",
    "expected_score",
    "compare_expected_scores",
    "assert_proper",
    "assert_strictly_proper",
    "assert_equal_expected_scores",
    "describe_distribution",
]

Kind = Literal["samples", "distribution"]
KINDS = ("samples", "distribution")


@dataclass(frozen=True)
class ExpectedScore:
    """A Monte Carlo estimate of an expected score ``E_{Y~Q} S(P, Y)``.

    Attributes:
        mean: the estimate, the average of ``values``.
        stderr: its standard error, ``values.std() / sqrt(n_obs)``.
        n_obs: the number of observations ``Y`` drawn from ``Q``.
        values: the per-observation scores ``S(P, y_i)`` in float64, shape ``(n_obs,)``.
    """

    mean: float
    stderr: float
    n_obs: int
    values: torch.Tensor

    def __str__(self) -> str:
        return f"{self.mean:.6g} ± {self.stderr:.2g}"


@dataclass(frozen=True)
class ScoreComparison:
    """Expected scores of a forecast ``P`` and of the truth ``Q`` on the same observations ``Y ~ Q``.

    Attributes:
        score_p: ``E_{Y~Q} S(P, Y)``.
        score_q: ``E_{Y~Q} S(Q, Y)``.
        diff: ``score_p.mean - score_q.mean``; positive means the truth scores better (lower).
        diff_stderr: standard error of ``diff`` from the paired differences ``S(P, y_i) - S(Q, y_i)``.
        P: the forecast distribution.
        Q: the true distribution.
        settings: how the estimate was made (kind, n_obs, n_samples, seed), for messages.
    """

    score_p: ExpectedScore
    score_q: ExpectedScore
    diff: float
    diff_stderr: float
    P: Any
    Q: Any
    settings: dict

    @property
    def z(self) -> float:
        """``diff / diff_stderr`` (``+-inf`` or ``nan`` when the standard error is zero)."""
        if self.diff_stderr > 0:
            return self.diff / self.diff_stderr
        if self.diff == 0:
            return math.nan
        return math.copysign(math.inf, self.diff)

    def summary(self) -> str:
        """A multi-line description: both expected scores, the difference, its standard error, P and Q."""
        s = self.settings
        lines = [
            f"  E_Q S(P, Y) = {self.score_p}   (forecast P)",
            f"  E_Q S(Q, Y) = {self.score_q}   (truth Q)",
            f"  difference E S(P) - E S(Q) = {self.diff:.6g}, standard error {self.diff_stderr:.3g} "
            f"(paired, common random numbers), z = {self.z:.3g}",
            f"  P = {describe_distribution(self.P)}",
            f"  Q = {describe_distribution(self.Q)}",
            f"  score = {_describe_callable(s['score'])}, kind={s['kind']!r}, n_obs={s['n_obs']}, "
            f"n_samples={s['n_samples']}, seed={s['seed']}",
        ]
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# estimation


def expected_score(
    score: Callable[..., torch.Tensor],
    P: Any,
    Q: Any,
    *,
    kind: Kind = "samples",
    n_obs: int = 4096,
    n_samples: int = 16,
    seed: int = 0,
    batch_size: int | None = None,
) -> ExpectedScore:
    """Estimate the expected score ``E_{Y~Q} S(P, Y)`` by Monte Carlo.

    .. math::

        \\widehat{\\mathbb{E}} = \\frac{1}{n} \\sum_{i=1}^{n} S(P, y_i), \\quad y_i \\sim Q \\text{ i.i.d.},
        \\qquad \\mathrm{se} = \\frac{\\mathrm{sd}(S(P, y_i))}{\\sqrt{n}}.

    For ``kind="samples"`` the forecast is represented, for each observation, by its own ensemble of
    ``n_samples`` i.i.d. draws from ``P``, so the estimate is of the *expected ensemble score*; for an unbiased
    (``"fair"``) estimator it equals ``E S(P, Y)`` for every ensemble size, for a biased one (``"nrg"``) it does not.
    For ``kind="distribution"`` the score receives ``P`` itself.

    The observations are drawn with seed ``2 * seed`` and the ensembles with ``2 * seed + 1``, inside
    :func:`torch.random.fork_rng`, so calls with the same seed use the same random numbers (see
    :func:`compare_expected_scores`) and the global random state is left untouched.

    Args:
        score: the scoring rule, negatively oriented, returning **one value per observation**:
            ``score(samples, target)`` with samples ``(n_samples, n_obs, *event)`` for ``kind="samples"``,
            ``score(P, target)`` for ``kind="distribution"``; target is ``(n_obs, *event)`` and the result must
            have shape ``(n_obs,)``. For this library's functions pass ``reduction="none"``, e.g.
            ``functools.partial(energy_score, reduction="none")``.
        P: the forecast: a ``torch.distributions.Distribution`` (or any object with ``sample(sample_shape)``
            for ``kind="samples"``) with empty ``batch_shape``.
        Q: the true distribution, with ``sample(sample_shape)`` and empty ``batch_shape``.
        kind: ``"samples"`` (the score sees an ensemble drawn from ``P``) or ``"distribution"`` (the score sees
            ``P``).
        n_obs: number of observations ``Y ~ Q``.
        n_samples: ensemble size per observation (``kind="samples"`` only).
        seed: random seed.
        batch_size: score at most this many observations per call (bounds memory; ``None``: all at once).
            The random numbers do not depend on it.

    Shape:
        - target passed to ``score``: ``(n_obs, *event)``;
        - samples passed to ``score`` (``kind="samples"``): ``(n_samples, n_obs, *event)``;
        - ``score`` output: ``(n_obs,)``.

    Returns:
        :class:`ExpectedScore` with the mean, its standard error and the per-observation values (float64).

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> def mse_of_mean(samples, target):  # squared error of the ensemble mean, one value per observation
        ...     return (samples.mean(0) - target) ** 2
        >>> Q = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
        >>> est = expected_score(mse_of_mean, Q, Q, n_obs=20000, n_samples=4)
        >>> abs(est.mean - 1.25) < 4 * est.stderr  # E (Xbar - Y)^2 = 1 + 1/4
        True
    """
    _check_kind(kind)
    _check_count("n_obs", n_obs, 2)
    if kind == "samples":
        _check_count("n_samples", n_samples, 1)
    _check_dist("Q", Q, need="sample")
    _check_dist("P", P, need="sample" if kind == "samples" else None)
    y = _draw_observations(Q, n_obs, seed)
    _check_batch_size(batch_size)
    values = _evaluate(
        score, P, y, kind=kind, n_samples=n_samples, seed=seed, batch_size=batch_size
    )
    return _summarise(values)


def compare_expected_scores(
    score: Callable[..., torch.Tensor],
    P: Any,
    Q: Any,
    *,
    kind: Kind = "samples",
    n_obs: int = 4096,
    n_samples: int = 16,
    seed: int = 0,
    batch_size: int | None = None,
) -> ScoreComparison:
    """Estimate ``E_{Y~Q} S(P, Y)`` and ``E_{Y~Q} S(Q, Y)`` on the same observations, and their difference.

    .. math::

        d_i = S(P, y_i) - S(Q, y_i), \\quad \\hat\\Delta = \\bar d, \\quad \\mathrm{se}(\\hat\\Delta) =
        \\frac{\\mathrm{sd}(d_i)}{\\sqrt n}.

    Both expected scores use the same observations ``y_i ~ Q`` and, for ``kind="samples"``, ensembles drawn
    with the same seed (common random numbers), so ``se`` is that of the paired differences. A proper score has
    ``Delta >= 0``; a strictly proper one ``Delta > 0`` whenever ``P != Q``.

    Args:
        score: as in :func:`expected_score` (one value per observation).
        P: the forecast distribution.
        Q: the true distribution.
        kind: ``"samples"`` or ``"distribution"``, as in :func:`expected_score`.
        n_obs: number of observations.
        n_samples: ensemble size per observation (``kind="samples"``).
        seed: random seed.
        batch_size: observations per call of ``score`` (``None``: all at once).

    Returns:
        :class:`ScoreComparison`; ``.diff`` is ``E S(P) - E S(Q)``, ``.diff_stderr`` its standard error,
        ``.summary()`` a readable report.

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> def log_score(dist, target):
        ...     return -dist.log_prob(target)
        >>> Q = Normal(torch.tensor(0.0), torch.tensor(1.0))
        >>> P = Normal(torch.tensor(0.5), torch.tensor(1.0))
        >>> c = compare_expected_scores(log_score, P, Q, kind="distribution", n_obs=10000)
        >>> abs(c.diff - 0.125) < 4 * c.diff_stderr  # KL(Q || P) = 0.5^2 / 2
        True
    """
    _check_kind(kind)
    _check_count("n_obs", n_obs, 2)
    if kind == "samples":
        _check_count("n_samples", n_samples, 1)
    _check_dist("Q", Q, need="sample")
    _check_dist("P", P, need="sample" if kind == "samples" else None)
    y = _draw_observations(Q, n_obs, seed)
    _check_batch_size(batch_size)
    v_p = _evaluate(score, P, y, kind=kind, n_samples=n_samples, seed=seed, batch_size=batch_size)
    v_q = _evaluate(score, Q, y, kind=kind, n_samples=n_samples, seed=seed, batch_size=batch_size)
    d = _summarise(v_p - v_q)
    return ScoreComparison(
        score_p=_summarise(v_p),
        score_q=_summarise(v_q),
        diff=d.mean,
        diff_stderr=d.stderr,
        P=P,
        Q=Q,
        settings={
            "score": score,
            "kind": kind,
            "n_obs": n_obs,
            "n_samples": n_samples,
            "seed": seed,
            "batch_size": batch_size,
        },
    )


# ----------------------------------------------------------------------------------------------------------------
# assertions


def assert_proper(
    score: Callable[..., torch.Tensor],
    P: Any,
    Q: Any,
    *,
    kind: Kind = "samples",
    n_obs: int = 4096,
    n_samples: int = 16,
    seed: int = 0,
    batch_size: int | None = None,
    z: float = 4.0,
    rtol: float = 1e-10,
) -> ScoreComparison:
    """Assert that the truth ``Q`` is not significantly worse than the forecast ``P`` under ``score``.

    Passes when

    .. math::

        \\hat\\Delta = \\widehat{\\mathbb{E}}_Q S(P, Y) - \\widehat{\\mathbb{E}}_Q S(Q, Y)
        \\ge -z\\, \\mathrm{se}(\\hat\\Delta) - \\mathrm{rtol}\\,(|\\widehat{\\mathbb{E}} S(P)| +
        |\\widehat{\\mathbb{E}} S(Q)|),

    i.e. no evidence (at ``z`` standard errors) that some ``P`` beats the truth. An infinite expected score of
    ``P`` (e.g. the log score of a forecast whose support misses observations) counts as worse than ``Q``. A failure is evidence that the
    score (or, for ``kind="samples"``, its ensemble estimator at this ensemble size) is improper.

    Args:
        score: as in :func:`expected_score`.
        P: the forecast distribution.
        Q: the true distribution.
        kind: ``"samples"`` or ``"distribution"``.
        n_obs: number of observations.
        n_samples: ensemble size per observation (``kind="samples"``).
        seed: random seed.
        batch_size: observations per call of ``score`` (``None``: all at once).
        z: number of standard errors the difference may fall below zero.
        rtol: relative slack for round-off when the standard error is zero (e.g. ``P == Q``).

    Returns:
        The :class:`ScoreComparison`, for further checks.

    Raises:
        AssertionError: with both expected scores, their difference, its standard error, ``P`` and ``Q``.

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> def crps_normal_mc(samples, target):  # fair CRPS of an ensemble, one value per observation
        ...     m = samples.shape[0]
        ...     acc = (samples - target).abs().mean(0)
        ...     spread = (samples[:, None] - samples[None]).abs().sum((0, 1)) / (m * (m - 1))
        ...     return acc - spread / 2
        >>> Q = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
        >>> P = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(0.4, dtype=torch.float64))
        >>> _ = assert_proper(crps_normal_mc, P, Q, n_samples=8)
    """
    _check_z(z)
    c = compare_expected_scores(
        score, P, Q, kind=kind, n_obs=n_obs, n_samples=n_samples, seed=seed, batch_size=batch_size
    )
    if not (c.diff == math.inf or c.diff >= -_slack(c, z, rtol)):  # a nan difference fails too
        raise AssertionError(
            "assert_proper failed: the truth Q has a significantly WORSE (higher) expected score than the "
            f"forecast P (difference below -{z:g} standard errors).\n"
            + c.summary()
            + "\n  The score is improper for this pair"
            + (
                " (or its ensemble estimator is biased at this ensemble size)."
                if kind == "samples"
                else "."
            )
        )
    return c


def assert_strictly_proper(
    score: Callable[..., torch.Tensor],
    P: Any,
    Q: Any,
    *,
    kind: Kind = "samples",
    n_obs: int = 4096,
    n_samples: int = 16,
    seed: int = 0,
    batch_size: int | None = None,
    z: float = 4.0,
    rtol: float = 1e-10,
) -> ScoreComparison:
    """Assert that the truth ``Q`` scores significantly better than the forecast ``P != Q`` under ``score``.

    Passes when

    .. math::

        \\hat\\Delta = \\widehat{\\mathbb{E}}_Q S(P, Y) - \\widehat{\\mathbb{E}}_Q S(Q, Y)
        > z\\, \\mathrm{se}(\\hat\\Delta) + \\mathrm{rtol}\\,(|\\widehat{\\mathbb{E}} S(P)| +
        |\\widehat{\\mathbb{E}} S(Q)|).

    A failure means either that the score does not separate ``P`` from ``Q`` (it is not strictly proper for this
    pair, or ``P == Q``) or that the check lacks power: raise ``n_obs`` (the standard error falls as
    ``1/sqrt(n_obs)``) or choose a larger perturbation.

    Args:
        score: as in :func:`expected_score`.
        P: the forecast distribution, different from ``Q``.
        Q: the true distribution.
        kind: ``"samples"`` or ``"distribution"``.
        n_obs: number of observations.
        n_samples: ensemble size per observation (``kind="samples"``).
        seed: random seed.
        batch_size: observations per call of ``score`` (``None``: all at once).
        z: number of standard errors the difference must exceed.
        rtol: relative margin above round-off.

    Returns:
        The :class:`ScoreComparison`, for further checks.

    Raises:
        AssertionError: with both expected scores, their difference, its standard error, ``P`` and ``Q``.

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> def log_score(dist, target):
        ...     return -dist.log_prob(target)
        >>> Q = Normal(torch.tensor(0.0), torch.tensor(1.0))
        >>> P = Normal(torch.tensor(0.0), torch.tensor(1.5))
        >>> _ = assert_strictly_proper(log_score, P, Q, kind="distribution")
    """
    _check_z(z)
    c = compare_expected_scores(
        score, P, Q, kind=kind, n_obs=n_obs, n_samples=n_samples, seed=seed, batch_size=batch_size
    )
    if not (c.diff == math.inf or c.diff > _slack(c, z, rtol)):
        raise AssertionError(
            "assert_strictly_proper failed: the truth Q does not have a significantly better (lower) "
            f"expected score than the forecast P (difference not above {z:g} standard errors).\n"
            + c.summary()
            + "\n  Either the score does not separate P from Q (not strictly proper for this pair), or the "
            "check lacks power: increase n_obs or the size of the perturbation."
        )
    return c


def assert_equal_expected_scores(
    score: Callable[..., torch.Tensor],
    P: Any,
    Q: Any,
    *,
    kind: Kind = "samples",
    n_obs: int = 4096,
    n_samples: int = 16,
    seed: int = 0,
    batch_size: int | None = None,
    z: float = 4.0,
    rtol: float = 1e-10,
) -> ScoreComparison:
    """Assert that ``P`` and ``Q`` have the same expected score under ``Y ~ Q`` (within ``z`` standard errors).

    Passes when :math:`|\\hat\\Delta| \\le z\\,\\mathrm{se}(\\hat\\Delta) + \\mathrm{rtol}\\,(|\\widehat{\\mathbb{E}}
    S(P)| + |\\widehat{\\mathbb{E}} S(Q)|)`. With ``P != Q`` this exhibits that a score is proper but **not
    strictly** proper (e.g. the energy score with ``beta = 2`` for two distributions with the same mean). To make
    such a test able to fail, pair it with a strictly proper score that separates the same ``P`` and ``Q``
    (:func:`assert_strictly_proper`), which shows the check has the power to see the difference.

    Args:
        score: as in :func:`expected_score`.
        P: the forecast distribution.
        Q: the true distribution.
        kind: ``"samples"`` or ``"distribution"``.
        n_obs: number of observations.
        n_samples: ensemble size per observation (``kind="samples"``).
        seed: random seed.
        batch_size: observations per call of ``score`` (``None``: all at once).
        z: number of standard errors allowed.
        rtol: relative slack for round-off.

    Returns:
        The :class:`ScoreComparison`.

    Raises:
        AssertionError: with both expected scores, their difference, its standard error, ``P`` and ``Q``.

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> def se_of_mean(dist, target):  # squared error of the forecast mean: proper, not strictly
        ...     return (dist.mean - target) ** 2
        >>> Q = Normal(torch.tensor(0.0), torch.tensor(1.0))
        >>> P = Normal(torch.tensor(0.0), torch.tensor(3.0))
        >>> _ = assert_equal_expected_scores(se_of_mean, P, Q, kind="distribution")
    """
    _check_z(z)
    c = compare_expected_scores(
        score, P, Q, kind=kind, n_obs=n_obs, n_samples=n_samples, seed=seed, batch_size=batch_size
    )
    if not abs(c.diff) <= _slack(c, z, rtol):
        raise AssertionError(
            "assert_equal_expected_scores failed: the expected scores of P and Q differ by more than "
            f"{z:g} standard errors.\n" + c.summary()
        )
    return c


# ----------------------------------------------------------------------------------------------------------------
# descriptions


def describe_distribution(dist: Any, *, precision: int = 4) -> str:
    """A one-line description of a distribution with its parameter values (for failure messages).

    ``torch.distributions`` reprs show only the sizes of non-scalar parameters; this shows the values
    (abbreviated for large tensors), recursing into ``Independent``, ``MixtureSameFamily`` and
    ``TransformedDistribution``.

    Args:
        dist: a ``torch.distributions.Distribution`` (anything else is shown with ``repr``).
        precision: significant digits.

    Returns:
        The description.

    Examples:
        >>> import torch
        >>> from torch.distributions import Normal, Independent
        >>> describe_distribution(Independent(Normal(torch.zeros(2), torch.ones(2)), 1))
        'Independent(Normal(loc=[0, 0], scale=[1, 1]), 1)'
    """
    D = torch.distributions
    fmt = lambda t: _format_tensor(t, precision)  # noqa: E731
    if isinstance(dist, D.Independent):
        return (
            f"Independent({describe_distribution(dist.base_dist, precision=precision)}, "
            f"{dist.reinterpreted_batch_ndims})"
        )
    if isinstance(dist, D.MixtureSameFamily):
        return (
            f"MixtureSameFamily(weights={fmt(dist.mixture_distribution.probs)}, "
            f"components={describe_distribution(dist.component_distribution, precision=precision)})"
        )
    if isinstance(dist, D.TransformedDistribution):
        return (
            f"TransformedDistribution({describe_distribution(dist.base_dist, precision=precision)}, "
            f"{dist.transforms!r})"
        )
    if isinstance(dist, D.MultivariateNormal):
        return f"MultivariateNormal(loc={fmt(dist.loc)}, covariance_matrix={fmt(dist.covariance_matrix)})"
    if isinstance(dist, D.Categorical):
        return f"Categorical(probs={fmt(dist.probs)})"
    if isinstance(dist, D.Distribution):
        params = []
        for name in getattr(dist, "arg_constraints", {}):
            if name in vars(dist) and isinstance(vars(dist)[name], torch.Tensor):
                params.append(f"{name}={fmt(vars(dist)[name])}")
        if params:
            return f"{type(dist).__name__}({', '.join(params)})"
    return repr(dist)


def _format_tensor(t: torch.Tensor, precision: int) -> str:
    t = t.detach().to("cpu", torch.float64)
    if t.dim() == 0:
        return f"{t.item():.{precision}g}"
    flat = t.flatten().tolist()
    if len(flat) > 24:
        return f"<tensor of shape {tuple(t.shape)}: {', '.join(f'{v:.{precision}g}' for v in flat[:6])}, ...>"

    def rec(x: Any) -> str:
        if isinstance(x, list):
            return "[" + ", ".join(rec(v) for v in x) + "]"
        return f"{x:.{precision}g}"

    return rec(t.tolist())


def _describe_callable(f: Any) -> str:
    import functools

    if isinstance(f, functools.partial):
        kw = ", ".join(f"{k}={v!r}" for k, v in f.keywords.items())
        return f"partial({_describe_callable(f.func)}{', ' if kw else ''}{kw})"
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", None)
    return name if name else repr(f)


# ----------------------------------------------------------------------------------------------------------------
# internals


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(
            f"kind must be one of {', '.join(repr(k) for k in KINDS)} ('samples': the score receives an "
            f"ensemble drawn from P; 'distribution': it receives P itself); got {kind!r}"
        )


def _check_count(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")


def _check_z(z: Any) -> None:
    if not isinstance(z, (int, float)) or isinstance(z, bool) or not z >= 0:
        raise ValueError(f"z must be a non-negative number of standard errors; got {z!r}")


def _check_dist(name: str, dist: Any, *, need: str | None) -> None:
    if need == "sample" and not callable(getattr(dist, "sample", None)):
        raise TypeError(
            f"{name} must have a sample(sample_shape) method (e.g. a torch.distributions.Distribution); "
            f"got {type(dist).__name__}"
        )
    batch_shape = getattr(dist, "batch_shape", torch.Size())
    if tuple(batch_shape) != ():
        raise ValueError(
            f"{name} must have an empty batch_shape (one distribution; the harness draws the observations "
            f"as the batch); got batch_shape {tuple(batch_shape)}"
        )


def _device_of(dist: Any) -> torch.device | None:
    for v in vars(dist).values() if hasattr(dist, "__dict__") else ():
        if isinstance(v, torch.Tensor):
            return v.device
        if isinstance(v, torch.distributions.Distribution):
            d = _device_of(v)
            if d is not None:
                return d
    return None


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device | None) -> Iterator[None]:
    devices = []
    if device is not None and device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _draw_observations(Q: Any, n_obs: int, seed: int) -> torch.Tensor:
    with torch.no_grad(), _seeded(2 * seed, _device_of(Q)):
        return Q.sample((n_obs,))


def _check_batch_size(batch_size: Any) -> None:
    if batch_size is not None and (
        not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
    ):
        raise ValueError(f"batch_size must be None or a positive int; got {batch_size!r}")


def _evaluate(
    score: Callable[..., torch.Tensor],
    P: Any,
    y: torch.Tensor,
    *,
    kind: str,
    n_samples: int,
    seed: int,
    batch_size: int | None,
) -> torch.Tensor:
    n_obs = y.shape[0]
    with torch.no_grad():
        if kind == "samples":
            with _seeded(2 * seed + 1, _device_of(P)):
                x = P.sample((n_samples, n_obs))
            if tuple(x.shape[1:]) != tuple(y.shape):
                raise ValueError(
                    f"P and Q must have the same event shape: samples of P have shape {tuple(x.shape)} "
                    f"(expected (n_samples, *target.shape) = {(n_samples, *y.shape)})"
                )
        step = n_obs if batch_size is None else batch_size
        outs = []
        for start in range(0, n_obs, step):
            yb = y[start : start + step]
            out = score(x[:, start : start + step], yb) if kind == "samples" else score(P, yb)
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != (yb.shape[0],):
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(
                    f"score must return one value per observation, shape (n_obs,) = ({yb.shape[0]},); got "
                    f"{got}. For this library's scores pass reduction='none', e.g. "
                    "functools.partial(energy_score, reduction='none')"
                )
            outs.append(out.detach().to(torch.float64))
    return torch.cat(outs)


def _slack(c: ScoreComparison, z: float, rtol: float) -> float:
    # z standard errors plus a relative allowance for round-off (nan if the estimates are not finite)
    return z * c.diff_stderr + rtol * (abs(c.score_p.mean) + abs(c.score_q.mean))


def _summarise(values: torch.Tensor) -> ExpectedScore:
    n = values.shape[0]
    mean = values.mean().item()
    stderr = (values.std(correction=1) / math.sqrt(n)).item()
    return ExpectedScore(mean=mean, stderr=stderr, n_obs=n, values=values)
