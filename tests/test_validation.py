"""Bad input gets a clear error: the shared validation helpers and every score that uses them.

Each test passes one bad argument and checks the exception type and that the message names the argument and
the value received. Where a check was missing before, a companion test breaks the rule on purpose in the
oracle (e.g. a negative weight) to show the old behaviour was a silently wrong number, not an error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scoringrules_torch._internal import checks
from scoringrules_torch._internal.checks import (
    DTypeError,
    check_member_weights,
    check_open_unit_interval,
    check_positive_number,
    check_real_number,
)
from scoringrules_torch.functional.crps_sample import crps_ensemble
from scoringrules_torch.functional.energy import energy_score
from scoringrules_torch.functional.kernel import kernel_score
from scoringrules_torch.functional.variogram import variogram_score

M, B, D = 4, 3, 2


def _mv(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    return torch.randn(M, B, D, generator=g, dtype=dtype), torch.randn(B, D, generator=g, dtype=dtype)


def _ensemble_scores():
    """(name, fn(samples, target, **kw), univariate?) for every ensemble score taking member weights."""
    return [
        pytest.param(energy_score, False, id="energy"),
        pytest.param(kernel_score, False, id="kernel"),
        pytest.param(variogram_score, False, id="variogram"),
        pytest.param(crps_ensemble, True, id="crps"),
    ]


def _args(univariate: bool):
    x, y = _mv()
    return (x[..., 0], y[..., 0]) if univariate else (x, y)


# ---------------------------------------------------------------------------------------- helper functions


def test_dtype_error_is_both_type_and_value_error():
    assert issubclass(DTypeError, TypeError) and issubclass(DTypeError, ValueError)


@pytest.mark.parametrize(
    "value,expected",
    [(2, 2.0), (0.5, 0.5), (np.float32(1.5), 1.5), (np.float64(2.5), 2.5), (np.int64(3), 3.0),
     (torch.tensor(0.25), 0.25), (torch.tensor(4, dtype=torch.int32), 4.0), (torch.tensor(3.0, dtype=torch.float64), 3.0)],
)
def test_positive_number_accepts_numbers_numpy_scalars_and_0d_tensors(value, expected):
    out = check_positive_number("bandwidth", value)
    assert type(out) is float and out == expected


@pytest.mark.parametrize(
    "value,exc,pattern",
    [
        (0.0, ValueError, r"bandwidth must be a positive number.*got 0\.0"),
        (-1, ValueError, r"bandwidth must be a positive number.*got -1"),
        (float("nan"), ValueError, r"bandwidth must be a positive number.*got nan"),
        (float("inf"), ValueError, r"bandwidth must be a positive number.*got inf"),
        (np.float64(-2.0), ValueError, r"bandwidth must be a positive number"),
        (torch.tensor(-0.5), ValueError, r"bandwidth must be a positive number.*-0\.5"),
        (True, TypeError, r"bandwidth must be a real number; got bool"),
        (np.bool_(True), TypeError, r"bandwidth must be a real number"),
        ("1.0", TypeError, r"bandwidth must be a real number; got str"),
        (None, TypeError, r"bandwidth must be a real number; got NoneType"),
        (1 + 2j, TypeError, r"bandwidth must be a real number; got complex"),
        (torch.tensor([1.0, 2.0]), ValueError, r"bandwidth must be a number or a 0-d tensor.*\(2,\)"),
        (torch.tensor(True), TypeError, r"bandwidth must be a real number.*torch.bool"),
        (torch.tensor(1 + 1j), TypeError, r"bandwidth must be a real number.*complex"),
    ],
)
def test_positive_number_rejects(value, exc, pattern):
    with pytest.raises(exc, match=pattern):
        check_positive_number("bandwidth", value)


def test_real_number_accepts_negative():
    assert check_real_number("shift", np.float32(-1.5)) == -1.5


@pytest.mark.parametrize("levels", [0.5, [0.1, 0.9], (0.25,), np.float64(0.3), torch.tensor([0.1, 0.5, 0.9])])
def test_open_unit_interval_accepts(levels):
    out = check_open_unit_interval("alpha", levels)
    if isinstance(levels, torch.Tensor):
        assert out is levels
    else:
        assert np.allclose(np.asarray(out, dtype=float), np.asarray(levels, dtype=float))


@pytest.mark.parametrize(
    "levels,exc,pattern",
    [
        (0.0, ValueError, r"alpha must lie in the open interval \(0, 1\); got 0\.0"),
        (1.0, ValueError, r"alpha must lie in the open interval \(0, 1\); got 1\.0"),
        ([0.5, 1.2], ValueError, r"alpha must lie in the open interval \(0, 1\); got 1\.2"),
        ([0.5, float("nan")], ValueError, r"alpha must lie in the open interval \(0, 1\); got nan"),
        ([], ValueError, r"alpha must not be empty"),
        (torch.tensor([0.2, -0.1]), ValueError, r"alpha must lie in the open interval \(0, 1\); got -0\.1"),
        (torch.tensor([0.2, float("nan")]), ValueError, r"alpha must lie in the open interval \(0, 1\); got nan"),
        (torch.tensor([], dtype=torch.float32), ValueError, r"alpha must not be empty"),
        (torch.tensor([1, 2]), TypeError, r"alpha must have a floating-point dtype"),
        ("0.5", TypeError, r"alpha must be a number, a sequence of numbers or a tensor"),
        ([0.5, "a"], TypeError, r"alpha must be a real number; got str"),
        (True, TypeError, r"alpha must be a number"),
    ],
)
def test_open_unit_interval_rejects(levels, exc, pattern):
    with pytest.raises(exc, match=pattern):
        check_open_unit_interval("alpha", levels)


def test_member_weights_follow_sample_dim():
    x, _ = _mv()
    w = torch.rand(M, B, dtype=torch.float64) + 0.1
    # sample axis first: (m,) and (m, *batch)
    assert check_member_weights(w, x, event_rank=1).shape == (M, B)
    assert check_member_weights(w[:, 0], x, event_rank=1).shape == (M, B)
    # sample axis 1: weights laid out like samples without the event axis, returned sample-first
    out = check_member_weights(w.T, x.movedim(0, 1), event_rank=1, sample_dim=1)
    torch.testing.assert_close(out, w)
    out = check_member_weights(w.T, x.movedim(0, 1), event_rank=1, sample_dim=-2)
    torch.testing.assert_close(out, w)
    with pytest.raises(ValueError, match=r"member_weights must have shape .*\(3, 4\) with the member axis at "
                                         r"sample_dim=1; got \(4, 3\)"):
        check_member_weights(w, x.movedim(0, 1), event_rank=1, sample_dim=1)


# ---------------------------------------------------------------------------------------- member weights


@pytest.mark.parametrize("fn,uv", _ensemble_scores())
@pytest.mark.parametrize(
    "weights,exc,pattern",
    [
        (torch.tensor([1.0, -0.5, 1.0, 1.0]), ValueError, r"member_weights must be non-negative; got -0\.5"),
        (torch.tensor([1.0, float("nan"), 1.0, 1.0]), ValueError, r"member_weights must be finite; got nan"),
        (torch.tensor([1.0, float("inf"), 1.0, 1.0]), ValueError, r"member_weights must be finite; got inf"),
        (torch.zeros(M), ValueError, r"member_weights must have a positive sum .* observation \(0,\) sum to 0\.0"),
        (torch.ones(M, dtype=torch.long), TypeError, r"member_weights must have a floating-point dtype.*int64"),
        (torch.ones(M, dtype=torch.complex64), TypeError, r"member_weights must be a real floating-point.*complex"),
        (torch.ones(M, dtype=torch.bool), TypeError, r"member_weights must have a floating-point dtype.*bool"),
        (torch.ones(B), ValueError, r"member_weights must have shape \(m,\) or \(m, \*batch\).*got \(3,\)"),
        (torch.ones(B, M), ValueError, r"member_weights must have shape .*got \(3, 4\)"),
        (torch.ones(M, B, 1), ValueError, r"member_weights must have shape .*got \(4, 3, 1\)"),
        ([1.0] * M, TypeError, r"member_weights must be a torch.Tensor; got list"),
        (np.ones(M), TypeError, r"member_weights must be a torch.Tensor; got ndarray"),
    ],
    ids=["negative", "nan", "inf", "zero-sum", "integer", "complex", "bool", "wrong-length", "transposed",
         "extra-dim", "list", "numpy"],
)
def test_bad_member_weights(fn, uv, weights, exc, pattern):
    x, y = _args(uv)
    with pytest.raises(exc, match=pattern):
        fn(x, y, member_weights=weights)


@pytest.mark.parametrize("fn,uv", _ensemble_scores())
def test_zero_sum_in_one_observation_names_it(fn, uv):
    x, y = _args(uv)
    w = torch.ones(M, B, dtype=torch.float64)
    w[:, 2] = 0.0
    with pytest.raises(ValueError, match=r"observation \(2,\) sum to 0\.0"):
        fn(x, y, member_weights=w)


@pytest.mark.parametrize("fn,uv", _ensemble_scores())
def test_fair_needs_two_positive_weights(fn, uv):
    """One member carrying all the weight makes the fair normaliser ``1 - sum w^2`` zero: 0/0 = NaN before."""
    x, y = _args(uv)
    w = torch.ones(M, B, dtype=torch.float64)
    w[1:, 1] = 0.0
    with pytest.raises(ValueError, match=r"at least 2 members with a positive weight .*observation \(1,\) has 1"):
        fn(x, y, member_weights=w, estimator="fair")
    out = fn(x, y, member_weights=w, estimator="nrg", reduction="none")  # well defined for the V-statistic
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("fn,uv", _ensemble_scores())
def test_member_weights_follow_sample_dim_in_every_score(fn, uv):
    x, y = _args(uv)
    w = torch.rand(M, B, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.1
    ref = fn(x, y, member_weights=w, reduction="none")
    moved = fn(x.movedim(0, 1), y, member_weights=w.T, sample_dim=1, reduction="none")
    torch.testing.assert_close(moved, ref)
    # the weights are not just ignored: uniform weights give a different value
    assert not torch.allclose(fn(x, y, reduction="none"), ref)
    with pytest.raises(ValueError, match=r"member axis at sample_dim=1; got \(4, 3\)"):
        fn(x.movedim(0, 1), y, member_weights=w, sample_dim=1)


def test_member_weights_on_another_device_is_clear():
    x, y = _mv()
    w = torch.ones(M, device="meta")
    with pytest.raises(ValueError, match=r"member_weights must be on the device of samples \(cpu\); got meta"):
        energy_score(x, y, member_weights=w)


# ---------------------------------------------------------------------------------------- variogram pair weights


@pytest.mark.parametrize(
    "pw,exc,pattern",
    [
        (-torch.ones(D, D), ValueError, r"weights must be non-negative; got -1\.0"),
        (torch.full((D, D), float("nan")), ValueError, r"weights must be finite; got nan"),
        (torch.ones(D, D, dtype=torch.int64), TypeError, r"weights must have a floating-point dtype.*int64"),
        (np.ones((D, D)), TypeError, r"weights must be a torch.Tensor; got ndarray"),
    ],
)
def test_bad_variogram_pair_weights(pw, exc, pattern):
    x, y = _mv()
    with pytest.raises(exc, match=pattern):
        variogram_score(x, y, weights=pw)


def test_negative_pair_weights_gave_a_negative_score():
    """Why the check exists: with one negative pair weight the (proper, non-negative) score went below zero."""
    x, y = _mv()
    pw = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    sq = []
    for k, j in ((0, 1), (1, 0)):
        gy = (y[:, k] - y[:, j]).abs().sqrt()
        gx = (x[..., k] - x[..., j]).abs().sqrt().mean(0)
        sq.append((gy - gx) ** 2)
    # the weighted sum with pair weights -1 and +1 cancels exactly: a zero "score" for any forecast
    assert torch.allclose(pw[0, 1] * sq[0] + pw[1, 0] * sq[1], torch.zeros(B, dtype=torch.float64))
    with pytest.raises(ValueError, match="weights must be non-negative"):
        variogram_score(x, y, weights=pw)


# ---------------------------------------------------------------------------------------- other arguments


@pytest.mark.parametrize(
    "bw", [torch.tensor(1.5), np.float32(1.5), np.float64(1.5), torch.tensor(1.5, dtype=torch.float64), 1.5]
)
def test_tensor_and_numpy_bandwidth_accepted_as_number(bw):
    x, y = _mv()
    torch.testing.assert_close(kernel_score(x, y, bandwidth=bw), kernel_score(x, y, bandwidth=1.5))
    torch.testing.assert_close(kernel_score(x, y, bandwidth=[bw, 2.0]), kernel_score(x, y, bandwidth=[1.5, 2.0]))


def test_median_bandwidth_needs_two_members():
    x, y = _mv()
    with pytest.raises(ValueError, match=r"bandwidth='median'.*needs m >= 2 members; got m=1"):
        kernel_score(x[:1], y, bandwidth="median", estimator="nrg")


@pytest.mark.parametrize("fn", [energy_score, kernel_score, variogram_score])
def test_event_dimension_zero_rejected(fn):
    with pytest.raises(ValueError, match=r"target has an event dimension of size 0 \(shape \(3, 0\)\)"):
        fn(torch.randn(M, B, 0), torch.randn(B, 0), estimator="nrg")


@pytest.mark.parametrize("fn,uv", _ensemble_scores())
@pytest.mark.parametrize("which", ["samples", "target"])
def test_complex_inputs_rejected(fn, uv, which):
    x, y = _args(uv)
    if which == "samples":
        x = x.to(torch.complex128)
    else:
        y = y.to(torch.complex128)
    with pytest.raises(TypeError, match=rf"{which} must be a real floating-point tensor; got complex"):
        fn(x, y)


def test_checks_skipped_while_tracing(monkeypatch):
    """Value checks need a host sync and are skipped while torch.compile traces; shape/type checks are not."""
    x, _ = _mv()
    monkeypatch.setattr(checks, "tracing", lambda: True)
    w = torch.tensor([1.0, -1.0, 1.0, 1.0], dtype=torch.float64)
    assert check_member_weights(w, x, event_rank=1).shape == (M, B)
    with pytest.raises(ValueError, match="member_weights must have shape"):
        check_member_weights(torch.ones(3), x, event_rank=1)


def test_weighted_score_compiles_fullgraph():
    torch._dynamo.reset()
    x, y = _mv(torch.float32)
    w = torch.rand(M, B) + 0.1
    compiled = torch.compile(lambda a, b, c: energy_score(a, b, member_weights=c), fullgraph=True,
                             backend="aot_eager")
    torch.testing.assert_close(compiled(x, y, w), energy_score(x, y, member_weights=w))


@pytest.mark.parametrize("fn", [energy_score, kernel_score, variogram_score])
def test_one_dimensional_target_of_a_multivariate_score_is_ambiguous_and_raises(fn):
    """Issue 17: energy_score(samples (m, B), target (B,)) silently scored ONE observation with B components. A
    multivariate target must be (*batch, d) with a batch dimension; the message says how to write either intent."""
    x, y = torch.randn(M, B, dtype=torch.float64), torch.randn(B, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"target must have shape \(\*batch, d\) with at least one batch dimension"
                                         r".*got shape \(3,\), which is ambiguous.*target\[None\].*target\[:, None\]"):
        fn(x, y)
    # either explicit intent works: B univariate observations (d = 1) ...
    per_obs = fn(x[..., None], y[:, None], reduction="none")
    assert per_obs.shape == (B,)
    # ... or one observation with B components
    assert fn(x[:, None], y[None], reduction="none").shape == (1,)


def test_energy_of_univariate_observations_is_the_crps():
    """With the explicit event dimension d = 1 the energy score (beta=1) of each observation is its CRPS."""
    x, y = torch.randn(M, B, dtype=torch.float64), torch.randn(B, dtype=torch.float64)
    for est in ("fair", "nrg"):
        torch.testing.assert_close(energy_score(x[..., None], y[:, None], estimator=est, reduction="none"),
                                   crps_ensemble(x, y, estimator=est, reduction="none"))


@pytest.mark.parametrize("fn,uv", _ensemble_scores())
def test_member_weights_are_normalised_and_weight_the_members(fn, uv):
    """Weights are normalised per observation (a common factor changes nothing) and act as probabilities: an
    integer weight k equals repeating the member k times with the 'nrg' estimator (a plain float64 oracle)."""
    x, y = _args(uv)
    w = torch.rand(M, B, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.1
    ref = fn(x, y, member_weights=w, reduction="none")
    torch.testing.assert_close(fn(x, y, member_weights=7.5 * w, reduction="none"), ref)
    counts = torch.tensor([1.0, 3.0, 2.0, 1.0], dtype=torch.float64)
    repeated = x.repeat_interleave(counts.long(), dim=0)
    torch.testing.assert_close(fn(x, y, member_weights=counts, estimator="nrg", reduction="none"),
                               fn(repeated, y, estimator="nrg", reduction="none"))
