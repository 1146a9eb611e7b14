"""book/_ext/cell_display.py: which code cells the site folds (checks) or drops (glue plumbing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "book" / "_ext"))
from cell_display import is_check_cell, is_glue_cell  # noqa: E402


@pytest.mark.parametrize("source, expected", [
    ("# The claim, pinned.\nassert ratio > 1000, ratio   # measured 2e4-9e4\n", True),
    ("assert a < b\nassert (c\n        > d), c\n", True),
    ("assert a\nprint(a)\n", False),              # prints something: an ordinary cell
    ("x = 1\nassert x\n", False),
    ("", False),
    ("# only a comment\n", False),
    ("%timeit f()\nassert x\n", False),           # not plain Python: left alone
])
def test_check_cells(source: str, expected: bool) -> None:
    assert is_check_cell(source) is expected


@pytest.mark.parametrize("source, expected", [
    ('glue("a", a, display=False)\nglue("b", 2 * b, display=False)\n', True),
    ('glue_range("l1l2_trap_data", trap["data"])\n', True),
    ('a = f()\nglue("a", a, display=False)\n', False),
    ('companion.glue("a", a)\n', False),
    ("", False),
])
def test_glue_cells(source: str, expected: bool) -> None:
    assert is_glue_cell(source) is expected
