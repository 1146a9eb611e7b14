"""Seeding helpers: the COMPANION_SEED_OFFSET switch, and that nothing in the book bypasses it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import companion
from companion.reproducibility import SEED_OFFSET_VARIABLE, generator, offset_seed, seed_everything, seed_offset

ROOT = Path(__file__).resolve().parent.parent


def test_offset_defaults_to_zero(monkeypatch):
    monkeypatch.delenv(SEED_OFFSET_VARIABLE, raising=False)
    assert seed_offset() == 0
    assert offset_seed(7) == 7


def test_offset_is_added_to_every_seed(monkeypatch):
    monkeypatch.setenv(SEED_OFFSET_VARIABLE, "1000")
    assert offset_seed(3) == 1003
    seed_everything(3)
    shifted = torch.rand(4)
    torch.manual_seed(1003)  # the oracle: torch seeded by hand with the shifted seed
    assert torch.equal(shifted, torch.rand(4))
    assert torch.equal(torch.rand(4, generator=generator(3)),
                       torch.rand(4, generator=torch.Generator().manual_seed(1003)))


def test_offset_changes_companion_data(monkeypatch):
    monkeypatch.delenv(SEED_OFFSET_VARIABLE, raising=False)
    x0, _ = companion.data.two_spirals(16, seed=0)
    monkeypatch.setenv(SEED_OFFSET_VARIABLE, "5")
    x5, _ = companion.data.two_spirals(16, seed=0)
    monkeypatch.setenv(SEED_OFFSET_VARIABLE, "0")
    assert torch.equal(x0, companion.data.two_spirals(16, seed=0)[0])
    assert not torch.equal(x0, x5)
    assert torch.equal(x5, companion.data.two_spirals(16, seed=5)[0])


@pytest.mark.parametrize("raw", ["-1", "one", "1.5"])
def test_bad_offset_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv(SEED_OFFSET_VARIABLE, raw)
    with pytest.raises(ValueError, match=f"{SEED_OFFSET_VARIABLE} must be a non-negative integer, got '{re.escape(raw)}'"):
        seed_offset()


def test_bad_seed_names_the_argument():
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        offset_seed(-1)


# Direct seeding would ignore COMPANION_SEED_OFFSET: chapters and the companion go through
# companion.seed_everything / companion.generator / companion.offset_seed instead.
DIRECT_SEEDING = re.compile(
    r"(?<![\w.])(torch\.manual_seed|torch\.cuda\.manual_seed\w*|np\.random\.seed|numpy\.random\.seed"
    r"|random\.seed|default_rng|RandomState)\s*\("
    r"|\.manual_seed\s*\("
    r"|random_state\s*=\s*\d"
)


def _sources():
    yield from sorted((ROOT / "book").rglob("*.md"))
    for path in sorted((ROOT / "companion").glob("*.py")):
        if path.name != "reproducibility.py":
            yield path


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_seed_bypasses_the_offset(path):
    offending = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if DIRECT_SEEDING.search(line) and not line.lstrip().startswith(("#", ">", "*", "-", "|"))
        and "``" not in line and "`torch" not in line
    ]
    assert not offending, "seed through companion.seed_everything/generator/offset_seed:\n" + "\n".join(offending)
