"""DistributionalDiffusionHead: the loss against a float64 loop of the paper's formula, propriety of the per-step
score through the harness, the few-step sampler against an exact Gaussian posterior, determinism, low precision,
zero-initialised gradients, argument errors, and the shared head protocol (conformance tests run on this head)."""

from __future__ import annotations

import math

import pytest
import torch

# the protocol tests every head must pass, collected here with this module's ``named_head`` fixture
from test_heads_conformance import (  # noqa: F401
    test_masked_positions_with_nan_padding_are_ignored,
    test_num_samples_draws_are_independent_draws_of_the_same_law,
    test_protocol_membership,
    test_reductions_agree,
    test_sample_shapes_and_dtype,
    test_temperature_errors,
    test_tensor_temperature_equals_per_position_scalars,
    test_zero_positions_raise,
)
from torch.distributions import Independent, Normal

from scoringrules_torch.heads import DistributionalDiffusionHead, PredictiveHead
from scoringrules_torch.heads.distributional_diffusion import trailing_timesteps
from scoringrules_torch.testing import (
    assert_proper,
    assert_strictly_proper,
    compare_expected_scores,
)

D, C = 2, 12  # the conformance tests' token_dim, cond_dim


@pytest.fixture
def named_head():
    """The head with its defaults and every parameter moved off its (partly zero) initialisation."""
    torch.manual_seed(0)
    head = DistributionalDiffusionHead(D, C)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return "distributional_diffusion", head


def _perturbed(head: DistributionalDiffusionHead, seed: int = 0) -> DistributionalDiffusionHead:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return head


def _cosine_alpha_bar(t: int, T: int) -> float:
    """Independent float64 loop: alpha_bar_t of Nichol & Dhariwal's cosine schedule (offset 0.008, beta <= 0.999)."""

    def f(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    prod = 1.0
    for s in range(t + 1):
        prod *= 1 - min(1 - f((s + 1) / T) / f(s / T), 0.999)
    return prod


# -- the loss ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "beta, lam, param", [(1.0, 1.0, "v"), (0.5, 0.3, "v"), (1.5, 0.0, "x0"), (1.0, 1.0, "x0")]
)
def test_loss_equals_a_float64_loop_of_the_papers_formula(beta, lam, param):
    """(1/m) sum_j ||x0_j - y||^beta - lambda / (2 m (m-1)) sum_{j != j'} ||x0_j - x0_j'||^beta, averaged over
    the noise levels, with x_t = sqrt(ab_t) y + sqrt(1 - ab_t) eps and x0_j = f(x_t, t, z, xi_j) read through the
    parameterisation by hand."""
    T, m, L = 50, 3, 2
    head = DistributionalDiffusionHead(
        D, 5, width=16, depth=2, noise_dim=4, num_train_timesteps=T, num_samples=m,
        num_noise_levels=L, beta=beta, spread_weight=lam, parameterization=param,
    ).double()
    _perturbed(head)
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(4, 5, dtype=torch.float64, generator=gen)
    y = torch.randn(4, D, dtype=torch.float64, generator=gen)
    t = torch.randint(0, T, (L, 4), generator=gen)
    t[0, 0], t[1, 1] = 0, T - 1  # both ends of the schedule
    eps = torch.randn(L, 4, D, dtype=torch.float64, generator=gen)
    xi = torch.randn(m, L, 4, 4, dtype=torch.float64, generator=gen)
    got = head.loss(z, y, reduction="none", t=t, eps=eps, noise=xi)

    want = torch.zeros(4, dtype=torch.float64)
    for i in range(4):
        total = 0.0
        for level in range(L):
            ab = _cosine_alpha_bar(int(t[level, i]), T)
            x_t = math.sqrt(ab) * y[i] + math.sqrt(1 - ab) * eps[level, i]
            draws = []
            for j in range(m):
                with torch.no_grad():
                    cond = head.net.cond_embed(z[i : i + 1])
                    out = head.net(x_t[None], t[level, i : i + 1], cond, xi[j, level, i][None])[0]
                draws.append(out if param == "x0" else math.sqrt(ab) * x_t - math.sqrt(1 - ab) * out)
            acc = sum(float(torch.linalg.vector_norm(x - y[i])) ** beta for x in draws) / m
            spread = sum(
                float(torch.linalg.vector_norm(draws[a] - draws[b])) ** beta
                for a in range(m)
                for b in range(m)
                if a != b
            )
            total += acc - lam * spread / (2 * m * (m - 1))
        want[i] = total / L
    torch.testing.assert_close(got, want.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        head.loss(z, y, t=t, eps=eps, noise=xi), want.mean(), rtol=1e-10, atol=1e-12
    )


def test_kernel_score_option_equals_a_float64_loop():
    """score="kernel": 1/2 mean_{j != j'} k(x_j, x_j') + 1/2 - mean_j k(x_j, y), Gaussian kernel, bandwidth h."""
    m, h = 4, 0.7
    head = DistributionalDiffusionHead(
        D, 3, width=16, depth=1, num_train_timesteps=20, num_samples=m, score="kernel",
        score_kwargs={"bandwidth": h},
    ).double()
    _perturbed(head, seed=1)
    gen = torch.Generator().manual_seed(0)
    z, y = torch.randn(3, 3, dtype=torch.float64, generator=gen), torch.randn(3, D, dtype=torch.float64, generator=gen)
    t = torch.randint(0, 20, (1, 3), generator=gen)
    eps = torch.randn(1, 3, D, dtype=torch.float64, generator=gen)
    xi = torch.randn(m, 1, 3, head.noise_dim, dtype=torch.float64, generator=gen)
    got = head.loss(z, y, reduction="none", t=t, eps=eps, noise=xi).detach()
    ab = head.alphas_cumprod(t, torch.float64)[..., None]
    draws = head.predict_x0(
        (ab.sqrt() * y + (1 - ab).sqrt() * eps).expand(m, 1, 3, D), t, head.embed_condition(z), xi
    )[:, 0]  # (m, 3, D)

    def k(a, b):
        return math.exp(-float(((a - b) ** 2).sum().detach()) / (2 * h * h))

    for i in range(3):
        xs = draws[:, i]
        cross = sum(k(xs[a], xs[b]) for a in range(m) for b in range(m) if a != b) / (m * (m - 1))
        want = 0.5 * cross + 0.5 - sum(k(x, y[i]) for x in xs) / m
        assert float(got[i]) == pytest.approx(want, rel=1e-10, abs=1e-12)


# -- propriety of the per-step objective -------------------------------------------------------------------
def _normal(scale: float, d: int = 2):
    return Independent(Normal(torch.zeros(d, dtype=torch.float64), torch.full((d,), scale, dtype=torch.float64)), 1)


def test_per_step_score_is_strictly_proper_with_lambda_one():
    """The head's own per-step score (``score_samples``, the function the loss applies to the m draws of each
    noised target): with lambda = 1 the true posterior beats under- and over-dispersed and shifted forecasts."""
    head = DistributionalDiffusionHead(D, 4, beta=1.0, spread_weight=1.0)
    Q = _normal(1.0)
    for P in (_normal(0.5), _normal(1.8), Independent(Normal(torch.full((D,), 0.5, dtype=torch.float64),
                                                              torch.ones(D, dtype=torch.float64)), 1)):
        assert_strictly_proper(head.score_samples, P, Q, n_samples=4)
    beta_half = DistributionalDiffusionHead(D, 4, beta=0.5)
    assert_strictly_proper(beta_half.score_samples, _normal(0.6), Q, n_samples=4)


@pytest.mark.filterwarnings("ignore:energy score with beta=2")
def test_per_step_score_with_lambda_below_one_prefers_an_underdispersed_forecast():
    """lambda = 0.5 down-weights the spread term: a forecast narrower than the truth wins (improper)."""
    head = DistributionalDiffusionHead(D, 4, spread_weight=0.5)
    Q, P = _normal(1.0), _normal(0.5)
    with pytest.raises(AssertionError, match="assert_proper failed"):
        assert_proper(head.score_samples, P, Q, n_samples=4)
    comparison = compare_expected_scores(head.score_samples, P, Q, n_samples=4)
    assert comparison.z < -4  # the under-dispersed forecast has the lower (better) expected score
    # and at lambda = 0 the point forecast at the mean is best of all
    point = DistributionalDiffusionHead(D, 4, spread_weight=0.0, beta=2.0)
    narrow = compare_expected_scores(point.score_samples, _normal(0.05), Q, n_samples=4)
    assert narrow.z < -4


# -- the sampler -------------------------------------------------------------------------------------------
def test_trailing_timesteps():
    assert trailing_timesteps(1000, 1) == (999,)
    assert trailing_timesteps(1000, 2) == (999, 499)
    assert trailing_timesteps(1000, 8) == (999, 874, 749, 624, 499, 374, 249, 124)
    assert trailing_timesteps(10, 10) == tuple(range(9, -1, -1))
    with pytest.raises(ValueError, match=r"num_steps must be in \[1, num_train_timesteps=10\]; got 11"):
        trailing_timesteps(10, 11)


class _ExactPosterior:
    """x0 | x_t for y ~ N(mu, s^2 I), drawn from the generator noise's first d coordinates."""

    def __init__(self, head, mu, s):
        self.head, self.mu, self.s = head, mu, s
        self.calls = []

    def __call__(self, x, t, cond, noise):
        self.calls.append(int(t.flatten()[0]))
        ab = self.head.alphas_cumprod(t, x.dtype)[..., None]
        var_t = ab * self.s**2 + (1 - ab)
        mean = self.mu + self.s**2 * ab.sqrt() / var_t * (x - ab.sqrt() * self.mu)
        std = self.s * ((1 - ab) / var_t).sqrt()
        return mean + std * noise[..., : x.shape[-1]]


@pytest.mark.parametrize("num_steps", [1, 2, 4])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_sampler_with_the_exact_posterior_draws_the_data_law(num_steps, eta, monkeypatch):
    """With the exact posterior p(x0 | x_t) in place of the network, every number of steps and every eta
    samples the data law N(mu, s^2); the posterior mean alone (temperature 0) collapses at few steps."""
    head = DistributionalDiffusionHead(D, 3, noise_dim=D, num_train_timesteps=1000)
    mu, s = torch.tensor([1.5, -0.5]), 0.4
    exact = _ExactPosterior(head, mu, s)
    monkeypatch.setattr(head, "predict_x0", exact)
    z = torch.zeros(1, 3)
    torch.manual_seed(0)
    draws = head.sample(z, num_samples=20000, num_steps=num_steps, eta=eta)[:, 0]  # (m, D)
    assert exact.calls == list(trailing_timesteps(1000, num_steps))  # one evaluation per step, noisiest first
    torch.testing.assert_close(draws.mean(0), mu, atol=0.02, rtol=0)
    torch.testing.assert_close(draws.std(0), torch.full((D,), s), atol=0.02, rtol=0)
    if eta == 0.0:  # deterministic DDIM through the posterior means is far too narrow at few steps
        mean_only = head.sample(z, temperature=0.0, num_samples=4000, num_steps=num_steps)[:, 0]
        assert float(mean_only.std(0).max()) < 0.75 * s


@pytest.mark.parametrize("num_steps", [1, 2, 4, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_shape_dtype_device_at_few_steps(num_steps, dtype):
    head = _perturbed(DistributionalDiffusionHead(D, C, width=16, depth=1)).to(dtype)
    z = torch.randn(3, 4, C, dtype=dtype)
    calls = []
    handle = head.net.register_forward_hook(lambda *_: calls.append(1))
    try:
        one = head.sample(z, num_steps=num_steps)
        many = head.sample_n(z, 5, temperature=0.7, num_steps=num_steps, eta=0.5)
    finally:
        handle.remove()
    assert len(calls) == 2 * num_steps
    assert one.shape == (3, 4, D) and one.dtype == dtype and one.device == z.device
    assert many.shape == (5, 3, 4, D) and many.dtype == dtype and many.device == z.device
    assert torch.isfinite(many).all() and many.std(0).min() > 0


def test_meta_device_shapes():
    with torch.device("meta"):
        head = DistributionalDiffusionHead(D, C, width=16, depth=1)
        z, y = torch.randn(3, C), torch.randn(3, D)
        assert head.loss(z, y, reduction="none").shape == (3,)
        out = head.sample(z, num_samples=2, num_steps=2)
    assert out.shape == (2, 3, D) and out.device.type == "meta"


# -- determinism, precision, gradients ---------------------------------------------------------------------
def test_determinism_under_a_seed():
    head = _perturbed(DistributionalDiffusionHead(D, C, width=16, depth=2))
    z, y = torch.randn(5, C), torch.randn(5, D)

    def run(seed):
        torch.manual_seed(seed)
        return head.loss(z, y), head.sample(z, num_samples=3, num_steps=4, eta=1.0)

    (l1, s1), (l2, s2), (l3, s3) = run(7), run(7), run(8)
    assert torch.equal(l1, l2) and torch.equal(s1, s2)
    assert not torch.equal(l1, l3) and not torch.equal(s1, s3)


def test_bf16_autocast_runs_with_finite_loss_and_gradients():
    head = _perturbed(DistributionalDiffusionHead(D, C, width=32, depth=2))
    z, y = torch.randn(6, C, requires_grad=True), torch.randn(6, D)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = head.loss(z, y)
        draws = head.sample(z.detach(), num_samples=3, num_steps=2)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)
    assert torch.isfinite(z.grad).all()
    assert draws.dtype == torch.float32 and torch.isfinite(draws).all()
    # bf16 inputs: the loss accumulates in float32, draws come back in bf16
    head16 = head.to(torch.bfloat16)
    assert head16.loss(z.detach().bfloat16(), y.bfloat16()).dtype == torch.float32
    assert head16.sample(z.detach().bfloat16(), num_steps=2).dtype == torch.bfloat16


@pytest.mark.parametrize("param", ["v", "x0"])
def test_zero_initialised_head_has_finite_nonzero_gradients(param):
    """At initialisation the output layer is zero, so all m draws coincide: the spread term's gradient must
    still be finite, and the output layer must receive a gradient (training can start)."""
    torch.manual_seed(0)
    head = DistributionalDiffusionHead(D, C, parameterization=param, beta=0.5)
    z, y = torch.randn(8, C, requires_grad=True), torch.randn(8, D)
    with torch.no_grad():  # the draws for one noised target coincide at step 0, whatever the noise xi
        x_t, t, cond = torch.randn(8, D), torch.full((8,), 500), head.embed_condition(z)
        one = head.predict_x0(x_t, t, cond, torch.randn(8, head.noise_dim))
        other = head.predict_x0(x_t, t, cond, torch.randn(8, head.noise_dim))
    assert torch.equal(one, other)
    loss = head.loss(z, y)
    loss.backward()
    grads = {name: p.grad for name, p in head.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert grads["net.final.linear.weight"].abs().sum() > 0 or grads["net.final.linear.bias"].abs().sum() > 0
    assert torch.isfinite(z.grad).all()


def test_a_short_training_run_learns_a_bimodal_law_at_two_steps():
    """40 Adam steps on y = +-1 (+ 0.05 noise) with a constant condition: the 2-step draws are bimodal (few land
    in the middle) and put mass on both modes."""
    torch.manual_seed(0)
    head = DistributionalDiffusionHead(1, 2, width=32, depth=2, num_samples=4, num_noise_levels=2)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    z = torch.ones(256, 2)
    for _ in range(150):
        y = (torch.randint(0, 2, (256, 1)) * 2 - 1).float() + 0.05 * torch.randn(256, 1)
        loss = head.loss(z, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    draws = head.sample(z[:1], num_samples=2000, num_steps=2)[:, 0, 0]
    near = lambda c: ((draws - c).abs() < 0.4).float().mean().item()  # noqa: E731
    assert near(1.0) > 0.25 and near(-1.0) > 0.25, (near(1.0), near(-1.0))
    assert (draws.abs() < 0.4).float().mean().item() < 0.15


# -- argument errors ---------------------------------------------------------------------------------------
BAD = [
    ("width", 0, ValueError, "width must be an int >= 1; got 0"),
    ("depth", 1.0, TypeError, "depth must be an int >= 0; got float"),
    ("noise_dim", True, TypeError, "noise_dim must be an int >= 1; got bool"),
    ("num_train_timesteps", 1, ValueError, "num_train_timesteps must be an int >= 2; got 1"),
    ("num_sampling_steps", 0, ValueError, "num_sampling_steps must be an int >= 1; got 0"),
    ("num_sampling_steps", 2000, ValueError, r"num_steps must be in \[1, num_train_timesteps=1000\]"),
    ("num_samples", 1, ValueError, "num_samples must be an int >= 2; got 1"),
    ("num_samples", 4.0, TypeError, "num_samples must be an int >= 2; got float"),
    ("num_noise_levels", 0, ValueError, "num_noise_levels must be an int >= 1; got 0"),
    ("score", "crps", ValueError, "score must be one of 'energy', 'kernel'"),
    ("score", None, TypeError, "score must be one of 'energy', 'kernel'; got NoneType"),
    ("beta", 2.5, ValueError, r"beta must be a finite number in \(0, 2\]; got 2.5"),
    ("beta", "1", TypeError, "beta must be a real number; got str"),
    ("spread_weight", 1.5, ValueError, r"spread_weight must be a finite number in \[0, 1\]; got 1.5"),
    ("spread_weight", math.nan, ValueError, r"spread_weight must be a finite number in \[0, 1\]"),
    ("estimator", "pwm", ValueError, "estimator must be one of 'fair', 'nrg', 'pairs'"),
    ("estimator", 3, TypeError, "estimator must be a string; got int"),
    ("eta", -0.1, ValueError, r"eta must be a finite number in \[0, 1\]; got -0.1"),
    ("parameterization", "eps", ValueError, "parameterization must be one of 'x0', 'v'"),
    ("parameterization", 1, TypeError, "parameterization must be 'x0' or 'v'; got int"),
    ("freq_dim", 1, ValueError, "freq_dim must be an int >= 2; got 1"),
    ("score_kwargs", [1], TypeError, "score_kwargs must be a dict or None; got list"),
    ("score_kwargs", {"bandwidth": 1.0}, ValueError, "score_kwargs is not used with score='energy'"),
]


@pytest.mark.parametrize("keyword, value, exc, message", BAD)
def test_constructor_errors(keyword, value, exc, message):
    with pytest.raises(exc, match=message):
        DistributionalDiffusionHead(D, C, **{keyword: value})


def test_combination_errors():
    with pytest.raises(ValueError, match="spread_weight != 1 is only defined for score='energy'"):
        DistributionalDiffusionHead(D, C, score="kernel", spread_weight=0.5)
    with pytest.raises(ValueError, match=r"estimator \(for score='kernel'\) must be one of"):
        DistributionalDiffusionHead(D, C, score="kernel", estimator="pairs")
    with pytest.raises(ValueError, match="num_samples must be even; got num_samples=3"):
        DistributionalDiffusionHead(D, C, estimator="pairs", num_samples=3)


def test_call_errors():
    head = DistributionalDiffusionHead(D, C, width=16, depth=1, num_samples=2, num_noise_levels=2)
    z, y = torch.randn(3, C), torch.randn(3, D)
    with pytest.raises(ValueError, match=r"num_steps must be an int >= 1; got 0"):
        head.sample(z, num_steps=0)
    with pytest.raises(TypeError, match="num_steps must be an int >= 1; got float"):
        head.sample(z, num_steps=2.0)
    with pytest.raises(ValueError, match=r"num_steps must be in \[1, num_train_timesteps=1000\]; got 1001"):
        head.sample(z, num_steps=1001)
    with pytest.raises(ValueError, match=r"eta must be a finite number in \[0, 1\]; got 2.0"):
        head.sample(z, eta=2.0)
    with pytest.raises(TypeError, match="t must be an integer tensor of timesteps; got dtype torch.float32"):
        head.loss(z, y, t=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"t must have shape \(num_noise_levels, \*positions\) = \(2, 3\)"):
        head.loss(z, y, t=torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"t must hold timesteps in \[0, num_train_timesteps=1000\); got"):
        head.loss(z, y, t=torch.full((2, 3), 1000))
    with pytest.raises(ValueError, match=r"eps must have shape \(num_noise_levels, \*positions, token_dim\)"):
        head.loss(z, y, eps=torch.randn(1, 3, D))
    with pytest.raises(ValueError, match=r"noise must have shape \(num_samples, num_noise_levels"):
        head.loss(z, y, noise=torch.randn(2, 3, head.noise_dim))
    with pytest.raises(TypeError, match="noise must have a floating-point dtype"):
        head.loss(z, y, noise=torch.zeros(2, 2, 3, head.noise_dim, dtype=torch.long))
    with pytest.raises(ValueError, match=r"z must have shape \(\*positions, cond_dim\) with cond_dim=12"):
        head.sample(torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"target must have shape \(\*positions, token_dim\)"):
        head.loss(z, torch.randn(3, D + 1))


def test_is_a_predictive_head_and_repr():
    head = DistributionalDiffusionHead(D, C, width=16, depth=1)
    assert isinstance(head, PredictiveHead)
    assert "spread_weight=1.0" in repr(head) and "parameterization='x0'" in repr(head)


def test_torch_compile_fullgraph_loss_matches_eager():
    torch.manual_seed(0)
    head = _perturbed(DistributionalDiffusionHead(D, C, width=16, depth=1))
    z, y = torch.randn(4, 5, C), torch.randn(4, 5, D)
    mask = torch.rand(4, 5) > 0.3
    compiled = torch.compile(head.loss, fullgraph=True, backend="aot_eager")
    torch.manual_seed(7)
    eager = head.loss(z, y, mask)
    torch.manual_seed(7)
    got = compiled(z, y, mask)
    torch.testing.assert_close(got, eager)
    got.backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)
