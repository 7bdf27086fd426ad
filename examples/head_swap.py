"""Swap the predictive head of a small causal transformer with one line, and compare the heads.

The data is a 2-D sequence with a known, bimodal next-step law:

    x_{t+1} = 0.6 x_t + b_t u(x_t) + 0.1 eps_t,   b_t = +-1 with probability 1/2,  eps_t ~ N(0, I),

where ``u(x)`` is the unit vector perpendicular to ``x`` (counter-clockwise). Given the past, the next point sits in
one of two well separated blobs, so a unimodal Gaussian head must smear its mass over both (and over the empty
middle), while an implicit generator trained by the energy score, the two diffusion heads and a mixture can put their mass
where the data is.

Every head implements the same protocol (``loss(z, target, mask)`` / ``sample(z, num_samples=m)``), so the model code
never changes: the head is the one line in ``make_head``. For each head the script trains for a fixed number of
steps and reports the held-out **energy distance** between the model's next-step law and the true one,

    ED(P, Q) = 2 E||X - Y|| - E||X - X'|| - E||Y - Y'||   (X, X' ~ P, Y, Y' ~ Q),

estimated per context with unbiased U-statistics and averaged over held-out contexts (lower is better; 0 iff P = Q).

Run:  python examples/head_swap.py                     (all five heads, under a minute each on one CPU core)
      python examples/head_swap.py --heads implicit gaussian --steps 200
      python examples/head_swap.py --heads diffusion distributional_diffusion implicit --sampling-steps 2 4 8
                                                        (few-step table: diffusion heads at 2, 4, 8 steps)
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from scoringrules_torch.heads import (
    DiffusionHead,
    DistributionalDiffusionHead,
    GaussianHead,
    GaussianMixtureHead,
    ImplicitGeneratorHead,
    PredictiveHead,
)

TOKEN_DIM = 2
HEADS = ("implicit", "diffusion", "distributional_diffusion", "x0_regression", "mixture", "gaussian")


# ---------------------------------------------------------------------------------------------------------------
# data: a 2-D process with a bimodal transition
# ---------------------------------------------------------------------------------------------------------------
def true_next(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw of x_{t+1} given x_t, for every row of ``x`` (``(..., 2)``)."""
    norm = x.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    u = torch.stack([-x[..., 1], x[..., 0]], dim=-1) / norm
    b = (
        torch.randint(0, 2, x.shape[:-1] + (1,), generator=generator, device=x.device).to(x.dtype)
        * 2
        - 1
    )
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return 0.6 * x + b * u + 0.1 * eps


def make_sequences(num: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``(num, length, 2)`` sequences started from N(0, I)."""
    xs = [torch.randn(num, TOKEN_DIM, generator=generator)]
    for _ in range(length - 1):
        xs.append(true_next(xs[-1], generator))
    return torch.stack(xs, dim=1)


# ---------------------------------------------------------------------------------------------------------------
# model: causal transformer backbone + any head
# ---------------------------------------------------------------------------------------------------------------
class CausalModel(nn.Module):
    """A tiny GPT over continuous tokens; ``self.head`` is any :class:`PredictiveHead`."""

    def __init__(
        self, head: PredictiveHead, *, width: int = 64, depth: int = 2, max_len: int = 64
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(TOKEN_DIM, width)
        self.pos = nn.Parameter(torch.zeros(max_len, width))
        layer = nn.TransformerEncoderLayer(
            width,
            nhead=4,
            dim_feedforward=2 * width,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
        )
        self.backbone = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = head

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, L, 2)`` -> ``z (B, L, width)``; ``z[:, t]`` sees ``x[:, :t+1]`` only."""
        length = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=x.device)
        h = self.embed(x) + self.pos[:length]
        return self.norm(self.backbone(h, mask=mask, is_causal=True))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        z = self.hidden(x[:, :-1])
        return self.head.loss(z, x[:, 1:])


def make_head(name: str, cond_dim: int) -> PredictiveHead:
    """The one line that changes between runs."""
    if (
        name == "implicit"
    ):  # EAR: MLP generator trained by the energy score (pairs estimator, 2 pairs)
        return ImplicitGeneratorHead(
            TOKEN_DIM, cond_dim, width=64, depth=2, noise_dim=16, num_samples=4
        )
    if name == "diffusion":  # MAR: AdaLN denoiser trained by denoising score matching
        # (x0 clipped to the training targets' range by default: see DiffusionHead's docstring)
        return DiffusionHead(
            TOKEN_DIM, cond_dim, width=64, depth=2, num_sampling_steps=50, num_samples=4
        )
    if name == "distributional_diffusion":  # De Bortoli et al.: the denoiser draws x0, energy-score trained
        return DistributionalDiffusionHead(
            TOKEN_DIM, cond_dim, width=64, depth=2, noise_dim=16, num_sampling_steps=8, num_samples=4
        )
    if name == "x0_regression":  # ablation: the same network and sampler trained by x0 regression
        # (beta=2, lambda=0: the squared error, whose minimiser is the posterior MEAN, a standard diffusion model)
        return DistributionalDiffusionHead(
            TOKEN_DIM, cond_dim, width=64, depth=2, noise_dim=16, num_sampling_steps=8, num_samples=4,
            beta=2.0, spread_weight=0.0,
        )
    if name == "mixture":  # GIVT-like mixture of Gaussians trained by the log score
        return GaussianMixtureHead(TOKEN_DIM, cond_dim, num_components=4, hidden=64, depth=2)
    if name == "gaussian":  # diagonal Gaussian trained by the log score
        return GaussianHead(TOKEN_DIM, cond_dim, hidden=64, depth=2)
    raise ValueError(f"head must be one of {HEADS}; got {name!r}")


# ---------------------------------------------------------------------------------------------------------------
# evaluation: energy distance to the true conditional law
# ---------------------------------------------------------------------------------------------------------------
def _mean_offdiag(d: torch.Tensor) -> torch.Tensor:
    k = d.shape[-1]
    return d.sum((-1, -2)) / (k * (k - 1))


def energy_distance(model_samples: torch.Tensor, true_samples: torch.Tensor) -> torch.Tensor:
    """Unbiased ED per context; ``(C, m, 2)`` and ``(C, k, 2)`` -> ``(C,)``."""
    cross = torch.cdist(model_samples, true_samples).mean((-1, -2))
    within_p = _mean_offdiag(torch.cdist(model_samples, model_samples))
    within_q = _mean_offdiag(torch.cdist(true_samples, true_samples))
    return 2 * cross - within_p - within_q


@torch.no_grad()
def evaluate(
    model: CausalModel,
    seqs: torch.Tensor,
    *,
    num_samples: int = 32,
    seed: int = 1,
    num_steps: int | None = None,
) -> float:
    """Mean held-out energy distance over every (sequence, position) context of ``seqs``.

    ``num_steps`` sets the number of sampling steps of a diffusion head (its default when None).
    """
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    z = model.hidden(seqs).reshape(-1, model.head.cond_dim)  # (C, D)
    last = seqs.reshape(-1, TOKEN_DIM)  # x_t for each context
    torch.manual_seed(seed)
    kwargs = {} if num_steps is None else {"num_steps": num_steps}
    drawn = model.head.sample(z, num_samples=num_samples, **kwargs).transpose(0, 1)  # (C, m, 2)
    truth = true_next(last.unsqueeze(1).expand(-1, num_samples, -1), gen)  # (C, k, 2)
    model.train()
    return energy_distance(drawn.float(), truth.float()).mean().item()


# ---------------------------------------------------------------------------------------------------------------
def train_head(
    name: str,
    *,
    steps: int = 600,
    batch: int = 32,
    length: int = 16,
    lr: float = 2e-3,
    seed: int = 0,
    eval_seqs: int = 64,
    sampling_steps: tuple[int, ...] = (),
) -> dict[str, float]:
    """Train the model with head ``name``; return the held-out energy distance and the time taken.

    For the diffusion heads, ``sampling_steps`` adds ``energy_distance@S``: the held-out energy distance
    when sampling with ``S`` steps (same trained model, same evaluation noise).
    """
    torch.manual_seed(seed)
    data_gen = torch.Generator().manual_seed(seed)
    model = CausalModel(make_head(name, cond_dim=64))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    start, start_cpu = time.perf_counter(), time.process_time()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        x = make_sequences(batch, length + 1, data_gen)
        loss = model.loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        sched.step()
    train_s, train_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    held_out = make_sequences(eval_seqs, length, torch.Generator().manual_seed(10_000 + seed))
    ed = evaluate(model, held_out)
    out = {
        "energy_distance": ed,
        "final_loss": loss.item(),
        "train_seconds": train_s,
        "train_cpu_seconds": train_cpu,
    }
    if isinstance(model.head, (DiffusionHead, DistributionalDiffusionHead)):
        for num_steps in sampling_steps:
            out[f"energy_distance@{num_steps}"] = evaluate(model, held_out, num_steps=num_steps)
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sampling-steps",
        type=int,
        nargs="*",
        default=[],
        help="also evaluate the diffusion heads with these numbers of sampling steps (e.g. 2 4 8)",
    )
    args = parser.parse_args(argv)
    results = {}
    for name in args.heads:
        res = train_head(
            name, steps=args.steps, seed=args.seed, sampling_steps=tuple(args.sampling_steps)
        )
        results[name] = res
        few = "".join(
            f", @{s} steps {res[f'energy_distance@{s}']:.4f}"
            for s in args.sampling_steps
            if f"energy_distance@{s}" in res
        )
        print(
            f"{name:>10}: held-out energy distance {res['energy_distance']:.4f}{few}  "
            f"(final train loss {res['final_loss']:.3f}; training {res['train_seconds']:.1f} s wall, "
            f"{res['train_cpu_seconds']:.1f} s CPU)",
            flush=True,
        )
    return results


if __name__ == "__main__":
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    main()
