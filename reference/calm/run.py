"""One command: train the CALM-style continuous LM and the token baseline at equal FLOPs, score both.

    python reference/calm/run.py                      # the KJV job (<= 25 min on 2 CPU cores)
    python reference/calm/run.py --text book.txt      # any local text file
    python reference/calm/run.py --preset tiny --text small.txt --out /tmp/run   # seconds

Steps: corpus and held-out split -> byte-level BPE -> chunk autoencoder -> continuous LM (energy score against
autoencoder-posterior samples, library head) -> token baseline (same backbone, softmax + cross-entropy, the
same training FLOPs) -> BrierLM of both on the same held-out blocks, the baseline's perplexity, samples at two
temperatures. Writes ``<out>/results.json``, ``<out>/results.md``, ``config.json``, the tokenizer and the
three checkpoints (atomic writes; ``torch.load(path, weights_only=True)`` reads them).

Training FLOPs of one step are measured once per model with ``torch.utils.flop_counter.FlopCounterMode``
(forward + backward, every matmul, including the autoencoder's posterior pass and the head's ``m`` draws),
plus the attention products that the CPU fused kernel hides from the counter (``12 B T^2 W`` per layer,
counted in full despite the causal mask); each LM then runs ``floor(lm_flops / flops_per_step)`` steps.
Every phase has a wall-clock cap; a capped phase reports the fraction of its planned steps it completed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT_HINT = Path(__file__).resolve().parents[2]  # the repository root (made importable for script use)
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT_HINT))

from reference.calm.brierlm import (  # noqa: E402
    brier_n,
    brier_n_stderr,
    brierlm,
    calm_eval_draws,
    select_with_temperature,
    token_eval_draws,
)
from reference.calm.configs import RunConfig, apply_overrides, preset  # noqa: E402
from reference.calm.data import split_corpus  # noqa: E402
from reference.calm.model import ChunkAutoencoder, ContinuousLM, TokenLM  # noqa: E402
from reference.calm.tokenizer import BPETokenizer  # noqa: E402

__all__ = ["ROOT_HINT", "main", "run", "save_atomic", "load_checkpoint", "step_flops"]


def save_atomic(path: Path, payload: dict) -> None:
    """``torch.save`` to ``<path>.tmp-<pid>``, flush to disk, rename over ``path``."""
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by :func:`save_atomic` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    return torch.load(path, map_location="cpu", weights_only=True)


def _attention_flops(batch: int, length: int, width: int, depth: int) -> float:
    return 12.0 * batch * length * length * width * depth


def step_flops(step_fn, *, batch: int, length: int, width: int, depth: int) -> float:
    """Training FLOPs of one call of ``step_fn`` (forward + backward), attention products added."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step_fn()
    return float(counter.get_total_flops()) + _attention_flops(batch, length, width, depth)


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def _windows(stream: torch.Tensor, length: int, count: int, align: int, gen: torch.Generator) -> torch.Tensor:
    high = (stream.numel() - length) // align
    if high < 1:
        raise ValueError(
            f"the training text has {stream.numel()} tokens, too few for windows of {length} tokens; use a "
            f"longer text or a smaller model.context"
        )
    starts = torch.randint(0, high, (count,), generator=gen) * align
    return torch.stack([stream[s:s + length] for s in starts.tolist()])


def _train(name, model, loss_fn, *, steps, lr, warmup, clip, minutes, log, log_every, params=None):
    """AdamW loop with a wall-clock cap; returns (steps_done, seconds, last losses)."""
    opt = torch.optim.AdamW(params if params is not None else model.parameters(), lr=lr,
                            betas=(0.9, 0.95), weight_decay=0.01)
    model.train()
    start, done, recent = time.perf_counter(), 0, []
    for step in range(steps):
        if time.perf_counter() - start > minutes * 60:
            log(f"[{name}] wall-clock cap of {minutes} min hit at step {step}/{steps}")
            break
        for g in opt.param_groups:
            g["lr"] = _lr(step, steps, lr, warmup)
        loss = loss_fn()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"[{name}] non-finite loss at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        recent = (recent + [loss.item()])[-50:]
        done = step + 1
        if done % log_every == 0 or done == steps:
            log(f"[{name}] step {done}/{steps} loss {np.mean(recent):.4f} "
                f"({time.perf_counter() - start:.0f}s)")
    model.eval()
    return done, time.perf_counter() - start, float(np.mean(recent)) if recent else float("nan")


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def _generate_calm(model, ae, prompt, tokens, temperature, candidates, context, gen):
    n = round(1.0 / temperature)
    k = model.chunk
    seq = prompt.clone()
    while seq.numel() < prompt.numel() + tokens:
        chunks = seq[-(context // k) * k:].view(1, -1, k)
        h = model.hidden(chunks)[:, -1]
        cand = ae.decode(model.head.sample(h, num_samples=candidates))  # (N, 1, K)
        seq = torch.cat([seq, select_with_temperature(cand, n, generator=gen)[0]])
    return seq[prompt.numel():prompt.numel() + tokens]


@torch.no_grad()
def _generate_tokens(model, prompt, tokens, temperature, context, gen):
    seq = prompt.clone()
    for _ in range(tokens):
        logits = model.logits(seq[-context:][None])[0, -1].double()
        seq = torch.cat([seq, torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen)])
    return seq[prompt.numel():]


def run(cfg: RunConfig, out: Path, log=print) -> dict:
    """Run the whole job into ``out``; returns the results dictionary (also written as JSON/markdown)."""
    wall = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(cfg.to_json())
    torch.manual_seed(cfg.train.seed)
    torch.set_num_threads(cfg.train.threads)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    load_start = os.getloadavg()
    m, t, e = cfg.model, cfg.train, cfg.eval
    k = m.chunk

    # -- data and tokenizer --------------------------------------------------------------------------
    train_text, held_text, described = split_corpus(
        cfg.data.source, heldout_books=cfg.data.heldout_books,
        heldout_fraction=cfg.data.heldout_fraction, text_path=cfg.data.text_path,
    )
    t0 = time.perf_counter()
    tok = BPETokenizer.train(train_text, cfg.data.num_merges)
    train_ids = torch.from_numpy(tok.encode(train_text))
    held_ids = torch.from_numpy(tok.encode(held_text))
    tok_seconds = time.perf_counter() - t0
    tok.save(out / "tokenizer.json")
    vocab = tok.vocab_size
    log(f"{described}: {len(train_text)} / {len(held_text)} chars -> {train_ids.numel()} / "
        f"{held_ids.numel()} tokens, vocab {vocab}, tokenizer {tok_seconds:.1f}s")
    n_blocks = min(e.max_blocks, held_ids.numel() // e.block)
    if n_blocks < 1:
        raise ValueError(
            f"the held-out text has {held_ids.numel()} tokens, fewer than one evaluation block of "
            f"{e.block}; hold out more text or lower eval.block"
        )
    blocks = held_ids[: n_blocks * e.block].view(n_blocks, e.block)

    # -- autoencoder ---------------------------------------------------------------------------------
    ae = ChunkAutoencoder(vocab, k, m.latent_dim, m.ae_embed, m.ae_hidden, token_dropout=m.ae_token_dropout,
                          latent_dropout=m.ae_latent_dropout, kl_weight=m.kl_weight, kl_clamp=m.kl_clamp)
    train_chunks = train_ids[: train_ids.numel() // k * k].view(-1, k)

    def ae_batch():
        return train_chunks[torch.randint(0, train_chunks.shape[0], (t.ae_batch,), generator=gen)]

    ae_flops = step_flops(lambda: ae.loss(ae_batch())[0].backward(), batch=0, length=0, width=0, depth=0)
    ae.zero_grad(set_to_none=True)
    ae_done, ae_sec, ae_loss = _train(
        "autoencoder", ae, lambda: ae.loss(ae_batch())[0], steps=t.ae_steps, lr=t.ae_lr, warmup=t.warmup,
        clip=t.grad_clip, minutes=t.ae_minutes, log=log, log_every=t.log_every,
    )
    ae.requires_grad_(False)
    with torch.no_grad():
        held_chunks = blocks.reshape(-1, k)
        rec = ae.decode(ae.posterior(held_chunks)[0])
        mu, sigma = ae.posterior(held_chunks)
        rec_draw = ae.decode(mu + sigma * torch.randn(mu.shape, generator=gen))
    ae_res = {
        "params": _count(ae), "flops_per_step": ae_flops, "steps": ae_done, "planned_steps": t.ae_steps,
        "fraction_completed": ae_done / t.ae_steps, "seconds": ae_sec, "final_loss": ae_loss,
        "train_flops": ae_flops * ae_done,
        "heldout_token_accuracy": (rec == held_chunks).float().mean().item(),
        "heldout_chunk_accuracy": (rec == held_chunks).all(-1).float().mean().item(),
        "heldout_token_accuracy_posterior_draw": (rec_draw == held_chunks).float().mean().item(),
        "mean_posterior_sigma": sigma.mean().item(),
    }
    save_atomic(out / "autoencoder.pt", {"model": ae.state_dict(), "config_json": cfg.to_json()})
    log(f"autoencoder: held-out token accuracy {ae_res['heldout_token_accuracy']:.4f}")

    # -- the two language models at equal FLOPs ------------------------------------------------------
    calm = ContinuousLM(vocab, k, m.latent_dim, m.width, m.depth, m.num_heads, m.context,
                        head_width=m.head_width, head_depth=m.head_depth, num_samples=m.num_samples)
    base = TokenLM(vocab, m.width, m.depth, m.num_heads, m.context)

    def calm_loss():
        return calm.loss(_windows(train_ids, m.context, t.lm_batch, k, gen), ae, m.target_samples)

    def base_loss():
        return base.loss(_windows(train_ids, m.context + 1, t.lm_batch, k, gen))

    results = {"config": cfg.to_dict(), "data": {
        "corpus": described, "train_chars": len(train_text), "heldout_chars": len(held_text),
        "train_tokens": train_ids.numel(), "heldout_tokens": held_ids.numel(), "vocab": vocab,
        "tokenizer_seconds": tok_seconds, "chars_per_token": len(train_text) / max(1, train_ids.numel()),
    }, "autoencoder": ae_res, "threads": torch.get_num_threads(), "loadavg_start": load_start}
    specs = [
        ("calm", calm, calm_loss, m.context // k - 1),
        ("baseline", base, base_loss, m.context),
    ]
    for name, model, loss_fn, length in specs:
        per_step = step_flops(lambda f=loss_fn: f().backward(), batch=t.lm_batch, length=length,
                              width=m.width, depth=m.depth)
        model.zero_grad(set_to_none=True)
        steps = max(1, int(t.lm_flops // per_step))
        done, sec, final = _train(name, model, loss_fn, steps=steps, lr=t.lm_lr, warmup=t.warmup,
                                  clip=t.grad_clip, minutes=t.lm_minutes, log=log, log_every=t.log_every)
        results[name] = {
            "params": _count(model), "flops_per_step": per_step, "planned_steps": steps, "steps": done,
            "fraction_completed": done / steps, "train_flops": per_step * done, "seconds": sec,
            "train_tokens_per_second": done * t.lm_batch * m.context / max(sec, 1e-9), "final_loss": final,
        }
        if name == "calm" and model.head.last_terms is not None:
            results[name]["final_energy_terms"] = {
                "accuracy": model.head.last_terms.accuracy.item(),
                "spread": model.head.last_terms.spread.item(),
            }
        save_atomic(out / f"{name}.pt", {"model": model.state_dict(), "config_json": cfg.to_json(),
                                         "step": done})

    # -- evaluation ----------------------------------------------------------------------------------
    torch.manual_seed(cfg.train.seed + 1)
    t0 = time.perf_counter()
    draws = {"calm": calm_eval_draws(calm, ae, blocks), "baseline": token_eval_draws(base, blocks, k)}
    for name, (x1, x2, y) in draws.items():
        b = brier_n(x1, x2, y)
        results[name].update({"brier_n": b, "brier_n_stderr": brier_n_stderr(x1, x2, y), "brierlm": brierlm(b),
                              "eval_positions": y.shape[0],
                              # P(x1 = x2) over whole chunks: the exact T = 1/2 sampler's acceptance rate
                              "two_draw_agreement": (x1 == x2).all(-1).double().mean().item()})
    with torch.no_grad():
        logits = base.logits(blocks[:, :-1])
        ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), blocks[:, 1:].reshape(-1))
    results["baseline"]["heldout_perplexity"] = math.exp(ce.item())
    results["eval"] = {"block_tokens": e.block, "blocks": n_blocks, "seconds": time.perf_counter() - t0,
                       "positions": "every chunk boundary s = K, 2K, ..., block - K of each block"}

    prompt = blocks[0, : e.prompt_tokens]
    samples = {"prompt": tok.decode(prompt)}
    for temp in e.temperatures:
        samples[f"calm_T{temp:g}"] = tok.decode(
            _generate_calm(calm, ae, prompt, e.sample_tokens, temp, e.candidates, m.context, gen))
        samples[f"baseline_T{temp:g}"] = tok.decode(
            _generate_tokens(base, prompt, e.sample_tokens, temp, m.context, gen))
    results["samples"] = samples
    results["loadavg_end"] = os.getloadavg()
    results["total_seconds"] = time.perf_counter() - wall
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown_table(results))
    log(markdown_table(results))
    return results


def markdown_table(r: dict) -> str:
    c, b, a = r["calm"], r["baseline"], r["autoencoder"]

    def row(label, f):
        return f"| {label} | {f(c)} | {f(b)} |"

    lines = [
        f"Corpus: {r['data']['corpus']}; {r['data']['train_tokens']} training / {r['data']['heldout_tokens']} "
        f"held-out tokens, vocabulary {r['data']['vocab']}; BrierLM on {r['eval']['blocks']} held-out blocks "
        f"of {r['eval']['block_tokens']} tokens; {r['threads']} thread(s), load average at start "
        f"{r['loadavg_start'][0]:.2f}; total {r['total_seconds'] / 60:.1f} min.",
        "",
        "| | CALM-style (energy score) | token baseline (cross-entropy) |",
        "|---|---|---|",
        row("BrierLM", lambda x: f"{x['brierlm']:.2f}"),
        row("Brier-1 / 2 / 3 / 4 (± standard error)", lambda x: " / ".join(
            f"{v:.4f} ± {se:.4f}" for v, se in zip(x["brier_n"], x["brier_n_stderr"], strict=True))),
        row("two draws agree (whole chunk)", lambda x: f"{x['two_draw_agreement']:.4f}"),
        row("held-out perplexity", lambda x: f"{x['heldout_perplexity']:.2f}" if "heldout_perplexity" in x
            else "n/a (no likelihood)"),
        row("training FLOPs (LM)", lambda x: f"{x['train_flops']:.3g}"),
        row("FLOPs per step", lambda x: f"{x['flops_per_step']:.3g}"),
        row("steps done / planned", lambda x: f"{x['steps']} / {x['planned_steps']} "
            f"({100 * x['fraction_completed']:.0f} %)"),
        row("training tokens / s", lambda x: f"{x['train_tokens_per_second']:.0f}"),
        row("parameters", lambda x: f"{x['params']}"),
        row("training minutes", lambda x: f"{x['seconds'] / 60:.1f}"),
        "",
        f"Autoencoder: {a['params']} parameters, {a['steps']} / {a['planned_steps']} steps "
        f"({a['train_flops']:.3g} FLOPs, not in the LM budget), held-out reconstruction: token accuracy "
        f"{a['heldout_token_accuracy']:.4f}, whole-chunk accuracy {a['heldout_chunk_accuracy']:.4f} (posterior "
        f"mean); token accuracy {a['heldout_token_accuracy_posterior_draw']:.4f} from a posterior draw.",
        "",
        "Samples (prompt: " + json.dumps(r["samples"]["prompt"]) + "):",
        "",
    ]
    for key, text in r["samples"].items():
        if key != "prompt":
            lines.append(f"- `{key}`: " + json.dumps(text))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default", help="default | tiny")
    parser.add_argument("--text", default=None, help="a local text file instead of the KJV")
    parser.add_argument("--out", default="runs/calm", help="run folder (created)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: config)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    args = parser.parse_args(argv)
    cfg = preset(args.preset)
    overrides = list(args.set)
    if args.text is not None:
        overrides += ["data.source=text", f"data.text_path={json.dumps(args.text)}"]
    if args.threads is not None:
        overrides.append(f"train.threads={args.threads}")
    cfg = apply_overrides(cfg, overrides)
    return run(cfg, Path(args.out))


if __name__ == "__main__":
    main()
