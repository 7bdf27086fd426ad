"""Autoencoder, continuous LM and token baseline: shapes, finite losses, one training step, FLOP count."""

import pytest
import torch
from calm_support import one_thread_fixture  # noqa: F401 (fixtures)

from reference.calm.brierlm import calm_eval_draws, token_eval_draws
from reference.calm.model import ChunkAutoencoder, ContinuousLM, TokenLM
from reference.calm.run import step_flops

V, K, LAT, W = 50, 4, 6, 16


def _models():
    torch.manual_seed(0)
    ae = ChunkAutoencoder(V, K, LAT, embed=8, hidden=16)
    calm = ContinuousLM(V, K, LAT, W, 1, 2, 32, head_width=16, head_depth=1, num_samples=4)
    base = TokenLM(V, W, 1, 2, 32)
    return ae, calm, base


def _step(model, loss_fn, steps=1):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    changed = sum(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    return loss, changed


def test_autoencoder_shapes_loss_and_step():
    ae, _, _ = _models()
    chunks = torch.randint(0, V, (7, 3, K))
    mu, sigma = ae.posterior(chunks)
    assert mu.shape == sigma.shape == (7, 3, LAT) and (sigma > 0).all()
    assert ae.logits(mu).shape == (7, 3, K, V) and ae.decode(mu).shape == (7, 3, K)
    loss, changed = _step(ae, lambda: ae.loss(chunks)[0])
    assert torch.isfinite(loss) and changed >= 5
    with pytest.raises(ValueError, match="K=4"):
        ae.posterior(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="LongTensor"):
        ae.posterior(torch.zeros(2, K))


def test_autoencoder_learns_to_reconstruct():
    torch.manual_seed(0)
    ae = ChunkAutoencoder(12, K, 8, embed=8, hidden=32, token_dropout=0.0, latent_dropout=0.0)
    chunks = torch.randint(0, 12, (64, K))
    opt = torch.optim.Adam(ae.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        ae.loss(chunks)[0].backward()
        opt.step()
    ae.eval()
    acc = (ae.decode(ae.posterior(chunks)[0]) == chunks).float().mean()
    assert acc > 0.9


def test_one_training_step_of_each_language_model():
    ae, calm, base = _models()
    ae.eval()
    tokens = torch.randint(0, V, (3, 32))
    # the head's output layer starts at zero (EAR/CALM): step 1 moves only it, step 2 reaches the backbone
    loss, changed = _step(calm, lambda: calm.loss(tokens, ae, target_samples=5), steps=2)
    assert torch.isfinite(loss) and changed > 10
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in calm.backbone.parameters())
    assert calm.head.last_terms is not None
    loss, changed = _step(base, lambda: base.loss(torch.randint(0, V, (3, 33))))
    assert torch.isfinite(loss) and changed > 5
    assert loss.item() == pytest.approx(torch.log(torch.tensor(float(V))).item(), rel=0.2)


def test_eval_draws_line_up():
    ae, calm, base = _models()
    blocks = torch.randint(0, V, (2, 16))
    for x1, x2, y in (calm_eval_draws(calm, ae, blocks), token_eval_draws(base, blocks, K)):
        assert x1.shape == x2.shape == y.shape == (2 * 3, K)
        # the truth at chunk boundary s is blocks[:, s:s+K] for s = K, 2K, 3K
        assert torch.equal(y, blocks[:, K:].reshape(-1, K))


def test_baseline_flops_match_the_matmul_count():
    _, _, base = _models()
    b, t = 3, 20
    tokens = torch.randint(0, V, (b, t + 1))
    flops = step_flops(lambda: base.loss(tokens).backward(), batch=b, length=t, width=W, depth=1)
    # every Linear weight and the tied output matrix: 2 FLOPs per weight per position forward, 4 backward
    weights = sum(m.weight.numel() for m in base.modules() if isinstance(m, torch.nn.Linear)) + V * W
    assert flops == 6 * b * t * weights + 12 * b * t * t * W * 1


def test_eval_draws_use_the_first_four_tokens_of_longer_chunks():
    torch.manual_seed(0)
    k = 8
    ae = ChunkAutoencoder(V, k, LAT, embed=8, hidden=16)
    calm = ContinuousLM(V, k, LAT, W, 1, 2, 32, head_width=16, head_depth=1, num_samples=4)
    base = TokenLM(V, W, 1, 2, 32)
    blocks = torch.randint(0, V, (2, 32))
    want = torch.stack([blocks[:, s:s + 4] for s in (8, 16, 24)], 1).reshape(-1, 4)
    for x1, x2, y in (calm_eval_draws(calm, ae, blocks), token_eval_draws(base, blocks, k)):
        assert x1.shape == x2.shape == y.shape == (2 * 3, 4)
        assert torch.equal(y, want)
