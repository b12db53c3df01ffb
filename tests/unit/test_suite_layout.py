"""The suite's own layout. Test directories are not packages, so pytest imports each test file
by its base name: two files with the same name in different folders make the whole run stop at
collection ("import file mismatch"), though each folder passes alone. And a `from conftest
import ...` finds whichever conftest was imported first, so helpers live in named modules."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def _test_files() -> list:
    return [p for p in TESTS.rglob("test_*.py") if "benchmarks" not in p.parts and "__snapshots__" not in p.parts]


def test_every_test_file_has_a_name_of_its_own() -> None:
    by_name = defaultdict(list)
    for path in _test_files():
        by_name[path.name].append(str(path.relative_to(TESTS)))
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}


def test_no_test_imports_from_a_conftest() -> None:
    found = [str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py") if re.search(r"^\s*(from conftest import|import conftest)", p.read_text(), re.M)]
    assert found == []
