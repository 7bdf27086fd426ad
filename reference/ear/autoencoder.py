"""The demo's learned tokenizer: a small KL autoencoder trained as the first stage and cached.

The paper's EAR models the latent tokens of a KL autoencoder (KL-16: a convolutional encoder, a diagonal
Gaussian posterior, a KL term with a small weight, a convolutional decoder). :class:`SmallKLAutoencoder` is the
same family at the size of Fashion-MNIST: ``(B, C, 32, 32)`` images (28x28 padded) map to a posterior over
``(B, embed_dim, 8, 8)`` latents (stride 4) and back. Its training objective per image is

.. math::

    \\mathcal L = \\lVert \\hat x - x \\rVert_1 / n + \\lVert \\hat x - x \\rVert_2^2 / n
        + w_{KL}\\, \\mathrm{KL}\\big(q(z \\mid x) \\,\\Vert\\, \\mathcal N(0, I)\\big) / n,
    \\qquad \\hat x = \\mathrm{dec}(z),\\ z \\sim q(z \\mid x),

with ``n`` the number of pixels (LDM's KL autoencoders add a perceptual and an adversarial term, which need
pretrained networks that this offline demo does not have). After training, the latent scale is measured the
way MAR / EAR's 0.2325 was: one over the standard deviation of the posterior means over the training images,
so that the tokens the AR model sees have unit variance.

With ``data.ae_decoder_steps > 0`` a second phase then trains the decoder alone on the same loss, the encoder
frozen (as Stable Diffusion's ``ft-MSE`` decoders were refined without moving their latent space). The encoder,
the latent scale and so the tokens the AR model learns are those of the first phase; only the decoding gets
sharper. On the demo, 1,000 such steps (under a minute on 2 cores) lowered the tokenizer's floor FD from 16.3 to
12.9 and the demo's sample FD by about 3 (``reference/ear/experiments/results/latent/tuning.md``): the decoder,
not the latent space, was undertrained.

The trained autoencoder is cached in ``data.ae_cache_dir`` under a name that hashes every setting it depends on
(architecture, training, dataset, seed); a later run with the same settings loads it (``weights_only=True``),
so only the first demo pays for it. The file records its settings, and a file whose settings differ is an error.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

import torch
from torch import nn

from reference.ear.tokenizer import DiagonalGaussian, ResnetBlock, _norm

__all__ = [
    "SmallKLAutoencoder",
    "autoencoder_settings",
    "autoencoder_path",
    "train_autoencoder",
    "load_autoencoder",
    "ensure_autoencoder",
]

_FORMAT = "ear-small-kl-autoencoder-v1"


class SmallKLAutoencoder(nn.Module):
    """Convolutional KL autoencoder with stride 4 (two stride-2 stages), for small grey images.

    Encoder: conv 4x4/2 (``ch``), SiLU -> conv 4x4/2 -> ``num_blocks`` ResNet blocks (``2 ch``) ->
    GroupNorm, SiLU, conv 3x3 to the posterior moments (mean and log-variance, ``embed_dim`` each). The decoder
    mirrors it with transposed convolutions. Same interface as :class:`~reference.ear.tokenizer.AutoencoderKL`
    (``encode_moments``, ``encode``, ``decode``, ``embed_dim``), so :class:`~reference.ear.tokenizer.KLTokenizer`
    uses either.

    Args:
        embed_dim: latent channels.
        ch: channels at half resolution (``2 ch`` at quarter resolution).
        num_blocks: ResNet blocks at quarter resolution, in the encoder and in the decoder.
        in_channels: image channels.
        groups: GroupNorm groups.

    Shape:
        - encode_moments: ``(B, in_channels, H, W)`` -> ``(B, 2 embed_dim, H/4, W/4)``
        - decode: ``(B, embed_dim, h, w)`` -> ``(B, in_channels, 4h, 4w)``
    """

    def __init__(
        self,
        embed_dim: int = 4,
        *,
        ch: int = 32,
        num_blocks: int = 2,
        in_channels: int = 1,
        groups: int = 8,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        c2 = 2 * ch
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, ch, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(ch, c2, 4, stride=2, padding=1),
            *[ResnetBlock(c2, c2, groups) for _ in range(num_blocks)],
            _norm(c2, groups),
            nn.SiLU(),
            nn.Conv2d(c2, 2 * embed_dim, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(embed_dim, c2, 3, padding=1),
            *[ResnetBlock(c2, c2, groups) for _ in range(num_blocks)],
            nn.ConvTranspose2d(c2, ch, 4, stride=2, padding=1),
            _norm(ch, groups),
            nn.SiLU(),
            nn.ConvTranspose2d(ch, in_channels, 4, stride=2, padding=1),
        )

    def encode_moments(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior parameters ``(B, 2 embed_dim, h, w)`` = mean || log-variance."""
        return self.encoder(x)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        return DiagonalGaussian(self.encode_moments(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).sample())


def autoencoder_settings(dc) -> dict:
    """Every setting the trained autoencoder depends on (its cache key), from a ``DataConfig``.

    The autoencoder's seed is fixed (0), not the run's: runs that differ only in ``train.seed`` (the
    ablations' seeds) share one tokenizer, as every EAR model shares the one KL-16.
    """
    settings = {
        "format": _FORMAT,
        "dataset": dc.dataset,
        "subset": dc.subset,
        "image_size": dc.image_size,
        "embed_dim": dc.vae_embed_dim,
        "ch": dc.vae_ch,
        "num_blocks": dc.vae_num_res_blocks,
        "steps": dc.ae_steps,
        "batch_size": dc.ae_batch_size,
        "lr": dc.ae_lr,
        "kl_weight": dc.ae_kl_weight,
        "seed": 0,
    }
    # only when used, so that the files cached before this setting keep their names
    if dc.ae_decoder_steps:
        settings["decoder_steps"] = dc.ae_decoder_steps
    return settings


def autoencoder_path(dc) -> Path:
    """``<data.ae_cache_dir>/<dataset>-kl<embed_dim>-<hash of the settings>.pt`` for a ``DataConfig``."""
    s = autoencoder_settings(dc)
    key = hashlib.sha256(json.dumps(s, sort_keys=True).encode()).hexdigest()[:12]
    return Path(dc.ae_cache_dir) / f"{s['dataset']}-kl{s['embed_dim']}-{key}.pt"


def _kl_per_pixel(post: DiagonalGaussian, pixels: int) -> torch.Tensor:
    """Mean over the batch of ``KL(q(z|x) || N(0, I)) / pixels``."""
    kl = 0.5 * (post.mean.square() + post.std.square() - 1.0 - post.logvar)
    return kl.flatten(1).sum(1).mean() / pixels


def train_autoencoder(images: torch.Tensor, settings: dict, *, log=print) -> tuple[nn.Module, dict]:
    """Train a :class:`SmallKLAutoencoder` on ``images`` (``(N, C, H, W)`` in ``[-1, 1]``, on their device).

    AdamW, ``settings["steps"]`` steps of ``settings["batch_size"]`` random images, linear warm-up over the
    first 5 % then cosine decay of the learning rate; then, when ``settings`` has ``decoder_steps``, as many
    steps of the same schedule on the decoder alone (the encoder frozen; the loss without its KL term, which
    only the encoder moves). Returns the autoencoder (eval mode, frozen) and a summary: latent ``scale``
    (1 / std of the posterior means of the first 10,000 images), reconstruction MSE of the posterior mean on
    the last 1,000 images, mean posterior standard deviation and seconds.
    """
    gen = torch.Generator().manual_seed(int(settings["seed"]) * 7919 + 17)
    t0 = time.time()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(settings["seed"]) * 7919 + 17)
        vae = SmallKLAutoencoder(
            settings["embed_dim"],
            ch=settings["ch"],
            num_blocks=settings["num_blocks"],
            in_channels=images.shape[1],
        ).to(images.device)
        vae.train()
        _train_phase(vae, images, settings, gen, settings["steps"], decoder_only=False, log=log)
        if settings.get("decoder_steps", 0):
            vae.encoder.requires_grad_(False)
            _train_phase(
                vae, images, settings, gen, settings["decoder_steps"], decoder_only=True, log=log
            )
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        means = torch.cat([vae.encode(b).mean for b in images[:10000].split(1000)])
        held = images[-1000:]
        mse = (vae.decode(vae.encode(held).mean) - held).square().mean().item()
        post_std = vae.encode(held).std.mean().item()
    summary = {
        "scale": 1.0 / means.std().item(),
        "recon_mse": mse,
        "posterior_std": post_std,
        "seconds": round(time.time() - t0, 1),
    }
    return vae, summary


def _train_phase(
    vae: SmallKLAutoencoder,
    images: torch.Tensor,
    settings: dict,
    gen: torch.Generator,
    steps: int,
    *,
    decoder_only: bool,
    log,
) -> None:
    """``steps`` AdamW steps (warm-up, cosine) on the whole autoencoder, or on its decoder alone."""
    params = vae.decoder.parameters() if decoder_only else vae.parameters()
    opt = torch.optim.AdamW(params, lr=settings["lr"], weight_decay=0.0)
    bs, pixels = settings["batch_size"], images[0].numel()
    warm = max(1, steps // 20)
    what = "decoder step" if decoder_only else "step"
    t0 = time.time()
    for step in range(steps):
        lr = settings["lr"] * min(1.0, (step + 1) / warm)
        lr *= 0.5 * (1.0 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, len(images), (bs,), generator=gen)
        x = images[idx]
        with torch.set_grad_enabled(not decoder_only):
            post = vae.encode(x)
            z = post.sample()
        err = vae.decode(z) - x
        loss = err.abs().mean() + err.square().mean()
        if not decoder_only:
            loss = loss + settings["kl_weight"] * _kl_per_pixel(post, pixels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if not torch.isfinite(loss):
            raise RuntimeError(
                f"autoencoder training diverged at {what} {step}: loss {loss.item()}"
            )
        if step % 200 == 0 or step == steps - 1:
            secs = time.time() - t0
            log(f"[tokenizer] {what} {step + 1}/{steps}: loss {loss.item():.4f}, {secs:.0f} s")


def _save_atomic(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_autoencoder(
    path: str | os.PathLike, settings: dict | None = None
) -> tuple[nn.Module, dict]:
    """Load a cached autoencoder (``weights_only=True``); ``settings``, when given, must match the file's."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"tokenizer {str(path)!r} not found: the learned tokenizer is trained by "
            "reference/ear/train.py with the same data.* settings (its first stage) and cached there"
        )
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("settings", {}).get("format") != _FORMAT:
        raise ValueError(f"{str(path)!r} is not a cached tokenizer of format {_FORMAT!r}")
    if settings is not None and blob["settings"] != settings:
        diff = sorted(k for k in settings if blob["settings"].get(k) != settings.get(k))
        raise ValueError(f"{str(path)!r} was trained with other settings (differ in {diff})")
    s = blob["settings"]
    vae = SmallKLAutoencoder(s["embed_dim"], ch=s["ch"], num_blocks=s["num_blocks"],
                             in_channels=blob["in_channels"])  # fmt: skip
    vae.load_state_dict(blob["state_dict"])
    for name, t in vae.state_dict().items():
        if not torch.isfinite(t).all():
            raise ValueError(f"{str(path)!r}: non-finite weights in {name}")
    return vae.eval().requires_grad_(False), blob["summary"]


def ensure_autoencoder(dc, images: torch.Tensor | None, d=None, *, log=print) -> tuple[Path, dict]:
    """The cached autoencoder for the ``DataConfig`` ``dc``: loaded if present, else trained on ``images`` and saved.

    Under torchrun the main process trains and writes it while the others wait, then every process loads it.
    Returns the path and the training summary (with ``"cached": True`` when it was loaded).
    """
    path, settings = autoencoder_path(dc), autoencoder_settings(dc)
    main = d is None or d.main
    trained = None
    if main and not path.is_file():
        if images is None:
            raise ValueError("no cached tokenizer and no images to train one on")
        log(f"[tokenizer] training the KL autoencoder ({settings['steps']} steps) -> {path}")
        vae, summary = train_autoencoder(images, settings, log=log)
        blob = {
            "settings": settings,
            "summary": summary,
            "in_channels": images.shape[1],
            "state_dict": {k: v.detach().cpu() for k, v in vae.state_dict().items()},
        }
        _save_atomic(blob, path)
        trained = summary
    if d is not None and d.enabled:
        torch.distributed.barrier()
    _, summary = load_autoencoder(path, settings)
    summary = dict(summary, cached=trained is None)
    if trained is None and main:
        log(f"[tokenizer] loaded the cached KL autoencoder {path}")
    return path, summary
