"""ImplicitGeneratorHead: architecture against a float64 re-derivation of EAR's generator, the training loss
against direct float64 computations of EAR's loss and of the other scores, initialisation, temperature."""

from __future__ import annotations

import math

import numpy as np
import properscoring
import pytest
import torch

from scoringrules_torch.heads import ImplicitGeneratorHead

D_TOKEN, D_COND, WIDTH, DEPTH, NOISE = 3, 5, 16, 2, 4


def _randomise(head: torch.nn.Module, seed: int = 0) -> None:
    """Give every parameter (the zero-initialised ones too) non-trivial values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in head.named_parameters():
            offset = 1.0 if name.endswith("norm.weight") else 0.0
            p.copy_(offset + 0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _head(**kw) -> ImplicitGeneratorHead:
    torch.manual_seed(0)
    head = ImplicitGeneratorHead(D_TOKEN, D_COND, width=WIDTH, depth=DEPTH, noise_dim=NOISE, **kw)
    _randomise(head)
    return head.double()


def _naive_generator(
    head: ImplicitGeneratorHead, z: np.ndarray, eps: np.ndarray, tau: float
) -> np.ndarray:
    """EAR's MLP generator written out with numpy in float64 from the parameters (notes §2.4)."""
    p = {k: v.detach().double().numpy() for k, v in head.state_dict().items()}

    def lin(x, name):
        return x @ p[name + ".weight"].T + p[name + ".bias"]

    def silu(x):
        return x / (1 + np.exp(-x))

    def layer_norm(x, w=None, b=None):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        out = (x - mu) / np.sqrt(var + 1e-6)
        return out if w is None else out * w + b

    e = lin(eps, "noise_embed")
    h = np.broadcast_to(lin(z, "input_proj"), e.shape[:-1] + (WIDTH,))
    for i in range(head.depth):
        mod = lin(silu(e), f"blocks.{i}.modulation")
        shift, scale, gate = mod[..., :WIDTH], mod[..., WIDTH : 2 * WIDTH], mod[..., 2 * WIDTH :]
        u = (
            layer_norm(h, p[f"blocks.{i}.norm.weight"], p[f"blocks.{i}.norm.bias"]) * (1 + scale)
            + tau * shift
        )
        ffn = lin(silu(lin(u, f"blocks.{i}.ffn.0")), f"blocks.{i}.ffn.2")
        h = h + gate * ffn
    mod = lin(silu(e), "final.modulation")
    shift, scale = mod[..., :WIDTH], mod[..., WIDTH:]
    return lin(layer_norm(h) * (1 + scale) + shift, "final.linear")


@pytest.mark.parametrize("tau", [1.0, 0.7, 0.0])
def test_generator_matches_float64_rederivation(tau):
    head = _head()
    rng = np.random.default_rng(1)
    z = rng.normal(size=(7, D_COND))
    eps = rng.uniform(-0.5, 0.5, size=(3, 7, NOISE))
    got = head(torch.from_numpy(z), torch.from_numpy(eps), tau).detach().numpy()
    np.testing.assert_allclose(got, _naive_generator(head, z, eps, tau), rtol=1e-10, atol=1e-12)
    # sample() uses the same generator and scales only the residual blocks' shifts
    one = (
        head.sample(torch.from_numpy(z), temperature=tau, noise=torch.from_numpy(eps[0]))
        .detach()
        .numpy()
    )
    np.testing.assert_allclose(one, _naive_generator(head, z, eps[0], tau), rtol=1e-10, atol=1e-12)


def test_temperature_changes_only_the_block_shifts():
    """Zeroing every block-modulation shift row makes the output independent of the temperature."""
    head = _head()
    with torch.no_grad():
        for block in head.blocks:
            block.modulation.weight[:WIDTH] = 0
            block.modulation.bias[:WIDTH] = 0
    z, eps = (
        torch.randn(4, D_COND, dtype=torch.float64),
        torch.rand(4, NOISE, dtype=torch.float64) - 0.5,
    )
    torch.testing.assert_close(
        head.sample(z, 0.3, noise=eps), head.sample(z, 1.0, noise=eps), rtol=0, atol=0
    )
    head = _head()
    assert not torch.equal(head.sample(z, 0.3, noise=eps), head.sample(z, 1.0, noise=eps))


def test_train_and_eval_mode_sample_identically():
    head = _head()
    z, eps = (
        torch.randn(4, D_COND, dtype=torch.float64),
        torch.rand(4, NOISE, dtype=torch.float64) - 0.5,
    )
    a = head.train().sample(z, 0.5, noise=eps)
    b = head.eval().sample(z, 0.5, noise=eps)
    assert torch.equal(a, b)


def test_initialisation_follows_ear():
    torch.manual_seed(0)
    head = ImplicitGeneratorHead(D_TOKEN, D_COND, width=64, depth=3, noise_dim=NOISE)
    zero = {"final.modulation", "final.linear"} | {f"blocks.{i}.modulation" for i in range(3)}
    for name, mod in head.named_modules():
        if isinstance(mod, torch.nn.Linear):
            assert torch.all(mod.bias == 0), name
            if name in zero:
                assert torch.all(mod.weight == 0), name
            else:
                bound = math.sqrt(6 / (mod.in_features + mod.out_features))
                assert mod.weight.abs().max() <= bound, name
                assert mod.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.15), (
                    name
                )
        if isinstance(mod, torch.nn.LayerNorm):
            if name == "final.norm":
                assert mod.weight is None and mod.eps == 1e-6
            else:
                assert torch.all(mod.weight == 1) and torch.all(mod.bias == 0) and mod.eps == 1e-6


def test_zero_init_gives_identical_samples_and_finite_gradients():
    torch.manual_seed(0)
    head = ImplicitGeneratorHead(D_TOKEN, D_COND, width=32, depth=2, noise_dim=NOISE, num_samples=4)
    z, y = torch.randn(10, D_COND), torch.randn(10, D_TOKEN)
    assert torch.all(head.sample_n(z, 5) == 0)
    for estimator in ("pairs", "fair"):
        head.zero_grad()
        head.estimator = estimator
        head.loss(z, y).backward()
        for name, p in head.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert head.final.linear.weight.grad.abs().sum() > 0  # training can start


def _ear_loss_float64(samples: np.ndarray, y: np.ndarray, mask: np.ndarray, tau: float) -> float:
    """EAR's loss (scoreloss.py): pairs (x_k, x_{k+m/2}); l = |x1-y| + |x2-y| - tau |x1-x2|; masked mean over
    the tiled rows, i.e. over pairs and masked tokens, written as explicit loops."""
    m, n = samples.shape[:2]
    num = den = 0.0
    for k in range(m // 2):
        for i in range(n):
            x1, x2 = samples[k, i], samples[k + m // 2, i]
            ell = (
                math.sqrt(((x1 - y[i]) ** 2).sum())
                + math.sqrt(((x2 - y[i]) ** 2).sum())
                - tau * math.sqrt(((x1 - x2) ** 2).sum())
            )
            num += ell * mask[i]
            den += mask[i]
    return num / den


@pytest.mark.parametrize("num_samples", [2, 4])
@pytest.mark.parametrize("tau", [1.0, 0.99, 0.5])
def test_pairs_loss_is_half_of_ears_loss(num_samples, tau):
    head = _head(num_samples=num_samples, train_temperature=tau, log_terms=True)
    rng = np.random.default_rng(2)
    z = rng.normal(size=(2, 6, D_COND))
    y = rng.normal(size=(2, 6, D_TOKEN))
    mask = (rng.uniform(size=(2, 6)) < 0.6).astype(np.float64)
    mask[0, 0] = 1.0
    eps = rng.uniform(-0.5, 0.5, size=(num_samples, 2, 6, NOISE))
    loss = head.loss(
        torch.from_numpy(z),
        torch.from_numpy(y),
        torch.from_numpy(mask),
        noise=torch.from_numpy(eps),
    )
    samples = _naive_generator(
        head, z.reshape(12, D_COND), eps.reshape(num_samples, 12, NOISE), 1.0
    )
    expected = 0.5 * _ear_loss_float64(samples, y.reshape(12, D_TOKEN), mask.reshape(12), tau)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    # the logged terms: loss = accuracy - tau * spread
    acc, spread = head.last_terms
    assert not acc.requires_grad and not spread.requires_grad
    assert (acc - tau * spread).item() == pytest.approx(loss.item(), rel=1e-10)
    assert spread.item() > 0


def test_fair_estimator_loss_float64():
    beta, m = 1.5, 3
    head = _head(num_samples=m, estimator="fair", beta=beta)
    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(5, D_COND)), rng.normal(size=(5, D_TOKEN))
    eps = rng.uniform(-0.5, 0.5, size=(m, 5, NOISE))
    loss = head.loss(torch.from_numpy(z), torch.from_numpy(y), noise=torch.from_numpy(eps)).item()
    x = _naive_generator(head, z, eps, 1.0)
    vals = []
    for i in range(5):
        acc = np.mean([np.linalg.norm(x[k, i] - y[i]) ** beta for k in range(m)])
        spr = np.mean(
            [
                np.linalg.norm(x[k, i] - x[j, i]) ** beta
                for k in range(m)
                for j in range(m)
                if k != j
            ]
        )
        vals.append(acc - 0.5 * spr)
    assert loss == pytest.approx(np.mean(vals), rel=1e-10)


def test_crps_score_is_sum_of_properscoring_crps():
    m = 4
    head = _head(num_samples=m, score="crps", estimator="nrg")
    rng = np.random.default_rng(4)
    z, y = rng.normal(size=(5, D_COND)), rng.normal(size=(5, D_TOKEN))
    eps = rng.uniform(-0.5, 0.5, size=(m, 5, NOISE))
    loss = head.loss(torch.from_numpy(z), torch.from_numpy(y), noise=torch.from_numpy(eps)).item()
    x = _naive_generator(head, z, eps, 1.0)  # (m, 5, d)
    expected = properscoring.crps_ensemble(y, np.moveaxis(x, 0, -1)).sum(-1).mean()
    assert loss == pytest.approx(expected, rel=1e-10)


def test_kernel_score_float64():
    m, h = 4, 1.3
    head = _head(num_samples=m, score="kernel", estimator="fair", score_kwargs={"bandwidth": h})
    rng = np.random.default_rng(5)
    z, y = rng.normal(size=(5, D_COND)), rng.normal(size=(5, D_TOKEN))
    eps = rng.uniform(-0.5, 0.5, size=(m, 5, NOISE))
    loss = head.loss(torch.from_numpy(z), torch.from_numpy(y), noise=torch.from_numpy(eps)).item()
    x = _naive_generator(head, z, eps, 1.0)

    def k(a, b):
        return math.exp(-((a - b) ** 2).sum() / (2 * h * h))

    vals = []
    for i in range(5):
        xx = np.mean([k(x[a, i], x[b, i]) for a in range(m) for b in range(m) if a != b])
        xy = np.mean([k(x[a, i], y[i]) for a in range(m)])
        vals.append(0.5 * xx + 0.5 - xy)
    assert loss == pytest.approx(np.mean(vals), rel=1e-10)


def test_energy_plus_variogram_and_callable_scores():
    from scoringrules_torch.functional.energy import energy_score
    from scoringrules_torch.functional.variogram import variogram_score

    m = 4
    rng = np.random.default_rng(6)
    z, y = (
        torch.from_numpy(rng.normal(size=(5, D_COND))),
        torch.from_numpy(rng.normal(size=(5, D_TOKEN))),
    )
    eps = torch.from_numpy(rng.uniform(-0.5, 0.5, size=(m, 5, NOISE)))
    head = _head(num_samples=m, score="energy+variogram", estimator="fair")
    x = head(z, eps)
    expected = (
        energy_score(x, y, estimator="fair", reduction="none")
        + variogram_score(x, y, estimator="fair", reduction="none")
    ).mean()
    torch.testing.assert_close(head.loss(z, y, noise=eps), expected, rtol=1e-12, atol=0)

    def mean_abs_error(samples, target, reduction="none", power=1.0):
        assert reduction == "none"
        return ((samples - target).abs() ** power).sum(-1).mean(0)

    head = _head(num_samples=m, score=mean_abs_error, score_kwargs={"power": 2.0})
    expected = ((head(z, eps) - y) ** 2).sum(-1).mean()
    torch.testing.assert_close(head.loss(z, y, noise=eps), expected, rtol=1e-12, atol=0)


def test_gaussian_noise_option():
    head = ImplicitGeneratorHead(
        D_TOKEN, D_COND, width=8, depth=1, noise_dim=NOISE, noise="gaussian"
    )
    torch.manual_seed(0)
    eps = head.draw_noise((20000,), torch.zeros(1, dtype=torch.float64))
    assert eps.dtype == torch.float64 and eps.shape == (20000, NOISE)
    assert eps.std().item() == pytest.approx(1.0, rel=0.03)
    uniform = ImplicitGeneratorHead(D_TOKEN, D_COND, width=8, depth=1, noise_dim=NOISE)
    eps = uniform.draw_noise((20000,), torch.zeros(1))
    assert eps.min() >= -0.5 and eps.max() <= 0.5
    assert eps.std().item() == pytest.approx(math.sqrt(1 / 12), rel=0.03)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_samples=3), "num_samples must be even"),
        (dict(num_samples=1), "num_samples must be an int >= 2"),
        (dict(estimator="bogus"), "estimator must be one of"),
        (dict(score="bogus"), "score must be one of"),
        (dict(noise="laplace"), "noise must be one of"),
        (dict(beta=2.5), r"beta must be a finite number in \(0, 2\]; got 2.5"),
        (dict(score="kernel", train_temperature=0.9), "train_temperature != 1"),
        (dict(score="crps", estimator="fair", score_kwargs={"a": 1}), "score_kwargs is not used"),
        (dict(score="kernel", estimator="pwm"), "estimator .for score='kernel'. must be one of"),
        (dict(width=0), "width must be an int"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImplicitGeneratorHead(D_TOKEN, D_COND, **kwargs)


def test_bad_noise_shape():
    head = _head(num_samples=2)
    z, y = torch.randn(5, D_COND, dtype=torch.float64), torch.randn(5, D_TOKEN, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"noise must have shape \(num_samples=2"):
        head.loss(z, y, noise=torch.rand(3, 5, NOISE, dtype=torch.float64))


def test_learns_a_bimodal_law():
    """Trained by the energy score on y = +-1 (+ small noise), the generator puts mass on both modes and
    little in between, which a Gaussian with the same mean and variance would not."""
    torch.manual_seed(0)
    head = ImplicitGeneratorHead(1, 4, width=32, depth=1, noise_dim=8, num_samples=4)
    opt = torch.optim.Adam(head.parameters(), lr=5e-3)
    z = torch.ones(128, 4)
    for _ in range(150):
        y = (torch.randint(0, 2, (128, 1)) * 2 - 1) + 0.05 * torch.randn(128, 1)
        loss = head.loss(z, y.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        s = head.sample_n(z[:1], 4000).flatten()
    frac_pos = (s > 0).float().mean().item()
    assert 0.35 < frac_pos < 0.65
    assert (s.abs() < 0.5).float().mean().item() < 0.15  # a N(0, 1) would put 38% there
