r"""BrierLM (CALM's likelihood-free metric) and CALM's likelihood-free temperature sampler.

**Brier score from two samples.** For a predictive law :math:`P` over a discrete outcome and the observed
outcome :math:`y`, CALM scores :math:`\mathrm{Brier}(P, y) = 2P(y) - \sum_x P(x)^2` (higher is better; it is
one minus the usual squared-error Brier score). With two independent model draws :math:`x_1, x_2 \sim P`,

.. math:: \widehat{B} = \mathbb 1\{x_1 = y\} + \mathbb 1\{x_2 = y\} - \mathbb 1\{x_1 = x_2\}

is unbiased: :math:`E\,\widehat B = 2P(y) - \sum_x P(x)^2`. **Brier-n** applies this to the next ``n`` tokens
as one outcome (the whole n-gram must match), averaged over the evaluated positions. **BrierLM** is
:math:`100\cdot(\prod_{n=1}^{4}\mathrm{Brier}\text{-}n)^{1/4}`, the geometric mean of Brier-1..4 times 100.

**Temperature sampling (T = 1/n).** :math:`P_T(x) \propto P(x)^{n}`. CALM's exact sampler draws ``n``
samples and accepts when they are all equal (repeating otherwise); its batched form, implemented here, draws
``N`` candidates once, and picks a distinct candidate with weight :math:`\binom{c}{n}` where ``c`` is its
count among the ``N`` (an unbiased estimate of :math:`\binom{N}{n} P(x)^n`); when no candidate occurs ``n``
times it falls back to ``n - 1``, ..., 1 (plain sampling).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "brier_estimates",
    "brier_n",
    "brier_n_stderr",
    "brierlm",
    "select_with_temperature",
    "calm_eval_draws",
    "token_eval_draws",
]


def _check_ids(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids; got {type(t).__name__}")
    if t.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64) or t.is_complex():
        raise TypeError(f"{name} must hold integer token ids; got dtype {t.dtype}")
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape (positions, n_max); got {tuple(t.shape)}")


def brier_estimates(x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-position two-sample estimates ``(positions, n_max)``: column ``n-1`` scores the n-gram prefix.

    ``x1``, ``x2``: two independent model continuations ``(positions, n_max)``; ``y``: the true ones.
    """
    for name, t in (("x1", x1), ("x2", x2), ("y", y)):
        _check_ids(name, t)
    if not (x1.shape == x2.shape == y.shape):
        raise ValueError(
            f"x1, x2 and y must have the same shape (positions, n_max); got {tuple(x1.shape)}, "
            f"{tuple(x2.shape)}, {tuple(y.shape)}"
        )
    if y.shape[0] == 0:
        raise ValueError("no positions to score (positions = 0)")
    # a prefix matches when every token so far matches: cumulative product of the per-token matches
    m1 = (x1 == y).long().cumprod(-1)
    m2 = (x2 == y).long().cumprod(-1)
    m12 = (x1 == x2).long().cumprod(-1)
    return (m1 + m2 - m12).double()


def brier_n(x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> list[float]:
    """``[Brier-1, ..., Brier-n_max]``: the mean two-sample estimates over positions."""
    return brier_estimates(x1, x2, y).mean(0).tolist()


def brier_n_stderr(x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Standard errors of :func:`brier_n` (sample standard deviation over positions / sqrt(positions);
    positions treated as independent, which neighbouring positions of one text are not quite)."""
    est = brier_estimates(x1, x2, y)
    if est.shape[0] < 2:
        return [float("nan")] * est.shape[1]
    return (est.std(0) / est.shape[0] ** 0.5).tolist()


def brierlm(briers: list[float]) -> float:
    """``100 * geometric mean`` of Brier-1..4 (an estimate <= 0, possible for a bad model, gives 0)."""
    if len(briers) != 4:
        raise ValueError(f"BrierLM combines Brier-1..4; got {len(briers)} values")
    if any(not math.isfinite(b) for b in briers):
        raise ValueError(f"Brier-n values must be finite; got {briers}")
    if min(briers) <= 0:
        return 0.0
    return 100.0 * math.exp(sum(math.log(b) for b in briers) / 4)


def select_with_temperature(candidates: torch.Tensor, n: int, generator=None) -> torch.Tensor:
    """CALM's batched sampler at ``T = 1/n``: ``candidates (N, P, K)`` draws of K-token tuples -> ``(P, K)``.

    For each position, a distinct tuple with count ``c`` among the ``N`` is chosen with weight
    ``C(c, n)``; with no tuple seen ``n`` times, ``n - 1`` is tried, down to 1 (a uniform draw = plain sampling).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (temperature 1/n) must be an int >= 1; got {n!r}")
    if candidates.dim() != 3:
        raise ValueError(f"candidates must have shape (N, positions, K); got {tuple(candidates.shape)}")
    num = candidates.shape[0]
    out = []
    for p in range(candidates.shape[1]):
        uniq, counts = torch.unique(candidates[:, p], dim=0, return_counts=True)
        chosen = None
        for k in range(min(n, num), 0, -1):
            weights = torch.tensor(
                [math.comb(int(c), k) for c in counts.tolist()], dtype=torch.float64
            )
            if weights.sum() > 0:
                chosen = uniq[torch.multinomial(weights, 1, generator=generator).item()]
                break
        out.append(chosen)
    return torch.stack(out)


@torch.no_grad()
def calm_eval_draws(model, autoencoder, blocks: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Two draws of the next chunk at every chunk boundary ``s = K, 2K, ..., L - K`` of each block.

    Returns ``(x1, x2, y)``, each ``(blocks * (L/K - 1), 4)``: the first 4 tokens of each chunk (``K >= 4``).
    """
    k = model.chunk
    chunks = blocks.unflatten(1, (-1, k))
    h = model.hidden(chunks[:, :-1])
    draws = autoencoder.decode(model.head.sample(h, num_samples=2))  # (2, B, T-1, K)
    y = chunks[:, 1:]
    n = min(k, 4)
    return (draws[0][..., :n].reshape(-1, n), draws[1][..., :n].reshape(-1, n), y[..., :n].reshape(-1, n))


@torch.no_grad()
def token_eval_draws(model, blocks: torch.Tensor, chunk: int) -> tuple[torch.Tensor, ...]:
    """The token model's two sampled 4-token continuations at the same positions as :func:`calm_eval_draws`
    (chunk boundaries; ancestral sampling at T = 1, each continuation rolled out on its own)."""
    b, length = blocks.shape
    starts = list(range(chunk, length - chunk + 1, chunk))
    chunk = min(chunk, 4)  # tokens rolled out per position: Brier-1..4 needs 4
    first = torch.softmax(model.logits(blocks[:, :-1]).double(), -1)  # next-token laws at every position
    x = torch.empty((2, b, len(starts), chunk), dtype=torch.long)
    for i, s in enumerate(starts):
        seq = blocks[:, :s].repeat(2, 1)  # (2B, s)
        for j in range(chunk):
            if j == 0:
                probs = first[:, s - 1].repeat(2, 1)
            else:
                probs = torch.softmax(model.logits(seq)[:, -1].double(), -1)
            tok = torch.multinomial(probs, 1)
            seq = torch.cat([seq, tok], 1)
        x[:, :, i] = seq[:, s:].view(2, b, chunk)
    y = torch.stack([blocks[:, s:s + chunk] for s in starts], 1)
    return x[0].reshape(-1, chunk), x[1].reshape(-1, chunk), y.reshape(-1, chunk)
