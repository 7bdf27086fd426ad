"""CI (``.ci/run``) runs every claim: the README's test command (the default suite), then the ``slow`` tests with
the docs extra installed (so the docs-build test runs rather than skips), then the offline docs build."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _steps() -> list[str]:
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def _index(steps: list[str], pattern: str) -> int:
    found = [i for i, ln in enumerate(steps) if re.search(pattern, ln)]
    assert len(found) == 1, f"expected one line of .ci/run matching {pattern!r}, found {len(found)}"
    return found[0]


def test_ci_runs_the_slow_tests_after_the_default_suite_and_the_docs_extra():
    steps = _steps()
    assert "set -euo pipefail" in steps  # a failing step fails CI
    default = _index(steps, r'^bash -c "\$cmd"$')  # the README's command, verbatim
    docs_extra = _index(steps, r'pip install .*"\.\[docs\]"')
    slow = _index(steps, r"-m pytest -m slow\b")
    build = _index(steps, r"SCORINGRULES_TORCH_DOCS_OFFLINE=1 .*sphinx -W")
    assert default < docs_extra < slow < build
    assert "-k " not in steps[slow] and "--deselect" not in steps[slow]  # every slow test, none left out
