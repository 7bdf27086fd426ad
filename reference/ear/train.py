"""Train the reference EAR; with no arguments, the CPU demo (class-conditional Fashion-MNIST).

One code path for one CPU process and for N GPUs under ``torchrun`` (DDP; gloo on CPU, NCCL on GPU)::

    python reference/ear/train.py                                   # demo: train, sample, evaluate (CPU)
    python reference/ear/train.py --preset tiny --run-dir runs/t    # seconds, sklearn digits
    torchrun --nproc_per_node=8 reference/ear/train.py --preset ear_b --data-dir /data/imagenet-kl16
    python reference/ear/train.py --resume runs/demo-20250101-120000  # continue exactly where it stopped

The loop itself is :func:`reference.ear.trainer.train`; this script parses the command line, sets up the
process, trains, then draws the sample grid and (demo) evaluates with the EMA weights.

Outputs in the run folder: ``config.json``, ``checkpoint-last.pt``, ``log.csv``, ``loss.png``, sample grids
``samples-step<N>.png`` / ``samples.png`` and, when evaluation is on, ``samples.npz`` and ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch
import torch.distributed as dist

from reference.ear.checkpoint import load_checkpoint, resolve_checkpoint
from reference.ear.configs import RunConfig, apply_overrides, preset
from reference.ear.distributed import broadcast_object, set_cpu_threads, setup_distributed
from reference.ear.metrics import evaluate_run
from reference.ear.sampling import ema_weights, sample_grid
from reference.ear.trainer import train

__all__ = ["parse_args", "make_config", "main", "completion_line"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--preset",
        help="demo (default), tiny, ear_b, ear_l, ear_h, ear_{b,l,h}_stage2; with --resume, replaces the "
        "checkpoint's config",
    )
    p.add_argument("--config", help="a config.json to start from instead of a preset")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override a config field (repeatable), e.g. --set train.epochs=800",
    )
    p.add_argument(
        "--run-dir", help="output folder (default runs/<name>-<timestamp>, or the resumed run's)"
    )
    p.add_argument("--resume", help="checkpoint file or run folder to continue from")
    p.add_argument("--data-dir", help="dataset folder (shortcut for --set data.data_dir=...)")
    p.add_argument(
        "--max-steps",
        type=int,
        help="stop after this many optimizer steps (the lr schedule still spans train.epochs)",
    )
    p.add_argument(
        "--no-eval", action="store_true", help="skip sampling and evaluation after training"
    )
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--threads",
        default="auto",
        help="torch CPU threads: a number, or auto (the cores not busy during one second before training, at "
        "least 1; OMP_NUM_THREADS wins when set)",
    )
    return p.parse_args(argv)


def make_config(args: argparse.Namespace) -> RunConfig:
    """The run's config: ``--config``, ``--preset``, the resumed checkpoint's, or ``demo``; then overrides."""
    if args.config:
        config = RunConfig.from_json(Path(args.config).read_text())
    elif args.preset:
        config = preset(args.preset)
    elif args.resume:
        _, config = load_checkpoint(args.resume)
    else:
        config = preset("demo")
    overrides = list(args.set)
    if args.data_dir:
        overrides.append(f"data.data_dir={json.dumps(args.data_dir)}")
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    return apply_overrides(config, overrides)


def sample_and_evaluate(model, result: dict, config: RunConfig, run_dir: Path, d, no_eval: bool):
    """The final sample grid and (when ``eval.enabled``) the evaluation; returns the metrics or ``None``."""
    decode = result["data"].decoder
    sample_grid(model, decode, config, run_dir / "samples.png", d.device)
    print(f"[train] sample grid: {run_dir / 'samples.png'}", flush=True)
    if not config.eval.enabled or no_eval:
        return None
    return evaluate_run(model, decode, config, run_dir, device=d.device)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        config = make_config(args)
    except (TypeError, ValueError) as e:
        raise SystemExit(f"train.py: error: {e}") from None
    d = setup_distributed(args.device)
    if d.device.type == "cpu" and not d.enabled:
        torch.set_flush_denormal(True)
        set_cpu_threads(args.threads)
    if args.run_dir:
        run_dir = Path(args.run_dir)
    elif args.resume:
        run_dir = resolve_checkpoint(args.resume).parent
    else:
        run_dir = Path("runs") / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(broadcast_object(str(run_dir), d))
    t_start = time.time()
    result = train(config, run_dir, resume=args.resume, d=d, progress=not args.no_progress)
    if d.enabled:
        dist.barrier()
        dist.destroy_process_group()
    if not d.main:
        return result
    with ema_weights(result["model"], result["ema"]) as model:  # the EMA weights, without a copy
        if config.sample.compile:
            model.compile_for_sampling()
        metrics = sample_and_evaluate(model, result, config, run_dir, d, args.no_eval)
    metrics = dict(metrics or {})  # the training summary is written even without evaluation
    metrics["train_seconds"] = round(result["train_seconds"], 1)
    metrics["train_steps"] = result["final_step"]
    metrics["planned_steps"] = result["total_steps"]
    metrics["fraction_completed"] = round(result["final_step"] / max(result["total_steps"], 1), 4)
    metrics["stopped_by_time_cap"] = result["final_step"] < result["total_steps"]
    if result["data"].tokenizer_summary is not None:
        metrics["tokenizer"] = result["data"].tokenizer_summary
    metrics["skipped_steps"] = result["skipped_steps"]
    metrics["skipped_items"] = result["skipped_items"]
    metrics["total_seconds"] = round(time.time() - t_start, 1)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    result["metrics"] = metrics
    print(f"[train] metrics: {run_dir / 'metrics.json'}", flush=True)
    print(
        f"[train] run folder: {run_dir.resolve()}\n"
        f"        loss plot {run_dir / 'loss.png'}, samples {run_dir / 'samples.png'}, "
        f"log {run_dir / 'log.csv'}, total {time.time() - t_start:.0f} s",
        flush=True,
    )
    print(completion_line(metrics, config), flush=True)
    return result


def completion_line(metrics: dict, config: RunConfig) -> str:
    """The run's last printed line: whether training completed its planned steps or a time cap cut it."""
    done, planned = metrics["train_steps"], metrics["planned_steps"]
    if not metrics["stopped_by_time_cap"]:
        return f"[train] training complete: {done} of {planned} planned steps"
    return (
        f"[train] training INCOMPLETE: the time cap (train.max_train_minutes="
        f"{config.train.max_train_minutes}) stopped it at step {done} of {planned} "
        f"({_percent_done(done, planned)} % of the planned steps); the metrics are of this shorter run"
    )


def _percent_done(done: int, planned: int) -> str:
    """``100 done / planned`` rounded down to 0.1, so that an incomplete run never reads as 100 %."""
    return f"{math.floor(1000 * done / planned) / 10:.1f}"


if __name__ == "__main__":
    main()
