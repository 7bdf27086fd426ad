"""MAR-like per-token diffusion head, trained by denoising score matching (epsilon prediction)."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from scoringrules_torch._internal.checks import check_choice, check_floating
from scoringrules_torch._internal.reduction import check_reduction
from scoringrules_torch.heads._layers import (
    DEFAULT_DEPTH,
    AdaLNBlock,
    ModulatedFinalLayer,
    default_width,
    timestep_embedding,
    xavier_init,
    zero_init,
)
from scoringrules_torch.heads.base import HeadBase, Temperature, check_int, check_real

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
    evenly over the training ones (:func:`respaced_schedule`); the denoiser sees the original timestep indices.
    ``temperature`` (a number, or a tensor broadcastable to the positions) multiplies the noise injected at each
    step, ``x_{i-1} = mu_i + temperature * sigma_i * xi`` (MAR); the initial noise is not scaled.
    ``num_samples=m`` runs ``m`` chains per position in one batch.

    **Safe sampling by default.** The cosine schedule ends at ``alpha_bar_{T-1} ~ 2e-9``, where the clean-token
    estimate ``x0_hat = (x - sqrt(1 - alpha_bar) eps_hat) / sqrt(alpha_bar)`` multiplies the error of ``eps_hat``
    by about 2e4: a briefly trained denoiser then diverges in its first sampling steps (draws thousands of
    standard deviations away). With ``clip_denoised="auto"`` (the default) the sampler clamps ``x0_hat``, per
    dimension, to the range of the training targets widened by ``clip_margin`` of its width on each side,
    ``[min - margin (max - min), max + margin (max - min)]``; ``loss`` records ``min``/``max`` (buffers
    ``target_min``/``target_max``, saved with the state dict) over the unmasked targets it sees in training
    mode. The last DDPM step returns ``x0_hat`` itself, so **every draw lies in** :meth:`clip_bounds`. Before the
    first training step nothing is clipped. ``clip_denoised=c`` clamps to ``[-c, c]`` instead; ``None`` samples
    unclipped, as MAR does. (Each data-parallel replica records its own range; pass a number to share one.)

    Args:
        token_dim: token size ``d``.
        cond_dim: hidden-state size ``D``.
        width: denoiser width; default from the sizes, ``max(16 d, D/2)`` rounded up to a power of two and
            clamped to ``[64, 1024]`` (MAR-B 1024: :meth:`mar_preset`).
        depth: residual blocks (default 3, MAR's README training default; MAR-B 6).
        num_train_timesteps: ``T`` (1000).
        num_sampling_steps: default number of sampling steps (100); ``sample(..., num_steps=...)`` overrides.
        num_samples: ``(t, eps)`` draws per position in the loss (MAR's ``diffusion_batch_mul``, 4).
        freq_dim: size of the sinusoidal timestep features (256).
        clip_denoised: ``"auto"`` (default: the learned target range, see above), a positive number ``c``
            (clamp to ``[-c, c]``) or ``None`` (no clipping, MAR).
        clip_margin: for ``"auto"``, how far beyond the observed range draws may go, as a fraction of its
            width (0.1).

    Shape:
        - z: ``(*positions, cond_dim)``; target: ``(*positions, token_dim)``; mask: ``(*positions)``
        - ``loss``: ``()``, or ``(*positions)`` with ``reduction="none"``
        - ``sample``: ``(*positions, token_dim)``, or ``(m, *positions, token_dim)`` with ``num_samples=m``,
          in ``z``'s dtype

    Examples:
        >>> import torch
        >>> from scoringrules_torch.heads import DiffusionHead
        >>> head = DiffusionHead(2, 8, num_sampling_steps=10)
        >>> head.width, head.depth
        (64, 3)
        >>> z, y = torch.randn(6, 8), 3 * torch.rand(6, 2)
        >>> head.loss(z, y).shape                  # training mode: records the range of y
        torch.Size([])
        >>> draws = head.sample(z, num_samples=50, temperature=0.9)
        >>> draws.shape
        torch.Size([50, 6, 2])
        >>> low, high = head.clip_bounds()
        >>> bool(((draws >= low) & (draws <= high)).all())
        True

    References:
        Li, Tian, Li, Deng & He, "Autoregressive Image Generation without Vector Quantization", NeurIPS 2024.
        Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
        Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models", ICML 2021.
        Vincent, "A Connection Between Score Matching and Denoising Autoencoders", Neural Computation 2011.
        Hyvärinen, "Estimation of Non-Normalized Statistical Models by Score Matching", JMLR 2005.
    """

    #: MAR's denoiser sizes (width, depth) for its model sizes B, L, H.
    MAR_SIZES = {"B": (1024, 6), "L": (1280, 8), "H": (1536, 12)}

    def __init__(
        self,
        token_dim: int,
        cond_dim: int,
        *,
        width: int | None = None,
        depth: int | None = None,
        num_train_timesteps: int = 1000,
        num_sampling_steps: int = 100,
        num_samples: int = 4,
        freq_dim: int = 256,
        clip_denoised: str | float | None = "auto",
        clip_margin: float = 0.1,
    ) -> None:
        super().__init__(token_dim, cond_dim)
        width = (
            default_width(token_dim, cond_dim) if width is None else check_int("width", width, 1)
        )
        depth = DEFAULT_DEPTH if depth is None else check_int("depth", depth, 0)
        check_int("num_train_timesteps", num_train_timesteps, 2)
        check_int("num_sampling_steps", num_sampling_steps, 1)
        check_int("num_samples", num_samples, 1)
        check_int("freq_dim", freq_dim, 2)
        respaced_schedule(num_train_timesteps, num_sampling_steps)  # num_sampling_steps <= T
        if isinstance(clip_denoised, str):
            check_choice("clip_denoised", clip_denoised, ("auto",))
        elif clip_denoised is not None:
            if isinstance(clip_denoised, bool) or not isinstance(clip_denoised, (int, float)):
                raise TypeError(
                    f"clip_denoised must be 'auto', None or a positive number; got "
                    f"{type(clip_denoised).__name__} {clip_denoised!r}"
                )
            clip_denoised = check_real("clip_denoised", clip_denoised, low=0.0, low_open=True)
        self.clip_margin = check_real("clip_margin", clip_margin, low=0.0)
        self.width = width
        self.depth = depth
        self.num_train_timesteps = num_train_timesteps
        self.num_sampling_steps = num_sampling_steps
        self.num_samples = num_samples
        self.clip_denoised = clip_denoised
        self.net = _Denoiser(token_dim, cond_dim, width, depth, freq_dim)
        self._alphas_cumprod = torch.tensor(
            cosine_alphas_cumprod(num_train_timesteps), dtype=torch.float64
        )
        # the range of the training targets seen by loss() in training mode (for clip_denoised="auto")
        self.register_buffer("target_min", torch.full((token_dim,), math.inf))
        self.register_buffer("target_max", torch.full((token_dim,), -math.inf))

    @classmethod
    def mar_preset(
        cls, token_dim: int, cond_dim: int, size: str = "B", **kwargs: Any
    ) -> DiffusionHead:
        """The denoiser at MAR's size ``"B"`` (width 1024, depth 6), ``"L"`` (1280, 8) or ``"H"`` (1536, 12);
        other keywords pass through (MAR itself samples unclipped: ``clip_denoised=None``).

        Examples:
            >>> head = DiffusionHead.mar_preset(16, 768, "B")
            >>> head.width, head.depth
            (1024, 6)
        """
        check_choice("size", size, tuple(cls.MAR_SIZES))
        width, depth = cls.MAR_SIZES[size]
        for name in ("width", "depth"):
            if name in kwargs:
                raise ValueError(f"mar_preset sets {name}; build the head directly to choose it")
        return cls(token_dim, cond_dim, width=width, depth=depth, **kwargs)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # checkpoints written before the learned range existed load with an unseen range
        for name in ("target_min", "target_max"):
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, width={self.width}, depth={self.depth}, "
            f"num_train_timesteps={self.num_train_timesteps}, num_sampling_steps="
            f"{self.num_sampling_steps}, num_samples={self.num_samples}, "
            f"clip_denoised={self.clip_denoised!r}, clip_margin={self.clip_margin}"
        )

    def clip_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The bounds ``(low, high)``, each ``(token_dim,)``, that the sampler clamps its ``x0`` estimate to,
        and hence the range every draw lies in (``-inf``/``inf`` where there is no bound).

        ``clip_denoised="auto"``: ``[min - margin * (max - min), max + margin * (max - min)]`` per dimension over
        the training targets seen so far (no bound before the first training step); a number ``c``: ``[-c, c]``;
        ``None``: no bound.
        """
        lo, hi = self.target_min, self.target_max
        if self.clip_denoised is None:
            inf = torch.full_like(lo, math.inf)
            return -inf, inf
        if not isinstance(self.clip_denoised, str):  # a number (also when set as an attribute)
            c = torch.full_like(lo, float(self.clip_denoised))
            return -c, c
        seen = torch.isfinite(lo) & torch.isfinite(hi)
        pad = self.clip_margin * torch.where(seen, hi - lo, torch.zeros_like(lo))
        inf = torch.full_like(lo, math.inf)
        return torch.where(seen, lo - pad, -inf), torch.where(seen, hi + pad, inf)

    @torch.no_grad()
    def _update_range(self, target: torch.Tensor, mask: torch.Tensor | None) -> None:
        if mask is None:
            low, high = target.amin(0), target.amax(0)
        else:
            keep = (mask != 0)[:, None]
            low = torch.where(keep, target, math.inf).amin(0)
            high = torch.where(keep, target, -math.inf).amax(0)
        self.target_min.copy_(torch.minimum(self.target_min, low.to(self.target_min.dtype)))
        self.target_max.copy_(torch.maximum(self.target_max, high.to(self.target_max.dtype)))

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
        reduction: str = "mean",
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The epsilon-prediction loss per position, reduced as the protocol says (see class docstring).

        In training mode it also widens the learned target range used by ``clip_denoised="auto"``.

        Args:
            reduction: ``"mean"`` (masked mean), ``"sum"`` or ``"none"`` (see :class:`PredictiveHead`).
            t: optional timesteps ``(num_samples, *positions)``, integers in ``[0, num_train_timesteps)``.
            noise: optional noise ``(num_samples, *positions, token_dim)``.
        """
        check_reduction(reduction)
        z, target, mask, positions = self._flatten(z, target, mask)
        n, m = z.shape[0], self.num_samples
        dtype = self._loss_dtype(z)
        if t is None:
            t = torch.randint(0, self.num_train_timesteps, (m, n), device=z.device)
        else:
            self._check_timesteps(t, (m, *positions))
            t = t.reshape(m, n).to(z.device)
        if noise is None:
            noise = torch.randn((m, n, self.token_dim), dtype=dtype, device=z.device)
        else:
            check_floating("noise", noise)
            if tuple(noise.shape) != (m, *positions, self.token_dim):
                raise ValueError(
                    f"noise must have shape (num_samples, *positions, token_dim) = "
                    f"{(m, *positions, self.token_dim)}; got {tuple(noise.shape)}"
                )
            noise = noise.reshape(m, n, self.token_dim).to(dtype)
        if self.training:
            self._update_range(target.detach(), mask)
        ab = self._alphas_cumprod.to(z.device)[t].to(dtype)[..., None]  # (m, N, 1)
        x_t = ab.sqrt() * target.to(dtype) + (1 - ab).sqrt() * noise
        cond = self.embed_condition(z)
        eps = self.predict_eps(x_t.to(z.dtype), t, cond).to(dtype)
        values = (eps - noise).square().mean(-1).mean(0)  # (N,)
        return self._reduce(values, mask, reduction, positions)

    def _check_timesteps(self, t: torch.Tensor, shape: tuple[int, ...]) -> None:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"t must be a torch.Tensor or None; got {type(t).__name__}")
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"t must be an integer tensor of timesteps; got dtype {t.dtype}")
        if tuple(t.shape) != shape:
            raise ValueError(
                f"t must have shape (num_samples, *positions) = {shape}; got {tuple(t.shape)}"
            )
        if t.device.type != "meta" and not torch.compiler.is_compiling():
            if bool(((t < 0) | (t >= self.num_train_timesteps)).any()):
                raise ValueError(
                    f"t must hold timesteps in [0, num_train_timesteps={self.num_train_timesteps}); got "
                    f"values in [{int(t.min())}, {int(t.max())}]"
                )

    @torch.no_grad()
    def sample(
        self,
        z: torch.Tensor,
        temperature: Temperature = 1.0,
        *,
        num_samples: int | None = None,
        num_steps: int | None = None,
    ) -> torch.Tensor:
        """DDPM ancestral sampling: ``(*positions, token_dim)``, or ``(m, *positions, token_dim)`` with
        ``num_samples=m``, in ``z``'s dtype (see the class docstring and :class:`PredictiveHead`).

        ``num_steps`` overrides ``num_sampling_steps``; ``temperature`` (a number or a tensor broadcastable
        to the positions) multiplies the noise injected at each step.
        """
        self._check_z(z)
        positions = z.shape[:-1]
        temperature = self._check_temperature(temperature, positions)
        m = self._check_num_samples(num_samples)
        if num_steps is not None:
            check_int("num_steps", num_steps, 1)
        steps = respaced_schedule(self.num_train_timesteps, num_steps or self.num_sampling_steps)
        zf = z.reshape(-1, self.cond_dim)
        n = zf.shape[0]
        dtype = self._loss_dtype(z)
        lead = (1 if m is None else m, n)
        cond = self.embed_condition(zf)
        temp = temperature
        if isinstance(temp, torch.Tensor):
            temp = temp.reshape(n, 1).to(dtype)
        low, high = (b.to(device=z.device, dtype=dtype) for b in self.clip_bounds())
        clip = self.clip_denoised is not None
        x = torch.randn((*lead, self.token_dim), dtype=dtype, device=z.device)
        for i in range(len(steps) - 1, -1, -1):
            t_i, ab, coef_x0, coef_xt, std = steps[i]
            t = torch.full(lead, t_i, dtype=torch.long, device=z.device)
            eps = self.predict_eps(x.to(z.dtype), t, cond).to(dtype)
            x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            if clip:
                x0 = torch.clamp(x0, low, high)
            if i == 0:  # the last step's posterior mean is x0 itself (coef_x0 = 1, coef_xt = 0)
                x = x0
            else:
                x = coef_x0 * x0 + coef_xt * x + (temp * std) * torch.randn_like(x)
        out = x.reshape(*lead[:1], *positions, self.token_dim).to(z.dtype)
        return out[0] if m is None else out
