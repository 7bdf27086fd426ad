"""MAR-like per-token diffusion head, trained by denoising score matching (epsilon prediction)."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F

from scoringrules_torch.heads._layers import (
    AdaLNBlock,
    ModulatedFinalLayer,
    timestep_embedding,
    xavier_init,
    zero_init,
)
from scoringrules_torch.heads.base import HeadBase

__all__ = ["DiffusionHead", "cosine_alphas_cumprod", "respaced_schedule"]

_MAX_BETA = 0.999
_COSINE_OFFSET = 0.008


def cosine_alphas_cumprod(num_timesteps: int) -> list[float]:
    r"""Cumulative products ``alpha_bar_t``, ``t = 0 .. T-1``, of the cosine schedule (Nichol & Dhariwal 2021).

    ``beta_t = min(1 - f((t+1)/T) / f(t/T), 0.999)`` with ``f(u) = cos^2((u + 0.008) / 1.008 * pi/2)`` and
    ``alpha_bar_t = prod_{s <= t} (1 - beta_s)``; computed in float64.

    Examples:
        >>> ab = cosine_alphas_cumprod(1000)
        >>> len(ab), round(ab[0], 6), ab[-1] < 1e-4
        (1000, 0.999959, True)
    """

    def f(u: float) -> float:
        return math.cos((u + _COSINE_OFFSET) / (1 + _COSINE_OFFSET) * math.pi / 2) ** 2

    out, prod = [], 1.0
    for t in range(num_timesteps):
        beta = min(1 - f((t + 1) / num_timesteps) / f(t / num_timesteps), _MAX_BETA)
        prod *= 1 - beta
        out.append(prod)
    return out


@lru_cache(maxsize=16)
def respaced_schedule(num_train_timesteps: int, num_steps: int) -> tuple[tuple[float, ...], ...]:
    r"""The DDPM sampler's coefficients on ``num_steps`` timesteps evenly strided over the training ones.

    Kept timesteps ``tau_i = round(i (T - 1) / (S - 1))`` (``i = 0 .. S-1``; IDDPM's respacing). The respaced
    chain keeps ``alpha_bar`` at the kept steps, so ``beta'_i = 1 - alpha_bar_{tau_i} / alpha_bar_{tau_{i-1}}``.
    For each step it returns ``(timestep, alpha_bar, posterior_mean_coef_x0, posterior_mean_coef_xt,
    posterior_std)``, with the DDPM posterior ``q(x_{i-1} | x_i, x_0)`` (fixed "small" variance
    ``beta'_i (1 - alpha_bar_{i-1}) / (1 - alpha_bar_i)``).

    Examples:
        >>> steps = respaced_schedule(1000, 100)
        >>> len(steps), steps[0][0], steps[-1][0], steps[0][4]
        (100, 0, 999, 0.0)
    """
    if not 1 <= num_steps <= num_train_timesteps:
        raise ValueError(
            f"num_steps must be in [1, num_train_timesteps={num_train_timesteps}]; got {num_steps}"
        )
    ab_all = cosine_alphas_cumprod(num_train_timesteps)
    if num_steps == 1:
        kept = [num_train_timesteps - 1]
    else:
        stride = (num_train_timesteps - 1) / (num_steps - 1)
        kept = sorted({round(i * stride) for i in range(num_steps)})
    out = []
    prev = 1.0
    for t in kept:
        ab = ab_all[t]
        beta = 1 - ab / prev
        coef_x0 = beta * math.sqrt(prev) / (1 - ab)
        coef_xt = (1 - prev) * math.sqrt(1 - beta) / (1 - ab)
        var = beta * (1 - prev) / (1 - ab)
        out.append((t, ab, coef_x0, coef_xt, math.sqrt(max(var, 0.0))))
        prev = ab
    return tuple(out)


class _Denoiser(nn.Module):
    """MAR's ``SimpleMLPAdaLN``: AdaLN-MLP on the noisy token, modulated by timestep + condition."""

    def __init__(
        self, token_dim: int, cond_dim: int, width: int, depth: int, freq_dim: int
    ) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.input_proj = nn.Linear(token_dim, width)
        self.time_embed = nn.Sequential(
            nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width)
        )
        self.cond_embed = nn.Linear(cond_dim, width)
        self.blocks = nn.ModuleList(AdaLNBlock(width) for _ in range(depth))
        self.final = ModulatedFinalLayer(width, token_dim)
        xavier_init(self)
        for layer in (self.time_embed[0], self.time_embed[2]):
            nn.init.normal_(layer.weight, std=0.02)
        for block in self.blocks:
            zero_init(block.modulation)
        zero_init(self.final.modulation)
        zero_init(self.final.linear)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x (*S, N, d)``, ``t (*S, N)`` integer timesteps, ``cond (N, W)`` (embedded) -> ``eps (*S, N, d)``."""
        h = self.input_proj(x)
        temb = timestep_embedding(t.reshape(-1), self.freq_dim).to(h.dtype).reshape(*t.shape, -1)
        c = F.silu(self.time_embed(temb) + cond)
        for block in self.blocks:
            h = block(h, c)
        return self.final(h, c)


class DiffusionHead(HeadBase):
    r"""Per-token diffusion head in the style of MAR (Li et al. 2024): a small denoiser conditioned on ``z``.

    The denoiser ``eps_theta(x_t, t, z)`` is MAR's AdaLN MLP: ``Linear(x_t)`` is the residual stream, and
    ``SiLU(TimestepMLP(sinusoid(t)) + Linear(z))`` drives the shift/scale/gate of ``depth`` residual blocks and
    of the final layer (zero-initialised modulation and output, xavier elsewhere, timestep MLP ``N(0, 0.02)``).

    **Forward process**: the cosine schedule (:func:`cosine_alphas_cumprod`) over ``num_train_timesteps``,
    ``x_t = sqrt(alpha_bar_t) y + sqrt(1 - alpha_bar_t) eps``.

    **Training** (denoising score matching): for ``m = num_samples`` independent ``(t, eps)`` draws per
    position (MAR's ``diffusion_batch_mul``; the condition is reused, not recomputed),

    .. math::
        \ell(z, y) = \frac1m \sum_{j=1}^m \frac1d \big\| \epsilon_\theta(x_{t_j}, t_j, z) - \epsilon_j \big\|^2 ,
        \qquad t_j \sim U\{0, \dots, T-1\},

    averaged over the masked positions. With ``s_theta = -eps_theta / sigma_t`` (``sigma_t^2 = 1 - alpha_bar_t``)
    this is ``sigma_t^2`` times the denoising score-matching loss ``E || s_theta(x_t) - grad log q(x_t | y) ||^2``
    (Vincent 2011), which equals, up to a constant independent of ``theta``, the expected Hyvärinen score
    ``E[2 Laplacian log p + ||grad log p||^2]`` of ``p = exp(-integral of s_theta)`` under the
    sigma_t-smoothed data law. So the head is trained by the Hyvärinen score of the noised data, summed over
    noise levels with weight ``sigma_t^2`` — MAR's choice; MAR additionally learns the reverse variance with
    a variational-bound term, which this head leaves out (it uses DDPM's fixed posterior variance).

    **Sampling**: DDPM ancestral sampling from ``x ~ N(0, I)`` over ``num_sampling_steps`` timesteps respaced
    evenly over the training ones (:func:`respaced_schedule`); the denoiser sees the original timestep indices;
    no clipping. ``temperature`` multiplies the noise injected at each step,
    ``x_{i-1} = mu_i + temperature * sigma_i * xi`` (MAR); the initial noise is not scaled.

    Args:
        token_dim: token size ``d``.
        cond_dim: hidden-state size ``D``.
        width: denoiser width (MAR-B 1024).
        depth: residual blocks (MAR-B 6; MAR's README training default 3).
        num_train_timesteps: ``T`` (1000).
        num_sampling_steps: default number of sampling steps (100); ``sample(..., num_steps=...)`` overrides.
        num_samples: ``(t, eps)`` draws per position in the loss (MAR's ``diffusion_batch_mul``, 4).
        freq_dim: size of the sinusoidal timestep features (256).
        clip_denoised: if set, the sampler clamps its estimate of the clean token, ``x0_hat``, to
            ``[-clip_denoised, clip_denoised]`` before each update. MAR does not clip (None, the default). The
            cosine schedule ends at ``alpha_bar_{T-1} ~ 2e-9``, where ``x0_hat = (x - sqrt(1 - alpha_bar) eps_hat) /
            sqrt(alpha_bar)`` multiplies the error of ``eps_hat`` by ~2e4; a briefly trained head can then
            diverge in its first sampling steps, and a clip at a bound of the data fixes that.

    Shape:
        - z: ``(*positions, cond_dim)``; target: ``(*positions, token_dim)``; mask: ``(*positions)``
        - ``sample``: ``(*positions, token_dim)`` in ``z``'s dtype

    Examples:
        >>> import torch
        >>> from scoringrules_torch.heads import DiffusionHead
        >>> head = DiffusionHead(2, 8, width=32, depth=2, num_sampling_steps=10)
        >>> z, y = torch.randn(6, 8), torch.randn(6, 2)
        >>> head.loss(z, y).shape
        torch.Size([])
        >>> head.sample(z, temperature=0.9).shape
        torch.Size([6, 2])

    References:
        Li, Tian, Li, Deng & He, "Autoregressive Image Generation without Vector Quantization", NeurIPS 2024.
        Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
        Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models", ICML 2021.
        Vincent, "A Connection Between Score Matching and Denoising Autoencoders", Neural Computation 2011.
        Hyvärinen, "Estimation of Non-Normalized Statistical Models by Score Matching", JMLR 2005.
    """

    def __init__(
        self,
        token_dim: int,
        cond_dim: int,
        *,
        width: int = 1024,
        depth: int = 6,
        num_train_timesteps: int = 1000,
        num_sampling_steps: int = 100,
        num_samples: int = 4,
        freq_dim: int = 256,
        clip_denoised: float | None = None,
    ) -> None:
        super().__init__(token_dim, cond_dim)
        for name, value, low in (
            ("width", width, 1),
            ("depth", depth, 0),
            ("num_train_timesteps", num_train_timesteps, 2),
            ("num_samples", num_samples, 1),
            ("freq_dim", freq_dim, 2),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
        respaced_schedule(num_train_timesteps, num_sampling_steps)  # validates num_sampling_steps
        self.width = width
        self.depth = depth
        self.num_train_timesteps = num_train_timesteps
        self.num_sampling_steps = num_sampling_steps
        self.num_samples = num_samples
        if clip_denoised is not None and not (
            isinstance(clip_denoised, (int, float))
            and not isinstance(clip_denoised, bool)
            and clip_denoised > 0
        ):
            raise ValueError(
                f"clip_denoised must be None or a positive number; got {clip_denoised!r}"
            )
        self.clip_denoised = None if clip_denoised is None else float(clip_denoised)
        self.net = _Denoiser(token_dim, cond_dim, width, depth, freq_dim)
        self._alphas_cumprod = torch.tensor(
            cosine_alphas_cumprod(num_train_timesteps), dtype=torch.float64
        )

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, width={self.width}, depth={self.depth}, "
            f"num_train_timesteps={self.num_train_timesteps}, num_sampling_steps="
            f"{self.num_sampling_steps}, num_samples={self.num_samples}"
        )

    def embed_condition(self, z: torch.Tensor) -> torch.Tensor:
        """``Linear(z)``: the condition's contribution to the AdaLN input, computed once per position."""
        return self.net.cond_embed(z)

    def predict_eps(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``eps_theta(x_t, t, z)`` given the embedded condition ``cond = embed_condition(z)``."""
        return self.net(x, t, cond)

    def loss(
        self,
        z: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Masked mean over positions of the epsilon-prediction loss (see class docstring).

        Args:
            t: optional timesteps ``(num_samples, *positions)`` (integers in ``[0, T)``).
            noise: optional noise ``(num_samples, *positions, token_dim)``.
        """
        z, target, mask = self._flatten(z, target, mask)
        n, m = z.shape[0], self.num_samples
        dtype = self._loss_dtype(z)
        if t is None:
            t = torch.randint(0, self.num_train_timesteps, (m, n), device=z.device)
        else:
            t = t.reshape(m, n).to(z.device)
        if noise is None:
            noise = torch.randn((m, n, self.token_dim), dtype=dtype, device=z.device)
        else:
            noise = noise.reshape(m, n, self.token_dim).to(dtype)
        ab = self._alphas_cumprod.to(z.device)[t].to(dtype)[..., None]  # (m, N, 1)
        x_t = ab.sqrt() * target.to(dtype) + (1 - ab).sqrt() * noise
        cond = self.embed_condition(z)
        eps = self.predict_eps(x_t.to(z.dtype), t, cond).to(dtype)
        values = (eps - noise).square().mean(-1).mean(0)  # (N,)
        return self._masked_mean(values, mask)

    @torch.no_grad()
    def sample(
        self, z: torch.Tensor, temperature: float = 1.0, *, num_steps: int | None = None
    ) -> torch.Tensor:
        """DDPM ancestral sampling, one draw per position, ``(*positions, token_dim)`` in ``z``'s dtype."""
        self._check_z(z)
        self._check_temperature(temperature)
        steps = respaced_schedule(self.num_train_timesteps, num_steps or self.num_sampling_steps)
        shape = z.shape[:-1]
        zf = z.reshape(-1, self.cond_dim)
        n = zf.shape[0]
        dtype = self._loss_dtype(z)
        cond = self.embed_condition(zf)
        x = torch.randn((n, self.token_dim), dtype=dtype, device=z.device)
        for i in range(len(steps) - 1, -1, -1):
            t_i, ab, coef_x0, coef_xt, std = steps[i]
            t = torch.full((n,), t_i, dtype=torch.long, device=z.device)
            eps = self.predict_eps(x.to(z.dtype), t, cond).to(dtype)
            x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            if self.clip_denoised is not None:
                x0 = x0.clamp(-self.clip_denoised, self.clip_denoised)
            x = coef_x0 * x0 + coef_xt * x
            if i > 0:
                x = x + (temperature * std) * torch.randn_like(x)
        return x.reshape(*shape, self.token_dim).to(z.dtype)
