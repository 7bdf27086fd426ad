"""Agreement of the sample-based scores with independent oracles: scoringrules 0.10 (numpy backend, float64),
properscoring, closed forms and float64 loops."""

import math
import warnings

import numpy as np
import properscoring
import pytest
import scoringrules as sr
import torch

from scoringrules_torch._internal.pairwise import pairwise_sq_dist
from scoringrules_torch.functional import (
    crps_ensemble,
    energy_score,
    energy_score_terms,
    kernel_score,
    variogram_score,
)

BATCHES = [(), (5,), (3, 4)]
# A multivariate target needs a batch dimension: (d,) alone is ambiguous and raises (see test_validation.py).
MV_BATCHES = [(1,), (5,), (3, 4)]
MEMBERS = [2, 3, 17, 64]
DIMS = [1, 2, 16]
RTOL = 1e-10


def _rel_err(out: torch.Tensor, ref) -> float:
    ref = np.asarray(ref, dtype=np.float64)
    out = out.detach().numpy()
    assert out.shape == ref.shape
    return float(np.max(np.abs(out - ref)) / max(1e-300, np.max(np.abs(ref))))


def _data(batch, m, d, seed=0, weights=False):
    g = torch.Generator().manual_seed(seed + 1000 * m + d)
    x = torch.randn((m, *batch, d), generator=g, dtype=torch.float64) * 1.7 + 0.3
    y = torch.randn((*batch, d), generator=g, dtype=torch.float64)
    w = torch.rand((m, *batch), generator=g, dtype=torch.float64) + 0.05 if weights else None
    return x, y, w


def _mv(x):  # ours (m, *batch, d) -> scoringrules (*batch, m, d)
    return np.moveaxis(x.numpy(), 0, -2)


def _uv(x):  # ours (m, *batch) -> scoringrules (*batch, m)
    return np.moveaxis(x.numpy(), 0, -1)


@pytest.mark.parametrize("batch", MV_BATCHES, ids=str)
@pytest.mark.parametrize("m", MEMBERS)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("estimator", ["fair", "nrg", "akr", "akr_circperm"])
@pytest.mark.parametrize("weighted", [False, True])
def test_energy_matches_scoringrules(batch, m, d, estimator, weighted):
    x, y, w = _data(batch, m, d, weights=weighted)
    kw = {} if w is None else {"ens_w": _uv(w)}
    ref = sr.es_ensemble(y.numpy(), _mv(x), estimator=estimator, backend="numpy", **kw)
    out = energy_score(x, y, estimator=estimator, member_weights=w, reduction="none")
    assert _rel_err(out, ref) <= RTOL


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("m", MEMBERS)
@pytest.mark.parametrize("estimator", ["fair", "nrg", "pwm", "int", "qd", "akr", "akr_circperm"])
@pytest.mark.parametrize("weighted", [False, True])
def test_crps_matches_scoringrules(batch, m, estimator, weighted):
    x, y, w = _data(batch, m, 1, weights=weighted)
    x, y = x[..., 0], y[..., 0]
    kw = {} if w is None else {"ens_w": _uv(w)}
    ref = sr.crps_ensemble(y.numpy(), _uv(x), estimator=estimator, backend="numpy", **kw)
    if weighted and estimator == "akr_circperm" and m % 2 == 0:
        # scoringrules 0.10 pairs x_i with x_{i+(m-1)//2} when weighted but x_{i-m//2} when not; we use the
        # latter in both cases (see test_crps_weighted_akr_circperm_matches_loop). Equal weights expose the split:
        ref = sr.crps_ensemble(y.numpy(), _uv(x), estimator=estimator, backend="numpy")
        w = torch.ones_like(w)
    out = crps_ensemble(x, y, estimator=estimator, member_weights=w, reduction="none")
    assert _rel_err(out, ref) <= RTOL


@pytest.mark.parametrize("m", MEMBERS)
@pytest.mark.parametrize("weighted", [False, True])
def test_crps_matches_properscoring(m, weighted):
    x, y, w = _data((3, 4), m, 1, weights=weighted)
    x, y = x[..., 0], y[..., 0]
    ref = properscoring.crps_ensemble(y.numpy(), _uv(x), weights=None if w is None else _uv(w))
    for est in ("nrg", "qd", "int"):
        out = crps_ensemble(x, y, estimator=est, member_weights=w, reduction="none")
        assert _rel_err(out, ref) <= RTOL


def test_crps_weighted_akr_circperm_matches_loop():
    """Our weighted akr_circperm (partner x_{i - m//2}, weight w_i) against a float64 loop, even and odd m."""
    for m in (4, 7):
        x, y, w = _data((3,), m, 1, weights=True)
        x, y = x[..., 0], y[..., 0]
        wn = w / w.sum(0)
        ref = torch.zeros(3, dtype=torch.float64)
        for b in range(3):
            acc = sum(wn[i, b] * abs(x[i, b] - y[b]) for i in range(m))
            spr = sum(wn[i, b] * abs(x[i, b] - x[(i - m // 2) % m, b]) for i in range(m))
            ref[b] = acc - 0.5 * spr
        out = crps_ensemble(x, y, estimator="akr_circperm", member_weights=w, reduction="none")
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("batch", MV_BATCHES, ids=str)
@pytest.mark.parametrize("m", MEMBERS)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("estimator", ["fair", "nrg", "akr", "akr_circperm"])
def test_gaussian_kernel_matches_scoringrules(batch, m, d, estimator):
    x, y, _ = _data(batch, m, d)
    ref = sr.gksmv_ensemble(y.numpy(), _mv(x), estimator=estimator, backend="numpy")
    out = kernel_score(x, y, kernel="gaussian", bandwidth=1.0, estimator=estimator, reduction="none")
    assert _rel_err(out, ref) <= RTOL
    if d == 1:
        ref_uv = sr.gksuv_ensemble(y[..., 0].numpy(), _uv(x[..., 0]), estimator=estimator, backend="numpy")
        assert _rel_err(out, ref_uv) <= RTOL


@pytest.mark.parametrize("estimator", ["nrg", "akr", "akr_circperm"])
def test_weighted_gaussian_kernel_matches_scoringrules(estimator):
    x, y, w = _data((5,), 17, 2, weights=True)
    ref = sr.gksmv_ensemble(y.numpy(), _mv(x), ens_w=_uv(w), estimator=estimator, backend="numpy")
    out = kernel_score(x, y, estimator=estimator, member_weights=w, reduction="none")
    assert _rel_err(out, ref) <= RTOL


def _kernel_loop(x, y, w, k, fair):
    m, nb = x.shape[0], x.shape[1]
    wn = w / w.sum(0)
    out = torch.zeros(nb, dtype=torch.float64)
    for b in range(nb):
        cross = sum(wn[i, b] * k(x[i, b], y[b]) for i in range(m))
        pairs = sum(wn[i, b] * wn[j, b] * k(x[i, b], x[j, b]) for i in range(m) for j in range(m) if i != j or not fair)
        if fair:
            pairs = pairs / (1 - (wn[:, b] ** 2).sum())
        out[b] = 0.5 * pairs + 0.5 * k(y[b], y[b]) - cross
    return out


def test_weighted_fair_kernel_matches_loop_and_uniform_weights():
    """scoringrules 0.10's weighted fair kernel score keeps the i == j terms (so uniform weights do not give its
    unweighted fair value); ours excludes them: checked against a float64 loop and against equal weights."""
    x, y, w = _data((4,), 6, 3, weights=True)

    def gauss(a, b):
        return torch.exp(-0.5 * ((a - b) ** 2).sum())

    out = kernel_score(x, y, estimator="fair", member_weights=w, reduction="none")
    torch.testing.assert_close(out, _kernel_loop(x, y, w, gauss, fair=True), rtol=1e-12, atol=0)
    ones = torch.ones_like(w)
    torch.testing.assert_close(
        kernel_score(x, y, member_weights=ones, reduction="none"), kernel_score(x, y, reduction="none")
    )


@pytest.mark.parametrize("kernel,h", [("laplacian", 0.7), ("inverse_multiquadric", 1.3)])
def test_other_kernels_match_loop(kernel, h):
    x, y, w = _data((3,), 5, 2, weights=True)

    def k(a, b):
        r = ((a - b) ** 2).sum().sqrt()
        return torch.exp(-r / h) if kernel == "laplacian" else (1 + r**2 / h**2) ** -0.5

    for fair in (True, False):
        out = kernel_score(x, y, kernel=kernel, bandwidth=h, estimator="fair" if fair else "nrg",
                           member_weights=w, reduction="none")
        torch.testing.assert_close(out, _kernel_loop(x, y, w, k, fair), rtol=1e-12, atol=0)


def test_multiscale_bandwidth_is_sum_and_callable_kernel_matches_builtin():
    x, y, _ = _data((3,), 5, 2)
    multi = kernel_score(x, y, bandwidth=[0.5, 2.0], reduction="none")
    parts = kernel_score(x, y, bandwidth=0.5, reduction="none") + kernel_score(x, y, bandwidth=2.0, reduction="none")
    torch.testing.assert_close(multi, parts)

    def gauss(a, b):
        return torch.exp(-0.5 * ((a - b) ** 2).sum(-1) / 0.8**2)

    for est in ("fair", "nrg", "akr"):
        torch.testing.assert_close(
            kernel_score(x, y, kernel=gauss, estimator=est, reduction="none"),
            kernel_score(x, y, bandwidth=0.8, estimator=est, reduction="none"),
        )


def test_median_bandwidth_is_median_pairwise_distance():
    x, y, _ = _data((2,), 5, 3)
    out = kernel_score(x, y, bandwidth="median", reduction="none")
    for b in range(2):
        dists = [torch.linalg.vector_norm(x[i, b] - x[j, b]) for i in range(5) for j in range(i + 1, 5)]
        h = float(torch.stack(dists).median())
        torch.testing.assert_close(out[b], kernel_score(x[:, b : b + 1], y[b : b + 1], bandwidth=h))


@pytest.mark.parametrize("beta", [0.5, 1.0, 1.5, 2.0])
@pytest.mark.parametrize("estimator", ["fair", "nrg", "akr", "akr_circperm"])
def test_energy_kernel_reproduces_energy_score(beta, estimator):
    x, y, w = _data((3,), 6, 4, weights=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es = energy_score(x, y, beta=beta, estimator=estimator, member_weights=w, reduction="none")
        ks = kernel_score(x, y, kernel="energy", beta=beta, estimator=estimator, member_weights=w, reduction="none")
    torch.testing.assert_close(ks, es, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("batch", [(5,), (3, 4)], ids=str)
@pytest.mark.parametrize("m", [3, 17])
@pytest.mark.parametrize("d", [2, 16])
@pytest.mark.parametrize("estimator", ["nrg", "fair"])
@pytest.mark.parametrize("weighted", [False, True])
def test_variogram_matches_scoringrules(batch, m, d, estimator, weighted):
    x, y, w = _data(batch, m, d, weights=weighted)
    g = torch.Generator().manual_seed(7)
    pair_w = torch.rand(d, d, generator=g, dtype=torch.float64)
    for p in (0.5, 1.0, 1.7):
        kw = {} if w is None else {"ens_w": _uv(w)}
        ref = sr.vs_ensemble(y.numpy(), _mv(x), w=np.broadcast_to(pair_w.numpy(), (*batch, d, d)), p=p,
                             estimator=estimator, backend="numpy", **kw)
        out = variogram_score(x, y, p=p, weights=pair_w, estimator=estimator, member_weights=w, reduction="none")
        assert _rel_err(out, ref) <= RTOL


def test_energy_pairs_estimator_matches_loop():
    """'pairs': sample k pairs with sample k + m/2; 1/2 x EAR's loss ||x1-y|| + ||x2-y|| - ||x1-x2|| per pair."""
    x, y, _ = _data((5,), 6, 3)
    ref = torch.zeros(5, dtype=torch.float64)
    for b in range(5):
        for k in range(3):
            x1, x2 = x[k, b], x[k + 3, b]
            ear = (x1 - y[b]).norm() + (x2 - y[b]).norm() - (x1 - x2).norm()
            ref[b] += 0.5 * ear / 3
    torch.testing.assert_close(energy_score(x, y, estimator="pairs", reduction="none"), ref, rtol=1e-13, atol=0)


@pytest.mark.parametrize("beta", [0.3, 1.0, 1.8])
def test_energy_terms_match_loop(beta):
    x, y, _ = _data((4,), 5, 3)
    acc, spread = energy_score_terms(x, y, beta=beta, reduction="none")
    acc_ref = torch.stack([sum((x[i, b] - y[b]).norm() ** beta for i in range(5)) / 5 for b in range(4)])
    spr_ref = torch.stack([
        sum((x[i, b] - x[j, b]).norm() ** beta for i in range(5) for j in range(5) if i != j) / (2 * 5 * 4)
        for b in range(4)
    ])
    torch.testing.assert_close(acc, acc_ref, rtol=1e-13, atol=0)
    torch.testing.assert_close(spread, spr_ref, rtol=1e-13, atol=0)
    torch.testing.assert_close(energy_score(x, y, beta=beta, reduction="none"), acc - spread)
    a_mean, s_mean = energy_score_terms(x, y, beta=beta)
    torch.testing.assert_close(a_mean, acc.mean())
    torch.testing.assert_close(s_mean, spread.mean())


def test_fair_crps_of_large_normal_ensemble_approaches_closed_form():
    g = torch.Generator().manual_seed(3)
    mu, sigma = 0.4, 1.3
    y = torch.linspace(-3, 3, 7, dtype=torch.float64)
    m = 20000
    samples = mu + sigma * torch.randn(m, 7, generator=g, dtype=torch.float64)
    z = (y - mu) / sigma
    normal = torch.distributions.Normal(0.0, 1.0)
    pdf = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    closed = sigma * (z * (2 * normal.cdf(z) - 1) + 2 * pdf - 1 / math.sqrt(math.pi))
    out = crps_ensemble(samples, y, reduction="none")
    # Monte Carlo error of the U-statistic ~ sigma / sqrt(m): well below 0.02 at m = 20000.
    assert (out - closed).abs().max() < 0.02
    assert (out - closed).abs().max() > 0  # really an estimate, not the closed form


def test_gram_and_direct_paths_agree_in_float64():
    x, _, _ = _data((6,), 40, 24)
    direct = pairwise_sq_dist(x, method="direct")
    gram = pairwise_sq_dist(x, method="gram")
    torch.testing.assert_close(gram, direct, rtol=1e-11, atol=1e-12)
    # oracle: explicit float64 differences, member by member (not torch.cdist, which the direct path wraps)
    ref = torch.stack([torch.stack([((x[i] - x[j]) ** 2).sum(-1) for j in range(40)], -1) for i in range(40)], -2)
    torch.testing.assert_close(direct, ref, rtol=1e-12, atol=1e-12)


def test_gram_path_accurate_far_from_origin_in_float32():
    """torch.cdist's matrix-product mode loses the distances at an offset of 1e3 in float32; ours translates first."""
    g = torch.Generator().manual_seed(0)
    x64 = torch.randn(64, 8, 32, generator=g, dtype=torch.float64) + 1e3
    exact = pairwise_sq_dist(x64, method="direct").sqrt()
    ours = pairwise_sq_dist(x64.float(), method="gram").sqrt().double()
    assert (ours - exact).abs().max() < 1e-3
    assert torch.all(torch.diagonal(pairwise_sq_dist(x64.float(), method="gram"), dim1=-2, dim2=-1) == 0)


def test_identical_members_have_exactly_zero_distance_on_both_paths():
    x = torch.randn(1, 3, 16).expand(10, 3, 16).contiguous() * 123.4
    for method in ("direct", "gram"):
        assert torch.all(pairwise_sq_dist(x, method=method) == 0)


# ------------------------------------------------------------------- coincident members (issue 13: fused backward)


def _dense_kernel_score(x, y, phi, k_yy, estimator, w):
    """Float64 oracle: the kernel score with plain autograd on the dense (m, m, B) distances; ``phi(s)`` of the
    squared distance with ``safe_pow`` (a zero subgradient at coincident members, as ours promises)."""
    m = x.shape[0]
    diff = x.unsqueeze(1) - x.unsqueeze(0)
    k = phi((diff * diff).sum(-1))  # (m, m, B)
    kxy = phi(((x - y) ** 2).sum(-1))  # (m, B)
    w = torch.full(x.shape[:2], 1.0 / m, dtype=x.dtype) if w is None else w / w.sum(0)
    ww = w.unsqueeze(1) * w.unsqueeze(0)
    if estimator == "fair":
        off = 1.0 - torch.eye(m, dtype=x.dtype).unsqueeze(-1)
        within = (k * off * ww).sum((0, 1)) / (1.0 - (w * w).sum(0))
    else:
        within = (k * ww).sum((0, 1))
    return 0.5 * within + 0.5 * k_yy - (w * kxy).sum(0)


def _phi(kernel, beta=1.0, h=1.3):
    from scoringrules_torch._internal.pairwise import safe_pow

    return {
        "laplacian": (lambda s: torch.exp(-safe_pow(s, 0.5) / h), 1.0),
        "gaussian": (lambda s: torch.exp(-0.5 * s / h**2), 1.0),
        "inverse_multiquadric": (lambda s: torch.rsqrt(1.0 + s / h**2), 1.0),
        "energy": (lambda s: -safe_pow(s, beta / 2.0), 0.0),
    }[kernel]


def test_laplacian_gradient_with_coincident_members_issue_example():
    """Issue 13: members 1 and 2 coincide (not the first): the fused backward gave x.grad[1] = [0.00502, 0.00754]
    (a huge derivative at distance 0 swamped the other pairs by rounding); dense float64 autograd gives
    [0.00435, 0.00664]."""
    x = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]], [[3.0, 4.0]]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    (g,) = torch.autograd.grad(kernel_score(x, y, kernel="laplacian"), x)
    phi, kyy = _phi("laplacian", h=1.0)
    (g_ref,) = torch.autograd.grad(_dense_kernel_score(x, y, phi, kyy, "fair", None).mean(), x)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g[1, 0], torch.tensor([0.00435, 0.00664], dtype=torch.float64), atol=5e-6, rtol=0)


_COINCIDE = {
    "first": [(0, 1)],
    "middle": [(2, 3)],
    "last": [(4, 5)],
    "several": [(0, 1), (2, 3), (4, 5)],
    "triple": [(1, 3), (1, 5)],
    "all": [(0, i) for i in range(1, 6)],
}


@pytest.mark.parametrize("where", list(_COINCIDE))
@pytest.mark.parametrize("kernel,beta", [("laplacian", 1.0), ("energy", 0.5), ("energy", 1.0), ("energy", 1.5),
                                         ("inverse_multiquadric", 1.0), ("gaussian", 1.0)])
@pytest.mark.parametrize("d", [2, 9], ids=["direct", "gram"])
def test_coincident_members_value_and_gradient_match_dense_autograd(where, kernel, beta, d):
    """Every radial kernel, coincident members anywhere (first, middle, last, several pairs, a triple, all), both
    paths of the pairwise engine, fair/nrg, with and without member weights: value and gradient against dense
    float64 autograd."""
    g = torch.Generator().manual_seed(d)
    x = torch.randn(6, 3, d, generator=g, dtype=torch.float64) * 1.5 + 2.0
    for i, j in _COINCIDE[where]:
        x[j] = x[i]
    y = torch.randn(3, d, generator=g, dtype=torch.float64)
    phi, kyy = _phi(kernel, beta)
    for estimator in ("fair", "nrg"):
        for w in (None, torch.rand(6, 3, generator=g, dtype=torch.float64) + 0.1):
            xr = x.clone().requires_grad_(True)
            out = kernel_score(xr, y, kernel=kernel, beta=beta, bandwidth=1.3, estimator=estimator,
                               member_weights=w, reduction="none")
            (grad,) = torch.autograd.grad(out.sum(), xr)
            xd = x.clone().requires_grad_(True)
            ref = _dense_kernel_score(xd, y, phi, kyy, estimator, w)
            (grad_ref,) = torch.autograd.grad(ref.sum(), xd)
            torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-14)
            assert (grad - grad_ref).abs().max() <= 1e-10 * grad_ref.abs().max()
            if kernel == "energy" and estimator == "fair" and w is None:
                xe = x.clone().requires_grad_(True)
                (ge,) = torch.autograd.grad(energy_score(xe, y, beta=beta, reduction="sum"), xe)
                assert (ge - grad_ref).abs().max() <= 1e-10 * grad_ref.abs().max()  # the energy score itself


@pytest.mark.parametrize("kernel,beta", [("laplacian", 1.0), ("energy", 0.5), ("gaussian", 1.0),
                                         ("inverse_multiquadric", 1.0)])
@pytest.mark.parametrize("d", [2, 9], ids=["direct", "gram"])
def test_coincident_members_float32_gradient_at_rounding_level(kernel, beta, d):
    """In float32 the coincident pairs' terms must vanish exactly (not leave |G_ij| |x| eps of rounding): the
    gradient agrees with the float64 oracle on the same (rounded) inputs to 1e-5 of its largest entry."""
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(6, 4, d, generator=g, dtype=torch.float64) * 3.0 + 2.0).float().double()
    x[3], x[5] = x[2], x[1]
    y = torch.randn(4, d, generator=g, dtype=torch.float64).float().double()
    phi, kyy = _phi(kernel, beta)
    xr = x.float().requires_grad_(True)
    (grad,) = torch.autograd.grad(kernel_score(xr, y.float(), kernel=kernel, beta=beta, bandwidth=1.3,
                                               reduction="sum"), xr)
    xd = x.clone().requires_grad_(True)
    (grad_ref,) = torch.autograd.grad(_dense_kernel_score(xd, y, phi, kyy, "fair", None).sum(), xd)
    assert (grad.double() - grad_ref).abs().max() <= 1e-5 * grad_ref.abs().max()


def test_callable_kernel_fair_gradient_finite_with_sqrt_kernel():
    """A callable built on sqrt has an undefined gradient at a == b; the fair estimator drops the i == i terms,
    so they must not put 0 * inf = NaN into every gradient (they did: all entries were NaN)."""
    x = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]], [[5.0, 4.0]]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, 1.0]], dtype=torch.float64)

    def lap(a, b):
        return torch.exp(-((a - b) ** 2).sum(-1).sqrt())

    (g,) = torch.autograd.grad(kernel_score(x, y, kernel=lap), x)
    phi, kyy = _phi("laplacian", h=1.0)
    xd = x.detach().clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad(_dense_kernel_score(xd, y, phi, kyy, "fair", None).sum(), xd)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-15)


def test_nrg_crps_of_a_deterministic_ensemble_is_twice_the_mean_pinball_loss():
    """docs/estimators.md: for deterministic quantile-like outputs, 'nrg' (= 'qd' = 'int') is twice the pinball
    loss averaged over the levels (i - 1/2)/m of the sorted outputs; 'fair' is not (it rewards spread more)."""
    g = torch.Generator().manual_seed(9)
    m, b = 7, 11
    x = torch.randn(m, b, generator=g, dtype=torch.float64) * 2.0
    y = torch.randn(b, generator=g, dtype=torch.float64)
    ref = torch.zeros(b, dtype=torch.float64)
    for j in range(b):
        xs = sorted(x[:, j].tolist())
        for i, q in enumerate(xs, start=1):
            tau, u = (i - 0.5) / m, y[j].item() - q
            ref[j] += 2.0 / m * u * (tau - (1.0 if u < 0 else 0.0))
    for est in ("nrg", "qd", "int"):
        torch.testing.assert_close(crps_ensemble(x, y, estimator=est, reduction="none"), ref, rtol=1e-12, atol=1e-14)
    # the energy score of the same outputs as d = 1 ensembles agrees
    torch.testing.assert_close(energy_score(x[..., None], y[:, None], estimator="nrg", reduction="none"), ref,
                               rtol=1e-12, atol=1e-14)
    assert (crps_ensemble(x, y, estimator="fair", reduction="none") < ref).all()  # fair rewards spread more
