"""The runnable examples in the library's docstrings stay true.

Every module under the product packages whose source has a ``>>>`` line is found by a text scan (no hand
list: a new module with examples is covered as soon as it exists) and its examples run, one test per module.
An example that needs real artefacts or the network is marked ``# doctest: +SKIP`` with the reason beside it.
"""

from __future__ import annotations

import doctest
import importlib
import io
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("creator", "training", "data_pipelines", "eval", "app")
PROMPT = re.compile(r"^\s*>>>(?: |$)", re.MULTILINE)


def modules_with_examples() -> list[str]:
    """Dotted names of the modules whose source holds a ``>>>`` prompt line."""
    names = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if PROMPT.search(path.read_text(encoding="utf-8")):
                parts = path.relative_to(REPO).with_suffix("").parts
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = modules_with_examples()


def test_the_scan_finds_the_modules_with_examples():
    assert len(MODULES) >= 40, MODULES  # a scan that silently finds nothing would make the test below vacuous
    assert {"creator.records.types", "creator.config", "eval.metrics.diversity"} <= set(MODULES)


def _checks_nothing(test: doctest.DocTest) -> bool:
    """True when the docstring's examples that run (not ``+SKIP``) compare no output: they cannot fail."""
    run = [ex for ex in test.examples if not ex.options.get(doctest.SKIP)]
    return bool(run) and not any(ex.want or ex.exc_msg for ex in run)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    assert tests, f"{name} has a '>>>' line but no docstring example doctest can find"
    blind = [t.name for t in tests if _checks_nothing(t)]
    assert not blind, f"examples that check no output (they cannot fail): {blind}"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = io.StringIO()
    for test in tests:
        runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()
