import os

import pytest
import torch
from _global_state import global_state, state_changes

from scoringrules_torch.testing import register_hypothesis_profiles

# Deterministic, bounded property tests by default (HYPOTHESIS_PROFILE=dev|thorough for wider random sweeps).
register_hypothesis_profiles(load=True)

# Two cores: keep each test process on a bounded number of threads so parallel runs do not oversubscribe.
torch.set_num_threads(min(2, torch.get_num_threads()))


# ------------------------------------------------------------------------------- no test leaves state behind
# Process-wide settings (thread counts, default dtype, float flags, grad mode, compiler configs, environment)
# that a test may change only for its own duration: the fixture records them before each test under ``tests/``
# and fails the test, at teardown, that left one different (``tests/_global_state.py`` lists them).


@pytest.fixture(autouse=True)
def _no_global_state_left_behind():
    # autouse in the root conftest of tests/: set up before, torn down after every other fixture of the test
    # (monkeypatch, tests/ear's one-thread fixture), so what they restore counts as restored
    before = global_state()
    yield
    changes = state_changes(before, global_state())
    if changes:
        pytest.fail(
            "this test left process-wide state changed (restore it, e.g. with a context manager or "
            "`try/finally`, so that later tests do not depend on the order):\n  " + "\n  ".join(changes),
            pytrace=False,
        )


# ------------------------------------------------------------------------------- order independence
# PYTEST_REVERSE=1 runs the collected tests in reverse order: a check by hand that the order does not matter,
# e.g. `PYTEST_REVERSE=1 python -m pytest -m slow -p no:randomly`.


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PYTEST_REVERSE", "") not in ("", "0"):
        items.reverse()
