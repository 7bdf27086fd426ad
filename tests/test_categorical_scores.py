"""Categorical scores (Brier, RPS, RLS, log, spherical; Brier and spherical from logits): agreement with
scoringrules 0.10 (numpy, float64) and float64 loops, exact gradients, half precision, validation, propriety."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scoringrules as sr
import torch
from torch.distributions import Categorical

from scoringrules_torch.functional.categorical import (
    brier_score,
    brier_score_from_logits,
    categorical_log_score,
    rls_score,
    rps_score,
    spherical_score,
    spherical_score_from_logits,
)
from scoringrules_torch.scores.categorical import BrierScore, RankedProbabilityScore, SphericalScore
from scoringrules_torch.testing import assert_strictly_proper

BATCHES = [(), (5,), (3, 4)]
F64 = torch.float64
RTOL = 1e-10


def _rel(out: torch.Tensor, ref) -> float:
    ref = np.asarray(ref, dtype=np.float64)
    out = out.detach().numpy()
    assert out.shape == ref.shape, (out.shape, ref.shape)
    return float(np.max(np.abs(out - ref)) / max(1e-300, np.max(np.abs(ref))))


def _cat_data(batch, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn((*batch, k), generator=g, dtype=F64) * 1.5, -1)
    y = torch.randint(0, k, batch, generator=g)
    return p, y


def _onehot(y, k):
    return torch.nn.functional.one_hot(y, k).to(F64)


@pytest.mark.parametrize("batch", BATCHES, ids=str)
def test_binary_brier_and_log_score_match_scoringrules(batch):
    g = torch.Generator().manual_seed(1)
    p = torch.rand(batch, generator=g, dtype=F64) * 0.98 + 0.01
    y = torch.randint(0, 2, batch, generator=g)
    ref = sr.brier_score(y.numpy(), p.numpy(), backend="numpy")
    assert _rel(brier_score(p, y, binary=True, reduction="none"), ref) <= RTOL
    ref = sr.log_score(y.numpy(), p.numpy(), backend="numpy")
    assert _rel(categorical_log_score(p, y.to(F64), binary=True, reduction="none"), ref) <= RTOL


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("onehot", [False, True])
def test_rps_and_rls_match_scoringrules(batch, onehot):
    p, y = _cat_data(batch, k=6, seed=2)
    target = _onehot(y, 6) if onehot else y
    # scoringrules numbers categories from 1
    obs = _onehot(y, 6).numpy() if onehot else (y + 1).numpy()
    ref = sr.rps_score(obs, p.numpy(), onehot=onehot, backend="numpy")
    assert _rel(rps_score(p, target, reduction="none"), ref) <= RTOL
    ref = sr.rls_score(obs, p.numpy(), onehot=onehot, backend="numpy")
    assert _rel(rls_score(p, target, reduction="none"), ref) <= RTOL


def test_class_dim_moves_the_class_axis():
    p, y = _cat_data((4, 3), k=5, seed=3)
    pm = p.movedim(-1, 1)  # (4, 5, 3)
    for fn in (brier_score, rps_score, rls_score, categorical_log_score, spherical_score):
        torch.testing.assert_close(fn(pm, y, class_dim=1, reduction="none"), fn(p, y, reduction="none"))
    ref = sr.rps_score((y + 1).numpy(), pm.numpy(), k_axis=1, backend="numpy")
    assert _rel(rps_score(pm, y, class_dim=1, reduction="none"), ref) <= RTOL


@pytest.mark.parametrize("batch", BATCHES, ids=str)
def test_multiclass_scores_match_float64_loops(batch):
    p, y = _cat_data(batch, k=4, seed=4)
    pf, yf = p.reshape(-1, 4), y.reshape(-1)
    b, ls, sph = [], [], []
    for i in range(pf.shape[0]):
        row, c = pf[i].tolist(), int(yf[i])
        b.append(sum((row[k] - (k == c)) ** 2 for k in range(4)))
        ls.append(-math.log(row[c]))
        sph.append(1 - row[c] / math.sqrt(sum(v * v for v in row)))
    shape = tuple(batch)
    for fn, ref in ((brier_score, b), (categorical_log_score, ls), (spherical_score, sph)):
        assert _rel(fn(p, y, reduction="none"), np.array(ref).reshape(shape)) <= RTOL
        # a one-hot floating target is the same as the index
        assert _rel(fn(p, _onehot(y, 4), reduction="none"), np.array(ref).reshape(shape)) <= RTOL


def test_soft_targets():
    p, _ = _cat_data((6,), k=3, seed=5)
    o, _ = _cat_data((6,), k=3, seed=6)
    torch.testing.assert_close(brier_score(p, o, reduction="none"), ((p - o) ** 2).sum(-1))
    torch.testing.assert_close(categorical_log_score(p, o, reduction="none"), -(o * p.log()).sum(-1))
    # the spherical score of a soft target is the expected score under it
    exp = sum(o[:, k] * spherical_score(p, torch.full((6,), k), reduction="none") for k in range(3))
    torch.testing.assert_close(spherical_score(p, o, reduction="none"), exp)


def test_two_class_brier_is_twice_the_binary_one():
    g = torch.Generator().manual_seed(7)
    q = torch.rand(10, generator=g, dtype=F64)
    y = torch.randint(0, 2, (10,), generator=g)
    two = brier_score(torch.stack([1 - q, q], -1), y, reduction="none")
    torch.testing.assert_close(two, 2 * brier_score(q, y, binary=True, reduction="none"))


def test_rls_keeps_precision_for_confident_forecasts():
    # F_1 = 1 - 1e-12: 1 - F_1 by subtraction loses 4 digits; the upper cumulative sum does not
    p = torch.tensor([[1 - 1e-12, 1e-12 - 1e-16, 1e-16]], dtype=F64)
    out = rls_score(p, torch.tensor([2]), reduction="none")
    ref = -math.log(1e-12) - math.log(1e-16)
    assert abs(out.item() - ref) / ref < 1e-12


# ---- from logits ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["brier", "spherical"])
@pytest.mark.parametrize("chunk_size", [None, 1, 3])
@pytest.mark.parametrize("batch", BATCHES, ids=str)
def test_from_logits_matches_the_float64_softmax_route(kind, chunk_size, batch):
    g = torch.Generator().manual_seed(8)
    z = (torch.randn((*batch, 11), generator=g, dtype=F64) * 3).requires_grad_()
    y = torch.randint(0, 11, batch, generator=g)
    fn_l = brier_score_from_logits if kind == "brier" else spherical_score_from_logits
    fn_p = brier_score if kind == "brier" else spherical_score
    out = fn_l(z, y, chunk_size=chunk_size, reduction="none")
    z2 = z.detach().clone().requires_grad_()
    ref = fn_p(torch.softmax(z2, -1), y, reduction="none")
    assert _rel(out, ref.detach().numpy()) <= RTOL
    w = torch.randn(out.shape, generator=g, dtype=F64)
    (gz,) = torch.autograd.grad((out * w).sum(), z)
    (gr,) = torch.autograd.grad((ref * w).sum(), z2)
    assert _rel(gz, gr.numpy()) <= 1e-9


@pytest.mark.parametrize("fn", [brier_score_from_logits, spherical_score_from_logits])
def test_from_logits_gradcheck(fn):
    g = torch.Generator().manual_seed(9)
    z = torch.randn(4, 6, generator=g, dtype=F64).requires_grad_()
    y = torch.randint(0, 6, (4,), generator=g)
    assert torch.autograd.gradcheck(lambda a: fn(a, y, chunk_size=3, reduction="none"), (z,))


def test_gradcheck_probability_scores():
    g = torch.Generator().manual_seed(10)
    p, y = _cat_data((3,), k=4, seed=10)
    p = p.requires_grad_()
    # probabilities must stay on the simplex: check through a softmax parametrisation as well as directly
    for fn in (brier_score, rps_score, rls_score, categorical_log_score, spherical_score):
        assert torch.autograd.gradcheck(lambda a, fn=fn: fn(a, y, reduction="none"), (p,), eps=1e-7, atol=1e-6)
    q = (torch.rand(5, generator=g, dtype=F64) * 0.8 + 0.1).requires_grad_()
    yb = torch.randint(0, 2, (5,), generator=g)
    assert torch.autograd.gradcheck(lambda a: brier_score(a, yb, binary=True, reduction="none"), (q,))
    assert torch.autograd.gradcheck(lambda a: categorical_log_score(a, yb, binary=True, reduction="none"), (q,))


@pytest.mark.parametrize("kind", ["brier", "spherical"])
def test_half_precision_logits_are_accurate(kind):
    # a confident, vocabulary-sized forecast in float16: the softmax round-trip in float16 rounds p_y to 1
    g = torch.Generator().manual_seed(11)
    v = 5000
    z16 = (torch.randn(8, v, generator=g) * 2).half()
    y = torch.randint(0, v, (8,), generator=g)
    z16[torch.arange(8), y] = 18.0  # p_y close to 1
    fn_l = brier_score_from_logits if kind == "brier" else spherical_score_from_logits
    fn_p = brier_score if kind == "brier" else spherical_score
    out = fn_l(z16, y, reduction="none")
    ref = fn_p(torch.softmax(z16.double(), -1), y, reduction="none")
    assert out.dtype == torch.float32
    assert torch.allclose(out.double(), ref, rtol=1e-4, atol=0)
    # the naive route in float16 does not even get the order of magnitude right
    naive = ((torch.softmax(z16, -1) - torch.nn.functional.one_hot(y, v).half()) ** 2).sum(-1).double()
    if kind == "brier":
        assert ((naive - ref).abs() / ref).max() > 1e-2
    # gradients: float16, finite, close to the float64 ones
    zr = z16.clone().requires_grad_()
    (gh,) = torch.autograd.grad(fn_l(zr, y), zr)
    z64 = z16.double().requires_grad_()
    (g64,) = torch.autograd.grad(fn_p(torch.softmax(z64, -1), y), z64)
    assert gh.dtype == torch.float16 and torch.isfinite(gh).all()
    assert torch.allclose(gh.double(), g64, atol=1e-3 * g64.abs().max().item() + 1e-7)


def test_chunking_gives_the_same_values_and_gradients():
    g = torch.Generator().manual_seed(12)
    z = torch.randn(37, 50, generator=g).requires_grad_()
    y = torch.randint(0, 50, (37,), generator=g)
    a = brier_score_from_logits(z, y, chunk_size=5)
    (ga,) = torch.autograd.grad(a, z)
    b = brier_score_from_logits(z, y)
    (gb,) = torch.autograd.grad(b, z)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ga, gb)


def test_ignore_index_skips_rows():
    g = torch.Generator().manual_seed(13)
    z = torch.randn(6, 4, generator=g, dtype=F64).requires_grad_()
    y = torch.tensor([0, -100, 3, 2, -100, 1])
    keep = y != -100
    for fn in (brier_score_from_logits, spherical_score_from_logits):
        out = fn(z, y, ignore_index=-100)
        ref = fn(z[keep], y[keep])
        torch.testing.assert_close(out, ref)
        (gz,) = torch.autograd.grad(out, z)
        assert (gz[~keep] == 0).all()
        none = fn(z, y, ignore_index=-100, reduction="none")
        assert (none[~keep] == 0).all()


def test_modules_match_functionals():
    g = torch.Generator().manual_seed(14)
    z = torch.randn(5, 7, generator=g)
    y = torch.randint(0, 7, (5,), generator=g)
    p = z.softmax(-1)
    torch.testing.assert_close(BrierScore()(z, y), brier_score_from_logits(z, y))
    torch.testing.assert_close(BrierScore(from_logits=False)(p, y), brier_score(p, y))
    torch.testing.assert_close(SphericalScore()(z, y), spherical_score_from_logits(z, y))
    torch.testing.assert_close(SphericalScore(from_logits=False, reduction="sum")(p, y),
                               spherical_score(p, y, reduction="sum"))
    torch.testing.assert_close(RankedProbabilityScore(from_logits=True)(z, y), rps_score(p, y))
    with pytest.raises(ValueError, match="ignore_index"):
        BrierScore(from_logits=False, ignore_index=-100)
    with pytest.raises(ValueError, match="chunk_size"):
        SphericalScore(chunk_size=0)


def test_validation_errors():
    p, y = _cat_data((4,), k=3)
    with pytest.raises(ValueError, match=r"target must hold class indices in \[0, 3\)"):
        brier_score(p, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"target must hold class indices in \[0, 3\)"):
        brier_score_from_logits(p.log(), torch.tensor([0, -1, 2, 0]))
    with pytest.raises(ValueError, match="probs must sum to 1"):
        rps_score(p * 0.9, y)
    with pytest.raises(ValueError, match=r"probs must be probabilities in \[0, 1\]"):
        spherical_score(p - 0.5, y)
    with pytest.raises(ValueError, match="integer class indices must have shape"):
        rls_score(p, y[:3])
    with pytest.raises(ValueError, match="a floating target must be"):
        brier_score(p, torch.zeros(4, 2, dtype=F64))
    with pytest.raises(ValueError, match="target must be 0 or 1"):
        brier_score(p[:, 0], torch.tensor([0, 2, 1, 0]), binary=True)
    with pytest.raises(TypeError, match="integer class indices"):
        brier_score_from_logits(p, p)
    with pytest.raises(ValueError, match="floating-point"):
        categorical_log_score(torch.ones(3, dtype=torch.long), y[:1])
    with pytest.raises(ValueError, match="reduction"):
        rps_score(p, y, reduction="batchmean")


# ---- propriety --------------------------------------------------------------------------------------------


def _as_score(fn, from_logits=False):
    def score(P, y):
        if from_logits:
            return fn(P.logits.expand(y.shape[0], -1), y, reduction="none")
        return fn(P.probs.expand(y.shape[0], -1), y, reduction="none")

    return score


@pytest.mark.parametrize(
    "fn, from_logits",
    [
        (brier_score, False),
        (rps_score, False),
        (rls_score, False),
        (categorical_log_score, False),
        (spherical_score, False),
        (brier_score_from_logits, True),
        (spherical_score_from_logits, True),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_categorical_scores_strictly_proper(fn, from_logits):
    Q = Categorical(probs=torch.tensor([0.2, 0.5, 0.3], dtype=F64))
    for probs in ([0.3, 0.4, 0.3], [0.2, 0.3, 0.5], [0.1, 0.6, 0.3]):
        P = Categorical(probs=torch.tensor(probs, dtype=F64))
        assert_strictly_proper(_as_score(fn, from_logits), P, Q, kind="distribution", n_obs=20000)


def test_logits_scores_under_bf16_autocast():
    torch.manual_seed(15)
    head = torch.nn.Linear(16, 300)
    h = torch.randn(12, 16)
    y = torch.randint(0, 300, (12,))
    for mod in (BrierScore(), SphericalScore()):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = head(h)
            loss = mod(logits, y)
        assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
        ref = mod(logits.detach().double(), y)
        torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-7)
        head.zero_grad()
        loss.backward()
        assert torch.isfinite(head.weight.grad).all() and head.weight.grad.abs().sum() > 0
