"""Behaviour every head shares (the head protocol of docs/architecture.md): the protocol, masking, shape errors, finite gradients
at initialisation, dtype/device following z, bf16 autocast and torch.compile."""

from __future__ import annotations

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

D_TOKEN, D_COND = 3, 6

MAKERS = {
    "implicit": lambda: ImplicitGeneratorHead(
        D_TOKEN, D_COND, width=16, depth=2, noise_dim=8, num_samples=4
    ),
    "implicit_fair": lambda: ImplicitGeneratorHead(
        D_TOKEN, D_COND, width=16, depth=1, noise_dim=8, num_samples=3, estimator="fair"
    ),
    "gaussian_log": lambda: GaussianHead(D_TOKEN, D_COND, hidden=16),
    "gaussian_crps": lambda: GaussianHead(D_TOKEN, D_COND, score="crps"),
    "gaussian_energy": lambda: GaussianHead(
        D_TOKEN, D_COND, score="energy", num_samples=4, std=0.5
    ),
    "mixture": lambda: GaussianMixtureHead(D_TOKEN, D_COND, num_components=3),
    "diffusion": lambda: DiffusionHead(D_TOKEN, D_COND, width=16, depth=2, num_sampling_steps=5),
}
EXPLICIT = {"gaussian_log", "gaussian_crps", "gaussian_energy", "mixture"}


@pytest.fixture(params=sorted(MAKERS))
def named_head(request):
    torch.manual_seed(0)
    return request.param, MAKERS[request.param]()


def _data(*positions, dtype=torch.float32):
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(*positions, D_COND, generator=gen).to(dtype)
    y = torch.randn(*positions, D_TOKEN, generator=gen).to(dtype)
    return z, y


def test_protocol(named_head):
    name, head = named_head
    assert isinstance(head, PredictiveHead)
    assert isinstance(head, ExplicitHead) == (name in EXPLICIT)
    assert head.token_dim == D_TOKEN and head.cond_dim == D_COND
    z, y = _data(2, 5)
    loss = head.loss(z, y)
    assert loss.shape == () and torch.isfinite(loss)
    s = head.sample(z)
    assert s.shape == (2, 5, D_TOKEN) and s.dtype == z.dtype and torch.isfinite(s).all()
    assert head.sample(z, temperature=0.0).shape == (2, 5, D_TOKEN)
    if name in EXPLICIT:
        dist = head.distribution(z)
        assert isinstance(dist, torch.distributions.Distribution)
        assert dist.event_shape == (D_TOKEN,) and dist.batch_shape == (2, 5)


def test_no_nan_gradients_at_initialisation(named_head):
    _, head = named_head
    z, y = _data(4, 3)
    z.requires_grad_(True)
    head.loss(z, y).backward()
    assert torch.isfinite(z.grad).all()
    for pname, p in head.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), pname
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_mask_ignores_masked_out_positions(named_head):
    _, head = named_head
    z, y = _data(3, 4)
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 0, 1]], dtype=torch.bool)
    y_other = torch.where(mask[..., None], y, y + 100.0)

    def seeded(fn):
        torch.manual_seed(123)
        return fn()

    a = seeded(lambda: head.loss(z, y, mask))
    b = seeded(lambda: head.loss(z, y_other, mask))
    c = seeded(lambda: head.loss(z, y, mask.float()))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    full = seeded(lambda: head.loss(z, y))
    torch.testing.assert_close(full, seeded(lambda: head.loss(z, y, torch.ones(3, 4))))


def test_mask_equals_loss_on_selected_positions_for_deterministic_heads():
    torch.manual_seed(0)
    for head in (GaussianHead(D_TOKEN, D_COND, hidden=8), GaussianMixtureHead(D_TOKEN, D_COND)):
        z, y = _data(10)
        mask = torch.tensor([1, 0, 0, 1, 1, 0, 1, 0, 0, 1], dtype=torch.bool)
        torch.testing.assert_close(head.loss(z, y, mask), head.loss(z[mask], y[mask]))


def test_empty_mask_gives_zero_loss_and_finite_gradients(named_head):
    _, head = named_head
    z, y = _data(2, 3)
    loss = head.loss(z, y, torch.zeros(2, 3, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    for p in head.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()


def test_shape_errors_are_clear(named_head):
    _, head = named_head
    z, y = _data(2, 5)
    with pytest.raises(
        ValueError,
        match=r"target must have shape \(\*positions, token_dim\) with token_dim=3.*got target shape \(2, 5, 4\)",
    ):
        head.loss(z, torch.randn(2, 5, 4))
    with pytest.raises(
        ValueError,
        match=r"z must have shape \(\*positions, cond_dim\) with cond_dim=6.*\(2, 5, 7\)",
    ):
        head.loss(torch.randn(2, 5, 7), y)
    with pytest.raises(ValueError, match="cond_dim=6"):
        head.sample(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match="share their position dimensions"):
        head.loss(z, y[:, :4])
    with pytest.raises(ValueError, match=r"mask must have shape \(\*positions\) = \(2, 5\)"):
        head.loss(z, y, torch.ones(2, 4))
    with pytest.raises(ValueError, match="floating-point"):
        head.loss(z, y.long())
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0; got -1.0"):
        head.sample(z, temperature=-1.0)


def test_float64_follows_z(named_head):
    _, head = named_head
    head = head.double()
    z, y = _data(4, dtype=torch.float64)
    assert head.loss(z, y).dtype == torch.float64
    assert head.sample(z).dtype == torch.float64


def test_bf16_autocast(named_head):
    name, head = named_head
    z, y = _data(3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = head.loss(z, y)
        s = head.sample(z)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert s.dtype == torch.float32 and torch.isfinite(s).all()
    loss.backward()
    for p in head.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()
    # a bf16 model: parameters and z in bf16, loss accumulated in float32
    head = MAKERS[name]().to(torch.bfloat16)
    zb, yb = z.bfloat16(), y.bfloat16()
    loss = head.loss(zb, yb)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert head.sample(zb).dtype == torch.bfloat16


def test_device_follows_z_on_meta():
    """Every tensor a head creates is placed on z's device (here the meta device, which runs no kernels)."""
    for name in ("implicit", "gaussian_log", "gaussian_crps", "mixture", "diffusion"):
        head = MAKERS[name]().to("meta")
        z, y = torch.empty(2, 3, D_COND, device="meta"), torch.empty(2, 3, D_TOKEN, device="meta")
        assert head.loss(z, y).device.type == "meta", name
        if name in ("implicit", "gaussian_log"):
            assert head.sample(z).device.type == "meta", name


def test_torch_compile_fullgraph_implicit_head():
    torch.manual_seed(0)
    head = MAKERS["implicit"]()
    z, y = _data(4, 5)
    mask = torch.rand(4, 5) > 0.3
    compiled = torch.compile(head.loss, fullgraph=True, backend="aot_eager")
    torch.manual_seed(7)
    eager = head.loss(z, y, mask)
    torch.manual_seed(7)
    got = compiled(z, y, mask)
    torch.testing.assert_close(got, eager)
    got.backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())


@pytest.mark.slow
def test_torch_compile_inductor_implicit_head():
    torch.manual_seed(0)
    head = MAKERS["implicit"]()
    z, y = _data(4, 5)
    noise = head.draw_noise((4, 4, 5), z)
    compiled = torch.compile(head.loss, fullgraph=True)
    torch.testing.assert_close(
        compiled(z, y, noise=noise), head.loss(z, y, noise=noise), rtol=1e-5, atol=1e-6
    )
