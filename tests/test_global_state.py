"""The check of ``tests/conftest.py`` that no test leaves process-wide state behind notices each kind of change
(and nothing when the state is restored)."""

from __future__ import annotations

import os

import torch
from _global_state import global_state, state_changes


def _changes_while(change, restore) -> list[str]:
    before = global_state()
    change()
    try:
        during = state_changes(before, global_state())
    finally:
        restore()
    assert state_changes(before, global_state()) == [], "restoring did not give the state back"
    return during


def test_thread_count_default_dtype_grad_mode_and_flush_denormal_are_noticed():
    n = torch.get_num_threads()
    changes = _changes_while(lambda: torch.set_num_threads(n + 1), lambda: torch.set_num_threads(n))
    assert changes == [f"torch.get_num_threads(): {n} -> {n + 1}"]
    changes = _changes_while(
        lambda: torch.set_default_dtype(torch.float64), lambda: torch.set_default_dtype(torch.float32)
    )
    assert changes == ["torch.get_default_dtype(): torch.float32 -> torch.float64"]
    changes = _changes_while(lambda: torch.set_grad_enabled(False), lambda: torch.set_grad_enabled(True))
    assert changes == ["torch.is_grad_enabled(): True -> False"]
    if torch.set_flush_denormal(False):  # the CPU supports flush-to-zero
        changes = _changes_while(
            lambda: torch.set_flush_denormal(True), lambda: torch.set_flush_denormal(False)
        )
        assert changes == ["flush denormals (torch.set_flush_denormal): False -> True"]


def test_environment_variables_are_noticed():
    changes = _changes_while(
        lambda: os.environ.__setitem__("SCORINGRULES_TORCH_STATE_PROBE", "1"),
        lambda: os.environ.pop("SCORINGRULES_TORCH_STATE_PROBE"),
    )
    assert changes == ["os.environ['SCORINGRULES_TORCH_STATE_PROBE']: '<unset>' -> '1'"]


def test_a_changed_or_deleted_inductor_config_entry_is_noticed():
    import torch._inductor.config as inductor_config

    original = inductor_config.fallback_random

    def restore():
        inductor_config.fallback_random = original  # also un-hides a deleted entry

    changes = _changes_while(lambda: setattr(inductor_config, "fallback_random", not original), restore)
    assert changes == [
        f"torch._inductor.config['fallback_random']: {original!r} -> {not original!r}"
    ]
    # what pytest's monkeypatch.setattr did on undo (the value lives outside the module's __dict__)
    changes = _changes_while(lambda: delattr(inductor_config, "fallback_random"), restore)
    assert changes == ["torch._inductor.config['<hidden entries>']: [] -> ['fallback_random']"]
    # torch's own context manager restores the entry
    before = global_state()
    with inductor_config.patch(fallback_random=not original):
        assert inductor_config.fallback_random is (not original)
    assert state_changes(before, global_state()) == []

