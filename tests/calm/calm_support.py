"""Shared set-up of the reference-CALM tests (reference/calm is not an installed package).

Not a ``conftest.py``: a second ``conftest`` module next to ``tests/ear/conftest.py`` collides under
``--doctest-modules``. Test modules import the fixtures from here.
"""

import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True, name="one_thread")
def one_thread_fixture():
    """Small models: one thread avoids oversubscribing a shared machine; restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(name="tiny_text")
def tiny_text_fixture(tmp_path):
    """A small made-up text (a few hundred lines of a 20-word vocabulary), written to a file."""
    rng = random.Random(0)
    words = ("the lord god said unto moses and the people of israel went into the land and they did eat "
             "bread").split()
    lines = [" ".join(rng.choice(words) for _ in range(10)) + "." for _ in range(300)]
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(lines) + "\n")
    return path
