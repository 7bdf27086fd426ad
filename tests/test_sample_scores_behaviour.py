"""Gradients, precision, reductions, compile, Modules and error messages of the sample-based scores."""

import pathlib
import re
import subprocess
import sys
import warnings

import pytest
import torch

import scoringrules_torch
from scoringrules_torch import CRPS, EnergyScore, KernelScore, VariogramScore
from scoringrules_torch._internal import blocks as _blocks
from scoringrules_torch._internal import pairwise as _pairwise
from scoringrules_torch.functional import (
    crps_ensemble,
    energy,
    energy_score,
    kernel_score,
    variogram_score,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent

# (function, multivariate?, estimators, extra kwargs)
SCORES = [
    (energy_score, True, ["fair", "nrg", "pairs", "akr", "akr_circperm"], {}),
    (energy_score, True, ["fair", "nrg"], {"beta": 0.5}),
    (crps_ensemble, False, ["fair", "nrg", "pwm", "int", "qd", "akr", "akr_circperm"], {}),
    (kernel_score, True, ["fair", "nrg", "akr", "akr_circperm"], {}),
    (kernel_score, True, ["fair"], {"kernel": "laplacian", "bandwidth": 0.7}),
    (kernel_score, True, ["fair"], {"kernel": "inverse_multiquadric", "bandwidth": [0.5, 2.0]}),
    (variogram_score, True, ["nrg", "fair"], {}),
    (variogram_score, True, ["nrg"], {"p": 1.5}),
]
CASES = [
    pytest.param(fn, mv, est, kw, id=f"{fn.__name__}-{est}-{kw}") for fn, mv, ests, kw in SCORES for est in ests
]


def _inputs(mv, m=4, batch=(3,), d=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (*batch, d) if mv else batch
    x = torch.randn((m, *shape), generator=g, dtype=dtype)
    y = torch.randn(shape, generator=g, dtype=dtype)
    return x, y


@pytest.mark.parametrize("fn,mv,est,kw", CASES)
def test_gradcheck_float64(fn, mv, est, kw):
    x, y = _inputs(mv)
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b, estimator=est, reduction="none", **kw), (x, y))


@pytest.mark.parametrize("method", ["direct", "gram"])
@pytest.mark.parametrize("beta", [0.7, 1.0, 1.6])
@pytest.mark.parametrize("kernel", ["energy", "gaussian", "laplacian", "inverse_multiquadric"])
def test_pairwise_engine_gradcheck_both_paths(method, beta, kernel, monkeypatch):
    """The fused backward of the pairwise engine, on both paths, for every radial kernel, with weights."""
    x, y = _inputs(True, m=5, d=9)
    w = torch.rand(5, 3, dtype=torch.float64) + 0.1
    x.requires_grad_(True)
    w.requires_grad_(True)
    monkeypatch.setattr(_pairwise, "choose_method", lambda m, d: method)

    def f(a, ww):
        return kernel_score(a, y, kernel=kernel, beta=beta, bandwidth=[0.8, 1.7], member_weights=ww,
                            reduction="none")

    assert torch.autograd.gradcheck(f, (x, w))
    single = kernel_score(x, y, kernel=kernel, beta=beta, bandwidth=1.3, estimator="nrg")
    (g,) = torch.autograd.grad(single, x)
    monkeypatch.setattr(_pairwise, "choose_method", lambda m, d: "direct" if method == "gram" else "gram")
    (g2,) = torch.autograd.grad(kernel_score(x, y, kernel=kernel, beta=beta, bandwidth=1.3, estimator="nrg"), x)
    torch.testing.assert_close(g, g2, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kernel", ["energy", "gaussian"])
def test_gradgradcheck(kernel):
    x, y = _inputs(True, m=4, d=3)
    w = torch.rand(4, 3, dtype=torch.float64) + 0.1
    x.requires_grad_(True)
    w.requires_grad_(True)
    assert torch.autograd.gradgradcheck(
        lambda a, ww: kernel_score(a, y, kernel=kernel, beta=1.4, member_weights=ww, reduction="none"), (x, w)
    )


def test_safe_pow_gradient_matches_closed_form_and_is_zero_at_zero():
    s = torch.tensor([0.0, 0.25, 4.0], dtype=torch.float64, requires_grad=True)
    for q in (0.25, 0.5, 0.75, 1.5):
        (g,) = torch.autograd.grad(_pairwise.safe_pow(s, q).sum(), s)
        expected = torch.tensor([0.0, q * 0.25 ** (q - 1), q * 4.0 ** (q - 1)], dtype=torch.float64)
        torch.testing.assert_close(g, expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("bandwidth", [1.0, "median"])
def test_blocked_and_recomputing_backward_is_exact(weighted, bandwidth, monkeypatch):
    """Small blocks and the recompute-in-backward path (used above _SAVE_ELEMENTS) give the same values and
    gradients as one block with saved distances."""
    x, y = _inputs(True, m=6, batch=(7,), d=10)
    w = torch.rand(6, 7, dtype=torch.float64) + 0.1 if weighted else None

    def run():
        xr = x.clone().requires_grad_(True)
        wr = None if w is None else w.clone().requires_grad_(True)
        out = kernel_score(xr, y, member_weights=wr, bandwidth=bandwidth, estimator="fair", reduction="sum")
        out.backward()
        return out, xr.grad, None if wr is None else wr.grad

    ref = run()
    monkeypatch.setattr(_blocks, "BLOCK_ELEMENTS", 2 * 36)  # two observations per block
    monkeypatch.setattr(_pairwise, "_SAVE_ELEMENTS", 0)  # recompute in backward
    got = run()
    for a, b in zip(ref, got, strict=False):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("weighted", [False, True])
def test_variogram_blocks_and_gradients(weighted, monkeypatch):
    """Several observation blocks give the same values and gradients (w.r.t. members, member weights and target)
    as one block, and gradcheck passes on the analytic backward."""
    x, y = _inputs(True, m=7, batch=(4,), d=5)
    w = torch.rand(7, 4, dtype=torch.float64) + 0.1 if weighted else None

    def run():
        xr, yr = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        wr = None if w is None else w.clone().requires_grad_(True)
        out = variogram_score(xr, yr, estimator="fair", member_weights=wr, reduction="sum")
        out.backward()
        return out, xr.grad, yr.grad, None if wr is None else wr.grad

    ref = run()
    monkeypatch.setattr(_blocks, "BLOCK_ELEMENTS", 7 * 25)  # one observation per block
    got = run()
    for a, b in zip(ref, got, strict=True):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)
    xr = x.clone().requires_grad_(True)
    args = (xr,) if w is None else (xr, w.clone().requires_grad_(True))
    assert torch.autograd.gradcheck(
        lambda a, *ww: variogram_score(a, y, p=0.7, member_weights=ww[0] if ww else None, reduction="none"), args
    )
    assert torch.autograd.gradgradcheck(lambda a: variogram_score(a, y, p=1.5, reduction="none"), (xr,))


@pytest.mark.parametrize("fn,mv,est,kw", CASES)
@pytest.mark.parametrize("d", [3, 16])
def test_finite_gradients_when_samples_coincide(fn, mv, est, kw, d):
    """A zero-initialised generator emits identical samples; they may also equal the target."""
    _, y = _inputs(mv, d=d)
    x = y.unsqueeze(0).repeat(4, *([1] * y.dim())).clone().requires_grad_(True)
    yy = y.clone().requires_grad_(True)
    fn(x, yy, estimator=est, **kw).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(yy.grad).all()
    x2 = torch.zeros_like(x).requires_grad_(True)  # identical samples away from the target
    fn(x2, y, estimator=est, **kw).backward()
    assert torch.isfinite(x2.grad).all()


def test_energy_gradient_at_coincident_samples_is_the_subgradient_zero():
    """All samples identical (and != target): the spread term contributes 0, the accuracy term a unit vector."""
    y = torch.tensor([[3.0, 4.0]])
    x = torch.zeros(4, 1, 2, requires_grad=True)
    energy_score(x, y).backward()
    expected = torch.tensor([-0.6, -0.8]) / 4  # d/dx_i of mean_i ||x_i - y||
    torch.testing.assert_close(x.grad, expected.expand(4, 1, 2))


def test_variogram_gradient_finite_at_default_p():
    """scoringrules' torch backend gives all-NaN gradients at p=0.5 (|0|^0.5 on the diagonal)."""
    x, y = _inputs(True, m=6, d=4, dtype=torch.float32)
    x.requires_grad_(True)
    variogram_score(x, y).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("fn,mv,est,kw", CASES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_accumulate_in_float32(fn, mv, est, kw, dtype):
    x, y = _inputs(mv, m=8, batch=(16,), d=16, dtype=torch.float32)
    xh, yh = x.to(dtype), y.to(dtype)
    out = fn(xh, yh, estimator=est, **kw)
    assert out.dtype == torch.float32 and torch.isfinite(out)
    ref = fn(xh.float(), yh.float(), estimator=est, **kw)  # same rounded inputs, float32 arithmetic
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    full = fn(x, y, estimator=est, **kw)  # and near the unrounded float32 result
    assert abs(float(out) - float(full)) <= 0.05 * abs(float(full)) + 0.05


def test_bf16_autocast_keeps_float32_distances():
    x, y = _inputs(True, m=16, batch=(8,), d=32, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = energy_score(x, y)
    torch.testing.assert_close(out, energy_score(x, y))


@pytest.mark.parametrize("fn,mv,est,kw", CASES)
def test_reductions(fn, mv, est, kw):
    x, y = _inputs(mv, batch=(3, 2))
    none = fn(x, y, estimator=est, reduction="none", **kw)
    assert none.shape == (3, 2)
    torch.testing.assert_close(fn(x, y, estimator=est, reduction="mean", **kw), none.mean())
    torch.testing.assert_close(fn(x, y, estimator=est, reduction="sum", **kw), none.sum())
    torch.testing.assert_close(fn(x, y, estimator=est, **kw), none.mean())


@pytest.mark.parametrize("fn,mv,est,kw", CASES)
def test_sample_dim(fn, mv, est, kw):
    x, y = _inputs(mv, batch=(3, 2))
    ref = fn(x, y, estimator=est, reduction="none", **kw)
    out = fn(x.movedim(0, 1), y, estimator=est, sample_dim=1, reduction="none", **kw)
    torch.testing.assert_close(out, ref)
    out_neg = fn(x.movedim(0, -2 if mv else -1), y, estimator=est, sample_dim=-2 if mv else -1,
                 reduction="none", **kw)
    torch.testing.assert_close(out_neg, ref)


def test_modules_equal_functionals():
    x, y = _inputs(True, batch=(5,))
    w = torch.rand(4, 5, dtype=torch.float64)
    torch.testing.assert_close(EnergyScore(beta=1.3, estimator="nrg")(x, y, w),
                               energy_score(x, y, beta=1.3, estimator="nrg", member_weights=w))
    torch.testing.assert_close(KernelScore(kernel="laplacian", bandwidth=2.0, reduction="sum")(x, y),
                               kernel_score(x, y, kernel="laplacian", bandwidth=2.0, reduction="sum"))
    pw = torch.rand(3, 3, dtype=torch.float64)
    torch.testing.assert_close(VariogramScore(p=1.0, weights=pw, estimator="fair")(x, y),
                               variogram_score(x, y, p=1.0, weights=pw, estimator="fair"))
    torch.testing.assert_close(CRPS(estimator="qd", reduction="none")(x[..., 0], y[..., 0]),
                               crps_ensemble(x[..., 0], y[..., 0], estimator="qd", reduction="none"))
    assert "beta=1.3" in repr(EnergyScore(beta=1.3))


def test_public_api_exports():
    for name in scoringrules_torch.__all__:
        assert hasattr(scoringrules_torch, name)
    for name in scoringrules_torch.functional.__all__:
        assert hasattr(scoringrules_torch.functional, name)


@pytest.mark.parametrize(
    "fn,mv,est,kw",
    [
        pytest.param(energy_score, True, "fair", {}, id="energy-fair"),
        pytest.param(energy_score, True, "pairs", {}, id="energy-pairs"),
        pytest.param(crps_ensemble, False, "fair", {}, id="crps-fair"),
        pytest.param(crps_ensemble, False, "int", {}, id="crps-int"),
        pytest.param(kernel_score, True, "fair", {}, id="kernel-fair"),
        pytest.param(variogram_score, True, "fair", {}, id="variogram-fair"),
    ],
)
def test_torch_compile_fullgraph_equals_eager(fn, mv, est, kw):
    torch._dynamo.reset()
    x, y = _inputs(mv, m=6, batch=(5,), d=16, dtype=torch.float32)
    x.requires_grad_(True)
    compiled = torch.compile(lambda a, b: fn(a, b, estimator=est, **kw), fullgraph=True, backend="aot_eager")
    out = compiled(x, y)
    (g_c,) = torch.autograd.grad(out, x)
    ref = fn(x, y, estimator=est, **kw)
    (g_e,) = torch.autograd.grad(ref, x)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(g_c, g_e)


@pytest.mark.slow
def test_torch_compile_inductor_energy():
    torch._dynamo.reset()
    x, y = _inputs(True, m=8, batch=(32,), d=16, dtype=torch.float32)
    compiled = torch.compile(energy_score, fullgraph=True)
    torch.testing.assert_close(compiled(x, y), energy_score(x, y))


# ----------------------------------------------------------------------------------------------- errors


def test_shape_mismatch_message_shows_both_shapes():
    with pytest.raises(ValueError, match=r"samples shape \(4, 3, 2\).*target shape \(3, 5\)"):
        energy_score(torch.randn(4, 3, 2), torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"samples shape \(4, 3\).*target shape \(2,\)"):
        crps_ensemble(torch.randn(4, 3), torch.randn(2))


def test_fair_needs_two_members():
    for fn, shape in ((energy_score, (1, 3, 2)), (kernel_score, (1, 3, 2)), (variogram_score, (1, 3, 2))):
        with pytest.raises(ValueError, match="at least 2 samples.*m=1"):
            fn(torch.randn(shape), torch.randn(shape[1:]), estimator="fair")
    with pytest.raises(ValueError, match="at least 2 samples.*m=1"):
        crps_ensemble(torch.randn(1, 3), torch.randn(3))


def test_pairs_needs_even_m_and_no_weights():
    with pytest.raises(ValueError, match="even number of samples.*m=3"):
        energy_score(torch.randn(3, 2, 2), torch.randn(2, 2), estimator="pairs")
    with pytest.raises(ValueError, match="pairs.*member_weights"):
        energy_score(torch.randn(4, 2, 2), torch.randn(2, 2), estimator="pairs", member_weights=torch.ones(4))


@pytest.mark.parametrize("beta", [0.0, -1.0, 2.5, float("nan")])
def test_beta_outside_range(beta):
    with pytest.raises(ValueError, match=r"beta must be in \(0, 2\]"):
        energy_score(torch.randn(4, 2, 2), torch.randn(2, 2), beta=beta)
    with pytest.raises(ValueError, match=r"beta must be in \(0, 2\]"):
        EnergyScore(beta=beta)


def test_beta_two_warns_once(monkeypatch):
    monkeypatch.setattr(energy, "_beta2_warned", False)
    with pytest.warns(UserWarning, match="not strictly proper"):
        energy_score(torch.randn(4, 2, 2), torch.randn(2, 2), beta=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        energy_score(torch.randn(4, 2, 2), torch.randn(2, 2), beta=2.0)


@pytest.mark.parametrize("bw", [0.0, -1.0, [1.0, -2.0], "mean", []])
def test_non_positive_bandwidth(bw):
    with pytest.raises(ValueError, match="bandwidth"):
        kernel_score(torch.randn(4, 2, 2), torch.randn(2, 2), bandwidth=bw)


def test_unknown_estimator_kernel_reduction_list_valid_names():
    x, y = torch.randn(4, 2, 2), torch.randn(2, 2)
    with pytest.raises(ValueError, match="estimator must be one of 'fair', 'nrg', 'pairs', 'akr', 'akr_circperm'"):
        energy_score(x, y, estimator="unbiased")
    with pytest.raises(ValueError, match="estimator must be one of .*'pwm'.*got 'bogus'"):
        crps_ensemble(x[..., 0], y[..., 0], estimator="bogus")
    with pytest.raises(ValueError, match="kernel must be one of 'gaussian', 'laplacian'.*got 'rbf'"):
        kernel_score(x, y, kernel="rbf")
    with pytest.raises(ValueError, match="kernel must be one of"):
        KernelScore(kernel="rbf")
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none'; got 'avg'"):
        energy_score(x, y, reduction="avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        CRPS(reduction="avg")
    with pytest.raises(ValueError, match="estimator must be one of 'nrg', 'fair'"):
        variogram_score(x, y, estimator="akr")


def test_integer_dtypes_rejected():
    with pytest.raises(ValueError, match="samples must have a floating-point dtype.*torch.int64"):
        energy_score(torch.ones(4, 2, 2, dtype=torch.long), torch.ones(2, 2))
    with pytest.raises(ValueError, match="target must have a floating-point dtype.*torch.int32"):
        crps_ensemble(torch.ones(4, 2), torch.ones(2, dtype=torch.int32))


def test_bad_weights_and_p():
    x, y = torch.randn(4, 2, 3), torch.randn(2, 3)
    with pytest.raises(ValueError, match=r"weights must have shape \(m,\) or \(m, \*batch\)"):
        energy_score(x, y, member_weights=torch.ones(3))
    with pytest.raises(ValueError, match=r"weights must have shape \(d, d\) = \(3, 3\)"):
        variogram_score(x, y, weights=torch.ones(2, 2))
    with pytest.raises(ValueError, match="p must be a positive number"):
        variogram_score(x, y, p=0.0)
    with pytest.raises(ValueError, match="sample_dim=5 is out of range"):
        energy_score(x, y, sample_dim=5)


# ----------------------------------------------------------------------------------------------- README


def test_readme_example_runs():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["loss"].dim() == 0 and namespace["samples"].grad is not None


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one():
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_command.py"), "test"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert "pip install" in out and "-e \".[test]\"" in out and out.endswith("pytest")
    assert "readme_command.py test" in (ROOT / ".ci" / "run").read_text()
    text = (ROOT / "README.md").read_text()
    assert text.count("<!-- command: test -->") == 1
    assert text.count("<!-- command: main -->") == 1
    main = subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_command.py"), "main"],
                          capture_output=True, text=True, check=True).stdout.strip()
    script = main.split("python ")[-1].split()[0]
    assert script == "reference/ear/train.py" and (ROOT / script).is_file()
    assert '".[ear]"' in main and "dataset-fashion-mnist" in main


def test_density_modules_equal_functionals():
    from scoringrules_torch import HyvarinenScore, LogScore
    from scoringrules_torch.functional import crps, hyvarinen_score, log_score

    g = torch.Generator().manual_seed(1)
    loc, scale = torch.randn(5, generator=g, dtype=torch.float64), torch.rand(5, generator=g, dtype=torch.float64) + 0.5
    dist = torch.distributions.Normal(loc, scale)
    y = torch.randn(5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(CRPS(reduction="none")(dist, y), crps(dist, y, reduction="none"))
    torch.testing.assert_close(LogScore(reduction="sum")(dist, y), log_score(dist, y, reduction="sum"))
    torch.testing.assert_close(LogScore()(dist, y), -dist.log_prob(y).mean())
    torch.testing.assert_close(HyvarinenScore()(dist, y), hyvarinen_score(dist, y))
    z = (y - loc) / scale  # closed form for a Normal: -2/sigma^2 + z^2/sigma^2
    torch.testing.assert_close(HyvarinenScore(reduction="none")(dist, y), (-2 + z**2) / scale**2)
    with pytest.raises(ValueError, match="method must be one of"):
        HyvarinenScore(method="fast")


@pytest.mark.parametrize("fn,mv,est,kw", CASES)
def test_device_follows_inputs_meta(fn, mv, est, kw):
    """No constant is created on a fixed device: values and gradients stay on the inputs' device."""
    x, y = _inputs(mv, m=4, batch=(3,), d=16, dtype=torch.float32)
    xm = x.to("meta").requires_grad_(True)
    out = fn(xm, y.to("meta"), estimator=est, **kw)
    assert out.device.type == "meta"
    out.backward()
    assert xm.grad.device.type == "meta" and xm.grad.shape == x.shape
