"""The docstring examples of the reference EAR modules run and are correct."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["model", "tokenizer", "metrics"])
def test_docstring_examples(name):
    module = importlib.import_module(f"reference.ear.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
