"""The test folders mirror the packages, and their file names stay unique (see tests/README.md)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
NOT_MIRRORS = {"worlds"}  # fixtures, not tests


def test_test_file_names_are_unique_across_folders():
    """Without ``__init__.py`` files pytest's default import mode imports each test file by its base name: two
    ``test_x.py`` in different folders would be one module, so the second fails to import."""
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1], names
    packages = [str(p.relative_to(TESTS)) for p in TESTS.rglob("__init__.py")]
    assert packages == ["worlds/__init__.py"], "test folders are not packages: the names above must stay unique"


def test_every_test_folder_mirrors_a_package_folder():
    folders = {p.parent.relative_to(TESTS) for p in TESTS.rglob("test_*.py")} - {Path(".")}
    missing = sorted(str(f) for f in folders if f.parts[0] not in NOT_MIRRORS and not (REPO / f).is_dir())
    assert not missing, f"test folders with no package folder of the same path: {missing}"
