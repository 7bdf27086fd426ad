"""The models: a CALM autoencoder, the continuous (energy-score) LM and the token-level baseline.

Shapes: token ids ``(B, L)`` with ``L = T * K``; chunks ``(B, T, K)``; latents ``(B, T, latent_dim)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from scoringrules_torch.heads import ImplicitGeneratorHead

__all__ = ["ChunkAutoencoder", "Backbone", "ContinuousLM", "TokenLM"]


class ChunkAutoencoder(nn.Module):
    """K tokens -> one latent vector (variational posterior) -> K tokens, as CALM's autoencoder.

    Encoder: token embeddings (``ae_embed``) of the K tokens, concatenated, an MLP to ``(mu, log sigma)``.
    Decoder: an MLP from the latent to K embedding-sized vectors, logits by the tied embedding matrix.
    Training loss: reconstruction cross-entropy of the K tokens from a posterior draw, plus
    ``kl_weight * sum_d max(KL_d, kl_clamp)`` (the per-dimension KL to N(0, 1) with CALM's free-bits floor).
    Robustness as CALM: input tokens are replaced by a [MASK] id with probability ``token_dropout`` and dropout
    ``latent_dropout`` is applied to the sampled latent (training only).
    """

    def __init__(self, vocab: int, chunk: int, latent_dim: int, embed: int = 64, hidden: int = 256, *,
                 token_dropout: float = 0.15, latent_dropout: float = 0.15, kl_weight: float = 1e-3,
                 kl_clamp: float = 0.5) -> None:
        super().__init__()
        self.vocab, self.chunk, self.latent_dim = vocab, chunk, latent_dim
        self.token_dropout, self.kl_weight, self.kl_clamp = token_dropout, kl_weight, kl_clamp
        self.embed = nn.Embedding(vocab + 1, embed)  # the last row is [MASK]
        self.encoder = nn.Sequential(
            nn.Linear(chunk * embed, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 2 * latent_dim),
        )
        self.latent_drop = nn.Dropout(latent_dropout)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, chunk * embed),
        )

    def _check_chunks(self, chunks: torch.Tensor) -> None:
        if not isinstance(chunks, torch.Tensor) or chunks.dtype != torch.long:
            raise TypeError(f"chunks must be a LongTensor of token ids; got {getattr(chunks, 'dtype', chunks)}")
        if chunks.dim() < 1 or chunks.shape[-1] != self.chunk:
            raise ValueError(f"chunks must have shape (..., K={self.chunk}); got {tuple(chunks.shape)}")

    def posterior(self, chunks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, sigma)``, each ``(..., latent_dim)``, of the chunks ``(..., K)`` (token dropout in training)."""
        self._check_chunks(chunks)
        if self.training and self.token_dropout > 0:
            drop = torch.rand(chunks.shape, device=chunks.device) < self.token_dropout
            chunks = torch.where(drop, torch.full_like(chunks, self.vocab), chunks)
        h = self.embed(chunks).flatten(-2)
        mu, log_sigma = self.encoder(h).chunk(2, dim=-1)
        return mu, log_sigma.clamp(-10.0, 5.0).exp()

    def logits(self, latent: torch.Tensor) -> torch.Tensor:
        """Token logits ``(..., K, vocab)`` of latents ``(..., latent_dim)``."""
        h = self.decoder(latent).unflatten(-1, (self.chunk, -1))
        return h @ self.embed.weight[: self.vocab].T

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Greedy tokens ``(..., K)`` of latents (argmax per position, as CALM decodes)."""
        return self.logits(latent).argmax(-1)

    def loss(self, chunks: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        mu, sigma = self.posterior(chunks)
        z = self.latent_drop(mu + sigma * torch.randn_like(mu))
        rec = F.cross_entropy(self.logits(z).flatten(0, -2), chunks.reshape(-1))
        kl = 0.5 * (mu.square() + sigma.square() - 1.0) - sigma.log()
        kl_term = kl.clamp_min(self.kl_clamp).sum(-1).mean()
        loss = rec + self.kl_weight * kl_term
        return loss, {"rec": rec.item(), "kl": kl.sum(-1).mean().item()}


class _Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, w))
        return x + self.mlp(self.ln2(x))


class Backbone(nn.Module):
    """A small pre-LN causal transformer (learned positions), shared by both language models."""

    def __init__(self, width: int, depth: int, heads: int, max_len: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(max_len, width))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(depth))
        self.ln = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pos.shape[0]:
            raise ValueError(f"sequence of {x.shape[1]} positions exceeds the context {self.pos.shape[0]}")
        x = x + self.pos[: x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.ln(x)


class TokenLM(nn.Module):
    """Token-level baseline: embedding, the backbone, a tied softmax head, cross-entropy."""

    def __init__(self, vocab: int, width: int, depth: int, heads: int, context: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(vocab, width)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.backbone = Backbone(width, depth, heads, context)

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.embed(tokens)) @ self.embed.weight.T

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token cross-entropy over ``tokens (B, L)`` (positions 1..L-1 predicted)."""
        logits = self.logits(tokens[:, :-1])
        return F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].reshape(-1))


class ContinuousLM(nn.Module):
    """CALM's continuous LM: chunk t-1's tokens in, a draw of chunk t's latent out.

    Input side (discrete, as CALM): the K token embeddings of the previous chunk, concatenated and compressed
    (``Linear(K W, 2W) - SiLU - Linear(2W, W) - LayerNorm``). Output side: the library's
    :class:`~scoringrules_torch.heads.ImplicitGeneratorHead`, trained by the energy score against
    ``target_samples`` draws of the frozen autoencoder's posterior of the true chunk (``loss(...,
    target_dim=0)``, the multi-target energy score, ``beta = 1``, unbiased "fair" model term). A draw is
    turned into K tokens by the autoencoder's decoder.
    """

    def __init__(self, vocab: int, chunk: int, latent_dim: int, width: int, depth: int, heads: int,
                 context: int, *, head_width: int = 256, head_depth: int = 3, num_samples: int = 8) -> None:
        super().__init__()
        self.vocab, self.chunk = vocab, chunk
        self.embed = nn.Embedding(vocab, width)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.compress = nn.Sequential(
            nn.Linear(chunk * width, 2 * width), nn.SiLU(), nn.Linear(2 * width, width), nn.LayerNorm(width)
        )
        self.backbone = Backbone(width, depth, heads, context // chunk)
        self.head = ImplicitGeneratorHead(
            latent_dim, width, width=head_width, depth=head_depth, num_samples=num_samples,
            estimator="fair", log_terms=True,
        )

    def hidden(self, chunks: torch.Tensor) -> torch.Tensor:
        """``(B, T, K)`` chunk ids -> ``(B, T, W)``: the state after chunk t, which predicts chunk t + 1."""
        return self.backbone(self.compress(self.embed(chunks).flatten(-2)))

    def loss(self, tokens: torch.Tensor, autoencoder: ChunkAutoencoder, target_samples: int) -> torch.Tensor:
        """Energy score of the head's draws against ``target_samples`` AE-posterior draws per chunk."""
        chunks = tokens.unflatten(1, (-1, self.chunk))
        with torch.no_grad():
            mu, sigma = autoencoder.posterior(chunks[:, 1:])
            targets = mu + sigma * torch.randn((target_samples, *mu.shape), dtype=mu.dtype, device=mu.device)
        return self.head.loss(self.hidden(chunks[:, :-1]), targets, target_dim=0)
