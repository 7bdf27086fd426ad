"""Snapshots of the process-wide settings a test could leave changed (used by ``tests/conftest.py``).

A test that leaves one changed makes later tests pass or fail depending on the order: ``pytest -m slow`` once
failed 5 tests this way (a monkeypatched inductor config entry was deleted, not restored, on undo).
"""

from __future__ import annotations

import os
import sys

import torch

# Set by the tools themselves, once per process: pytest for each test phase; torch._inductor on first import
# (its cache directory) and first compile (``_TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR``); scikit-learn on import
# (the two ``KMP_*`` OpenMP settings).
_ENV_SET_BY_TOOLS = frozenset(
    {"PYTEST_CURRENT_TEST", "TORCHINDUCTOR_CACHE_DIR", "KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK"}
)
_ENV_PREFIXES_SET_BY_TOOLS = ("_TORCHINDUCTOR_",)
_COMPILER_CONFIGS = ("torch._dynamo.config", "torch._inductor.config", "torch._functorch.config")


def _flushes_denormals() -> bool:
    # flush-to-zero / denormals-are-zero (``torch.set_flush_denormal``) turns this product into 0
    return (torch.tensor([1e-310], dtype=torch.float64) * 0.5).item() == 0.0


def _compiler_config(name: str) -> dict | None:
    """Values of one ``torch`` compiler config module (None if not imported yet), plus the hidden entries.

    A hidden entry is one that was deleted (``delattr``): reading it raises ``... does not exist``.
    """
    module = sys.modules.get(name)
    if module is None:
        return None
    # ``_get_dict(readonly_values=True)`` is ``get_config_copy()`` served from torch's cache of unchanged entries
    # (two full copies per test would cost ~1 ms each); the public call where that private one is missing
    fast = getattr(module, "_get_dict", None)
    values = dict(fast(readonly_values=True)) if fast is not None else module.get_config_copy()
    entries = getattr(module, "_config", {})
    values["<hidden entries>"] = sorted(k for k, e in entries.items() if getattr(e, "hide", False))
    return values


def global_state() -> dict:
    """A snapshot of the process-wide settings the tests (or the code they run) could change."""
    state = {
        "torch.get_num_threads()": torch.get_num_threads(),
        "torch.get_default_dtype()": torch.get_default_dtype(),
        "torch.is_grad_enabled()": torch.is_grad_enabled(),
        "torch.is_inference_mode_enabled()": torch.is_inference_mode_enabled(),
        "torch.is_anomaly_enabled()": torch.is_anomaly_enabled(),
        "torch.are_deterministic_algorithms_enabled()": torch.are_deterministic_algorithms_enabled(),
        "torch.is_deterministic_algorithms_warn_only_enabled()": (
            torch.is_deterministic_algorithms_warn_only_enabled()
        ),
        "torch.get_float32_matmul_precision()": torch.get_float32_matmul_precision(),
        "torch.backends.cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "torch.backends.cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "torch.backends.cudnn.benchmark": torch.backends.cudnn.benchmark,
        "torch.backends.cudnn.deterministic": torch.backends.cudnn.deterministic,
        "torch.is_autocast_enabled('cpu')": torch.is_autocast_enabled("cpu"),
        "flush denormals (torch.set_flush_denormal)": _flushes_denormals(),
        "os.environ": {
            k: v
            for k, v in os.environ.items()
            if k not in _ENV_SET_BY_TOOLS and not k.startswith(_ENV_PREFIXES_SET_BY_TOOLS)
        },
    }
    for name in _COMPILER_CONFIGS:
        state[name] = _compiler_config(name)
    return state


def state_changes(before: dict, after: dict) -> list[str]:
    """Human-readable differences between two snapshots of :func:`global_state`."""
    changes = []
    for key, old in before.items():
        new = after[key]
        if old is None:  # a compiler config first imported during the test: nothing to compare with
            continue
        if isinstance(old, dict):
            for k in sorted(set(old) | set(new)):
                if k not in old or k not in new or old[k] != new[k]:
                    changes.append(f"{key}[{k!r}]: {old.get(k, '<unset>')!r} -> {new.get(k, '<unset>')!r}")
        elif old != new:
            changes.append(f"{key}: {old!r} -> {new!r}")
    return changes
