"""The errata index's data file (book/_data/errata.yaml) and the reader appendices.

Checks that every original article has entries, every entry has its fields, every
fenced code block of every original (counted in ../shared/seeds) has an entry, every
linked label exists in the book, no entry quotes the originals' Chinese text, and the
API appendix documents every companion module. The book build itself checks that the
links resolve (``-W -n``); this test says which entry is wrong, in a second.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "book" / "_data" / "errata.yaml"
# The originals are not part of this repository (we never copy them): CI lays them in
# ../shared/seeds; SEEDS_DIR points elsewhere.
SEEDS = Path(os.environ.get("SEEDS_DIR", ROOT.parent / "shared" / "seeds"))
SEED_IDS = ("000", "001", "002", "003", "004")
KINDS = {"formula", "concept", "claim", "code"}
REQUIRED = ("id", "kind", "where", "says", "truth")
# The chapters CONTRIBUTING.md plans; a `planned:` entry must name one of them.
PLANNED_CHAPTERS = {
    "ch-exploding-vanishing", "ch-backprop-by-hand",
    "ch-penalties", "ch-linear-regression", "ch-weight-decay", "ch-does-l1-l2-stop-explosion",
    "ch-seed004-restated",
    "ch-initialization", "ch-activations", "ch-normalization", "ch-residual", "ch-clipping-rnn",
    "ch-learning-rate", "ch-distributed", "ch-verdict",
    "ch-dropout", "ch-augmentation", "ch-early-stopping", "ch-l1-l2-vs-overfitting",
    "ch-seed000-repaired", "ch-seed003-repaired",
}
LABEL = re.compile(r"^\(([A-Za-z0-9_.:-]+)\)=\s*$", re.MULTILINE)
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")


@pytest.fixture(scope="module")
def data() -> dict:
    return yaml.safe_load(DATA.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def entries(data: dict) -> list[tuple[str, dict]]:
    return [(seed, entry) for seed, items in data["errata"].items() for entry in items]


@pytest.fixture(scope="module")
def book_labels() -> set[str]:
    labels: set[str] = set()
    for path in (ROOT / "book").rglob("*.md"):
        labels |= set(LABEL.findall(path.read_text(encoding="utf-8")))
    return labels


def seed_file(seed: str) -> Path:
    message = (
        f"{SEEDS} not found: the originals live in ../shared/seeds beside the repository "
        "(CI lays shared/ there; set SEEDS_DIR to use another folder); without them "
        "code-block coverage cannot be checked"
    )
    if not SEEDS.is_dir() and os.environ.get("CI", "").lower() != "true":
        pytest.skip("SKIPPED LOUDLY: " + message)
    assert SEEDS.is_dir(), message
    matches = sorted(SEEDS.glob(f"{seed}_*.txt"))
    assert len(matches) == 1, f"expected one seed file {seed}_*.txt in {SEEDS}, found {matches}"
    return matches[0]


def count_code_blocks(path: Path) -> int:
    fences = [line for line in path.read_text(encoding="utf-8").splitlines() if line.lstrip().startswith("```")]
    assert len(fences) % 2 == 0, f"{path.name}: unbalanced ``` fences ({len(fences)})"
    return len(fences) // 2


def test_structure(data: dict) -> None:
    assert set(data) == {"articles", "errata"}
    assert tuple(sorted(data["articles"])) == SEED_IDS
    assert tuple(sorted(data["errata"])) == SEED_IDS
    for seed, article in data["articles"].items():
        assert article.get("english"), f"article {seed} needs an English title"
    assert data["articles"]["002"]["title"] is None, "seed 002 has no title (CONTRIBUTING.md)"


@pytest.mark.parametrize("seed", SEED_IDS)
def test_every_seed_has_entries(data: dict, seed: str) -> None:
    assert len(data["errata"][seed]) >= 5, f"seed {seed}: only {len(data['errata'][seed])} errata"


def test_fields(entries: list[tuple[str, dict]]) -> None:
    ids = [entry.get("id") for _, entry in entries]
    assert len(ids) == len(set(ids)), f"duplicate ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    for seed, entry in entries:
        name = entry.get("id", "?")
        for field in REQUIRED:
            assert isinstance(entry.get(field), str) and entry[field].strip(), f"{name}: field {field!r} missing or empty"
        assert name.startswith(f"s{seed}-"), f"{name}: id must start with s{seed}-"
        assert entry["kind"] in KINDS, f"{name}: kind {entry['kind']!r} not in {sorted(KINDS)}"
        assert ("link" in entry) != ("planned" in entry), f"{name}: needs exactly one of 'link' or 'planned'"
        if entry["kind"] == "code":
            assert isinstance(entry.get("code_block"), int), f"{name}: a code entry needs code_block: <int>"
        else:
            assert "code_block" not in entry, f"{name}: code_block only for kind: code"
        unknown = set(entry) - {*REQUIRED, "link", "planned", "code_block"}
        assert not unknown, f"{name}: unknown fields {sorted(unknown)}"


def test_paraphrased_not_copied(entries: list[tuple[str, dict]]) -> None:
    """The originals are paraphrased in English: no Chinese text in an entry."""
    for _, entry in entries:
        for field in ("where", "says", "truth"):
            found = CJK.findall(entry[field])
            assert not found, f"{entry['id']}.{field} contains Chinese text {''.join(found)!r}: paraphrase in English"


@pytest.mark.parametrize("seed", SEED_IDS)
def test_every_code_block_covered(data: dict, seed: str) -> None:
    blocks = count_code_blocks(seed_file(seed))
    covered = [entry["code_block"] for entry in data["errata"][seed] if entry["kind"] == "code"]
    missing = sorted(set(range(1, blocks + 1)) - set(covered))
    extra = sorted(set(covered) - set(range(1, blocks + 1)))
    assert not missing, f"seed {seed}: code blocks {missing} of {blocks} have no errata entry"
    assert not extra, f"seed {seed}: entries name code blocks {extra}, the seed has {blocks}"


def test_links_exist(entries: list[tuple[str, dict]], book_labels: set[str]) -> None:
    for _, entry in entries:
        if "link" in entry:
            assert entry["link"] in book_labels, (
                f"{entry['id']}: link {entry['link']!r} is not a label in any book/**/*.md"
            )


def test_planned_chapters_are_not_written_yet(entries: list[tuple[str, dict]], book_labels: set[str]) -> None:
    """`planned:` is only for chapters that do not exist; once they do, link them."""
    stale = []
    for _, entry in entries:
        if "planned" in entry:
            assert entry["planned"] in PLANNED_CHAPTERS, f"{entry['id']}: unknown chapter {entry['planned']!r}"
            if entry["planned"] in book_labels:
                stale.append(entry["id"])
    assert not stale, (
        f"entries {stale} say 'planned:' for chapters that now exist: replace 'planned:' with "
        "'link:' (the chapter label, or better a section label of it) in book/_data/errata.yaml"
    )


def test_api_appendix_documents_every_module() -> None:
    page = (ROOT / "book" / "appendix" / "30_api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. automodule:: companion\.(\w+)\s*$", page, re.MULTILINE))
    modules = {p.stem for p in (ROOT / "companion").glob("*.py") if not p.stem.startswith("_")}
    assert modules - documented == set(), f"add to book/appendix/30_api.md: {sorted(modules - documented)}"
    assert documented - modules == set(), f"no such module: {sorted(documented - modules)}"


def test_one_bibliography_directive() -> None:
    pages = [p for p in (ROOT / "book").rglob("*.md") if "{bibliography}" in p.read_text(encoding="utf-8")]
    assert [p.relative_to(ROOT).as_posix() for p in pages] == ["book/appendix/90_references.md"]
