"""The score Modules pass every setting through to their functional, and validate them at construction.

Each test uses non-default settings whose values differ from the defaults (checked), with the sample axis NOT
first, so a Module that dropped ``estimator``, ``sample_dim``, ``num_probes``, ``probe``, ``event_dims``,
``kind``, ``bandwidth``, ``beta``, ``p`` or ``weights`` would fail here (tools/mutation_pass.py checks that).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scoringrules_torch.functional.crps_sample import CRPS_ESTIMATORS, crps_ensemble
from scoringrules_torch.functional.energy import ENERGY_ESTIMATORS, energy_score
from scoringrules_torch.functional.hyvarinen import hyvarinen_score
from scoringrules_torch.functional.kernel import KERNEL_ESTIMATORS, KERNELS, kernel_score
from scoringrules_torch.functional.log import log_score
from scoringrules_torch.functional.variogram import VARIOGRAM_ESTIMATORS, variogram_score
from scoringrules_torch.scores import (
    CRPS,
    EnergyScore,
    HyvarinenScore,
    KernelScore,
    LogScore,
    VariogramScore,
)

F64 = torch.float64
M, B, D = 6, 4, 3  # B != M so that a sample axis taken from the wrong place is a shape error or a wrong value


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, M, D, generator=g, dtype=F64) * 1.3  # sample axis 1
    y = torch.randn(B, D, generator=g, dtype=F64)
    w = torch.rand(B, M, generator=g, dtype=F64) + 0.1  # member weights laid out like x without the event axis
    return x, y, w


def _differs(a: torch.Tensor, b: torch.Tensor) -> bool:
    return not torch.allclose(a, b, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------- sample scores


@pytest.mark.parametrize("estimator", ENERGY_ESTIMATORS)
@pytest.mark.parametrize("sample_dim", [1, -2])
def test_energy_module_equals_functional(estimator, sample_dim):
    x, y, w = _data()
    kw = dict(beta=0.7, estimator=estimator, sample_dim=sample_dim)
    weights = None if estimator == "pairs" else w
    out = EnergyScore(**kw, reduction="none")(x, y, weights)
    ref = energy_score(x, y, **kw, member_weights=weights, reduction="none")
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=0)
    assert out.shape == (B,)
    # the settings matter: the default beta and the default estimator give other values
    assert _differs(ref, energy_score(x, y, estimator=estimator, sample_dim=1, member_weights=weights,
                                      reduction="none"))
    if estimator != "fair":
        assert _differs(ref, energy_score(x, y, beta=0.7, sample_dim=1, member_weights=weights, reduction="none"))
    torch.testing.assert_close(EnergyScore(**kw, reduction="sum")(x, y, weights), ref.sum(), rtol=1e-13, atol=0)
    torch.testing.assert_close(EnergyScore(**kw)(x, y, weights), ref.mean(), rtol=1e-13, atol=0)


@pytest.mark.parametrize("estimator", CRPS_ESTIMATORS)
def test_crps_module_equals_functional(estimator):
    x, y, w = _data()
    xs, ys = x[..., 0], y[..., 0]  # (B, M) with the sample axis 1, target (B,)
    out = CRPS(estimator=estimator, sample_dim=1, reduction="none")(xs, ys, w)
    ref = crps_ensemble(xs, ys, estimator=estimator, sample_dim=1, member_weights=w, reduction="none")
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=0)
    torch.testing.assert_close(CRPS(estimator=estimator, sample_dim=-1, reduction="sum")(xs, ys, w), ref.sum())
    unweighted = crps_ensemble(xs, ys, estimator=estimator, sample_dim=1, reduction="none")
    assert _differs(ref, unweighted)
    torch.testing.assert_close(CRPS(estimator=estimator, sample_dim=1, reduction="none")(xs, ys), unweighted)


def test_crps_estimators_differ_so_the_module_test_can_fail():
    x, y, _ = _data()
    values = {e: crps_ensemble(x[..., 0], y[..., 0], estimator=e, sample_dim=1, reduction="none")
              for e in CRPS_ESTIMATORS}
    for e in ("nrg", "akr", "akr_circperm"):
        assert _differs(values[e], values["fair"])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("estimator", KERNEL_ESTIMATORS)
def test_kernel_module_equals_functional(kernel, estimator):
    x, y, w = _data()
    kw = dict(kernel=kernel, bandwidth=[0.6, 2.5], beta=1.4, estimator=estimator, sample_dim=1)
    out = KernelScore(**kw, reduction="none")(x, y, w)
    ref = kernel_score(x, y, **kw, member_weights=w, reduction="none")
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=0)
    if estimator != "fair":
        assert _differs(ref, kernel_score(x, y, **{**kw, "estimator": "fair"}, member_weights=w, reduction="none"))
    if kernel == "energy":
        assert _differs(ref, kernel_score(x, y, **{**kw, "beta": 1.0}, member_weights=w, reduction="none"))
    else:
        assert _differs(ref, kernel_score(x, y, **{**kw, "bandwidth": 1.0}, member_weights=w, reduction="none"))
    if kernel != "gaussian":
        assert _differs(ref, kernel_score(x, y, **{**kw, "kernel": "gaussian"}, member_weights=w, reduction="none"))


def test_kernel_module_median_bandwidth_and_callable():
    x, y, _ = _data()

    def k(a, b):
        return torch.exp(-torch.linalg.vector_norm(a - b, dim=-1) / 1.7)

    for est in KERNEL_ESTIMATORS:
        torch.testing.assert_close(
            KernelScore(kernel=k, estimator=est, sample_dim=1, reduction="none")(x, y),
            kernel_score(x, y, kernel="laplacian", bandwidth=1.7, estimator=est, sample_dim=1, reduction="none"),
        )
    torch.testing.assert_close(
        KernelScore(bandwidth="median", estimator="nrg", sample_dim=1, reduction="none")(x, y),
        kernel_score(x, y, bandwidth="median", estimator="nrg", sample_dim=1, reduction="none"),
    )


@pytest.mark.parametrize("estimator", VARIOGRAM_ESTIMATORS)
def test_variogram_module_equals_functional(estimator):
    x, y, w = _data()
    pw = torch.rand(D, D, generator=torch.Generator().manual_seed(3), dtype=F64)
    kw = dict(p=1.3, estimator=estimator, sample_dim=1)
    out = VariogramScore(**kw, weights=pw, reduction="none")(x, y, w)
    ref = variogram_score(x, y, **kw, weights=pw, member_weights=w, reduction="none")
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=0)
    assert _differs(ref, variogram_score(x, y, **kw, member_weights=w, reduction="none"))  # weights matter
    assert _differs(ref, variogram_score(x, y, **{**kw, "p": 0.5}, weights=pw, member_weights=w, reduction="none"))
    other = "fair" if estimator == "nrg" else "nrg"
    assert _differs(ref, variogram_score(x, y, **{**kw, "estimator": other}, weights=pw, member_weights=w,
                                         reduction="none"))


def test_variogram_module_weights_follow_the_module():
    pw = torch.rand(D, D, dtype=torch.float32)
    module = VariogramScore(weights=pw).to(F64)
    assert module.weights.dtype == F64
    assert "weights" in dict(module.named_buffers())


# ------------------------------------------------------------------------------------------- density scores


def _quadratic_logp(prec):
    def logp(t):
        return -0.5 * torch.einsum("...i,ij,...j->...", t, prec, t) + torch.sin(t).sum(-1)

    return logp


def _hyv_data():
    g = torch.Generator().manual_seed(4)
    a = torch.randn(D, D, generator=g, dtype=F64)
    prec = a @ a.T + torch.eye(D, dtype=F64)  # full (non-diagonal) Hessian: Rademacher probes do not give the trace
    y = torch.randn(5, D, generator=g, dtype=F64)
    return _quadratic_logp(prec), y


@pytest.mark.parametrize("method", ["hutchinson", "sliced"])
@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hyvarinen_module_passes_probes(method, probe):
    logp, y = _hyv_data()
    kw = dict(method=method, num_probes=3, probe=probe)
    out = HyvarinenScore(**kw, reduction="none")(logp, y, torch.Generator().manual_seed(11))
    ref = hyvarinen_score(logp, y, **kw, generator=torch.Generator().manual_seed(11), reduction="none")
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=0)
    # each setting changes the value, so a Module that ignored it would fail above
    for change in ({"num_probes": 1}, {"probe": "gaussian" if probe == "rademacher" else "rademacher"},
                   {"method": "exact"}):
        other = hyvarinen_score(logp, y, **{**kw, **change}, generator=torch.Generator().manual_seed(11),
                                reduction="none")
        assert _differs(ref, other), change


def test_hyvarinen_module_kind_and_event_dims():
    logp, y = _hyv_data()
    y2 = y.reshape(5, 1, D).expand(5, 2, D).contiguous()  # event (2, D) with event_dims=2

    def logp2(t):
        return logp(t).sum(-1)

    out = HyvarinenScore(event_dims=2, reduction="none")(logp2, y2)
    torch.testing.assert_close(out, hyvarinen_score(logp2, y2, event_dims=2, reduction="none"))
    torch.testing.assert_close(out, 2 * hyvarinen_score(logp, y, reduction="none"))  # two independent copies

    def score(t):
        return -t

    out = HyvarinenScore(kind="score", reduction="sum")(score, y)
    torch.testing.assert_close(out, (-2.0 * D + (y * y).sum(-1)).sum())  # H = 2 tr(-I) + |y|^2


def test_log_score_module_event_dims():
    normal = torch.distributions.Normal(torch.tensor(0.3, dtype=F64), torch.tensor(1.7, dtype=F64))
    y = torch.randn(7, dtype=F64)
    out = LogScore(event_dims=0, reduction="none")(normal.log_prob, y)
    torch.testing.assert_close(out, -normal.log_prob(y))
    torch.testing.assert_close(LogScore(reduction="sum")(normal, y), log_score(normal, y, reduction="sum"))
    with pytest.raises(ValueError, match="one joint log-density per observation"):
        LogScore()(normal.log_prob, y)  # default event_dims=1 expects () for target (7,)


def test_crps_module_takes_a_univariate_head_distribution_with_event_shape_one():
    """A head's univariate distribution is Independent(Normal, 1) with event shape (1,) and target (..., 1)."""
    loc = torch.randn(4, 1, dtype=F64)
    scale = torch.rand(4, 1, dtype=F64) + 0.5
    y = torch.randn(4, 1, dtype=F64)
    dist = torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1)
    out = CRPS(reduction="none")(dist, y)
    z = ((y - loc) / scale)[:, 0]
    std = torch.distributions.Normal(torch.zeros((), dtype=F64), torch.ones((), dtype=F64))
    ref = scale[:, 0] * (z * (2 * std.cdf(z) - 1) + 2 * std.log_prob(z).exp() - 1 / np.sqrt(np.pi))
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=0)
    assert out.shape == (4,)


# ------------------------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "build,exc,pattern",
    [
        (lambda: EnergyScore(beta=2.5), ValueError, r"beta must be in \(0, 2\]"),
        (lambda: EnergyScore(beta="1"), TypeError, r"beta must be a real number"),
        (lambda: EnergyScore(estimator="unbiased"), ValueError, r"estimator must be one of"),
        (lambda: EnergyScore(sample_dim=1.0), TypeError, r"sample_dim must be an int; got float"),
        (lambda: EnergyScore(reduction="avg"), ValueError, r"reduction must be one of"),
        (lambda: CRPS(estimator="bogus"), ValueError, r"estimator must be one of"),
        (lambda: CRPS(sample_dim="0"), TypeError, r"sample_dim must be an int"),
        (lambda: KernelScore(kernel="rbf"), ValueError, r"kernel must be one of"),
        (lambda: KernelScore(bandwidth=-1.0), ValueError, r"bandwidth must be a positive number"),
        (lambda: KernelScore(bandwidth=[1.0, 0.0]), ValueError, r"bandwidth must be a positive number"),
        (lambda: KernelScore(bandwidth="mean"), ValueError, r"bandwidth must be a positive number, 'median'"),
        (lambda: KernelScore(bandwidth=None), TypeError, r"bandwidth must be a real number; got NoneType"),
        (lambda: KernelScore(kernel="energy", beta=0.0), ValueError, r"beta must be in \(0, 2\]"),
        (lambda: KernelScore(estimator="pairs"), ValueError, r"estimator must be one of"),
        (lambda: VariogramScore(p=0.0), ValueError, r"p must be a positive number"),
        (lambda: VariogramScore(p="1"), TypeError, r"p must be a real number"),
        (lambda: VariogramScore(estimator="akr"), ValueError, r"estimator must be one of"),
        (lambda: VariogramScore(weights=-torch.ones(2, 2)), ValueError, r"weights must be non-negative"),
        (lambda: VariogramScore(weights=torch.ones(2, 3)), ValueError, r"weights must have shape \(d, d\)"),
        (lambda: VariogramScore(weights=torch.ones(2, 2, dtype=torch.long)), TypeError, r"floating-point dtype"),
        (lambda: HyvarinenScore(method="fast"), ValueError, r"method must be one of"),
        (lambda: HyvarinenScore(kind="logp"), ValueError, r"kind must be one of 'log_prob', 'score'"),
        (lambda: HyvarinenScore(probe="uniform"), ValueError, r"probe must be one of 'rademacher', 'gaussian'"),
        (lambda: HyvarinenScore(num_probes=0), ValueError, r"num_probes must be a positive int; got 0"),
        (lambda: HyvarinenScore(num_probes=2.0), ValueError, r"num_probes must be a positive int; got 2\.0"),
        (lambda: HyvarinenScore(event_dims=-1), ValueError, r"event_dims must be a non-negative int; got -1"),
        (lambda: LogScore(event_dims="1"), ValueError, r"event_dims must be a non-negative int"),
        (lambda: LogScore(reduction="mean "), ValueError, r"reduction must be one of"),
    ],
)
def test_bad_hyperparameters_fail_at_construction(build, exc, pattern):
    with pytest.raises(exc, match=pattern):
        build()


def test_kernel_module_does_not_call_a_user_kernel_at_construction():
    calls = []

    def k(a, b):
        calls.append(a.shape)
        return torch.exp(-((a - b) ** 2).sum(-1))

    module = KernelScore(kernel=k)
    assert calls == []
    x, y, _ = _data()
    module(x.movedim(1, 0), y)
    assert calls  # and it is called when scoring


def test_numpy_and_tensor_hyperparameters_are_numbers():
    x, y, _ = _data()
    ref = EnergyScore(beta=0.5, sample_dim=1)(x, y)
    torch.testing.assert_close(EnergyScore(beta=np.float32(0.5), sample_dim=1)(x, y), ref)
    torch.testing.assert_close(EnergyScore(beta=torch.tensor(0.5), sample_dim=1)(x, y), ref)
    ref = KernelScore(bandwidth=2.0, sample_dim=1)(x, y)
    torch.testing.assert_close(KernelScore(bandwidth=np.float64(2.0), sample_dim=1)(x, y), ref)
    torch.testing.assert_close(KernelScore(bandwidth=torch.tensor(2.0), sample_dim=1)(x, y), ref)
    ref = VariogramScore(p=1.5, sample_dim=1)(x, y)
    torch.testing.assert_close(VariogramScore(p=np.float64(1.5), sample_dim=1)(x, y), ref)


def test_extra_repr_shows_the_settings():
    assert "estimator='nrg'" in repr(EnergyScore(estimator="nrg"))
    assert "sample_dim" not in repr(LogScore())
    r = repr(HyvarinenScore(method="sliced", num_probes=4, probe="gaussian", kind="score", event_dims=2))
    for part in ("method='sliced'", "num_probes=4", "probe='gaussian'", "kind='score'", "event_dims=2"):
        assert part in r
    assert "event_dims=0" in repr(LogScore(event_dims=0))
