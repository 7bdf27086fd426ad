"""The EAR backbone: a bidirectional (or causal) transformer over class-buffer tokens and continuous tokens.

This re-implements the behaviour of the official EAR code (Shao et al., 2025), which is a decoder-only variant of
MAR (Li et al., 2024):

1. ``z_proj``: a linear map of every continuous token (``token_dim -> width``).
2. ``buffer_size`` class-buffer positions are prepended; each holds the same class-embedding vector. In training,
   with probability ``label_drop_prob`` per sample, that vector is replaced by a learned null class
   (``fake_latent``), which classifier-free guidance later uses as the unconditional input.
3. Masked positions are replaced by one learned ``mask_token`` (buffer positions are never masked), then a learned
   absolute position embedding is added. There is no input LayerNorm.
4. Pre-norm ViT blocks (LayerNorm eps 1e-6, GELU MLP, attention dropout and projection dropout, no drop-path),
   a final LayerNorm, and the buffer outputs are dropped: ``z`` has one row per image token.
5. A predictive head (by default EAR's implicit MLP generator trained with the energy score) turns ``z`` into a
   distribution over each token; the loss is its masked mean over the masked tokens.

Training masks, per micro-batch, one ratio ``r ~ N(1, 0.25)`` truncated to ``[mask_ratio_min, 1]`` and, per
sample, the first ``ceil(r L)`` positions of a random order. Sampling unmasks tokens in a random order over
``num_iter`` steps following a cosine schedule, with classifier-free guidance applied to ``z`` before the head.

With ``causal=True`` (the paper's Table 5 ablation) the attention is causal, the order is raster order and
training is teacher forcing: position ``buffer_size - 1 + i`` predicts token ``i`` from the class buffer and the
tokens before it.

References:
    Shao, Meng, Zhou (2025). Continuous Visual Autoregressive Generation via Score Maximization. ICML.
    Li, Tian, Li, Deng, He (2024). Autoregressive Image Generation without Vector Quantization. NeurIPS.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from reference.ear.configs import ModelConfig
from scoringrules_torch.heads.guidance import cfg_scale_schedule, guide

__all__ = ["EAR", "Block", "build_head", "build_model", "sampling_plan", "param_groups"]


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (bias).

    ``sdpa=True`` uses ``torch.nn.functional.scaled_dot_product_attention``, which picks the flash or
    memory-efficient kernels on GPUs; ``sdpa=False`` is the explicit ``softmax(q k^T / sqrt(d)) v`` (softmax in
    float32 or wider), kept as the plain reference path.
    """

    def __init__(
        self, dim: int, num_heads: int, attn_drop: float, proj_drop: float, sdpa: bool = True
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"width {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.sdpa = sdpa
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        b, t, c = x.shape
        qkv = (
            self.qkv(x).reshape(b, t, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        q, k, v = qkv.unbind(0)
        p = self.attn_drop if self.training else 0.0
        if self.sdpa:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
        else:
            wide = torch.promote_types(q.dtype, torch.float32)
            scores = (q @ k.transpose(-2, -1)).to(wide) * (q.shape[-1] ** -0.5)
            if causal:
                keep = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
                scores = scores.masked_fill(~keep, float("-inf"))
            attn = F.dropout(scores.softmax(dim=-1), p=p).to(v.dtype)
            out = attn @ v
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, t, c)))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        attn_drop: float,
        proj_drop: float,
        sdpa: bool = True,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, attn_drop, proj_drop, sdpa)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), proj_drop)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), causal)
        return x + self.mlp(self.norm2(x))


def build_head(config: ModelConfig) -> nn.Module:
    """The predictive head named by ``config.head``, from :mod:`scoringrules_torch.heads`.

    ``"implicit"`` is EAR's MLP generator: uniform noise in ``[-0.5, 0.5]^noise_dim`` enters through AdaLN,
    trained with the energy score (exponent ``beta``) on ``score_batch_mul`` disjoint sample pairs per token,
    with the spread term weighted by ``train_temperature`` (EAR's tau_train; 1 is strictly proper).
    ``"noise"`` picks the generator's noise (``"uniform"``, EAR's, or ``"gaussian"``, the paper's Table 3).
    ``"diffusion"`` is MAR's denoiser (diffusion loss) with MAR's unclipped sampler, for comparison.
    ``"distributional_diffusion"`` is De Bortoli et al.'s denoiser that draws ``x0`` (generalised energy score with
    exponent ``beta`` on ``2 * score_batch_mul`` draws per noised token; ``train_temperature`` is the paper's
    spread weight lambda, in ``[0, 1]``; Gaussian noise of size ``noise_dim``; ``diffusion_steps`` DDIM steps by
    default). Both diffusion heads take the number of sampling steps at sampling time
    (:meth:`EAR.sample`'s ``head_steps``). ``"gaussian"`` is the paper's Gaussian
    Transformer (Section 5.4): a residual-MLP read-out of the mean (``head_width``, ``head_depth``) with a fixed
    unit standard deviation, trained with the log score of ``N(mu, I)``, i.e. half the squared error plus a
    constant (the MSE loss); its sampling temperature is the inference standard deviation.
    """
    from scoringrules_torch.heads import (
        DiffusionHead,
        DistributionalDiffusionHead,
        GaussianHead,
        ImplicitGeneratorHead,
    )

    if config.head == "implicit":
        return ImplicitGeneratorHead(
            config.token_dim,
            config.width,
            width=config.head_width,
            depth=config.head_depth,
            noise_dim=config.noise_dim,
            noise=config.noise,
            num_samples=2 * config.score_batch_mul,
            score="energy",
            beta=config.beta,
            estimator="pairs",
            train_temperature=config.train_temperature,
        )
    if config.head == "diffusion":
        return DiffusionHead(
            config.token_dim,
            config.width,
            width=config.head_width,
            depth=config.head_depth,
            num_sampling_steps=config.diffusion_steps,
            num_samples=config.score_batch_mul,
            clip_denoised=None,  # MAR's unclipped sampler, as the official comparison uses
        )
    if config.head == "distributional_diffusion":
        return DistributionalDiffusionHead(
            config.token_dim,
            config.width,
            width=config.head_width,
            depth=config.head_depth,
            noise_dim=config.noise_dim,
            num_sampling_steps=config.diffusion_steps,
            num_samples=2 * config.score_batch_mul,
            beta=config.beta,
            spread_weight=config.train_temperature,
        )
    if config.head == "gaussian":
        return GaussianHead(
            config.token_dim,
            config.width,
            std=1.0,
            score="log",
            hidden=config.head_width,
            depth=config.head_depth,
        )
    raise ValueError(
        "model.head must be 'implicit', 'diffusion', 'distributional_diffusion' or 'gaussian'; got "
        f"{config.head!r}"
    )


def sampling_plan(
    num_tokens: int, num_iter: int, cfg: float = 1.0, cfg_schedule: str = "linear"
) -> list[tuple[int, int, float]]:
    """The masked-AR sampler's schedule: per step, (tokens predicted, tokens still masked after, CFG scale).

    At step ``k = 0 .. K-1`` the number of tokens left masked is
    ``max(1, min(masked_now - 1, floor(L cos(pi/2 (k+1)/K))))``; the last step predicts all remaining tokens.
    The linear CFG scale is ``1 + (cfg - 1) (L - masked_after) / L`` with the clamped count (so it never
    reaches ``cfg`` exactly); ``"constant"`` uses ``cfg`` at every step.

    Args:
        num_tokens: ``L``, tokens per image.
        num_iter: ``K``, AR steps (1 <= K).
        cfg: guidance scale (1 = no guidance).
        cfg_schedule: ``"linear"`` or ``"constant"``.

    Returns:
        A list of ``K`` tuples ``(num_predicted, num_masked_after, cfg_scale)``.

    Examples:
        >>> plan = sampling_plan(256, 64, cfg=3.0)
        >>> sum(p for p, _, _ in plan), [p for p, _, _ in plan[:3]]
        (256, [1, 1, 1])
    """
    if num_iter < 1 or num_tokens < 1:
        raise ValueError(f"num_iter and num_tokens must be >= 1; got {num_iter} and {num_tokens}")
    if cfg_schedule not in ("linear", "constant"):
        raise ValueError(f"cfg_schedule must be 'linear' or 'constant'; got {cfg_schedule!r}")
    plan = []
    masked = num_tokens
    for k in range(num_iter):
        target = math.floor(num_tokens * math.cos(math.pi / 2.0 * (k + 1) / num_iter))
        after = max(1, min(masked - 1, target))
        scale = cfg_scale_schedule(cfg, num_tokens, after, schedule=cfg_schedule)
        if k == num_iter - 1:
            plan.append((masked, 0, scale))
            masked = 0
        else:
            plan.append((masked - after, after, scale))
            masked = after
    return plan


class EAR(nn.Module):
    """EAR: transformer backbone + predictive head.

    ``forward(tokens, labels)`` returns the training loss (masked mean of the head's loss over the masked
    tokens); :meth:`sample` generates tokens. The head is any object with ``loss(z, target, mask)`` and
    ``sample(z, temperature)`` (the protocol of :mod:`scoringrules_torch.heads`); parameters whose names start
    with ``head.`` are the head's.

    Args:
        config: sizes and behaviour (:class:`~reference.ear.configs.ModelConfig`).
        head: a head module; by default :func:`build_head` (config).

    Shape:
        - tokens: ``(B, num_tokens, token_dim)``; labels: ``(B,)`` int64 in ``[0, num_classes)``.
        - :meth:`backbone` output ``z``: ``(B, num_tokens, width)``.
    """

    def __init__(self, config: ModelConfig, head: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        c = config
        if not 0 <= c.label_drop_prob < 1 or not 0 < c.mask_ratio_min <= 1:
            raise ValueError(
                f"label_drop_prob must be in [0, 1) and mask_ratio_min in (0, 1]; got {c.label_drop_prob} "
                f"and {c.mask_ratio_min}"
            )
        if c.causal and c.buffer_size < 1:
            raise ValueError(
                "causal=True needs buffer_size >= 1 (the last buffer position predicts token 0)"
            )
        self.z_proj = nn.Linear(c.token_dim, c.width)
        self.class_emb = nn.Embedding(c.num_classes, c.width)
        self.fake_latent = nn.Parameter(torch.zeros(1, c.width))
        self.mask_token = None if c.causal else nn.Parameter(torch.zeros(1, 1, c.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, c.buffer_size + c.num_tokens, c.width))
        self.blocks = nn.ModuleList(
            Block(c.width, c.num_heads, c.mlp_ratio, c.attn_dropout, c.proj_dropout, c.sdpa)
            for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.width, eps=1e-6)
        self._init_weights()
        # the head is attached after the backbone's init so that it keeps its own (zero-init modulation)
        self.head = head if head is not None else build_head(c)

    def _init_weights(self) -> None:
        for p in (self.class_emb.weight, self.fake_latent, self.mask_token, self.pos_embed):
            if p is not None:
                nn.init.normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # -- pieces ---------------------------------------------------------------------------------------
    def class_vectors(self, labels: torch.Tensor, null: torch.Tensor | None = None) -> torch.Tensor:
        """Class embeddings ``(B, width)``; rows where ``null`` is True get the learned null class."""
        emb = self.class_emb(labels)
        if null is None:
            return emb
        return torch.where(null[:, None], self.fake_latent.to(emb.dtype).expand_as(emb), emb)

    def draw_num_masked(self) -> int:
        """Masked tokens for one training micro-batch: ``ceil(r L)`` with ``r ~ N(1, 0.25)`` truncated to
        ``[mask_ratio_min, 1]`` (drawn on the CPU: a Python int, no device synchronisation)."""
        L = self.config.num_tokens
        ratio = torch.empty(1)
        nn.init.trunc_normal_(ratio, mean=1.0, std=0.25, a=self.config.mask_ratio_min, b=1.0)
        return min(L, max(1, math.ceil(L * float(ratio))))

    @torch.compiler.disable
    def random_mask(
        self, batch: int, device: torch.device, num_masked: int | None = None
    ) -> torch.Tensor:
        """Training mask ``(B, L)`` (True = masked): ``num_masked`` positions (default
        :meth:`draw_num_masked`) of a random order per sample.

        Runs eagerly under ``torch.compile``: the number of masked tokens is a Python int drawn per step, and
        tracing it would recompile the graph for every value (measured: 2.8x slower steps than eager).
        """
        L = self.config.num_tokens
        if num_masked is None:
            num_masked = self.draw_num_masked()
        orders = torch.rand(batch, L, device=device).argsort(dim=-1)
        mask = torch.zeros(batch, L, dtype=torch.bool, device=device)
        return mask.scatter_(1, orders[:, :num_masked], True)

    def backbone(
        self, tokens: torch.Tensor, mask: torch.Tensor | None, class_vec: torch.Tensor
    ) -> torch.Tensor:
        """Hidden states ``z (B, L, width)`` for ``tokens (B, L, token_dim)`` with ``mask (B, L)`` (True = masked).

        In causal mode ``mask`` is ignored and row ``i`` of ``z`` depends only on the class and tokens ``< i``.
        """
        c = self.config
        b, L, _ = tokens.shape
        if L != c.num_tokens:
            raise ValueError(
                f"tokens must have {c.num_tokens} positions; got shape {tuple(tokens.shape)}"
            )
        x = self.z_proj(tokens)
        if not c.causal:
            x = torch.where(mask[..., None], self.mask_token.to(x.dtype), x)
        buf = class_vec[:, None, :].to(x.dtype).expand(b, c.buffer_size, c.width)
        x = torch.cat([buf, x], dim=1) + self.pos_embed
        for blk in self.blocks:
            if c.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(blk, x, c.causal, use_reentrant=False)
            else:
                x = blk(x, c.causal)
        x = self.norm(x)
        if c.causal:
            return x[:, c.buffer_size - 1 : c.buffer_size - 1 + L]
        return x[:, c.buffer_size :]

    # -- training ---------------------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Training loss (a scalar): the head's loss averaged over the masked tokens (all tokens if causal)."""
        b = tokens.shape[0]
        num_masked = self.config.num_tokens
        if self.config.causal:
            mask = torch.ones(b, self.config.num_tokens, dtype=torch.bool, device=tokens.device)
        else:
            num_masked = self.draw_num_masked()
            mask = self.random_mask(b, tokens.device, num_masked)
        null = None
        if self.training:  # (also with p = 0, so that the null class is in the graph for DDP)
            null = torch.rand(b, device=tokens.device) < self.config.label_drop_prob
        z = self.backbone(tokens, mask, self.class_vectors(labels, null))
        if self.config.head_on_masked_only:
            # the masked mean over all positions equals the plain mean over the masked ones; selecting them
            # first skips the head's work on visible tokens. Every row has ``num_masked`` masked positions, so
            # they are gathered with a known shape (no ``nonzero``, no host synchronisation), in the
            # row-major order of ``z[mask]``.
            idx = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, :num_masked]
            zi = z.gather(1, idx[..., None].expand(-1, -1, z.shape[-1]))
            ti = tokens.gather(1, idx[..., None].expand(-1, -1, tokens.shape[-1]))
            return self.head.loss(zi.reshape(-1, z.shape[-1]), ti.reshape(-1, tokens.shape[-1]))
        return self.head.loss(z, tokens, mask)

    # -- sampling -------------------------------------------------------------------------------------
    def compile_for_sampling(self, **compile_kwargs) -> EAR:
        """Compile, in place, what sampling runs: each backbone block and the head's network.

        The head is compiled with ``dynamic=True`` (the number of tokens predicted changes from step to step);
        parameters and ``state_dict`` keys are unchanged. Compile the model you sample with (e.g. the EMA
        copy); a ``copy.deepcopy`` of a compiled model is not supported. Returns ``self``.
        """
        for blk in self.blocks:
            blk.compile(**compile_kwargs)
        # a diffusion head runs its denoiser ``net`` many times per call; other heads run their forward once
        net = getattr(self.head, "net", None)
        (net if isinstance(net, nn.Module) else self.head).compile(dynamic=True, **compile_kwargs)
        return self

    @torch.no_grad()
    def sample(
        self,
        labels: torch.Tensor,
        *,
        num_iter: int = 64,
        cfg: float = 1.0,
        cfg_schedule: str = "linear",
        temperature: float = 1.0,
        head_steps: int | None = None,
    ) -> torch.Tensor:
        """Generate tokens ``(B, L, token_dim)`` for class ``labels (B,)``.

        Bidirectional: :func:`sampling_plan` over a random order per image; each step runs the backbone on the
        current tokens, predicts the scheduled tokens with one head call (already predicted tokens are never
        revised). Causal: ``L`` steps in raster order. With ``cfg != 1`` the batch is doubled (class / null
        class) and the head sees ``z_u + s (z_c - z_u)``. ``temperature`` is passed to the head (EAR: tau_infer,
        scaling only the AdaLN shifts of the generator's residual blocks). ``head_steps`` sets the number of
        sampling steps of a diffusion head (``None``: the head's default, ``model.diffusion_steps``); other
        heads draw in one pass and reject it.
        """
        head_kwargs = {}
        if head_steps is not None:
            if isinstance(head_steps, bool) or not isinstance(head_steps, int) or head_steps < 1:
                raise ValueError(f"head_steps must be None or an int >= 1; got {head_steps!r}")
            if "num_steps" not in inspect.signature(self.head.sample).parameters:
                raise ValueError(
                    f"head_steps={head_steps} needs a head with sampling steps (model.head 'diffusion' or "
                    f"'distributional_diffusion'); this model's head is {type(self.head).__name__}"
                )
            head_kwargs["num_steps"] = head_steps
        c = self.config
        b, L = labels.shape[0], c.num_tokens
        device = labels.device
        dtype = self.z_proj.weight.dtype
        use_cfg = cfg != 1.0
        cond = self.class_vectors(labels)
        if use_cfg:
            class_vec = torch.cat([cond, self.fake_latent.expand_as(cond)])
        else:
            class_vec = cond
        tokens = torch.zeros(b, L, c.token_dim, device=device, dtype=dtype)

        def guided_z(tok: torch.Tensor, msk: torch.Tensor | None) -> torch.Tensor:
            if use_cfg:
                return self.backbone(
                    torch.cat([tok, tok]), None if msk is None else torch.cat([msk, msk]), class_vec
                )
            return self.backbone(tok, msk, class_vec)

        if c.causal:
            for i in range(L):
                z = guided_z(tokens, None)[:, i]
                scale = 1.0 + (cfg - 1.0) * (i + 1) / L if cfg_schedule == "linear" else cfg
                if use_cfg:
                    z = guide(z[:b], z[b:], scale)
                tokens[:, i] = self.head.sample(z, temperature=temperature, **head_kwargs).to(dtype)
            return tokens

        mask = torch.ones(b, L, dtype=torch.bool, device=device)
        orders = torch.rand(b, L, device=device).argsort(dim=-1)
        for _num_pred, after, scale in sampling_plan(L, num_iter, cfg, cfg_schedule):
            z = guided_z(tokens, mask)
            new_mask = (
                torch.zeros_like(mask).scatter_(1, orders[:, :after], True)
                if after > 0
                else torch.zeros_like(mask)
            )
            to_pred = mask & ~new_mask
            zc = z[:b][to_pred]
            if use_cfg:
                zc = guide(zc, z[b:][to_pred], scale)
            tokens[to_pred] = self.head.sample(zc, temperature=temperature, **head_kwargs).to(dtype)
            mask = new_mask
        return tokens


def build_model(config: ModelConfig) -> EAR:
    """An :class:`EAR` with the head named in ``config`` (works under ``torch.device("meta")``)."""
    return EAR(config)


def param_groups(model: nn.Module, *, weight_decay: float, score_lrscale: float) -> list[dict]:
    """AdamW parameter groups as the official code forms them.

    - 1-D tensors and biases (backbone and head): no weight decay, lr x 1;
    - the head's other (2-D) weights (names starting with ``head.``): no weight decay, lr x ``score_lrscale``;
    - everything else (backbone matrices, class embedding, null class, mask token, position embedding):
      weight decay ``weight_decay``, lr x 1.

    Each group carries ``lr_scale``, which the trainer multiplies into the scheduled lr.
    """
    no_decay, head_w, decay = [], [], []
    for name, p in _named_trainable(model):
        if p.ndim <= 1 or name.endswith(".bias"):
            no_decay.append(p)
        elif name.startswith("head."):
            head_w.append(p)
        else:
            decay.append(p)
    return [
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0, "name": "no_decay"},
        {"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0, "name": "decay"},
        {"params": head_w, "weight_decay": 0.0, "lr_scale": score_lrscale, "name": "head_matrices"},
    ]


def _named_trainable(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    for name, p in model.named_parameters():
        if p.requires_grad:
            yield name, p
