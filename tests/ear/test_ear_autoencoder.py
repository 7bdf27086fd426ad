"""The demo's learned tokenizer (stage 1): shapes, training, the cache, and the run's completion report."""

import json

import pytest
import torch

from reference.ear.autoencoder import (
    SmallKLAutoencoder,
    autoencoder_path,
    autoencoder_settings,
    ensure_autoencoder,
    load_autoencoder,
)
from reference.ear.configs import apply_overrides, preset

KL_TINY = [
    'data.tokenizer="kl"',
    "data.patch_size=1",
    "data.vae_embed_dim=4",
    "model.token_dim=4",
    "data.vae_ch=8",
    "data.vae_num_res_blocks=1",
    "data.ae_steps=30",
    "data.ae_batch_size=32",
]


def _config(tmp_path, *extra):
    return apply_overrides(
        preset("tiny"),
        [*KL_TINY, f"data.ae_cache_dir={json.dumps(str(tmp_path / 'cache'))}", *extra],
    )


def test_small_autoencoder_has_stride_four_and_a_gaussian_posterior():
    vae = SmallKLAutoencoder(4, ch=8, num_blocks=1)
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    moments = vae.encode_moments(x)
    assert moments.shape == (3, 8, 8, 8)
    post = vae.encode(x)
    assert torch.equal(post.mean, moments[:, :4])
    assert vae.decode(post.sample()).shape == x.shape


def test_demo_preset_is_latent_and_the_pixel_preset_is_kept():
    demo, pixel = preset("demo"), preset("demo_pixel")
    assert demo.data.tokenizer == "kl" and pixel.data.tokenizer == "patch"
    # 32x32 padded images -> 8x8 latents of vae_embed_dim channels -> (8/p)^2 tokens of p*p*C values
    grid = demo.data.image_size // 4 // demo.data.patch_size
    assert demo.model.num_tokens == grid**2
    assert demo.model.token_dim == demo.data.patch_size**2 * demo.data.vae_embed_dim
    assert pixel.model.token_dim == pixel.data.patch_size**2


def test_training_lowers_the_reconstruction_error_and_measures_the_scale(tmp_path):
    from reference.ear.data import load_digits, to_unit_range

    imgs, _ = load_digits()
    x = to_unit_range(imgs)
    config = _config(tmp_path, "data.ae_steps=200", "data.ae_lr=0.005")
    settings = autoencoder_settings(config.data)
    path, summary = ensure_autoencoder(config.data, x, log=lambda *_: None)
    assert path.is_file() and summary["cached"] is False
    vae, saved = load_autoencoder(path, settings)
    with torch.no_grad():
        means = vae.encode(x).mean
    # the scale makes the tokens unit-variance, as KL-16's 0.2325 does for ImageNet latents
    assert saved["scale"] == pytest.approx(1.0 / means.std().item(), rel=1e-4)
    # better than the best constant reconstruction (the mean image) of the same held-out images
    held = x[-1000:]
    constant = (held - x.mean(0)).square().mean().item()
    assert saved["recon_mse"] < 0.7 * constant


def test_the_cache_is_reused_and_checked(tmp_path):
    from reference.ear.data import load_digits, to_unit_range

    x = to_unit_range(load_digits()[0])
    config = _config(tmp_path)
    path, first = ensure_autoencoder(config.data, x, log=lambda *_: None)
    stamp = path.stat().st_mtime_ns
    _, again = ensure_autoencoder(
        config.data, None, log=lambda *_: None
    )  # no images needed: cached
    assert again["cached"] is True and path.stat().st_mtime_ns == stamp
    assert again["scale"] == first["scale"]
    # another setting -> another file; a file whose recorded settings differ is refused
    other = _config(tmp_path, "data.ae_kl_weight=0.01")
    assert autoencoder_path(other.data) != path
    with pytest.raises(ValueError, match="other settings"):
        load_autoencoder(path, autoencoder_settings(other.data))
    with pytest.raises(FileNotFoundError, match="first stage"):
        load_autoencoder(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="no cached tokenizer"):
        ensure_autoencoder(other.data, None, log=lambda *_: None)


def test_the_decoder_phase_keeps_the_latent_space_and_sharpens_the_decoding(tmp_path):
    from reference.ear.data import load_digits, to_unit_range

    x = to_unit_range(load_digits()[0])
    base = _config(tmp_path, "data.ae_steps=100", "data.ae_lr=0.005")
    refined = _config(
        tmp_path, "data.ae_steps=100", "data.ae_lr=0.005", "data.ae_decoder_steps=150"
    )
    # the setting is part of the cache key only when used: files cached before it keep their names
    assert "decoder_steps" not in autoencoder_settings(base.data)
    assert autoencoder_path(refined.data) != autoencoder_path(base.data)
    p0, s0 = ensure_autoencoder(base.data, x, log=lambda *_: None)
    lines = []
    p1, s1 = ensure_autoencoder(refined.data, x, log=lines.append)
    assert any("decoder step 150/150" in line for line in lines)
    vae0, _ = load_autoencoder(p0)
    vae1, _ = load_autoencoder(p1)
    # the first phase is the same computation: the encoder (hence the tokens and their scale) is unchanged
    for (name, a), b in zip(
        vae0.encoder.state_dict().items(), vae1.encoder.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert s1["scale"] == s0["scale"] and s1["posterior_std"] == s0["posterior_std"]
    # only the decoder moved, and it reconstructs the held-out images better
    assert any(
        not torch.equal(a, b)
        for a, b in zip(
            vae0.decoder.state_dict().values(), vae1.decoder.state_dict().values(), strict=True
        )
    )
    assert s1["recon_mse"] < 0.95 * s0["recon_mse"]


def test_kl_tokenizer_rejects_file_datasets_and_flips(tmp_path):
    from reference.ear.data import TrainData
    from reference.ear.distributed import Dist

    with pytest.raises(ValueError, match="flip"):
        TrainData(_config(tmp_path, "data.flip=true"), Dist())


def test_train_data_samples_the_cached_posteriors(tmp_path):
    from reference.ear.data import StepBatches, TrainData
    from reference.ear.distributed import Dist

    data = TrainData(_config(tmp_path), Dist())
    assert data.moments is not None and data.moments.shape == (1797, 8, 2, 2)
    batches = StepBatches(data.n, batch_size=64, world_size=1, rank=0, accumulation_steps=1, seed=0)
    _, micro = next(data.iterate(batches, 0, 1))
    tokens, labels = micro[0]
    assert tokens.shape == (64, 4, 4) and labels.shape == (64,)
    # two draws of the same batch differ by the scaled posterior noise: var(t1 - t2) = 2 scale^2 E[std^2]
    from reference.ear.tokenizer import DiagonalGaussian, patchify

    _, micro2 = next(data.iterate(batches, 0, 1))
    idx = batches.permutation(0)[:64]
    post = DiagonalGaussian(data.moments[idx])
    scale = data.tokenizer.scale
    assert torch.allclose(
        (tokens + micro2[0][0]) / 2, patchify(post.mean * scale, 1), atol=6 * scale * post.std.max()
    )
    expected = 2 * scale**2 * post.std.square().mean()
    assert (tokens - micro2[0][0]).var().item() == pytest.approx(expected.item(), rel=0.2)
    images = data.decode(tokens[:5])
    assert images.shape == (5, 1, 8, 8) and images.min() >= 0 and images.max() <= 1


def _main(argv):
    from reference.ear.train import main

    try:
        return main(argv)
    finally:
        torch.set_flush_denormal(
            False
        )  # main() turns it on for CPU runs; the suite runs without it


def test_a_time_capped_run_says_so_in_metrics_and_last_line(tmp_path, capsys):
    argv = [
        "--preset",
        "tiny",
        "--run-dir",
        str(tmp_path / "run"),
        "--no-progress",
        "--threads",
        "1",
    ]
    extra = ["train.max_train_minutes=1e-7", "eval.enabled=true", "eval.num_images=20",
             "eval.classifier_epochs=1"]  # fmt: skip
    for item in KL_TINY + extra + [f"data.ae_cache_dir={json.dumps(str(tmp_path / 'c'))}"]:
        argv += ["--set", item]
    _main(argv)
    lines = capsys.readouterr().out.strip().splitlines()
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["stopped_by_time_cap"] is True and m["planned_steps"] == 56
    assert m["train_steps"] < 56 and m["fraction_completed"] == round(m["train_steps"] / 56, 4)
    assert lines[-1].startswith("[train] training INCOMPLETE") and f"of {56}" in lines[-1]
    assert "tokenizer" in m and m["tokenizer"]["cached"] is False
    # the tokenizer's floor is reported next to the model's numbers
    assert "classifier_fd_tokenizer" in m


def test_a_complete_run_says_complete(tmp_path, capsys):
    _main(["--preset", "tiny", "--run-dir", str(tmp_path / "run"), "--no-progress", "--threads", "1",
          "--no-eval", "--max-steps", "3"])  # fmt: skip
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == "[train] training complete: 3 of 3 planned steps"
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["stopped_by_time_cap"] is False and m["fraction_completed"] == 1.0


def test_an_incomplete_run_never_reads_as_100_percent():
    from reference.ear.configs import preset
    from reference.ear.train import completion_line

    config = preset("demo")
    m = {
        "train_steps": 2801,
        "planned_steps": 2808,
        "stopped_by_time_cap": True,
        "fraction_completed": 0.9975,
    }
    assert "step 2801 of 2808 (99.7 % of the planned steps)" in completion_line(m, config)
    m = {
        "train_steps": 2808,
        "planned_steps": 2808,
        "stopped_by_time_cap": False,
        "fraction_completed": 1.0,
    }
    assert completion_line(m, config) == "[train] training complete: 2808 of 2808 planned steps"
