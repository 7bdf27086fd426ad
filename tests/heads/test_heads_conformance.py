"""Every head, built with its defaults, against the protocol written in ``PredictiveHead``'s docstring:
sample-first ``num_samples`` draws, per-position tensor temperatures, ``reduction`` in ``loss``,
``distribution`` where a density exists, zero positions, masked NaN padding and constructor validation."""

from __future__ import annotations

import math

import pytest
import torch

from scoringrules_torch.heads import (
    DiffusionHead,
    ExplicitHead,
    GaussianHead,
    GaussianMixtureHead,
    ImplicitGeneratorHead,
    PredictiveHead,
)
from scoringrules_torch.heads.base import HeadBase

D, C = 2, 12  # token_dim, cond_dim

MAKERS = {
    "implicit": lambda: ImplicitGeneratorHead(D, C),
    "gaussian_log": lambda: GaussianHead(D, C),
    "gaussian_crps": lambda: GaussianHead(D, C, score="crps"),
    "gaussian_energy": lambda: GaussianHead(D, C, score="energy"),
    "mixture": lambda: GaussianMixtureHead(D, C),
    "diffusion": lambda: DiffusionHead(D, C, num_sampling_steps=10),
}
EXPLICIT = {"gaussian_log", "gaussian_crps", "gaussian_energy", "mixture"}


@pytest.fixture(params=sorted(MAKERS))
def named_head(request):
    """A head with its default sizes and every parameter moved off its (partly zero) initialisation."""
    torch.manual_seed(0)
    head = MAKERS[request.param]()
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return request.param, head


def _data(*positions, dtype=torch.float32, seed=1):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(*positions, C, generator=gen).to(dtype)
    y = torch.randn(*positions, D, generator=gen).to(dtype)
    return z, y


def _seeded(fn, seed=123):
    torch.manual_seed(seed)
    return fn()


# -- sample ------------------------------------------------------------------------------------------------
def test_protocol_membership(named_head):
    name, head = named_head
    assert isinstance(head, PredictiveHead)
    assert isinstance(head, ExplicitHead) == (name in EXPLICIT)


def test_sample_shapes_and_dtype(named_head):
    _, head = named_head
    for dtype in (torch.float32, torch.float64):
        head = head.to(dtype)
        z, _ = _data(3, 4, dtype=dtype)
        one = head.sample(z)
        assert one.shape == (3, 4, D) and one.dtype == dtype
        many = head.sample(z, num_samples=5)
        assert many.shape == (5, 3, 4, D) and many.dtype == dtype
        assert head.sample(z, num_samples=1).shape == (1, 3, 4, D)
        assert head.sample(z[0, 0]).shape == (D,)  # a single position without position dimensions
        assert torch.isfinite(many).all()


def test_num_samples_draws_are_independent_draws_of_the_same_law(named_head):
    """``sample(z, num_samples=m)[:, i]`` has the law of ``m`` separate calls at position ``i``."""
    _, head = named_head
    z, _ = _data(2)
    m = 3000
    together = _seeded(lambda: head.sample(z, num_samples=m))  # (m, 2, D)
    apart = _seeded(lambda: head.sample(z.unsqueeze(0).expand(m, 2, C)), seed=7)  # (m, 2, D)
    assert together.std(0).min() > 0  # the m draws differ
    scale = apart.std(0)
    torch.testing.assert_close(
        together.mean(0), apart.mean(0), atol=(0.1 * scale).max().item(), rtol=0
    )
    torch.testing.assert_close(together.std(0), scale, rtol=0.1, atol=1e-6)
    # the positions keep their own laws
    assert not torch.allclose(together[:, 0].mean(0), together[:, 1].mean(0), atol=0.05)


def test_tensor_temperature_equals_per_position_scalars(named_head):
    """A tensor temperature broadcastable to the positions acts position by position: with the same random
    stream, each position's draw equals the draw made with its own temperature as a number."""
    _, head = named_head
    z, _ = _data(3, 4)
    temps = torch.tensor([[0.0], [0.5], [1.5]])  # (3, 1): one temperature per row of positions
    got = _seeded(lambda: head.sample(z, temperature=temps, num_samples=2))
    for row, t in enumerate(temps.flatten().tolist()):
        want = _seeded(lambda t=t: head.sample(z, temperature=t, num_samples=2))
        torch.testing.assert_close(got[:, row], want[:, row], rtol=1e-5, atol=1e-5)
    scalar = _seeded(lambda: head.sample(z, temperature=0.5))
    torch.testing.assert_close(
        _seeded(lambda: head.sample(z, temperature=torch.tensor(0.5))), scalar, rtol=1e-5, atol=1e-6
    )


def test_temperature_errors(named_head):
    _, head = named_head
    z, _ = _data(3, 4)
    for bad in (math.inf, -math.inf, math.nan, -0.5):
        with pytest.raises(ValueError, match=r"temperature must be a finite number >= 0; got"):
            head.sample(z, temperature=bad)
    for bad in (torch.tensor([1.0, math.inf, 1.0]), torch.tensor([-1.0, 1.0, 1.0])):
        with pytest.raises(ValueError, match="temperature must be finite and >= 0 everywhere"):
            head.sample(z, temperature=bad[:, None])
    with pytest.raises(ValueError, match=r"broadcastable to the positions \(3, 4\).*shape \(3,\)"):
        head.sample(z, temperature=torch.ones(3))
    with pytest.raises(TypeError, match="temperature must be a number or a tensor; got str"):
        head.sample(z, temperature="0.7")
    with pytest.raises(TypeError, match="temperature must be a number or a tensor; got bool"):
        head.sample(z, temperature=True)
    with pytest.raises(TypeError, match="num_samples must be None or an int >= 1; got float"):
        head.sample(z, num_samples=2.0)
    with pytest.raises(ValueError, match="num_samples must be None or an int >= 1; got 0"):
        head.sample(z, num_samples=0)


# -- loss --------------------------------------------------------------------------------------------------
def test_reductions_agree(named_head):
    _, head = named_head
    z, y = _data(3, 4)
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 0, 1]], dtype=torch.float32)
    none = _seeded(lambda: head.loss(z, y, mask, reduction="none"))
    assert none.shape == (3, 4) and none.dtype == torch.float32
    assert torch.all(none[mask == 0] == 0) and torch.all(none[mask == 1] != 0)
    mean = _seeded(lambda: head.loss(z, y, mask))
    total = _seeded(lambda: head.loss(z, y, mask, reduction="sum"))
    torch.testing.assert_close(total, none.sum())
    torch.testing.assert_close(mean, none.sum() / mask.sum())
    unmasked = _seeded(lambda: head.loss(z, y, reduction="none"))
    torch.testing.assert_close(unmasked.mean(), _seeded(lambda: head.loss(z, y)))
    # weights other than 0/1 multiply each position's loss
    weights = mask * torch.arange(1.0, 13.0).reshape(3, 4)
    torch.testing.assert_close(
        _seeded(lambda: head.loss(z, y, weights, reduction="none")),
        none * weights / mask.clamp_min(1),
    )
    with pytest.raises(
        ValueError, match="reduction must be one of 'mean', 'sum', 'none'; got 'max'"
    ):
        head.loss(z, y, reduction="max")


@pytest.mark.parametrize("name", ["gaussian_log", "gaussian_crps", "mixture"])
def test_per_position_loss_is_the_loss_of_that_position_alone(name):
    """``reduction="none"`` holds each position's own score: for the deterministic losses the value at a
    position equals the loss computed on that position alone (the stochastic ones are covered by
    ``test_reductions_agree``)."""
    torch.manual_seed(0)
    head = MAKERS[name]()
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.3 * torch.randn_like(p))
    z, y = _data(5)
    none = head.loss(z, y, reduction="none")
    for i in range(5):
        torch.testing.assert_close(none[i], head.loss(z[i : i + 1], y[i : i + 1]))


def test_masked_positions_with_nan_padding_are_ignored(named_head):
    """NaN/Inf in z and target where the mask is 0 (padding) change neither the loss nor the gradients."""
    _, head = named_head
    z, y = _data(3, 4)
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 0, 1]], dtype=torch.bool)
    z_pad = torch.where(mask[..., None], z, torch.nan).requires_grad_(True)
    y_pad = torch.where(mask[..., None], y, torch.inf)
    head.zero_grad()
    bad = _seeded(lambda: head.loss(z_pad, y_pad, mask))
    bad.backward()
    grads_bad = [p.grad.clone() for p in head.parameters() if p.grad is not None]
    head.zero_grad()
    good = _seeded(lambda: head.loss(z, y, mask))
    good.backward()
    grads_good = [p.grad.clone() for p in head.parameters() if p.grad is not None]
    assert torch.isfinite(bad)
    torch.testing.assert_close(bad, good)
    for a, b in zip(grads_bad, grads_good, strict=True):
        torch.testing.assert_close(a, b)
    assert torch.isfinite(z_pad.grad).all() and torch.all(z_pad.grad[~mask] == 0)
    none = _seeded(lambda: head.loss(z_pad, y_pad, mask, reduction="none"))
    assert torch.isfinite(none).all()


def test_masked_mean_ignores_nan_at_masked_out_positions():
    """The reduction itself (not only the input sanitising) ignores NaN/Inf values where the weight is 0."""
    values = torch.tensor([1.0, math.nan, 3.0, math.inf, 5.0], requires_grad=True)
    mask = torch.tensor([1.0, 0.0, 2.0, 0.0, 1.0])
    mean = HeadBase._masked_mean(values, mask)
    assert mean.item() == pytest.approx((1.0 + 6.0 + 5.0) / 4.0)
    mean.backward()
    assert values.grad.tolist() == [0.25, 0.0, 0.5, 0.0, 0.25]
    assert HeadBase._weighted(values.detach(), mask).tolist() == [1.0, 0.0, 6.0, 0.0, 5.0]


def test_zero_positions_raise(named_head):
    _, head = named_head
    z, y = torch.randn(0, C), torch.randn(0, D)
    with pytest.raises(ValueError, match=r"z has zero positions \(shape \(0, 12\)\)"):
        head.loss(z, y)
    with pytest.raises(ValueError, match="z has zero positions"):
        head.sample(z)
    with pytest.raises(ValueError, match="z has zero positions"):
        head.sample(torch.randn(3, 0, C), num_samples=2)


def test_distribution_where_a_density_exists(named_head):
    name, head = named_head
    z, y = _data(3, 4)
    if name not in EXPLICIT:
        assert not hasattr(head, "distribution")
        return
    dist = head.distribution(z)
    assert dist.batch_shape == (3, 4) and dist.event_shape == (D,)
    # the law sample() draws from: same first two moments
    draws = head.sample(z, num_samples=4000)
    torch.testing.assert_close(draws.mean(0), dist.mean, atol=0.15, rtol=0)
    torch.testing.assert_close(draws.std(0), dist.stddev, rtol=0.1, atol=0)


# -- construction ------------------------------------------------------------------------------------------
BAD_ARGUMENTS = [
    # (head, keyword, value, exception, message)
    (ImplicitGeneratorHead, "width", 32.0, TypeError, "width must be an int >= 1; got float"),
    (ImplicitGeneratorHead, "width", 0, ValueError, "width must be an int >= 1; got 0"),
    (ImplicitGeneratorHead, "depth", -1, ValueError, "depth must be an int >= 0; got -1"),
    (
        ImplicitGeneratorHead,
        "noise_dim",
        True,
        TypeError,
        "noise_dim must be an int >= 1; got bool",
    ),
    (ImplicitGeneratorHead, "noise", "laplace", ValueError, "noise must be one of"),
    (ImplicitGeneratorHead, "num_samples", 2.0, TypeError, "num_samples must be an int >= 2"),
    (ImplicitGeneratorHead, "num_samples", 1, ValueError, "num_samples must be an int >= 2"),
    (ImplicitGeneratorHead, "score", 3, TypeError, "score must be one of"),
    (ImplicitGeneratorHead, "score", "bogus", ValueError, "score must be one of"),
    (ImplicitGeneratorHead, "beta", "1", TypeError, "beta must be a real number; got str"),
    (
        ImplicitGeneratorHead,
        "beta",
        math.nan,
        ValueError,
        r"beta must be a finite number in \(0, 2\]",
    ),
    (ImplicitGeneratorHead, "estimator", None, TypeError, "estimator must be a string"),
    (ImplicitGeneratorHead, "train_temperature", -0.1, ValueError, "train_temperature must be"),
    (ImplicitGeneratorHead, "train_temperature", math.inf, ValueError, "train_temperature must be"),
    (ImplicitGeneratorHead, "score_kwargs", [1], TypeError, "score_kwargs must be a dict or None"),
    (ImplicitGeneratorHead, "log_terms", 1, TypeError, "log_terms must be a bool; got int"),
    (GaussianHead, "std", "fixed", ValueError, "std must be one of"),
    (
        GaussianHead,
        "std",
        None,
        TypeError,
        "std must be 'learned' or a positive float; got NoneType",
    ),
    (GaussianHead, "std", math.inf, ValueError, r"std must be a finite number in \(0, inf\)"),
    (GaussianHead, "score", "kernel", ValueError, "score must be one of"),
    (GaussianHead, "num_samples", 0, ValueError, "num_samples must be an int >= 1; got 0"),
    (GaussianHead, "beta", 5, ValueError, r"beta must be a finite number in \(0, 2\]; got 5.0"),
    (GaussianHead, "estimator", "pwm", ValueError, "estimator must be one of"),
    (GaussianHead, "hidden", 8.0, TypeError, "hidden must be an int >= 1; got float"),
    (GaussianHead, "depth", -1, ValueError, "depth must be an int >= 0; got -1"),
    (GaussianMixtureHead, "num_components", 2.5, TypeError, "num_components must be an int"),
    (GaussianMixtureHead, "num_components", 0, ValueError, "num_components must be an int >= 1"),
    (GaussianMixtureHead, "hidden", 0, ValueError, "hidden must be an int >= 1; got 0"),
    (GaussianMixtureHead, "depth", "2", TypeError, "depth must be an int >= 0; got str"),
    (DiffusionHead, "width", 0, ValueError, "width must be an int >= 1; got 0"),
    (DiffusionHead, "depth", 1.0, TypeError, "depth must be an int >= 0; got float"),
    (
        DiffusionHead,
        "num_train_timesteps",
        1,
        ValueError,
        "num_train_timesteps must be an int >= 2",
    ),
    (DiffusionHead, "num_sampling_steps", 0, ValueError, "num_sampling_steps must be an int >= 1"),
    (DiffusionHead, "num_sampling_steps", 5000, ValueError, r"num_steps must be in \[1, num_train"),
    (DiffusionHead, "num_samples", 0, ValueError, "num_samples must be an int >= 1; got 0"),
    (DiffusionHead, "freq_dim", 1, ValueError, "freq_dim must be an int >= 2; got 1"),
    (DiffusionHead, "clip_denoised", "always", ValueError, "clip_denoised must be one of 'auto'"),
    (
        DiffusionHead,
        "clip_denoised",
        -1.0,
        ValueError,
        r"clip_denoised must be a finite number in \(0",
    ),
    (
        DiffusionHead,
        "clip_denoised",
        [1.0],
        TypeError,
        "clip_denoised must be 'auto', None or a posi",
    ),
    (DiffusionHead, "clip_margin", -0.1, ValueError, r"clip_margin must be a finite number in \[0"),
]


@pytest.mark.parametrize(
    "cls, key, value, exc, match",
    BAD_ARGUMENTS,
    ids=[f"{c.__name__}-{k}-{v!r}" for c, k, v, _, _ in BAD_ARGUMENTS],
)
def test_constructor_arguments_are_validated(cls, key, value, exc, match):
    with pytest.raises(exc, match=match):
        cls(D, C, **{key: value})


@pytest.mark.parametrize(
    "cls", [ImplicitGeneratorHead, GaussianHead, GaussianMixtureHead, DiffusionHead]
)
def test_token_and_cond_dim_are_validated(cls):
    with pytest.raises(TypeError, match="token_dim must be an int >= 1; got float"):
        cls(2.0, C)
    with pytest.raises(ValueError, match="cond_dim must be an int >= 1; got 0"):
        cls(D, 0)


def test_default_sizes_follow_the_target_and_condition():
    # max(16 d, D / 2) rounded up to a power of two, clamped to [64, 1024]; depth 3
    for (d, c), width in {(1, 48): 64, (2, 300): 256, (16, 768): 512, (64, 4096): 1024}.items():
        for cls in (ImplicitGeneratorHead, DiffusionHead):
            head = cls(d, c)
            assert (head.width, head.depth) == (width, 3), (cls.__name__, d, c)
    assert ImplicitGeneratorHead(1, 48).noise_dim == 8
    assert ImplicitGeneratorHead(16, 768).noise_dim == 64
    small = sum(p.numel() for p in ImplicitGeneratorHead(1, 48).parameters())
    assert small < 100_000  # the old EAR-B default had 33.7M parameters for this target


def test_presets_are_the_papers_sizes():
    for size, (w, depth) in {"B": (1024, 6), "L": (1280, 8), "H": (1536, 12)}.items():
        ear = ImplicitGeneratorHead.ear_preset(16, 32, size)
        assert (ear.width, ear.depth, ear.noise_dim, len(ear.blocks)) == (w, depth, 64, depth)
        mar = DiffusionHead.mar_preset(16, 32, size, clip_denoised=None)
        assert (mar.width, mar.depth, len(mar.net.blocks)) == (w, depth, depth)
        assert mar.clip_denoised is None
    with pytest.raises(ValueError, match="size must be one of 'B', 'L', 'H'; got 'XL'"):
        ImplicitGeneratorHead.ear_preset(16, 32, "XL")
    with pytest.raises(ValueError, match="ear_preset sets width"):
        ImplicitGeneratorHead.ear_preset(16, 32, width=8)
