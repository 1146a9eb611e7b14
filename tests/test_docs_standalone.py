"""README.md and CONTRIBUTING.md stand alone: nothing outside the repository, no stale names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "CONTRIBUTING.md"]


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([a-z][a-z-]*):", makefile, re.MULTILINE)}


@pytest.mark.parametrize("name", DOCS)
def test_nothing_outside_the_repository(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    assert not re.search(r"(?<![\w.])\.\./", text), f"{name} points outside the repository (../)"
    assert "/work/" not in text and "shared/" not in text, f"{name} names a path of one machine"


@pytest.mark.parametrize("name", DOCS)
def test_make_targets_exist(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    # `make X` in inline code, or a code-block line starting with (VAR=value ...) make X
    named = set(re.findall(r"`(?:[A-Z_]+=\S+ )*make ([a-z][a-z-]+)", text))
    named |= set(re.findall(r"^(?:[A-Z_]+=\S+ )*make ([a-z][a-z-]+)", text, re.MULTILINE))
    assert named, name
    assert named <= make_targets(), f"{name} names targets the Makefile lacks: {sorted(named - make_targets())}"


@pytest.mark.parametrize("name", DOCS)
def test_repository_paths_exist(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:scripts|book|tests|companion|benchmarks)/[\w./-]+)`", text))
    concrete = {p for p in paths if not re.search(r"NN|partN|<|\*|slug|\.\.\.", p)}
    missing = sorted(p for p in concrete if not (ROOT / p.rstrip("/")).exists())
    assert not missing, f"{name} names paths that do not exist: {missing}"
