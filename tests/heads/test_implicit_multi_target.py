"""ImplicitGeneratorHead.loss with several target samples per position (target_dim): float64 oracles."""

import itertools

import pytest
import torch

from scoringrules_torch.heads import ImplicitGeneratorHead


def _head(estimator="fair", m=4, tau=1.0, beta=1.0, score="energy"):
    torch.manual_seed(0)
    head = ImplicitGeneratorHead(
        3, 5, width=16, depth=1, num_samples=m, estimator=estimator, train_temperature=tau,
        beta=beta, score=score,
    ).double()
    # non-zero output layers so that the samples differ
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.5)
    return head


def _oracle(x, ys, beta, estimator, tau):
    """float64 loop: (1/mn) sum_ij ||x_i - y_j||^b - tau * 1/2 * within(x)."""
    m, n = x.shape[0], ys.shape[0]
    acc = sum(torch.linalg.norm(x[i] - ys[j]) ** beta for i in range(m) for j in range(n)) / (m * n)
    if estimator == "fair":
        pairs = [(i, k) for i, k in itertools.product(range(m), range(m)) if i != k]
        within = sum(torch.linalg.norm(x[i] - x[k]) ** beta for i, k in pairs) / len(pairs)
    elif estimator == "nrg":
        within = sum(torch.linalg.norm(x[i] - x[k]) ** beta for i in range(m) for k in range(m)) / m**2
    else:  # pairs: i with i + m/2
        h = m // 2
        within = sum(torch.linalg.norm(x[i] - x[i + h]) ** beta for i in range(h)) / h
    return acc - tau * 0.5 * within


@pytest.mark.parametrize("estimator,tau,beta", [("fair", 1.0, 1.0), ("pairs", 0.9, 1.0), ("nrg", 1.0, 1.5)])
def test_multi_target_loss_matches_float64_loop(estimator, tau, beta):
    head = _head(estimator, tau=tau, beta=beta)
    z = torch.randn(2, 3, 5, dtype=torch.float64)
    ys = torch.randn(7, 2, 3, 3, dtype=torch.float64)
    noise = torch.rand(4, 2, 3, head.noise_dim, dtype=torch.float64) - 0.5
    got = head.loss(z, ys, target_dim=0, noise=noise, reduction="none")
    x = head(z, noise)  # (m, 2, 3, d)
    want = torch.stack([
        torch.stack([_oracle(x[:, a, b], ys[:, a, b], beta, estimator, tau) for b in range(3)])
        for a in range(2)
    ])
    assert got.shape == (2, 3)
    torch.testing.assert_close(got, want.detach(), rtol=1e-10, atol=1e-10)


def test_one_target_sample_equals_plain_loss_and_target_dim_moves_axis():
    head = _head("fair")
    z = torch.randn(6, 5, dtype=torch.float64)
    y = torch.randn(6, 3, dtype=torch.float64)
    noise = torch.rand(4, 6, head.noise_dim, dtype=torch.float64) - 0.5
    plain = head.loss(z, y, noise=noise, reduction="none")
    multi = head.loss(z, y[None], target_dim=0, noise=noise, reduction="none")
    torch.testing.assert_close(multi, plain, rtol=1e-12, atol=1e-12)
    ys = torch.randn(5, 6, 3, dtype=torch.float64)
    a = head.loss(z, ys, target_dim=0, noise=noise)
    b = head.loss(z, ys.movedim(0, 1), target_dim=1, noise=noise)
    torch.testing.assert_close(a, b)


def test_mask_and_gradients():
    head = _head("fair").float()
    z = torch.randn(4, 5, requires_grad=True)
    ys = torch.randn(3, 4, 3)
    ys[:, 3] = float("nan")  # padding
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0])
    noise = torch.rand(4, 4, head.noise_dim) - 0.5
    loss = head.loss(z, ys, mask, target_dim=0, noise=noise)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    want = head.loss(z[:3], ys[:, :3], target_dim=0, noise=noise[:, :3])
    torch.testing.assert_close(loss, want)


def test_bad_inputs():
    head = _head("fair")
    z = torch.randn(6, 5, dtype=torch.float64)
    with pytest.raises(TypeError, match="target_dim"):
        head.loss(z, torch.randn(2, 6, 3, dtype=torch.float64), target_dim=0.0)
    with pytest.raises(ValueError, match="out of range"):
        head.loss(z, torch.randn(2, 6, 3, dtype=torch.float64), target_dim=3)
    with pytest.raises(ValueError, match="target and z"):
        head.loss(z, torch.randn(2, 5, 3, dtype=torch.float64), target_dim=0)
    kernel = _head("fair", score="kernel")
    with pytest.raises(ValueError, match="score='energy'"):
        kernel.loss(z, torch.randn(2, 6, 3, dtype=torch.float64), target_dim=0)


def test_bf16_autocast_gives_a_float32_loss_close_to_float32():
    head = _head("fair").float()
    z = torch.randn(8, 5)
    ys = torch.randn(4, 8, 3)
    noise = torch.rand(4, 8, head.noise_dim) - 0.5
    want = head.loss(z, ys, target_dim=0, noise=noise)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = head.loss(z, ys, target_dim=0, noise=noise)
    assert got.dtype == torch.float32 and torch.isfinite(got)
    torch.testing.assert_close(got, want, rtol=0.05, atol=0.05)


def test_torch_compile_fullgraph_multi_target():
    head = _head("fair").float()
    z = torch.randn(6, 5)
    ys = torch.randn(4, 6, 3)
    mask = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    noise = torch.rand(4, 6, head.noise_dim) - 0.5

    def loss(z, ys, mask, noise):
        return head.loss(z, ys, mask, target_dim=0, noise=noise)

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    got = compiled(z, ys, mask, noise)
    torch.testing.assert_close(got, loss(z, ys, mask, noise))
    got.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in head.parameters())
