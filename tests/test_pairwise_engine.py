"""The pairwise engine against float64 oracles written here: every pair exact to float32 rounding on both paths.

Adversarial float32 ensembles (a tight pair inside a wide ensemble, members 1e3 from the origin, coincident members,
mixed scales per dimension) through ``energy_score`` and ``kernel_score`` (Gaussian, Laplacian, energy kernels):
value within 1e-5 relative and gradient within 1e-4 of the largest gradient entry of a dense float64 autograd oracle
computed on the same (float32-representable) members; truly coincident members keep exactly zero distance and a
finite gradient.
"""

from __future__ import annotations

import pytest
import torch

import scoringrules_torch._internal.pairwise as pw
from scoringrules_torch._internal.pairwise import choose_method, pairwise_sq_dist
from scoringrules_torch.functional.energy import energy_score
from scoringrules_torch.functional.kernel import kernel_score

M, B = 24, 3


def _ensemble(kind: str, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
    """float32 members ``(M, B, d)``, a target ``(B, d)`` and a bandwidth suited to the ensemble's scale."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    y = randn(B, d)
    h = 1.0
    if kind == "tight":  # a pair 1e-3 apart inside an ensemble of spread 100
        x = randn(M, B, d) * 100
        x[5] = x[3] + 1e-3 * randn(B, d)
        h = 100.0
    elif kind == "offset":  # 1e3 from the origin
        x = randn(M, B, d) + 1e3
        y = y + 1e3
    elif kind == "coincident":  # members other than the first coincide
        x = randn(M, B, d)
        x[4] = x[2]
        x[9] = x[2]
        x[7] = x[11]
    elif kind == "mixed":  # scales 1e-3 .. 1e3 per dimension, and a tight pair
        sc = 10 ** torch.linspace(-3, 3, d, dtype=torch.float64)
        x = randn(M, B, d) * sc
        x[6] = x[1] + 1e-4 * randn(B, d) * sc
        y = y * sc
        h = 100.0
    else:
        raise AssertionError(kind)
    return x.float(), y.float(), h


def _dense_sq(x: torch.Tensor) -> torch.Tensor:
    """float64 ``||x_i - x_j||^2`` as ``(B, M, M)`` from explicit differences (the oracle)."""
    xb = x.double().transpose(0, 1)
    diff = xb.unsqueeze(2) - xb.unsqueeze(1)
    return (diff * diff).sum(-1)


def _safe_norm(s: torch.Tensor) -> torch.Tensor:
    pos = s > 0
    return torch.where(pos, torch.where(pos, s, 1.0).sqrt(), 0.0)


_KERNELS = {
    "gaussian": lambda r, h: torch.exp(-0.5 * r * r / h**2),
    "laplacian": lambda r, h: torch.exp(-r / h),
    "energy": lambda r, h: -r,
}


def _oracle(x, y, score: str, kernel: str | None, h: float, w=None):
    """Fair energy / kernel score (mean over the batch) and its gradient, dense float64 autograd."""
    x = x.double().requires_grad_(True)
    y = y.double()
    m = x.shape[0]
    wt = torch.full((m, x.shape[1]), 1.0 / m, dtype=x.dtype) if w is None else w.double()
    diff = x.unsqueeze(0) - x.unsqueeze(1)  # (M, M, B, d)
    r = _safe_norm((diff * diff).sum(-1))  # (M, M, B)
    ry = _safe_norm(((x - y) ** 2).sum(-1))  # (M, B)
    off = 1.0 - torch.eye(m, dtype=x.dtype).unsqueeze(-1)
    pair_w = wt.unsqueeze(0) * wt.unsqueeze(1) * off
    norm = 1.0 - (wt * wt).sum(0)
    if score == "energy":
        val = (wt * ry).sum(0) - 0.5 * (pair_w * r).sum((0, 1)) / norm
    else:
        k = _KERNELS[kernel]
        val = 0.5 * (pair_w * k(r, h)).sum((0, 1)) / norm + 0.5 * k(torch.zeros(()), h) - (wt * k(ry, h)).sum(0)
    val = val.mean()
    (grad,) = torch.autograd.grad(val, x)
    return val.detach(), grad


def _ours(x, y, score: str, kernel: str | None, h: float, w=None):
    x = x.clone().requires_grad_(True)
    if score == "energy":
        val = energy_score(x, y, member_weights=w)
    else:
        val = kernel_score(x, y, kernel=kernel, bandwidth=h, member_weights=w)
    (grad,) = torch.autograd.grad(val, x)
    return val.detach().double(), grad.double()


def _check(ours, ref, rtol=1e-5, gtol=1e-4):
    (v, g), (rv, rg) = ours, ref
    assert torch.isfinite(g).all()
    assert abs(v - rv) <= rtol * abs(rv), (v.item(), rv.item())
    scale = rg.abs().max()
    if scale == 0:  # e.g. a Gaussian kernel score of identical members at the target: exactly flat
        assert torch.all(g == 0)
        return
    err = (g - rg).abs().max() / scale
    assert err <= gtol, err.item()


SCORES = [("energy", None), ("kernel", "gaussian"), ("kernel", "laplacian"), ("kernel", "energy")]
KINDS = ["tight", "offset", "coincident", "mixed"]


@pytest.mark.parametrize("d,path", [(16, "gram"), (4, "direct")])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("score,kernel", SCORES)
def test_adversarial_ensembles_match_float64_oracle(d, path, kind, score, kernel):
    assert choose_method(M, d) == path
    x, y, h = _ensemble(kind, d)
    _check(_ours(x, y, score, kernel, h), _oracle(x, y, score, kernel, h))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["gram", "direct"])
def test_every_pair_exact_to_float32_rounding(kind, method):
    """Each squared distance within a few float32 ulps of the exact one; exact zeros exactly where members coincide."""
    x, _, _ = _ensemble(kind, 16)
    exact = _dense_sq(x)
    s = pairwise_sq_dist(x, method=method).double()
    assert torch.equal(s == 0, exact == 0)
    rel = (s - exact).abs() / exact.where(exact > 0, 1.0)
    assert rel.max() < 2e-6, rel.max().item()  # float32 eps is 1.2e-7


def test_tight_pair_keeps_its_distance_on_gram_path():
    """The issue's case: a genuine distance inside a wide ensemble is not rounded to zero."""
    x, _, _ = _ensemble("tight", 16)
    s = pairwise_sq_dist(x, method="gram")
    exact = _dense_sq(x)
    assert (s[:, 3, 5] > 0).all()
    torch.testing.assert_close(s[:, 3, 5].double(), exact[:, 3, 5], rtol=1e-6, atol=0)


def test_laplacian_gradient_with_coincident_members_not_first():
    """Issue 13's example: members 1 and 2 coincide (float64, m=3, d=2); dense autograd gives the gradient."""
    x = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]], [[3.0, 4.0]]], dtype=torch.float64)
    y = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    v, g = _ours(x, y, "kernel", "laplacian", 1.0)
    rv, rg = _oracle(x, y, "kernel", "laplacian", 1.0)
    torch.testing.assert_close(v, rv, rtol=1e-12, atol=0)
    torch.testing.assert_close(g, rg, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("d", [4, 16])
def test_coincident_members_with_infinite_kernel_slope_give_finite_gradient(d):
    """Laplacian with bandwidth 0.05: phi'(0) overflows float32; coincident pairs must still contribute 0."""
    g = torch.Generator().manual_seed(1)
    x = 0.05 * torch.randn(6, 2, d, generator=g)
    x[3] = x[1]
    y = 0.05 * torch.randn(2, d, generator=g)
    ours = _ours(x, y, "kernel", "laplacian", 0.05)
    ref = _oracle(x, y, "kernel", "laplacian", 0.05)
    assert ref[1].abs().max() > 0
    _check(ours, ref)


@pytest.mark.parametrize("d", [4, 16])
def test_all_members_identical_exact_zero_spread_and_gradient(d):
    x = torch.randn(1, 2, d, generator=torch.Generator().manual_seed(4)).expand(8, 2, d).contiguous() * 123.4
    y = x[0] + 0.5
    assert torch.all(pairwise_sq_dist(x) == 0)
    for score, kernel in SCORES:
        _check(_ours(x, y, score, kernel, 1.0), _oracle(x, y, score, kernel, 1.0))


@pytest.mark.parametrize("kind", ["tight", "coincident"])
def test_weighted_members_match_oracle(kind):
    x, y, h = _ensemble(kind, 16)
    w = torch.rand(M, B, generator=torch.Generator().manual_seed(2)) + 0.1
    w = w / w.sum(0)
    for score, kernel in SCORES:
        _check(_ours(x, y, score, kernel, h, w), _oracle(x, y, score, kernel, h, w))


def test_small_blocks_and_recomputed_backward(monkeypatch):
    """Many close pairs split over several chunks and blocks, and the backward that recomputes distances."""
    monkeypatch.setattr(pw, "BLOCK_ELEMENTS", 256)
    monkeypatch.setattr(pw, "_PAIR_BLOCK", 1024)
    monkeypatch.setattr(pw, "_SAVE_ELEMENTS", 0)
    g = torch.Generator().manual_seed(3)
    base = torch.randn(3, 6, 16, generator=g, dtype=torch.float64) * 50
    x = base.repeat(4, 1, 1)  # every member coincides with three others: many close pairs per observation
    x[1] = x[0] + 1e-3  # and a tight pair
    x = x.float()
    y = torch.randn(6, 16, generator=g)
    for score, kernel in SCORES:
        _check(_ours(x, y, score, kernel, 50.0), _oracle(x, y, score, kernel, 50.0))


def test_compiled_path_matches_oracle():
    """Under torch.compile (full graph) the engine uses exact differences everywhere; same oracle."""
    torch._dynamo.reset()
    x, y, h = _ensemble("tight", 16)
    x[9] = x[2]  # and coincident members

    def f(a, b):
        return energy_score(a, b) + kernel_score(a, b, kernel="laplacian", bandwidth=h)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    xr = x.clone().requires_grad_(True)
    val = compiled(xr, y)
    (grad,) = torch.autograd.grad(val, xr)
    e_val, e_grad = _oracle(x, y, "energy", None, h)
    k_val, k_grad = _oracle(x, y, "kernel", "laplacian", h)
    _check((val.detach().double(), grad.double()), (e_val + k_val, e_grad + k_grad))


# ----------------------------------------------------------------------------------------- CRPS without a gradient

import numpy as np  # noqa: E402
import properscoring  # noqa: E402
import scoringrules as sr  # noqa: E402

import scoringrules_torch.functional.crps_sample as crps_mod  # noqa: E402
from scoringrules_torch.functional.crps_sample import crps_ensemble  # noqa: E402


def _crps_loop(x: np.ndarray, y: np.ndarray, estimator: str) -> np.ndarray:
    """float64 double loop: E|X - y| - sum_{i,j}|x_i - x_j| / (2 m (m - 1)) (fair) or / (2 m^2) (nrg, qd)."""
    m, b = x.shape
    out = np.empty(b)
    for k in range(b):
        acc = np.abs(x[:, k] - y[k]).mean()
        pair = sum(abs(x[i, k] - x[j, k]) for i in range(m) for j in range(m))
        out[k] = acc - pair / (2 * m * (m - 1) if estimator == "fair" else 2 * m * m)
    return out


def _crps_inputs(dtype, m=9, b=40, offset=0.0):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(m, b, generator=g, dtype=torch.float64) + offset
    x[3, :10] = x[1, :10]  # ties
    x[:, 10:12] = 0.25 + offset  # a degenerate ensemble
    y = torch.randn(b, generator=g, dtype=torch.float64) + offset
    y[12] = x[4, 12]  # the target on a member
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("block", [None, 7 * 9])  # one block, or blocks of 7 rows (the last one partial)
@pytest.mark.parametrize("estimator", ["fair", "nrg", "qd"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_crps_no_grad_path_matches_sorted_path_and_oracles(estimator, dtype, block, monkeypatch):
    x, y = _crps_inputs(dtype)
    assert crps_mod._fast_sort_ok(x)
    if block:
        monkeypatch.setattr(crps_mod, "_NO_GRAD_BLOCK", block)
    x_before = x.clone()
    fast = crps_ensemble(x, y, estimator=estimator, reduction="none")
    assert torch.equal(x, x_before)  # the in-place sort works on a copy
    monkeypatch.setattr(crps_mod, "_np_sort", None)  # the torch.sort path
    assert not crps_mod._fast_sort_ok(x)
    sorted_path = crps_ensemble(x, y, estimator=estimator, reduction="none")
    monkeypatch.undo()
    x64, y64 = x.double().numpy(), y.double().numpy()
    loop = torch.from_numpy(_crps_loop(x64, y64, estimator))
    peer = torch.from_numpy(np.asarray(sr.crps_ensemble(y64, x64.T, estimator=estimator, backend="numpy")))
    if dtype == torch.float64:
        torch.testing.assert_close(fast, sorted_path, rtol=1e-13, atol=1e-14)
        torch.testing.assert_close(fast, loop, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(fast, peer, rtol=1e-12, atol=1e-14)
    else:
        torch.testing.assert_close(fast, sorted_path, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(fast.double(), loop, rtol=1e-5, atol=1e-6)
    if estimator == "nrg":  # properscoring computes the empirical (nrg) CRPS
        ps = torch.from_numpy(properscoring.crps_ensemble(y64, x64.T))
        torch.testing.assert_close(fast.double(), ps, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-6)


def test_crps_no_grad_path_far_from_origin_float32():
    """Measured from the target first: an offset of 1e4 does not cost more than float32 rounding of the inputs."""
    x, y = _crps_inputs(torch.float32, offset=1e4)
    out = crps_ensemble(x, y, reduction="none").double()
    loop = torch.from_numpy(_crps_loop(x.double().numpy(), y.double().numpy(), "fair"))
    torch.testing.assert_close(out, loop, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("estimator", ["fair", "nrg", "qd"])
def test_crps_gradient_path_matches_float64_loop(estimator):
    """With a gradient the torch.sort path runs; its gradient matches autograd through the float64 double loop."""
    x, y = _crps_inputs(torch.float64, m=6)
    x = x + 1e-3 * torch.arange(6, dtype=torch.float64).reshape(-1, 1)  # no ties: a unique gradient
    xr = x.clone().requires_grad_(True)
    assert not crps_mod._fast_sort_ok(xr)
    (g,) = torch.autograd.grad(crps_ensemble(xr, y, estimator=estimator), xr)
    xo = x.clone().requires_grad_(True)
    m = xo.shape[0]
    pair = (xo.unsqueeze(0) - xo.unsqueeze(1)).abs().sum((0, 1))
    ref = ((xo - y).abs().mean(0) - pair / (2 * m * (m - 1) if estimator == "fair" else 2 * m * m)).mean()
    (g_ref,) = torch.autograd.grad(ref, xo)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-14)


def test_crps_single_member_no_grad_path():
    x = torch.tensor([[0.5, -1.0]])
    y = torch.tensor([0.0, 1.0])
    for est in ("nrg", "qd"):
        torch.testing.assert_close(crps_ensemble(x, y, estimator=est, reduction="none"), torch.tensor([0.5, 2.0]))


def test_crps_under_vmap_uses_the_torch_path():
    """A tensor under ``torch.func.vmap`` has no numpy view: the no-gradient path must step aside."""
    x, y = torch.randn(4, 5, 3), torch.randn(4, 3)
    out = torch.func.vmap(lambda a, b: crps_ensemble(a, b, reduction="none"))(x, y)
    ref = torch.stack([crps_ensemble(x[i], y[i], reduction="none") for i in range(4)])
    torch.testing.assert_close(out, ref)
