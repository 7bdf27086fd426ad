"""Building blocks shared by the heads (private).

The AdaLN residual block and the modulated final layer are the two pieces both EAR's generator and MAR's
denoiser are made of; they differ only in what drives the modulation (noise for EAR, timestep + condition for
MAR) and in what enters the residual stream.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def xavier_init(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every ``nn.Linear`` inside ``module``."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.xavier_uniform_(sub.weight)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)


def zero_init(linear: nn.Linear) -> None:
    nn.init.zeros_(linear.weight)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


class AdaLNBlock(nn.Module):
    """Residual block ``h + gate * FFN(LN(h) * (1 + scale) + shift_scale * shift)``.

    ``shift, scale, gate = Linear(W -> 3W)(c)`` where ``c`` is the already activated modulation input
    (``SiLU`` of the noise or timestep embedding). ``shift_scale`` is EAR's inference temperature.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6, elementwise_affine=True)
        self.ffn = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.modulation = nn.Linear(width, 3 * width)

    def forward(self, h: torch.Tensor, c: torch.Tensor, shift_scale: float = 1.0) -> torch.Tensor:
        shift, scale, gate = self.modulation(c).chunk(3, dim=-1)
        u = self.norm(h) * (1 + scale) + shift * shift_scale
        return h + gate * self.ffn(u)


class ModulatedFinalLayer(nn.Module):
    """``Linear(W -> out)(LN_noaffine(h) * (1 + scale) + shift)`` with ``shift, scale = Linear(W -> 2W)(c)``."""

    def __init__(self, width: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6, elementwise_affine=False)
        self.modulation = nn.Linear(width, 2 * width)
        self.linear = nn.Linear(width, out_dim)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.modulation(c).chunk(2, dim=-1)
        return self.linear(self.norm(h) * (1 + scale) + shift)


class ResidualMLP(nn.Module):
    """Plain (unmodulated) residual MLP trunk used by the explicit heads when ``hidden`` is given.

    ``Linear(in -> W)``, then ``depth`` blocks ``h + FFN(LN(h))``, then ``LN`` and ``Linear(W -> out)``.
    With ``hidden=None`` it is a single ``Linear(in -> out)`` (GIVT's linear read-out).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int | None, depth: int) -> None:
        super().__init__()
        if hidden is None:
            self.input = nn.Identity()
            self.blocks = nn.ModuleList()
            self.norm = nn.Identity()
            self.output = nn.Linear(in_dim, out_dim)
        else:
            self.input = nn.Linear(in_dim, hidden)
            self.blocks = nn.ModuleList(
                nn.Sequential(
                    nn.LayerNorm(hidden, eps=1e-6),
                    nn.Linear(hidden, hidden),
                    nn.SiLU(),
                    nn.Linear(hidden, hidden),
                )
                for _ in range(depth)
            )
            self.norm = nn.LayerNorm(hidden, eps=1e-6)
            self.output = nn.Linear(hidden, out_dim)
        xavier_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.input(z)
        for block in self.blocks:
            h = h + block(h)
        return self.output(self.norm(h))


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (integer or real) timesteps: ``[cos(t f_k), sin(t f_k)]``.

    ``f_k = max_period^(-k / (dim/2))`` for ``k = 0 .. dim/2 - 1`` (cos half first, as in MAR/DiT).
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.to(torch.float32)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


# -- default sizes -------------------------------------------------------------------------------------------
MIN_WIDTH, MAX_WIDTH, DEFAULT_DEPTH = 64, 1024, 3


def default_width(token_dim: int, cond_dim: int) -> int:
    """The default width of a generator/denoiser MLP for a ``token_dim`` target and a ``cond_dim`` condition.

    ``max(16 * token_dim, cond_dim / 2)`` rounded up to a power of two and clamped to ``[64, 1024]``: a
    1-dimensional target under a 48-dimensional state gets 64, EAR's 16-dimensional tokens under a
    768-dimensional state get 512 (EAR-B itself uses 1024: see the heads' ``ear_preset``/``mar_preset``).
    """
    want = max(16 * token_dim, math.ceil(cond_dim / 2), 1)
    width = 1 << (want - 1).bit_length()
    return int(min(MAX_WIDTH, max(MIN_WIDTH, width)))


def default_noise_dim(token_dim: int) -> int:
    """The implicit generator's default noise size: ``4 * token_dim`` clamped to ``[8, 64]`` (EAR: 64)."""
    return int(min(64, max(8, 4 * token_dim)))
