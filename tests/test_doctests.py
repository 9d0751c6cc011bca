"""The runnable examples in the library's docstrings stay true."""

import doctest
import importlib

import pytest

MODULES = ["creator.records.types", "creator.records.text", "creator.records.facts", "creator.io.records"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
