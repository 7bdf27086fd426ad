"""Properties of the ensemble estimators: unbiasedness, permutation and translation invariance, homogeneity.

* Unbiasedness: the average of an estimator over many independent ensembles of size m drawn from a Gaussian equals
  the closed-form score of that Gaussian (``scoringrules_torch.testing.closed_forms``) within 4 standard errors,
  for the unbiased estimators at every m >= 2; the plug-in estimators are shown to be biased by exactly their
  predicted bias (so the test has the power to see a bias).
* Permutation invariance along the sample axis (with member weights permuted alike); the estimators built on a
  fixed pairing (``pairs``, ``akr``, ``akr_circperm``) are shown not to be.
* Translation invariance of every score and estimator (for the variogram score: a common shift of all components);
  homogeneity: energy ``c^beta``, CRPS ``c``, variogram
  ``c^(2p)``, kernel scores invariant when the bandwidth scales with the data.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scoringrules_torch.functional.crps_sample import crps_ensemble
from scoringrules_torch.functional.energy import energy_score
from scoringrules_torch.functional.kernel import kernel_score
from scoringrules_torch.functional.variogram import variogram_score
from scoringrules_torch.testing import THOROUGH_PROFILE, register_hypothesis_profiles
from scoringrules_torch.testing import closed_forms as cf

_PROFILE_NAME = register_hypothesis_profiles()
PROFILE = settings.get_profile(_PROFILE_NAME)
F64 = torch.float64


def examples(n: int) -> settings:
    return settings(PROFILE, max_examples=n * (10 if _PROFILE_NAME == THOROUGH_PROFILE else 1))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def chi_moment(d: int, v: float, beta: float) -> float:
    """E||Z||^beta for Z ~ N(0, v I_d)."""
    return (2.0 * v) ** (beta / 2) * math.exp(math.lgamma((d + beta) / 2) - math.lgamma(d / 2))


def check_mean(
    values: torch.Tensor, exact: torch.Tensor, *, bias: torch.Tensor | float = 0.0
) -> tuple[float, float]:
    """values (R, T): R repeated ensembles at T targets. Check mean_R(values) - exact - bias is within 4 s.e.

    Returns the overall (mean difference without the bias, its standard error).
    """
    R = values.shape[0]
    mean = values.mean(0)
    se = values.std(0) / math.sqrt(R)
    dev = mean - exact - bias
    assert (dev.abs() <= 4 * se).all(), f"deviation {dev.tolist()} vs 4 s.e. {(4 * se).tolist()}"
    diff = (mean - exact).mean().item()
    se_all = (se.pow(2).sum().sqrt() / len(se)).item()
    return diff, se_all


R = 4000  # repeated ensembles per target
T = 5  # targets


def _targets(d: int, scale: float, seed: int) -> torch.Tensor:
    # targets at 0, 0.5, 1, 2 and 4 standard deviations from the mean, in random directions
    u = torch.randn(T, d, generator=gen(seed), dtype=F64)
    u = u / u.norm(dim=-1, keepdim=True)
    return scale * torch.tensor([0.0, 0.5, 1.0, 2.0, 4.0], dtype=F64)[:, None] * u


# ================================================================================================================
# unbiasedness
# ================================================================================================================


@pytest.mark.parametrize("estimator", ["fair", "pairs", "akr", "akr_circperm", "nrg"])
@examples(3)
@given(
    d=st.integers(1, 8),
    beta=st.floats(0.3, 1.9),
    m=st.sampled_from([2, 4, 6]),
    scale=st.floats(0.5, 2.0),
    seed=st.integers(0, 2**16),
)
def test_energy_estimators_unbiased(estimator, d, beta, m, scale, seed):
    y = _targets(d, scale, seed)
    x = scale * torch.randn(m, R, T, d, generator=gen(seed + 1), dtype=F64)  # N(0, scale^2 I)
    values = energy_score(x, y.expand(R, T, d), beta=beta, estimator=estimator, reduction="none")
    exact = cf.energy_score_normal(torch.zeros(T, d, dtype=F64), scale, y, beta=beta)
    if (
        estimator == "nrg"
    ):  # the V-statistic weights the spread by (m-1)/m: bias E||X - X'||^beta / (2m)
        bias = chi_moment(d, 2 * scale**2, beta) / (2 * m)
        diff, se = check_mean(values, exact, bias=bias)
        assert diff > 4 * se  # the bias is visible at this size
    else:
        check_mean(values, exact)


@pytest.mark.parametrize("estimator", ["fair", "pwm", "akr", "akr_circperm", "nrg", "qd", "int"])
@examples(3)
@given(
    m=st.sampled_from([2, 3, 5, 8]),
    scale=st.floats(0.5, 2.0),
    loc=st.floats(-3, 3),
    seed=st.integers(0, 2**16),
)
def test_crps_estimators_unbiased(estimator, m, scale, loc, seed):
    y = loc + _targets(1, scale, seed)[:, 0]
    x = loc + scale * torch.randn(m, R, T, generator=gen(seed + 1), dtype=F64)
    values = crps_ensemble(x, y.expand(R, T), estimator=estimator, reduction="none")
    exact = cf.crps_normal(torch.tensor(loc, dtype=F64), torch.tensor(scale, dtype=F64), y)
    if estimator in (
        "nrg",
        "qd",
        "int",
    ):  # CRPS of the empirical distribution: bias E|X - X'| / (2m)
        diff, se = check_mean(values, exact, bias=scale / (math.sqrt(math.pi) * m))
        assert diff > 4 * se
    else:
        check_mean(values, exact)


@pytest.mark.parametrize("estimator", ["fair", "akr", "akr_circperm", "nrg"])
@examples(3)
@given(
    d=st.integers(1, 8),
    m=st.sampled_from([2, 4, 7]),
    scale=st.floats(0.5, 2.0),
    h=st.floats(0.5, 3.0),
    seed=st.integers(0, 2**16),
)
def test_gaussian_kernel_score_estimators_unbiased(estimator, d, m, scale, h, seed):
    y = _targets(d, scale, seed)
    x = scale * torch.randn(m, R, T, d, generator=gen(seed + 1), dtype=F64)
    values = kernel_score(x, y.expand(R, T, d), bandwidth=h, estimator=estimator, reduction="none")
    exact = cf.kernel_score_normal(torch.zeros(T, d, dtype=F64), scale, y, bandwidth=h)
    if estimator == "nrg":  # the diagonal k(x, x) = 1 enters: bias (1 - E k(X, X')) / (2m)
        e_kxx = (h * h / (h * h + 2 * scale**2)) ** (d / 2)
        diff, se = check_mean(values, exact, bias=(1 - e_kxx) / (2 * m))
        assert diff > 4 * se
    else:
        check_mean(values, exact)


@pytest.mark.parametrize("estimator", ["fair", "nrg"])
@examples(3)
@given(
    d=st.integers(2, 5),
    p=st.sampled_from([0.5, 1.0, 1.5]),
    m=st.sampled_from([2, 4]),
    seed=st.integers(0, 2**16),
)
def test_variogram_estimators_unbiased(estimator, d, p, m, seed):
    g = gen(seed)
    A = torch.randn(d, d, generator=g, dtype=F64)
    cov = A @ A.T / d + 0.3 * torch.eye(d, dtype=F64)
    loc = torch.randn(d, generator=g, dtype=F64)
    L = torch.linalg.cholesky(cov)
    y = loc + torch.randn(T, d, generator=g, dtype=F64) @ L.T * 1.5
    x = loc + torch.randn(m, R, T, d, generator=gen(seed + 1), dtype=F64) @ L.T
    values = variogram_score(x, y.expand(R, T, d), p=p, estimator=estimator, reduction="none")
    exact = cf.variogram_score_normal(loc, cov, y, p=p)
    if estimator == "nrg":  # plug-in (gamma_y - mean g)^2: biased upwards by sum Var(g_kl) / m
        mean, se = values.mean(0), values.std(0) / math.sqrt(values.shape[0])
        assert (mean - exact).mean() > 4 * se.pow(2).sum().sqrt() / len(se)
    else:
        check_mean(values, exact)


# ================================================================================================================
# permutation invariance along the sample axis
# ================================================================================================================

INVARIANT = [
    ("energy", energy_score, "fair"),
    ("energy", energy_score, "nrg"),
    ("crps", crps_ensemble, "fair"),
    ("crps", crps_ensemble, "nrg"),
    ("crps", crps_ensemble, "pwm"),
    ("crps", crps_ensemble, "qd"),
    ("crps", crps_ensemble, "int"),
    ("kernel", kernel_score, "fair"),
    ("kernel", kernel_score, "nrg"),
    ("variogram", variogram_score, "fair"),
    ("variogram", variogram_score, "nrg"),
]
ORDER_DEPENDENT = [
    ("energy", energy_score, "pairs"),
    ("energy", energy_score, "akr"),
    ("energy", energy_score, "akr_circperm"),
    ("crps", crps_ensemble, "akr"),
    ("crps", crps_ensemble, "akr_circperm"),
    ("kernel", kernel_score, "akr"),
    ("kernel", kernel_score, "akr_circperm"),
]


def _ensemble(
    name: str, m: int, d: int, seed: int, *, batch: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(seed)
    if name == "crps":
        return torch.randn(m, batch, generator=g, dtype=F64), torch.randn(
            batch, generator=g, dtype=F64
        )
    return torch.randn(m, batch, d, generator=g, dtype=F64), torch.randn(
        batch, d, generator=g, dtype=F64
    )


@pytest.mark.parametrize("name,fn,estimator", INVARIANT, ids=[f"{n}-{e}" for n, _, e in INVARIANT])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@examples(5)
@given(data=st.data(), m=st.integers(2, 10), d=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_permutation_invariance(name, fn, estimator, weighted, data, m, d, seed):
    perm = torch.tensor(data.draw(st.permutations(range(m))))
    x, y = _ensemble(name, m, d, seed)
    w = torch.rand(m, generator=gen(seed + 1), dtype=F64) + 0.1 if weighted else None
    kw = {"estimator": estimator, "reduction": "none"}
    a = fn(x, y, member_weights=w, **kw)
    b = fn(x[perm], y, member_weights=None if w is None else w[perm], **kw)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "name,fn,estimator", ORDER_DEPENDENT, ids=[f"{n}-{e}" for n, _, e in ORDER_DEPENDENT]
)
def test_fixed_pairing_estimators_depend_on_member_order(name, fn, estimator):
    # these pair member i with i + 1 or i + m/2: reordering changes the value (though not its expectation)
    x, y = _ensemble(name, 6, 3, 0)
    perm = torch.tensor([0, 3, 1, 4, 2, 5])
    a = fn(x, y, estimator=estimator, reduction="none")
    b = fn(x[perm], y, estimator=estimator, reduction="none")
    assert not torch.allclose(a, b)


# ================================================================================================================
# translation invariance and homogeneity
# ================================================================================================================

ALL = (
    [("energy", energy_score, e) for e in ["fair", "nrg", "pairs", "akr", "akr_circperm"]]
    + [
        ("crps", crps_ensemble, e)
        for e in ["fair", "nrg", "pwm", "int", "qd", "akr", "akr_circperm"]
    ]
    + [("kernel", kernel_score, e) for e in ["fair", "nrg", "akr", "akr_circperm"]]
    + [("variogram", variogram_score, e) for e in ["fair", "nrg"]]
)


@pytest.mark.parametrize("name,fn,estimator", ALL, ids=[f"{n}-{e}" for n, _, e in ALL])
@examples(5)
@given(
    m=st.sampled_from([2, 4, 8]),
    d=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    shift=st.floats(-100, 100),
)
def test_translation_invariance(name, fn, estimator, m, d, seed, shift):
    x, y = _ensemble(name, m, d, seed)
    # a vector shift for the isotropic scores; the variogram only sees differences between components, so it is
    # invariant to a common shift of all components (and not to a general vector shift)
    c_shape = () if name in ("crps", "variogram") else y.shape[-1:]
    c = shift * (torch.rand(c_shape, generator=gen(seed + 2), dtype=F64) + 0.5)
    a = fn(x, y, estimator=estimator, reduction="none")
    b = fn(x + c, y + c, estimator=estimator, reduction="none")
    torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9 * (1 + abs(shift)))


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "inverse_multiquadric"])
@examples(3)
@given(
    m=st.sampled_from([2, 5]),
    d=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    shift=st.floats(-100, 100),
)
def test_translation_invariance_of_every_kernel_and_the_median_bandwidth(kernel, m, d, seed, shift):
    x, y = _ensemble("kernel", m, d, seed)
    for bw in (0.7, "median", [0.5, 2.0]):
        a = kernel_score(x, y, kernel=kernel, bandwidth=bw, reduction="none")
        b = kernel_score(x + shift, y + shift, kernel=kernel, bandwidth=bw, reduction="none")
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9 * (1 + abs(shift)))


@pytest.mark.parametrize("estimator", ["fair", "nrg", "pairs", "akr", "akr_circperm"])
@examples(5)
@given(
    m=st.sampled_from([2, 4, 8]),
    d=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    c=st.floats(0.01, 100),
    beta=st.floats(0.2, 2.0),
)
def test_energy_homogeneity(estimator, m, d, seed, c, beta):
    x, y = _ensemble("energy", m, d, seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # beta = 2 warns that it is not strictly proper
        a = energy_score(x, y, beta=beta, estimator=estimator, reduction="none")
        b = energy_score(c * x, c * y, beta=beta, estimator=estimator, reduction="none")
    torch.testing.assert_close(b, c**beta * a, rtol=1e-9, atol=1e-12 * c**beta)


@pytest.mark.parametrize("estimator", ["fair", "nrg", "pwm", "int", "qd", "akr", "akr_circperm"])
@examples(5)
@given(m=st.sampled_from([2, 3, 8]), seed=st.integers(0, 2**16), c=st.floats(0.01, 100))
def test_crps_homogeneity(estimator, m, seed, c):
    x, y = _ensemble("crps", m, 1, seed)
    a = crps_ensemble(x, y, estimator=estimator, reduction="none")
    b = crps_ensemble(c * x, c * y, estimator=estimator, reduction="none")
    torch.testing.assert_close(b, c * a, rtol=1e-9, atol=1e-12 * c)


@pytest.mark.parametrize("estimator", ["fair", "nrg"])
@examples(5)
@given(
    m=st.sampled_from([2, 4]),
    d=st.integers(2, 5),
    seed=st.integers(0, 2**16),
    c=st.floats(0.05, 20),
    p=st.floats(0.25, 2.0),
)
def test_variogram_homogeneity(estimator, m, d, seed, c, p):
    x, y = _ensemble("variogram", m, d, seed)
    a = variogram_score(x, y, p=p, estimator=estimator, reduction="none")
    b = variogram_score(c * x, c * y, p=p, estimator=estimator, reduction="none")
    torch.testing.assert_close(b, c ** (2 * p) * a, rtol=1e-9, atol=1e-12 * c ** (2 * p))


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "inverse_multiquadric"])
@pytest.mark.parametrize("estimator", ["fair", "nrg", "akr", "akr_circperm"])
@examples(3)
@given(
    m=st.sampled_from([2, 5]),
    d=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    c=st.floats(0.05, 20),
    h=st.floats(0.3, 3.0),
)
def test_kernel_score_scale_invariance_with_scaled_bandwidth(kernel, estimator, m, d, seed, c, h):
    x, y = _ensemble("kernel", m, d, seed)
    a = kernel_score(x, y, kernel=kernel, bandwidth=h, estimator=estimator, reduction="none")
    b = kernel_score(
        c * x, c * y, kernel=kernel, bandwidth=h * c, estimator=estimator, reduction="none"
    )
    torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)
    # the median bandwidth scales with the data by construction
    a = kernel_score(x, y, kernel=kernel, bandwidth="median", estimator=estimator, reduction="none")
    b = kernel_score(
        c * x, c * y, kernel=kernel, bandwidth="median", estimator=estimator, reduction="none"
    )
    torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)


@examples(3)
@given(
    m=st.sampled_from([2, 5]),
    d=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    c=st.floats(0.05, 20),
    beta=st.floats(0.2, 1.9),
)
def test_energy_kernel_homogeneity(m, d, seed, c, beta):
    x, y = _ensemble("kernel", m, d, seed)
    a = kernel_score(x, y, kernel="energy", beta=beta, reduction="none")
    b = kernel_score(c * x, c * y, kernel="energy", beta=beta, reduction="none")
    torch.testing.assert_close(b, c**beta * a, rtol=1e-9, atol=1e-12 * c**beta)
