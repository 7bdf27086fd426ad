"""scoringrules_torch.compat against scoringrules 0.10 (numpy backend, float64): names, signatures, values."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scoringrules as sr
import torch

import scoringrules_torch.compat as compat

# Not scoring functions.
_NOT_SCORES = {"register_backend", "version"}
PEER_NAMES = sorted(
    n
    for n in dir(sr)
    if not n.startswith("_") and callable(getattr(sr, n)) and n not in _NOT_SCORES
)


def _pos(rng, *shape):
    return np.abs(rng.normal(size=shape)) + 0.2


def _unit(rng, *shape):
    return rng.uniform(0.05, 0.95, size=shape)


def _probs(rng, *shape):
    w = rng.random(shape) + 0.1
    return w / w.sum(-1, keepdims=True)


def _w_uv(x):
    return 1.0 / (1.0 + np.exp(-x))


def _v_uv(x):
    return np.maximum(x, 0.1)


def _w_mv(v):  # scoringrules calls a multivariate weight function one vector at a time
    return 1.0 / (1.0 + np.exp(-(v.sum() - 0.2)))


def _v_mv(x):
    return np.maximum(x, 0.1)


def _wis_inputs(rng, b):
    alpha = np.array([0.1, 0.4])
    median = rng.normal(size=b)
    width = np.sort(_pos(rng, *b, 2), -1)[..., ::-1]
    return median, median[..., None] - width, median[..., None] + width, alpha


# name -> inputs (args, kwargs) for a batch shape; every case is float64 numpy, as a scoringrules user passes.
def _cases(rng, batch):
    b = batch
    y = rng.normal(size=b)
    ypos = _pos(rng, *b)
    yin = rng.uniform(-0.9, 1.4, size=b)  # inside [-1, 1.5], the bounds of the truncated families
    counts = rng.integers(0, 6, size=b).astype(float)
    mv_obs, mv_fct = rng.normal(size=(*b, 3)), rng.normal(size=(*b, 5, 3))
    uv_fct = rng.normal(size=(*b, 6))
    m3, s3 = rng.normal(size=(*b, 3)), _pos(rng, *b, 3)
    return {
        "crps_ensemble": ((y, uv_fct), {}),
        "es_ensemble": ((mv_obs, mv_fct), {}),
        "energy_score": ((mv_obs, mv_fct), {}),
        "vs_ensemble": ((mv_obs, mv_fct), {}),
        "variogram_score": ((mv_obs, mv_fct), {}),
        "gksuv_ensemble": ((y, uv_fct), {}),
        "gksmv_ensemble": ((mv_obs, mv_fct), {}),
        "crps_normal": ((y, rng.normal(size=b), _pos(rng, *b)), {}),
        "logs_normal": ((y, rng.normal(size=b), _pos(rng, *b)), {}),
        "crps_lognormal": ((ypos, rng.normal(size=b) * 0.3, _pos(rng, *b)), {}),
        "logs_lognormal": ((ypos, rng.normal(size=b) * 0.3, _pos(rng, *b)), {}),
        "crps_logistic": ((y, rng.normal(size=b), _pos(rng, *b)), {}),
        "logs_logistic": ((y, rng.normal(size=b), _pos(rng, *b)), {}),
        "crps_laplace": ((y, rng.normal(size=b), _pos(rng, *b)), {}),
        "logs_laplace": ((y, rng.normal(size=b), _pos(rng, *b)), {}),
        "crps_exponential": ((ypos, _pos(rng, *b)), {}),
        "logs_exponential": ((ypos, _pos(rng, *b)), {}),
        "logs_exponential2": ((ypos + 0.1, 0.05 * _pos(rng, *b), _pos(rng, *b)), {}),
        "crps_gamma": ((ypos, _pos(rng, *b) + 1.0, _pos(rng, *b)), {}),
        "logs_gamma": ((ypos, _pos(rng, *b) + 1.0), {"scale": _pos(rng, *b)}),
        "crps_beta": ((_unit(rng, *b), _pos(rng, *b) + 0.5, _pos(rng, *b) + 0.5), {}),
        "logs_beta": ((_unit(rng, *b), _pos(rng, *b) + 0.5, _pos(rng, *b) + 0.5), {}),
        "crps_binomial": ((counts, np.full(b, 7.0), _unit(rng, *b)), {}),
        "logs_binomial": ((counts, np.full(b, 7.0), _unit(rng, *b)), {}),
        "crps_poisson": ((counts, _pos(rng, *b) * 3), {}),
        "logs_poisson": ((counts, _pos(rng, *b) * 3), {}),
        "crps_negbinom": ((counts, _pos(rng, *b) * 3, _unit(rng, *b)), {}),
        "logs_negbinom": (
            (counts, np.full(b, 3.0)),
            {"mu": _pos(rng, *b) * 2},
        ),  # peer: inf if n not integer
        "crps_t": ((y, _pos(rng, *b) + 2.0, rng.normal(size=b), _pos(rng, *b)), {}),
        "logs_t": ((y, _pos(rng, *b) + 2.0, rng.normal(size=b), _pos(rng, *b)), {}),
        "crps_mixnorm": ((y, m3, s3, _probs(rng, *b, 3)), {}),
        "logs_mixnorm": ((y, m3, s3, _probs(rng, *b, 3)), {}),
        "crps_uniform": ((_unit(rng, *b), np.zeros(b), np.ones(b) + _pos(rng, *b), 0.1, 0.2), {}),
        # families of scoringrules_torch.distributions
        "crps_gev": ((0.5 * y, rng.uniform(-0.2, 0.2, size=b), 0.1, 1.2), {}),
        "logs_gev": ((0.5 * y, rng.uniform(-0.2, 0.2, size=b), 0.1, 1.2), {}),
        "crps_gpd": ((ypos, rng.uniform(-0.15, 0.4, size=b), 0.0, 1.3, 0.2), {}),
        "logs_gpd": ((ypos, rng.uniform(-0.15, 0.4, size=b), 0.0, 1.3), {}),
        "crps_exponentialM": ((ypos, 0.2, 0.05, _pos(rng, *b)), {}),
        "crps_gtcnormal": ((y, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5, 0.1, 0.2), {}),
        "crps_tnormal": ((y, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5), {}),
        "logs_tnormal": ((yin, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5), {}),
        "crps_cnormal": ((y, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5), {}),
        "crps_gtclogistic": ((y, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5, 0.1, 0.2), {}),
        "crps_tlogistic": ((y, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5), {}),
        "logs_tlogistic": ((yin, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5), {}),
        "crps_clogistic": ((y, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5), {}),
        "crps_gtct": (
            (y, _pos(rng, *b) + 2.0, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5, 0.1, 0.2),
            {},
        ),
        "crps_tt": ((y, _pos(rng, *b) + 2.0, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5), {}),
        "logs_tt": ((yin, _pos(rng, *b) + 2.0, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5), {}),
        "crps_ct": ((y, _pos(rng, *b) + 2.0, rng.normal(size=b), _pos(rng, *b), -1.0, 1.5), {}),
        "crps_2pnormal": ((y, _pos(rng, *b), _pos(rng, *b), rng.normal(size=b)), {}),
        "logs_2pnormal": ((y, _pos(rng, *b), _pos(rng, *b), rng.normal(size=b)), {}),
        "crps_2pexponential": ((y, _pos(rng, *b), _pos(rng, *b), rng.normal(size=b)), {}),
        "logs_2pexponential": ((y, _pos(rng, *b), _pos(rng, *b), rng.normal(size=b)), {}),
        "crps_loglaplace": ((ypos, 0.3 * rng.normal(size=b), 0.8 * _unit(rng, *b)), {}),
        "logs_loglaplace": ((ypos, 0.3 * rng.normal(size=b), 0.8 * _unit(rng, *b)), {}),
        "crps_loglogistic": ((ypos, 0.3 * rng.normal(size=b), 0.8 * _unit(rng, *b)), {}),
        "logs_loglogistic": ((ypos, 0.3 * rng.normal(size=b), 0.8 * _unit(rng, *b)), {}),
        "crps_csg0": (
            (ypos - 0.2, _pos(rng, *b) + 0.5, _pos(rng, *b)),
            {"shift": 0.3},
        ),  # peer: wrong below 0
        "crps_hypergeometric": ((rng.integers(0, 5, size=b) * 1.0, 5.0, 8.0, 4.0), {}),
        "logs_hypergeometric": ((rng.integers(0, 5, size=b) * 1.0, 5.0, 8.0, 4.0), {}),
        # weighted ensemble scores, with numpy weight/chaining functions as a scoringrules user writes them
        "twcrps_ensemble": ((y, uv_fct, -0.5, 1.0), {}),
        "owcrps_ensemble": ((y, uv_fct), {"w_func": _w_uv}),
        "vrcrps_ensemble": ((y, uv_fct, -0.5, 1.0), {}),
        "twgksuv_ensemble": ((y, uv_fct), {"v_func": _v_uv}),
        "owgksuv_ensemble": ((y, uv_fct, -0.5, 1.0), {}),
        "vrgksuv_ensemble": ((y, uv_fct), {"w_func": _w_uv}),
        "twes_ensemble": ((mv_obs, mv_fct, _v_mv), {}),
        "twenergy_score": ((mv_obs, mv_fct, _v_mv), {}),
        "owes_ensemble": ((mv_obs, mv_fct, _w_mv), {}),
        "owenergy_score": ((mv_obs, mv_fct, _w_mv), {}),
        "vres_ensemble": ((mv_obs, mv_fct, _w_mv), {}),
        "vrenergy_score": ((mv_obs, mv_fct, _w_mv), {}),
        "twvs_ensemble": ((mv_obs, mv_fct, _v_mv), {}),
        "twvariogram_score": ((mv_obs, mv_fct, _v_mv), {}),
        "owvs_ensemble": ((mv_obs, mv_fct, _w_mv), {}),
        "owvariogram_score": ((mv_obs, mv_fct, _w_mv), {}),
        "vrvs_ensemble": ((mv_obs, mv_fct, _w_mv), {}),
        "vrvariogram_score": ((mv_obs, mv_fct, _w_mv), {}),
        "twgksmv_ensemble": ((mv_obs, mv_fct, _v_mv), {}),
        "owgksmv_ensemble": ((mv_obs, mv_fct, _w_mv), {}),
        "vrgksmv_ensemble": ((mv_obs, mv_fct, _w_mv), {}),
        # quantile, interval, categorical, moment-based and ensemble log scores
        "quantile_score": ((y, rng.normal(size=b), _unit(rng, *b)), {}),
        "crps_quantile": ((y, np.sort(rng.normal(size=(*b, 5)), -1), np.linspace(0.1, 0.9, 5)), {}),
        "interval_score": ((y, y - _pos(rng, *b), y + _pos(rng, *b) - 0.5, 0.2), {}),
        "weighted_interval_score": ((y, *_wis_inputs(rng, b)), {}),
        "brier_score": (((rng.random(b) < 0.5) * 1.0, _unit(rng, *b)), {}),
        "log_score": (((rng.random(b) < 0.5) * 1.0, _unit(rng, *b)), {}),
        "rps_score": ((rng.integers(1, 5, size=b) * 1.0, _probs(rng, *b, 4)), {}),
        "rls_score": ((rng.integers(1, 5, size=b) * 1.0, _probs(rng, *b, 4)), {}),
        "dssuv_ensemble": ((y, uv_fct), {}),
        "dssmv_ensemble": ((mv_obs, mv_fct), {}),
        "error_spread_score": ((y, uv_fct), {}),
        "logs_ensemble": ((y, uv_fct), {}),
        "clogs_ensemble": ((y, uv_fct, -0.5, 1.0), {}),
        "logs_uniform": ((_unit(rng, *b), np.zeros(b), np.ones(b) + _pos(rng, *b)), {}),
    }


CASE_NAMES = sorted(_cases(np.random.default_rng(0), (2,)))
# Closed forms evaluated through special functions (incomplete gamma/beta, hypergeometric sums): looser bound.
_SPECIAL = {
    "crps_gamma",
    "crps_beta",
    "crps_t",
    "crps_binomial",
    "crps_negbinom",
    "crps_poisson",
    "crps_gev",
    "crps_gtct",
    "crps_tt",
    "crps_ct",
    "crps_loglogistic",
    "crps_csg0",
    "logs_tt",
    "logs_gev",
}


def test_every_peer_scoring_function_has_a_compat_counterpart():
    missing = [n for n in PEER_NAMES if not callable(getattr(compat, n, None))]
    assert not missing, f"scoringrules functions without a compat counterpart: {missing}"


def test_every_compat_function_has_a_value_test():
    untested = [n for n in PEER_NAMES if hasattr(compat, n) and n not in CASE_NAMES]
    assert not untested, f"compat functions without a value test: {untested}"


@pytest.mark.parametrize("name", [n for n in PEER_NAMES if hasattr(compat, n)])
def test_signature_matches_the_peer(name):
    ours = inspect.signature(getattr(compat, name)).parameters
    theirs = inspect.signature(getattr(sr, name)).parameters
    assert list(ours) == list(theirs), (
        f"{name}: parameters {list(ours)} != scoringrules' {list(theirs)}"
    )
    for p in theirs.values():
        assert ours[p.name].kind == p.kind, (
            f"{name}({p.name}): kind {ours[p.name].kind} != {p.kind}"
        )
        if p.default is not inspect.Parameter.empty and p.name != "backend":
            assert ours[p.name].default == p.default or (
                ours[p.name].default is None and p.default is None
            ), f"{name}({p.name}): default {ours[p.name].default!r} != {p.default!r}"


def _peer(name, args, kwargs):
    """The peer's value; where it fails on a batch shape (crps_binomial on 2-d input), element by element."""
    fn = getattr(sr, name)
    if name == "vrcrps_ensemble":  # 0.10 hard-codes axis=1: it only works on 2-d forecasts
        obs, fct, *rest = args
        out = fn(
            np.reshape(obs, -1),
            np.reshape(fct, (-1, fct.shape[-1])),
            *rest,
            backend="numpy",
            **kwargs,
        )
        return np.reshape(out, np.shape(obs))
    if (
        name == "weighted_interval_score"
    ):  # the numba backend: 0.10's numpy backend adds w0 * median
        return np.asarray(fn(*args, backend="numba", **kwargs))
    try:  # copies: some peer functions modify their inputs in place (logs_exponential2 shifts obs)
        return np.asarray(
            fn(*[a if callable(a) else np.copy(a) for a in args], backend="numpy", **kwargs)
        )
    except ValueError:
        if any(callable(a) for a in [*args, *kwargs.values()]):
            raise
        arrays = np.broadcast_arrays(*args, *kwargs.values())
        flat = [a.reshape(-1) for a in arrays]
        keys, n = list(kwargs), len(args)
        out = [
            fn(
                *[f[i] for f in flat[:n]],
                backend="numpy",
                **dict(zip(keys, [f[i] for f in flat[n:]], strict=True)),
            )
            for i in range(flat[0].size)
        ]
        return np.asarray(out, dtype=float).reshape(arrays[0].shape)


@pytest.mark.parametrize("batch", [(), (5,), (3, 4)], ids=lambda b: f"batch{b}")
@pytest.mark.parametrize("name", CASE_NAMES)
def test_values_agree_with_scoringrules(name, batch):
    seed = sum(map(ord, name)) + 7 * len(batch)
    args, kwargs = _cases(np.random.default_rng(seed), batch)[name]
    ref = _peer(name, args, kwargs)
    got = getattr(compat, name)(*args, **kwargs)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    assert got.shape == ref.shape
    rtol = 1e-8 if name in _SPECIAL else 1e-10
    np.testing.assert_allclose(got.numpy(), ref, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("estimator", ["qd", "nrg", "fair", "pwm", "int", "akr", "akr_circperm"])
def test_crps_ensemble_estimators_weights_and_axes(estimator):
    rng = np.random.default_rng(3)
    obs, fct, w = rng.normal(size=(4, 2)), rng.normal(size=(7, 4, 2)), rng.random((7, 4, 2)) + 0.1
    ref = sr.crps_ensemble(obs, fct, m_axis=0, ens_w=w, estimator=estimator, backend="numpy")
    got = compat.crps_ensemble(obs, fct, m_axis=0, ens_w=w, estimator=estimator)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)


@pytest.mark.parametrize("name", ["es_ensemble", "vs_ensemble", "gksmv_ensemble"])
def test_multivariate_axes_and_member_weights(name):
    rng = np.random.default_rng(4)
    obs, fct = (
        rng.normal(size=(3, 2)),
        rng.normal(size=(3, 6, 2)),
    )  # fct (v, m, batch): m_axis=1, v_axis=0
    ref = getattr(sr, name)(obs, fct, m_axis=1, v_axis=0, backend="numpy")
    got = getattr(compat, name)(obs, fct, m_axis=1, v_axis=0)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)
    # member weights, read the peer's way: axis m_axis (counted on fct) moved last gives (*batch, m)
    obs, fct, w = (
        rng.normal(size=(2, 4, 3)),
        rng.normal(size=(2, 4, 6, 3)),
        rng.random((2, 4, 6)) + 0.1,
    )
    ref = getattr(sr, name)(obs, fct, ens_w=w, backend="numpy")
    got = getattr(compat, name)(obs, fct, ens_w=w)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)


def test_tensors_in_tensors_out_with_gradients_and_dtype():
    fct = torch.randn(4, 9, dtype=torch.float32, requires_grad=True)
    obs = np.zeros(4)  # numpy obs follows the tensor's dtype
    out = compat.crps_ensemble(obs, fct)
    assert out.dtype == torch.float32 and out.shape == (4,)
    out.sum().backward()
    assert fct.grad is not None and torch.isfinite(fct.grad).all()
    ref = sr.crps_ensemble(obs, fct.detach().double().numpy(), backend="numpy")
    np.testing.assert_allclose(out.detach().double().numpy(), ref, rtol=1e-5)


def test_native_table_names_every_function():
    for name in PEER_NAMES:
        if hasattr(compat, name) and name not in ("energy_score", "variogram_score"):
            assert getattr(compat, name).__name__ in compat.NATIVE, name


def test_bad_inputs_give_clear_errors():
    with pytest.raises(TypeError, match="expected numbers"):
        compat.crps_normal(["a"], 0.0, 1.0)
    with pytest.raises(ValueError, match="exactly one of rate and scale"):
        compat.crps_gamma(1.0, 2.0)
    with pytest.raises(ValueError, match="m_axis and v_axis must differ"):
        compat.es_ensemble(np.zeros(3), np.zeros((4, 3)), m_axis=-1, v_axis=-1)


def test_torch_weight_functions_keep_gradients_and_match_numpy_ones():
    rng = np.random.default_rng(9)
    obs, fct = rng.normal(size=(4, 3)), rng.normal(size=(4, 6, 3))
    x = torch.tensor(fct, requires_grad=True)
    got = compat.owes_ensemble(obs, x, lambda v: torch.sigmoid(v.sum() - 0.2))
    ref = compat.owes_ensemble(obs, fct, lambda v: 1.0 / (1.0 + np.exp(-(v.sum() - 0.2))))
    torch.testing.assert_close(got.detach(), ref, rtol=1e-12, atol=0)
    got.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["es_ensemble", "vs_ensemble", "gksmv_ensemble", "dssmv_ensemble"])
def test_one_multivariate_observation_as_scoringrules_takes_it(name):
    rng = np.random.default_rng(11)
    obs, fct = rng.normal(size=3), rng.normal(size=(7, 3))  # one observation: obs (d,), fct (m, d)
    ref = getattr(sr, name)(obs, fct, backend="numpy")
    got = getattr(compat, name)(obs, fct)
    assert got.shape == ()
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)
