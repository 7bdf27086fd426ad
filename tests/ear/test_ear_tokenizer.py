"""Tokenizers: patch layout, the KL-16 VAE architecture and its checkpoint format."""

import numpy as np
import pytest
import torch

from reference.ear.tokenizer import (
    KL16_SCALE,
    KLTokenizer,
    PatchTokenizer,
    load_vae,
    patchify,
    unpatchify,
)


def test_patchify_layout_matches_a_loop():
    x = torch.randn(2, 3, 8, 12)
    p = 4
    tok = patchify(x, p)
    ref = np.zeros((2, 6, p * p * 3))
    xn = x.numpy()
    for b in range(2):
        for gi in range(2):
            for gj in range(3):
                k = 0
                for u in range(p):
                    for v in range(p):
                        for c in range(3):
                            ref[b, gi * 3 + gj, k] = xn[b, c, gi * p + u, gj * p + v]
                            k += 1
    assert np.allclose(tok.numpy(), ref)
    assert torch.equal(unpatchify(tok, p, 3, 8, 12), x)


def test_patch_tokenizer_round_trip_and_sizes():
    t = PatchTokenizer(28, 7)
    assert (t.num_tokens, t.token_dim) == (16, 49)
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(t.decode(t.encode(x)), x)
    with pytest.raises(ValueError, match="divisible"):
        PatchTokenizer(28, 5)


def test_vae_layout_and_key_names_follow_the_official_checkpoint(small_vae):
    vae = small_vae()
    keys = set(vae.state_dict())
    for k in (
        "encoder.conv_in.weight",
        "encoder.down.0.block.0.norm1.weight",
        "encoder.down.0.downsample.conv.weight",
        "encoder.down.4.attn.0.q.weight",
        "encoder.mid.attn_1.proj_out.weight",
        "encoder.mid.block_2.conv2.bias",
        "encoder.down.2.block.0.nin_shortcut.weight",
        "decoder.up.4.block.0.conv1.weight",
        "decoder.up.1.upsample.conv.weight",
        "decoder.up.0.block.1.norm2.bias",
        "decoder.mid.attn_1.k.bias",
        "quant_conv.weight",
        "post_quant_conv.weight",
    ):
        assert k in keys, k
    assert not any(
        k.startswith("decoder.up.") and ".attn." in k for k in keys
    )  # no attention in up levels
    assert not any(
        k.startswith("encoder.down.3.attn") for k in keys
    )  # attention only at the lowest level
    assert (
        "encoder.down.4.downsample.conv.weight" not in keys
        and "decoder.up.0.upsample.conv.weight" not in keys
    )
    # decoder levels have num_res_blocks + 1 blocks
    assert (
        "decoder.up.0.block.1.conv1.weight" in keys
        and "decoder.up.0.block.2.conv1.weight" not in keys
    )
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        m = vae.encode_moments(x)
        assert m.shape == (2, 8, 2, 2)  # stride 16, mean || logvar
        assert vae.decode(m[:, :4]).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("key", ["model", "state_dict"])
def test_load_vae_from_the_official_checkpoint_format(tmp_path, key, small_vae):
    src = small_vae()
    state = dict(src.state_dict())
    state["loss.discriminator.main.0.weight"] = torch.zeros(1)  # extra training keys are ignored
    path = tmp_path / "kl16.ckpt"
    torch.save({key: state, "epoch": 3}, path)
    dst = small_vae(1)
    with pytest.warns(UserWarning, match="unexpected"):
        loaded = load_vae(path, dst)
    for (n, a), (_, b) in zip(src.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), n
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(src.eval().encode_moments(x), loaded.encode_moments(x))
    assert not any(p.requires_grad for p in loaded.parameters())


def test_load_vae_errors_name_the_problem(tmp_path, small_vae):
    with pytest.raises(FileNotFoundError, match="kl16.ckpt"):
        load_vae(tmp_path / "missing.ckpt", small_vae())
    bad = tmp_path / "bad.ckpt"
    torch.save({"weights": {}}, bad)
    with pytest.raises(ValueError, match="'model' or 'state_dict'"):
        load_vae(bad, small_vae())


def test_kl_tokens_are_scaled_posterior_means_or_samples(small_vae):
    vae = small_vae().eval()
    tok = KLTokenizer(vae, patch_size=1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        mean = vae.encode_moments(x)[:, :4]
    t = tok.encode(x, sample=False)
    assert t.shape == (2, 4, 4)
    assert torch.allclose(t, patchify(mean, 1) * KL16_SCALE)
    moments = torch.cat(
        [torch.zeros(1, 4, 2, 2), torch.full((1, 4, 2, 2), -60.0)], 1
    )  # logvar clamped to -30
    s = tok.moments_to_tokens(moments, sample=True)
    assert s.abs().max() < 1e-5
    assert tok.decode(t, grid=2).shape == (2, 3, 32, 32)
