"""Checkpoint files of the reference EAR: atomic writes, kept copies, checksums, loading, RNG states.

A checkpoint is a ``torch.save`` of plain containers of tensors and values (``weights_only=True`` loads it):
``model``, ``ema``, ``optimizer``, ``step``, ``epoch``, ``global_batch``, ``skipped_steps``,
``skipped_items``, ``rng`` (one CPU state per rank) and ``config_json``.

- Every file (``checkpoint-last.pt`` and kept ``checkpoint-step<N>.pt`` copies) is written to a temporary
  ``<name>.tmp-<pid>`` in the same folder, flushed to disk and renamed over the target: a reader sees the old
  file or the new one, never a truncated one. :func:`remove_orphans` deletes temporaries that a killed
  process left behind.
- With ``checksum=True`` a ``<name>.sha256`` file is written next to the checkpoint; :func:`load_checkpoint`
  verifies it whenever it exists.
- :func:`load_checkpoint` reads on the CPU with ``mmap=True`` (tensors are read from disk only when used),
  then moves the weights to ``map_location``; the RNG states always stay on the CPU, where
  ``torch.set_rng_state`` needs them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import torch

from reference.ear.configs import RunConfig

__all__ = [
    "save_checkpoint",
    "keep_copy",
    "remove_orphans",
    "resolve_checkpoint",
    "load_checkpoint",
    "file_sha256",
    "rng_state",
    "set_rng_state",
    "all_finite",
]

_CHECKSUM_SUFFIX = ".sha256"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _tmp_name(path: Path) -> Path:
    return path.with_name(path.name + f".tmp-{os.getpid()}")


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = _tmp_name(path)
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(path: str | os.PathLike, payload: dict, *, checksum: bool = False) -> None:
    """``torch.save`` to a temporary file in the same folder, flush to disk, then rename over ``path``.

    With ``checksum``, ``<path>.sha256`` is written (atomically) after the rename; a stale checksum file of an
    earlier checkpoint is removed before the rename so that it can never describe the new file.
    """
    path = Path(path)
    tmp = _tmp_name(path)
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    side = path.with_name(path.name + _CHECKSUM_SUFFIX)
    digest = file_sha256(tmp) if checksum else None
    side.unlink(missing_ok=True)
    os.replace(tmp, path)
    if digest is not None:
        _write_text_atomic(side, digest + "\n")


def keep_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy ``src`` to ``dst`` atomically (temporary file, fsync, rename), with its checksum file if any."""
    src, dst = Path(src), Path(dst)
    tmp = _tmp_name(dst)
    with open(src, "rb") as fi, open(tmp, "wb") as fo:
        shutil.copyfileobj(fi, fo, length=1 << 22)
        fo.flush()
        os.fsync(fo.fileno())
    side_src = src.with_name(src.name + _CHECKSUM_SUFFIX)
    side_dst = dst.with_name(dst.name + _CHECKSUM_SUFFIX)
    side_dst.unlink(missing_ok=True)
    os.replace(tmp, dst)
    if side_src.is_file():
        _write_text_atomic(side_dst, side_src.read_text())


def remove_orphans(run_dir: str | os.PathLike) -> list[Path]:
    """Delete ``*.tmp-<pid>`` files that an interrupted save left in ``run_dir``; return their paths."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    removed = []
    for p in run_dir.iterdir():
        stem, sep, pid = p.name.rpartition(".tmp-")
        if sep and stem and pid.isdigit() and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or ``<folder>/checkpoint-last.pt`` for a run folder."""
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoint-last.pt"
    if not p.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {str(p)!r} (give a checkpoint file or a run folder)"
        )
    return p


def _move(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _move(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_move(v, device) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_move(v, device) for v in obj)
    return obj


def load_checkpoint(
    path: str | os.PathLike, map_location="cpu", *, mmap: bool = True, verify: bool = True
) -> tuple[dict, RunConfig]:
    """Load a checkpoint with ``weights_only=True``; return ``(payload, config)``.

    The file is read on the CPU (memory-mapped when ``mmap``, so tensors that are never used are never
    read); then every entry except ``rng`` is moved to ``map_location``. With ``verify`` and a
    ``<file>.sha256`` next to the file, the file's SHA-256 must match (else ``ValueError``).
    """
    p = resolve_checkpoint(path)
    side = p.with_name(p.name + _CHECKSUM_SUFFIX)
    if verify and side.is_file():
        want = side.read_text().strip()
        got = file_sha256(p)
        if got != want:
            raise ValueError(
                f"checkpoint {str(p)!r} does not match its checksum file {side.name} (sha256 {got[:16]}... "
                f"instead of {want[:16]}...): the file is corrupt or was replaced"
            )
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True, mmap=mmap)
    except RuntimeError as e:
        if mmap and "mmap" in str(
            e
        ):  # a file in the legacy (non-zip) format cannot be memory-mapped
            payload = torch.load(p, map_location="cpu", weights_only=True)
        else:
            raise
    if not isinstance(payload, dict) or "config_json" not in payload:
        raise ValueError(f"{str(p)!r} is not an EAR checkpoint (no config_json entry)")
    if str(map_location) != "cpu":
        payload = {k: (v if k == "rng" else _move(v, map_location)) for k, v in payload.items()}
    return payload, RunConfig.from_json(payload["config_json"])


def rng_state(device: torch.device) -> dict:
    """This process's RNG states, on the CPU: ``torch`` (and ``cuda`` for a CUDA device)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device).cpu()
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore :func:`rng_state`; states that were moved to another device are brought back to the CPU."""
    torch.set_rng_state(_cpu_bytes(state["torch"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(_cpu_bytes(state["cuda"]), device)


def _cpu_bytes(t: torch.Tensor) -> torch.Tensor:
    if t.device.type == "meta":
        raise ValueError(
            "an RNG state on the meta device has no values; load checkpoints on the CPU"
        )
    return t.to("cpu", torch.uint8)


def all_finite(tensors) -> bool:
    """Whether every tensor in the iterable is finite (one host synchronisation)."""
    tensors = [t for t in tensors if t.is_floating_point()]
    if not tensors:
        return True
    norms = torch._foreach_norm([t.detach().float() for t in tensors], float("inf"))
    return bool(torch.isfinite(torch.stack(norms)).all())
