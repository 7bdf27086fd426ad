"""Tokenizers: images <-> sequences of continuous tokens.

- :class:`PatchTokenizer`: ``p x p`` pixel patches, flattened channels-last, as continuous tokens (pixel space).
- :class:`AutoencoderKL` + :class:`KLTokenizer`: the KL-16 VAE of MAR / EAR (an LDM ``AutoencoderKL`` with
  ``ch=128, ch_mult=(1, 1, 2, 2, 4)``, two ResNet blocks per level, attention at the lowest resolution of the
  encoder and in both mid blocks, none in the decoder's up levels), its checkpoint format (state dict under
  ``model`` or ``state_dict``), and the latent scale 0.2325 (1 / std of the ImageNet latents, no mean shift).

Token order is row-major over the (latent) grid, channels last inside a token: a ``(B, C, H, W)`` array with
patch size ``p`` becomes ``(B, (H/p)(W/p), p p C)``.

References:
    Rombach et al. (2022). High-Resolution Image Synthesis with Latent Diffusion Models. CVPR.
    Li et al. (2024). Autoregressive Image Generation without Vector Quantization. NeurIPS.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "patchify",
    "unpatchify",
    "PatchTokenizer",
    "AutoencoderKL",
    "DiagonalGaussian",
    "KLTokenizer",
    "load_vae",
    "build_tokenizer",
    "TokenDecoder",
    "KL16_SCALE",
]

KL16_SCALE = 0.2325


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """``(B, C, H, W) -> (B, (H/p)(W/p), p*p*C)``, row-major patches, channels last inside a token.

    Examples:
        >>> x = torch.arange(16.).reshape(1, 1, 4, 4)
        >>> patchify(x, 2)[0, 1].tolist()  # the top-right 2x2 patch
        [2.0, 3.0, 6.0, 7.0]
    """
    b, c, h, w = x.shape
    if h % p or w % p:
        raise ValueError(f"image size {h}x{w} must be divisible by the patch size {p}")
    x = x.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(tokens: torch.Tensor, p: int, channels: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, (h/p)(w/p), p*p*C) -> (B, C, h, w)``."""
    b = tokens.shape[0]
    x = tokens.reshape(b, h // p, w // p, p, p, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, channels, h, w)


class PatchTokenizer(nn.Module):
    """Pixel patches as tokens: images in ``[-1, 1]`` of size ``image_size`` (after zero... padding) -> tokens.

    Args:
        image_size: side of the (square) images the model sees.
        patch_size: side ``p`` of a patch; ``image_size`` must be divisible by it.
        channels: image channels.

    Shape:
        - encode: ``(B, C, image_size, image_size) -> (B, (image_size/p)^2, p*p*C)``
        - decode: the inverse.
    """

    def __init__(self, image_size: int, patch_size: int, channels: int = 1) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(
                f"image_size {image_size} must be divisible by patch_size {patch_size}"
            )
        self.image_size, self.patch_size, self.channels = image_size, patch_size, channels
        self.num_tokens = (image_size // patch_size) ** 2
        self.token_dim = patch_size * patch_size * channels

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return patchify(images, self.patch_size)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        return unpatchify(tokens, self.patch_size, self.channels, s, s)


# -- the KL-16 VAE ---------------------------------------------------------------------------------------
def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, channels), channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """GroupNorm-swish-conv3x3 twice, with a 1x1 shortcut when the channel count changes."""

    def __init__(self, cin: int, cout: int, groups: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = _norm(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _norm(cout, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1-conv q, k, v and output projection."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = _norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = self.norm(x)
        q, k, v = (m(n).reshape(b, 1, c, h * w).transpose(2, 3) for m in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(c)) v
        return x + self.proj_out(out.transpose(2, 3).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Zero-pad right and bottom by one, then a stride-2 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()


class _Mid(nn.Module):
    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, groups)
        self.attn_1 = AttnBlock(channels, groups)
        self.block_2 = ResnetBlock(channels, channels, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(
        self,
        *,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        attn_resolutions: Sequence[int],
        in_channels: int,
        resolution: int,
        z_channels: int,
        groups: int,
    ) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        res = resolution
        cin = ch
        for i, mult in enumerate(ch_mult):
            level = _Level()
            cout = ch * mult
            for _ in range(num_res_blocks):
                level.block.append(ResnetBlock(cin, cout, groups))
                cin = cout
                if res in attn_resolutions:
                    level.attn.append(AttnBlock(cin, groups))
            if i != len(ch_mult) - 1:
                level.downsample = Downsample(cin)
                res //= 2
            self.down.append(level)
        self.mid = _Mid(cin, groups)
        self.norm_out = _norm(cin, groups)
        self.conv_out = nn.Conv2d(cin, 2 * z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for j, blk in enumerate(level.block):
                h = blk(h)
                if len(level.attn) > 0:
                    h = level.attn[j](h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(
        self,
        *,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        out_ch: int,
        z_channels: int,
        groups: int,
    ) -> None:
        super().__init__()
        cin = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, cin, 3, padding=1)
        self.mid = _Mid(cin, groups)
        levels: list[_Level] = []
        for i in reversed(range(len(ch_mult))):
            level = _Level()
            cout = ch * ch_mult[i]
            for _ in range(num_res_blocks + 1):
                level.block.append(ResnetBlock(cin, cout, groups))
                cin = cout
            if i != 0:
                level.upsample = Upsample(cin)
            levels.insert(
                0, level
            )  # self.up[i] is resolution level i, as in the checkpoint's key names
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(cin, groups)
        self.conv_out = nn.Conv2d(cin, out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            for blk in level.block:
                h = blk(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class DiagonalGaussian:
    """The posterior ``N(mean, diag(exp(logvar)))`` from moments ``(B, 2C, h, w)`` (logvar clamped to [-30, 20])."""

    def __init__(self, moments: torch.Tensor) -> None:
        self.mean, logvar = moments.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    def sample(self) -> torch.Tensor:
        return self.mean + self.std * torch.randn_like(self.mean)

    def mode(self) -> torch.Tensor:
        return self.mean


class AutoencoderKL(nn.Module):
    """The KL-16 VAE of MAR / EAR (LDM ``AutoencoderKL`` layout; state-dict keys match the official checkpoint).

    Args:
        embed_dim: latent channels (16).
        ch: base channel count (128 in the official model; smaller for tests).
        ch_mult: channel multiplier per resolution level; ``len(ch_mult) - 1`` downsamplings (stride 16).
        num_res_blocks: ResNet blocks per encoder level (decoder levels get one more).
        resolution: image size the encoder's attention resolution refers to (256).
        attn_resolutions: encoder resolutions with attention after each block (16 = the lowest level).
        groups: GroupNorm groups (32).

    Shape:
        - encode: ``(B, 3, H, W)`` in ``[-1, 1]`` -> :class:`DiagonalGaussian` over ``(B, embed_dim, H/16, W/16)``
        - decode: ``(B, embed_dim, h, w)`` -> ``(B, 3, 16h, 16w)``
    """

    def __init__(
        self,
        embed_dim: int = 16,
        *,
        ch: int = 128,
        ch_mult: Sequence[int] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        resolution: int = 256,
        attn_resolutions: Sequence[int] = (16,),
        in_channels: int = 3,
        out_ch: int = 3,
        groups: int = 32,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.encoder = Encoder(
            ch=ch,
            ch_mult=ch_mult,
            num_res_blocks=num_res_blocks,
            attn_resolutions=attn_resolutions,
            in_channels=in_channels,
            resolution=resolution,
            z_channels=embed_dim,
            groups=groups,
        )
        self.decoder = Decoder(
            ch=ch,
            ch_mult=ch_mult,
            num_res_blocks=num_res_blocks,
            out_ch=out_ch,
            z_channels=embed_dim,
            groups=groups,
        )
        self.quant_conv = nn.Conv2d(2 * embed_dim, 2 * embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, embed_dim, 1)
        self.stride = 2 ** (len(ch_mult) - 1)

    def encode_moments(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior parameters ``(B, 2 embed_dim, h, w)`` = mean || logvar (what latent caching stores)."""
        return self.quant_conv(self.encoder(x))

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        return DiagonalGaussian(self.encode_moments(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).sample())


def load_vae(
    path: str | os.PathLike, vae: AutoencoderKL | None = None, *, strict: bool = True
) -> AutoencoderKL:
    """Load the official ``kl16.ckpt`` (state dict under ``model`` or ``state_dict``) with ``weights_only=True``.

    Keys that the architecture does not have (e.g. a training loss's discriminator) are ignored with a
    warning. Keys of the architecture that the checkpoint lacks are an error (``KeyError``) unless
    ``strict=False``, which only warns; a checkpoint with none of the architecture's keys (an empty or
    unrelated file) is always an error. Returns the VAE in eval mode with gradients off.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"VAE checkpoint {str(path)!r} not found. The MAR/EAR KL-16 VAE is the file kl16.ckpt distributed "
            "with MAR (LTH14/mar, util/download.py); put it there or pass --set data.vae_path=/path/kl16.ckpt"
        )
    vae = vae if vae is not None else AutoencoderKL()
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(ckpt, dict) and "model" in ckpt:
        state = ckpt["model"]
    elif isinstance(ckpt, dict) and "state_dict" in ckpt:
        state = ckpt["state_dict"]
    else:
        raise ValueError(
            f"{str(path)!r} holds no state dict under 'model' or 'state_dict'; keys: "
            f"{sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__}"
        )
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r}: the state dict is a {type(state).__name__}, not a dict")
    own = set(vae.state_dict())
    if not own & set(state):
        raise ValueError(
            f"{str(path)!r} holds none of the VAE's {len(own)} weights ({len(state)} entries"
            + (f", e.g. {sorted(state)[:3]}" if state else "")
            + "): not a KL-16 VAE checkpoint"
        )
    missing, unexpected = vae.load_state_dict(state, strict=False)
    if unexpected:
        warnings.warn(
            f"load_vae: ignored {len(unexpected)} unexpected keys, e.g. {unexpected[:3]}",
            stacklevel=2,
        )
    if missing:
        msg = f"load_vae: {len(missing)} keys missing from {str(path)!r}, e.g. {missing[:5]}"
        if strict:
            raise KeyError(msg)
        warnings.warn(msg, stacklevel=2)
    vae.eval().requires_grad_(False)
    return vae


class KLTokenizer(nn.Module):
    """Latent tokens of a KL VAE: ``scale x`` posterior sample (training) or mode, patchified.

    Args:
        vae: an :class:`AutoencoderKL` (frozen).
        scale: latent scale (0.2325 for KL-16).
        patch_size: latent cells per token side (1 in EAR).
    """

    def __init__(self, vae: AutoencoderKL, scale: float = KL16_SCALE, patch_size: int = 1) -> None:
        super().__init__()
        self.vae, self.scale, self.patch_size = vae, scale, patch_size
        self.token_dim = vae.embed_dim * patch_size * patch_size

    @torch.no_grad()
    def moments_to_tokens(self, moments: torch.Tensor, sample: bool = True) -> torch.Tensor:
        post = DiagonalGaussian(moments)
        z = post.sample() if sample else post.mode()
        return patchify(z * self.scale, self.patch_size)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, sample: bool = True) -> torch.Tensor:
        return self.moments_to_tokens(self.vae.encode_moments(images), sample)

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor, grid: int) -> torch.Tensor:
        """Tokens ``(B, grid^2, d)`` for a ``grid x grid`` token grid -> images ``(B, 3, H, W)`` in about [-1, 1]."""
        c = self.vae.embed_dim
        p = self.patch_size
        z = unpatchify(tokens, p, c, grid * p, grid * p) / self.scale
        return self.vae.decode(z)


def build_tokenizer(
    dc, device: torch.device, *, channels_last: bool = False, vae_strict: bool = True
):
    """The tokenizer named by a :class:`~reference.ear.configs.DataConfig` ``dc``, on ``device``.

    ``patch``: grey pixel patches of ``dc.image_size`` images. ``kl16``: the VAE loaded from ``dc.vae_path``
    (``vae_strict``: see :func:`load_vae`), channels-last when ``channels_last``. ``kl``: the small autoencoder
    that :func:`reference.ear.autoencoder.ensure_autoencoder` trained and cached, with its measured scale.
    """
    if dc.tokenizer == "patch":
        return PatchTokenizer(dc.image_size, dc.patch_size, channels=1)
    if dc.tokenizer == "kl":  # the demo's learned autoencoder, cached by its first stage
        from reference.ear.autoencoder import (
            autoencoder_path,
            autoencoder_settings,
            load_autoencoder,
        )

        vae, summary = load_autoencoder(autoencoder_path(dc), autoencoder_settings(dc))
        return KLTokenizer(vae.to(device), scale=summary["scale"], patch_size=dc.patch_size)
    arch = AutoencoderKL(dc.vae_embed_dim, ch=dc.vae_ch, num_res_blocks=dc.vae_num_res_blocks)
    vae = load_vae(dc.vae_path, arch, strict=vae_strict).to(device)
    if channels_last:
        vae = vae.to(memory_format=torch.channels_last)
    return KLTokenizer(vae, scale=dc.vae_scale, patch_size=dc.patch_size)


class TokenDecoder:
    """Tokens -> images in ``[0, 1]`` (float32, ``(N, C, H, W)``), for either tokenizer.

    Args:
        tokenizer: a :class:`PatchTokenizer` or :class:`KLTokenizer`.
        crop_to: for padded images, the side of the original images (the centre is kept).
    """

    def __init__(self, tokenizer, crop_to: int | None = None) -> None:
        self.tokenizer, self.crop_to = tokenizer, crop_to

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        if isinstance(self.tokenizer, PatchTokenizer):
            x = self.tokenizer.decode(tokens.float())
        else:
            grid = int(round(math.sqrt(tokens.shape[1])))
            x = self.tokenizer.decode(tokens.float(), grid)
        s, r = x.shape[-1], self.crop_to
        if r is not None and r != s:
            lo = (s - r) // 2
            x = x[..., lo : lo + r, lo : lo + r]
        return ((x.clamp(-1, 1) + 1) / 2).float()
