"""Hypothesis strategies for true distributions ``Q`` and alternatives ``P != Q`` (``torch.distributions``).

Families (``FAMILIES``): Gaussians (diagonal or full covariance), Gaussian mixtures, Student-t, Laplace, uniform and
gamma. ``dim=None`` gives univariate distributions (event shape ``()``); ``dim=d`` gives event shape ``(d,)``
(Student-t, Laplace, uniform and gamma as independent products); ``dim`` may also be a strategy, e.g.
``st.integers(1, 8)``.

Perturbations (``PERTURBATIONS``) turn ``Q`` into an alternative ``P`` by a *decisive* amount, so a strictly
proper score separates them with a few thousand observations:

* ``"mean"``: shift by 0.5 to 1.5 standard deviations along a random direction;
* ``"scale"``: multiply the spread by a factor in [0.4, 0.7] or [1.5, 2.5] (the mean stays);
* ``"correlation"``: Gaussians with ``d >= 2``: a different correlation matrix with the same marginals
  (a one-factor correlation of 0.8 to 0.95, or independence when ``Q`` is already closer to that). The energy
  score sees dependence weakly, the more so for ``beta`` near 2 and for unequal marginal scales (Pinson & Tastu,
  2013): with ``beta = 1`` and scales 0.5 and 2 it needs far more observations than with ``beta = 0.5``;
* ``"tail"``: Gaussian to Student-t with 2.5 to 4 degrees of freedom and the same scale; Student-t with fewer than 5
  degrees of freedom to ten times as many, otherwise to 2.5; Laplace to the uniform with the same mean and variance and vice versa; gamma to
  a different shape with the same mean;
* ``"modes"``: a Gaussian to the two-component mixture with the same mean and covariance, split along the axis of
  largest variance, so 85 to 95 % of that variance lies between the modes; a mixture to the single Gaussian with
  its mean and covariance. Multivariate scores see a split in one direction of ``d`` weakly when ``d`` is large:
  the energy score needs many more observations for it than for a mean shift.

Everything is float64 by default (``dtype=``) so that paired differences are not dominated by round-off.

Examples:
    >>> import torch
    >>> from hypothesis import given, settings
    >>> from scoringrules_torch.testing.strategies import distribution_pairs
    >>> @settings(max_examples=5, derandomize=True, database=None)
    ... @given(distribution_pairs(dim=3))
    ... def check(pair):
    ...     assert pair.Q.event_shape == pair.P.event_shape == (3,)
    >>> check()
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from hypothesis import assume
from hypothesis import strategies as st

D = torch.distributions

__all__ = [
    "FAMILIES",
    "PERTURBATIONS",
    "DistributionPair",
    "gaussians",
    "gaussian_mixtures",
    "student_ts",
    "laplaces",
    "uniforms",
    "gammas",
    "distributions",
    "perturbations",
    "distribution_pairs",
    "family_of",
    "applicable_perturbations",
    "perturb",
]

FAMILIES = ("gaussian", "gaussian_mixture", "student_t", "laplace", "uniform", "gamma")
PERTURBATIONS = ("mean", "scale", "correlation", "tail", "modes")


class DistributionPair(NamedTuple):
    """A true distribution ``Q``, an alternative ``P`` and the perturbation that made ``P`` from ``Q``."""

    Q: D.Distribution
    P: D.Distribution
    perturbation: str


# ----------------------------------------------------------------------------------------------------------------
# helpers


def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _dim_strategy(dim: Any) -> st.SearchStrategy[int | None]:
    if dim is None:
        return st.none()
    if isinstance(dim, st.SearchStrategy):
        return dim
    if isinstance(dim, int) and not isinstance(dim, bool) and dim >= 1:
        return st.just(dim)
    raise ValueError(
        f"dim must be None (univariate), a positive int or a strategy of them; got {dim!r}"
    )


def _tensor(
    draw: Any, elements: st.SearchStrategy[float], d: int | None, dtype: torch.dtype
) -> torch.Tensor:
    if d is None:
        return torch.tensor(draw(elements), dtype=dtype)
    return torch.tensor(draw(st.lists(elements, min_size=d, max_size=d)), dtype=dtype)


def _wrap(base: D.Distribution, d: int | None) -> D.Distribution:
    return base if d is None else D.Independent(base, 1)


def _unwrap(dist: D.Distribution) -> tuple[D.Distribution, bool]:
    if isinstance(dist, D.Independent):
        return dist.base_dist, True
    return dist, False


def _rewrap(base: D.Distribution, independent: bool) -> D.Distribution:
    return D.Independent(base, 1) if independent else base


def _dtype_of(dist: Any) -> torch.dtype:
    for v in vars(dist).values():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v.dtype
        if isinstance(v, D.Distribution):
            return _dtype_of(v)
    return torch.get_default_dtype()


def _correlation_from_factor(draw: Any, d: int, dtype: torch.dtype) -> torch.Tensor:
    # A random correlation matrix: C = L L^T with L unit lower triangular (entries in [-1, 1]), normalised.
    n = d * (d - 1) // 2
    entries = draw(st.lists(_floats(-1.0, 1.0), min_size=n, max_size=n))
    L = torch.eye(d, dtype=dtype)
    rows, cols = torch.tril_indices(d, d, offset=-1)
    L[rows, cols] = torch.tensor(entries, dtype=dtype)
    C = L @ L.T
    s = C.diagonal().rsqrt()
    return s[:, None] * C * s[None, :]


# ----------------------------------------------------------------------------------------------------------------
# families


@st.composite
def gaussians(
    draw: Any, *, dim: Any = None, covariance: str = "any", dtype: torch.dtype = torch.float64
) -> D.Distribution:
    """Gaussians with mean in [-2, 2] and standard deviations in [0.5, 2] per component.

    Args:
        dim: ``None`` for ``Normal``; ``d`` (or a strategy) for event shape ``(d,)``.
        covariance: ``"diagonal"`` (``Independent(Normal)``), ``"full"`` (``MultivariateNormal`` with a random
            correlation matrix) or ``"any"``.
        dtype: parameter dtype.

    Returns:
        A strategy of ``torch.distributions.Distribution``.
    """
    if covariance not in ("any", "diagonal", "full"):
        raise ValueError(f"covariance must be 'any', 'diagonal' or 'full'; got {covariance!r}")
    d = draw(_dim_strategy(dim))
    loc = _tensor(draw, _floats(-2.0, 2.0), d, dtype)
    sd = _tensor(draw, _floats(0.5, 2.0), d, dtype)
    if d is None:
        return D.Normal(loc, sd)
    full = covariance == "full" or (covariance == "any" and draw(st.booleans()))
    if not full:
        return D.Independent(D.Normal(loc, sd), 1)
    R = _correlation_from_factor(draw, d, dtype)
    return D.MultivariateNormal(loc, covariance_matrix=sd[:, None] * R * sd[None, :])


@st.composite
def gaussian_mixtures(
    draw: Any,
    *,
    dim: Any = None,
    n_components: Any = None,
    covariance: str = "diagonal",
    dtype: torch.dtype = torch.float64,
) -> D.Distribution:
    """Gaussian mixtures with well-separated modes (``MixtureSameFamily``).

    Components lie along a random direction, 4 to 6 component standard deviations apart, with weights in
    [0.2, 1] (normalised) and component standard deviations in [0.3, 0.8].

    Args:
        dim: ``None`` for univariate components; ``d`` (or a strategy) for event shape ``(d,)``.
        n_components: number of components (int or strategy; default 2 to 4).
        covariance: ``"diagonal"`` (``Independent(Normal)`` components) or ``"full"`` (``MultivariateNormal``).
        dtype: parameter dtype.

    Returns:
        A strategy of ``MixtureSameFamily``.
    """
    if covariance not in ("diagonal", "full"):
        raise ValueError(f"covariance must be 'diagonal' or 'full'; got {covariance!r}")
    d = draw(_dim_strategy(dim))
    k = draw(st.integers(2, 4) if n_components is None else _dim_strategy(n_components))
    weights = torch.tensor(draw(st.lists(_floats(0.2, 1.0), min_size=k, max_size=k)), dtype=dtype)
    sd = torch.tensor(draw(st.lists(_floats(0.3, 0.8), min_size=k, max_size=k)), dtype=dtype)
    gap = draw(_floats(4.0, 6.0)) * sd.max()
    center = _tensor(draw, _floats(-1.0, 1.0), d, dtype)
    if d is None:
        direction = torch.tensor(1.0, dtype=dtype)
    else:
        direction = _tensor(draw, _floats(-1.0, 1.0), d, dtype)
        direction[0] = direction[0] + 1e-3  # never the zero vector
        direction = direction / direction.norm()
    offsets = (torch.arange(k, dtype=dtype) - (k - 1) / 2.0) * gap
    locs = center + offsets.reshape((k,) + (1,) * (0 if d is None else 1)) * direction
    mix = D.Categorical(probs=weights / weights.sum())
    if d is None:
        return D.MixtureSameFamily(mix, D.Normal(locs, sd))
    sds = sd[:, None].expand(k, d)
    if covariance == "diagonal":
        return D.MixtureSameFamily(mix, D.Independent(D.Normal(locs, sds), 1))
    R = _correlation_from_factor(draw, d, dtype)
    cov = sd[:, None, None] ** 2 * R
    return D.MixtureSameFamily(mix, D.MultivariateNormal(locs, covariance_matrix=cov))


@st.composite
def student_ts(draw: Any, *, dim: Any = None, dtype: torch.dtype = torch.float64) -> D.Distribution:
    """Student-t with 2.5 to 30 degrees of freedom, location in [-2, 2], scale in [0.5, 2].

    ``dim=d`` gives an independent product (``Independent(StudentT)``) with one ``df`` for all components.
    """
    d = draw(_dim_strategy(dim))
    df = torch.tensor(draw(_floats(2.5, 30.0)), dtype=dtype)
    loc = _tensor(draw, _floats(-2.0, 2.0), d, dtype)
    scale = _tensor(draw, _floats(0.5, 2.0), d, dtype)
    return _wrap(D.StudentT(df.expand_as(loc), loc, scale), d)


@st.composite
def laplaces(draw: Any, *, dim: Any = None, dtype: torch.dtype = torch.float64) -> D.Distribution:
    """Laplace with location in [-2, 2] and scale in [0.4, 1.5] (independent product for ``dim=d``)."""
    d = draw(_dim_strategy(dim))
    loc = _tensor(draw, _floats(-2.0, 2.0), d, dtype)
    scale = _tensor(draw, _floats(0.4, 1.5), d, dtype)
    return _wrap(D.Laplace(loc, scale), d)


@st.composite
def uniforms(draw: Any, *, dim: Any = None, dtype: torch.dtype = torch.float64) -> D.Distribution:
    """Uniform on ``[low, low + width]``, low in [-3, 1], width in [1, 5] (independent product for ``dim=d``)."""
    d = draw(_dim_strategy(dim))
    low = _tensor(draw, _floats(-3.0, 1.0), d, dtype)
    width = _tensor(draw, _floats(1.0, 5.0), d, dtype)
    return _wrap(D.Uniform(low, low + width), d)


@st.composite
def gammas(draw: Any, *, dim: Any = None, dtype: torch.dtype = torch.float64) -> D.Distribution:
    """Gamma with concentration in [0.8, 8] and rate in [0.5, 3] (independent product for ``dim=d``)."""
    d = draw(_dim_strategy(dim))
    concentration = _tensor(draw, _floats(0.8, 8.0), d, dtype)
    rate = _tensor(draw, _floats(0.5, 3.0), d, dtype)
    return _wrap(D.Gamma(concentration, rate), d)


_FAMILY_STRATEGIES = {
    "gaussian": gaussians,
    "gaussian_mixture": gaussian_mixtures,
    "student_t": student_ts,
    "laplace": laplaces,
    "uniform": uniforms,
    "gamma": gammas,
}


def _check_names(arg: str, names: Any, valid: tuple[str, ...]) -> tuple[str, ...]:
    names = (names,) if isinstance(names, str) else tuple(names)
    bad = [n for n in names if n not in valid]
    if not names or bad:
        raise ValueError(
            f"{arg} must be a non-empty subset of {', '.join(repr(v) for v in valid)}; got {names!r}"
        )
    return names


def distributions(
    *, families: Any = FAMILIES, dim: Any = None, dtype: torch.dtype = torch.float64
) -> st.SearchStrategy[D.Distribution]:
    """Any of the families in ``families`` (see ``FAMILIES``), univariate or with event shape ``(dim,)``.

    Args:
        families: family names (subset of ``FAMILIES``).
        dim: ``None`` (univariate), an int or a strategy of ints.
        dtype: parameter dtype.

    Returns:
        A strategy of ``torch.distributions.Distribution``.
    """
    families = _check_names("families", families, FAMILIES)
    _dim_strategy(dim)
    return st.one_of(*[_FAMILY_STRATEGIES[f](dim=dim, dtype=dtype) for f in families])


# ----------------------------------------------------------------------------------------------------------------
# perturbations


def family_of(dist: D.Distribution) -> str:
    """The family name (one of ``FAMILIES``) of a distribution drawn by these strategies.

    Raises:
        ValueError: for distributions outside the families.
    """
    if isinstance(dist, D.MultivariateNormal):
        return "gaussian"
    if isinstance(dist, D.MixtureSameFamily):
        comp, _ = _unwrap(dist.component_distribution)
        if isinstance(comp, (D.Normal, D.MultivariateNormal)):
            return "gaussian_mixture"
    base, _ = _unwrap(dist)
    names = {
        D.Normal: "gaussian",
        D.StudentT: "student_t",
        D.Laplace: "laplace",
        D.Uniform: "uniform",
        D.Gamma: "gamma",
    }
    for cls, name in names.items():
        if type(base) is cls:
            return name
    raise ValueError(f"family_of: {type(dist).__name__} is not one of the families {FAMILIES}")


def applicable_perturbations(dist: D.Distribution) -> tuple[str, ...]:
    """The perturbations (subset of ``PERTURBATIONS``) defined for ``dist``."""
    fam = family_of(dist)
    d = dist.event_shape[0] if len(dist.event_shape) else 1
    if fam == "gaussian":
        kinds = ["mean", "scale", "modes"]
        if d >= 2:
            kinds.append("correlation")
        if not isinstance(dist, D.MultivariateNormal):
            kinds.append("tail")
        return tuple(k for k in PERTURBATIONS if k in kinds)
    if fam == "gaussian_mixture":
        return ("mean", "scale", "modes")
    return ("mean", "scale", "tail")


def _mean_cov(dist: D.Distribution) -> tuple[torch.Tensor, torch.Tensor]:
    # mean (d,) and full covariance (d, d) of a (mixture of) Gaussian(s) with event shape (d,)
    if isinstance(dist, D.MultivariateNormal):
        return dist.loc, dist.covariance_matrix
    if isinstance(dist, D.Independent) and isinstance(dist.base_dist, D.Normal):
        return dist.base_dist.loc, torch.diag_embed(dist.base_dist.scale**2)
    if isinstance(dist, D.MixtureSameFamily):
        w = dist.mixture_distribution.probs
        mus, covs = _mean_cov(dist.component_distribution)  # (k, d), (k, d, d)
        mean = (w[:, None] * mus).sum(0)
        second = (w[:, None, None] * (covs + mus[:, :, None] * mus[:, None, :])).sum(0)
        return mean, second - mean[:, None] * mean[None, :]
    raise ValueError(f"no mean/covariance for {type(dist).__name__}")


def _sd(dist: D.Distribution) -> torch.Tensor:
    if isinstance(dist, D.MultivariateNormal):
        return dist.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
    return dist.variance.sqrt() if not isinstance(dist, (D.StudentT,)) else _unwrap(dist)[0].scale


def perturb(
    Q: D.Distribution, kind: str, *, amount: float, direction: torch.Tensor | None = None
) -> D.Distribution:
    """Return a perturbed copy ``P`` of ``Q`` (see the module docstring for what each ``kind`` does).

    Args:
        Q: a distribution from one of ``FAMILIES``.
        kind: one of :func:`applicable_perturbations` ``(Q)``.
        amount: the size: standard deviations for ``"mean"``, the factor for ``"scale"``, the degrees of freedom
            for ``"tail"`` on Gaussians (the shape factor for gamma; unused for Laplace and uniform), the
            one-factor correlation for ``"correlation"``, the fraction of variance between the modes for
            ``"modes"`` on Gaussians (unused for mixtures).
        direction: for ``"mean"`` (a vector, normalised here), ``"correlation"`` (signs of the factor loadings)
            (``"modes"`` separates the two modes along the principal axis); default the first axis.

    Returns:
        ``P``, with ``Q``'s event shape and dtype.
    """
    kinds = applicable_perturbations(Q)
    if kind not in kinds:
        raise ValueError(
            f"perturbation {kind!r} is not defined for {type(Q).__name__}; applicable: {kinds}"
        )
    fam = family_of(Q)
    base, indep = _unwrap(Q)
    ev = Q.event_shape
    dtype = _dtype_of(Q)
    if direction is None:
        direction = torch.zeros(ev, dtype=dtype)
        if len(ev):
            direction[0] = 1.0
        else:
            direction = torch.tensor(1.0, dtype=dtype)

    if kind == "mean":
        u = direction / direction.norm() if len(ev) else direction.sign()
        shift = amount * u * _sd(Q)
        if isinstance(Q, D.MultivariateNormal):
            return D.MultivariateNormal(Q.loc + shift, scale_tril=Q.scale_tril)
        if isinstance(Q, D.MixtureSameFamily):
            comp, ci = _unwrap(Q.component_distribution)
            if isinstance(comp, D.MultivariateNormal):
                new = D.MultivariateNormal(comp.loc + shift, scale_tril=comp.scale_tril)
            else:
                new = _rewrap(D.Normal(comp.loc + shift, comp.scale), ci)
            return D.MixtureSameFamily(Q.mixture_distribution, new)
        if isinstance(base, D.Normal):
            return _rewrap(D.Normal(base.loc + shift, base.scale), indep)
        if isinstance(base, D.StudentT):
            return _rewrap(D.StudentT(base.df, base.loc + shift, base.scale), indep)
        if isinstance(base, D.Laplace):
            return _rewrap(D.Laplace(base.loc + shift, base.scale), indep)
        if isinstance(base, D.Uniform):
            return _rewrap(D.Uniform(base.low + shift, base.high + shift), indep)
        # gamma: move the mean by changing the rate (the shape stays), keeping the mean positive
        mean = base.concentration / base.rate
        new_mean = torch.clamp(mean + shift, min=0.3 * mean)
        return _rewrap(D.Gamma(base.concentration, base.concentration / new_mean), indep)

    if kind == "scale":
        f = amount
        if isinstance(Q, D.MultivariateNormal):
            return D.MultivariateNormal(Q.loc, scale_tril=f * Q.scale_tril)
        if isinstance(Q, D.MixtureSameFamily):
            # scale the whole mixture about its mean: components' spread and their distances
            comp, ci = _unwrap(Q.component_distribution)
            mean = Q.mean
            if isinstance(comp, D.MultivariateNormal):
                new = D.MultivariateNormal(
                    mean + f * (comp.loc - mean), scale_tril=f * comp.scale_tril
                )
            else:
                new = _rewrap(D.Normal(mean + f * (comp.loc - mean), f * comp.scale), ci)
            return D.MixtureSameFamily(Q.mixture_distribution, new)
        if isinstance(base, D.Normal):
            return _rewrap(D.Normal(base.loc, f * base.scale), indep)
        if isinstance(base, D.StudentT):
            return _rewrap(D.StudentT(base.df, base.loc, f * base.scale), indep)
        if isinstance(base, D.Laplace):
            return _rewrap(D.Laplace(base.loc, f * base.scale), indep)
        if isinstance(base, D.Uniform):
            mid, half = (base.low + base.high) / 2, (base.high - base.low) / 2
            return _rewrap(D.Uniform(mid - f * half, mid + f * half), indep)
        # gamma: same mean, standard deviation times f
        return _rewrap(D.Gamma(base.concentration / f**2, base.rate / f**2), indep)

    if kind == "correlation":
        mean, cov = _mean_cov(Q)
        sd = cov.diagonal().sqrt()
        R = cov / (sd[:, None] * sd[None, :])
        d = R.shape[0]
        s = torch.where(direction >= 0, 1.0, -1.0).to(dtype)
        rho = amount
        R1 = (1 - rho) * torch.eye(d, dtype=dtype) + rho * s[:, None] * s[None, :]
        R0 = torch.eye(d, dtype=dtype)
        Rn = R1 if (R1 - R).norm() >= (R0 - R).norm() else R0
        return D.MultivariateNormal(mean, covariance_matrix=sd[:, None] * Rn * sd[None, :])

    if kind == "tail":
        if isinstance(base, D.Normal):
            df = torch.full_like(base.loc, amount)
            return _rewrap(D.StudentT(df, base.loc, base.scale), indep)
        if isinstance(base, D.StudentT):
            df = torch.where(base.df < 5.0, base.df * 10.0, torch.full_like(base.df, 2.5))
            return _rewrap(D.StudentT(df, base.loc, base.scale), indep)
        if isinstance(base, D.Laplace):  # to the uniform with the same mean and variance: no tails
            half = math.sqrt(3.0) * base.stddev
            return _rewrap(D.Uniform(base.mean - half, base.mean + half), indep)
        if isinstance(
            base, D.Uniform
        ):  # to the Laplace with the same mean and variance: heavy tails
            return _rewrap(D.Laplace(base.mean, base.stddev / math.sqrt(2.0)), indep)
        # gamma: shape times (or divided by) amount, same mean
        k = base.concentration
        k_new = torch.where(k < 2.5, k * amount, k / amount)
        return _rewrap(D.Gamma(k_new, k_new * base.rate / k), indep)

    # modes
    if fam == "gaussian_mixture":
        mean, cov = _mean_cov(Q) if len(ev) else (Q.mean, Q.variance)
        if not len(ev):
            return D.Normal(mean, cov.sqrt())
        return D.MultivariateNormal(mean, covariance_matrix=cov)
    w = amount  # fraction of the variance along `direction` that goes into the distance between the modes
    mix = D.Categorical(probs=torch.full((2,), 0.5, dtype=dtype))
    signs = torch.tensor([1.0, -1.0], dtype=dtype)
    if not len(ev):
        sigma = base.scale
        locs = base.loc + signs * math.sqrt(w) * sigma
        return D.MixtureSameFamily(mix, D.Normal(locs, (sigma * math.sqrt(1 - w)).expand(2)))
    if isinstance(Q, D.MultivariateNormal):
        # the modes separate along the principal axis (where a split is most visible); `direction` sets the sign
        evals, evecs = torch.linalg.eigh(Q.covariance_matrix)
        v = evecs[:, -1] * evals[-1].sqrt()
        delta = math.sqrt(w) * v * (1.0 if float(v @ direction) >= 0 else -1.0)
        cov = Q.covariance_matrix - delta[:, None] * delta[None, :]
        locs = Q.loc + signs[:, None] * delta
        return D.MixtureSameFamily(
            mix, D.MultivariateNormal(locs, covariance_matrix=cov.expand(2, -1, -1))
        )
    # diagonal Gaussian: modes separate along the axis of largest variance
    j = int(base.scale.argmax())
    e = torch.zeros(ev, dtype=dtype)
    e[j] = 1.0
    sigma = base.scale
    delta = math.sqrt(w) * sigma * e
    scale = sigma * torch.where(
        e > 0, torch.tensor(math.sqrt(1 - w), dtype=dtype), torch.tensor(1.0, dtype=dtype)
    )
    locs = base.loc + signs[:, None] * delta
    return D.MixtureSameFamily(mix, D.Independent(D.Normal(locs, scale.expand(2, -1)), 1))


_AMOUNTS = {
    "mean": _floats(0.5, 1.5),
    "scale": st.one_of(_floats(0.4, 0.7), _floats(1.5, 2.5)),
    "correlation": _floats(0.8, 0.95),
    "tail": _floats(2.5, 4.0),
    "modes": _floats(0.85, 0.95),
}


@st.composite
def perturbations(
    draw: Any, Q: D.Distribution, *, kinds: Any = PERTURBATIONS
) -> tuple[D.Distribution, str]:
    """Draw a decisive perturbation ``P`` of ``Q`` among ``kinds`` (those applicable to ``Q``).

    Returns:
        A strategy of ``(P, description)``.
    """
    kinds = _check_names("kinds", kinds, PERTURBATIONS)
    usable = [k for k in kinds if k in applicable_perturbations(Q)]
    assume(usable)
    kind = draw(st.sampled_from(usable))
    amount = draw(_AMOUNTS[kind])
    ev = Q.event_shape
    dtype = _dtype_of(Q)
    if len(ev):
        direction = torch.tensor(
            draw(st.lists(_floats(-1.0, 1.0), min_size=ev[0], max_size=ev[0])), dtype=dtype
        )
        direction[0] = direction[0] + (1.0 if direction[0] >= 0 else -1.0) * 1e-3
    else:
        direction = torch.tensor(draw(st.sampled_from([1.0, -1.0])), dtype=dtype)
    P = perturb(Q, kind, amount=amount, direction=direction)
    return P, f"{kind} (amount {amount:.3g})"


def distribution_pairs(
    *,
    families: Any = FAMILIES,
    dim: Any = None,
    perturbations: Any = PERTURBATIONS,  # noqa: A002 - mirrors the module-level name on purpose
    dtype: torch.dtype = torch.float64,
) -> st.SearchStrategy[DistributionPair]:
    """A true distribution ``Q`` from ``families`` and a decisive alternative ``P`` (see :func:`perturb`).

    Args:
        families: family names for ``Q`` (subset of ``FAMILIES``).
        dim: ``None`` (univariate), an int or a strategy of ints (e.g. ``st.integers(1, 8)``).
        perturbations: perturbation kinds to choose from (subset of ``PERTURBATIONS``); families where none
            applies are skipped.
        dtype: parameter dtype.

    Returns:
        A strategy of :class:`DistributionPair` ``(Q, P, perturbation)``.
    """
    families = _check_names("families", families, FAMILIES)
    kinds = _check_names("perturbations", perturbations, PERTURBATIONS)
    _dim_strategy(dim)
    return _pairs(families=families, dim=dim, kinds=kinds, dtype=dtype)


@st.composite
def _pairs(
    draw: Any, *, families: Any, dim: Any, kinds: Any, dtype: torch.dtype
) -> DistributionPair:
    Q = draw(distributions(families=families, dim=dim, dtype=dtype))
    P, description = draw(_perturbations_strategy(Q, kinds=kinds))
    return DistributionPair(Q, P, description)


_perturbations_strategy = perturbations
