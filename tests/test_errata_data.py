"""The errata index's data file (book/_data/errata.yaml) and the reader appendices.

Needs nothing outside the repository: what it needs to know about the originals (line
counts, code-block line ranges, checksums) is committed in book/_data/originals.yaml,
never their text. Checks that every entry has its fields, every fenced code block of
every original has an entry whose lines lie inside that block, every entry's line range
lies inside its article, no entry quotes the originals' Chinese text, every linked label
exists, and that the linked section executes code (it contains a ``{code-cell}``).
The book build itself checks that the links resolve (``-W -n``); this test says which
entry is wrong, in a second.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "book" / "_data" / "errata.yaml"
ORIGINALS = ROOT / "book" / "_data" / "originals.yaml"
SEED_IDS = ("000", "001", "002", "003", "004")
KINDS = {"formula", "concept", "claim", "code"}
REQUIRED = ("id", "kind", "where", "lines", "says", "truth", "link")
LABEL = re.compile(r"^\(([A-Za-z0-9_.:-]+)\)=\s*$")
HEADING = re.compile(r"^(#{1,6})\s")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


@pytest.fixture(scope="module")
def data() -> dict:
    return yaml.safe_load(DATA.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def originals() -> dict:
    return yaml.safe_load(ORIGINALS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def entries(data: dict) -> list[tuple[str, dict]]:
    return [(seed, entry) for seed, items in data["errata"].items() for entry in items]


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """'69-82' or '31, 49' -> [(69, 82)] or [(31, 31), (49, 49)]."""
    ranges = []
    for part in str(text).split(","):
        match = RANGE.match(part.strip())
        assert match, f"line range {text!r}: expected e.g. '69-82' or '31, 49'"
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        assert first <= last, f"line range {text!r}: {first} > {last}"
        ranges.append((first, last))
    return ranges


def book_sections() -> dict[str, tuple[str, bool]]:
    """label -> (chapter path, whether its section contains a ```{code-cell}).

    A label's section runs from the heading that follows the label to the next heading of
    the same or a higher level (headings inside code fences do not count).
    """
    sections: dict[str, tuple[str, bool]] = {}
    for path in sorted((ROOT / "book").rglob("*.md")):
        lines = path.read_text(encoding="utf-8").splitlines()
        headings, labels, fence = [], [], None
        for number, line in enumerate(lines):
            stripped = line.strip()
            if stripped.startswith(("```", "~~~")):
                marker = stripped[:3]
                if fence is None:
                    fence = marker
                elif stripped.strip("`~") == "" and marker == fence:
                    fence = None
                continue
            if fence is not None:
                continue
            if match := LABEL.match(line):
                labels.append((number, match.group(1)))
            elif match := HEADING.match(line):
                headings.append((number, len(match.group(1))))
        for number, label in labels:
            after = [h for h in headings if h[0] > number]
            if not after:
                continue
            start, level = after[0]
            end = next((h[0] for h in after[1:] if h[1] <= level), len(lines))
            body = "\n".join(lines[start:end])
            sections[label] = (path.relative_to(ROOT).as_posix(), "```{code-cell}" in body)
    return sections


@pytest.fixture(scope="module")
def sections() -> dict[str, tuple[str, bool]]:
    return book_sections()


def test_structure(data: dict, originals: dict) -> None:
    assert set(data) == {"articles", "errata"}
    assert tuple(sorted(data["articles"])) == SEED_IDS
    assert tuple(sorted(data["errata"])) == SEED_IDS
    assert tuple(sorted(originals)) == SEED_IDS
    for seed, article in data["articles"].items():
        assert article.get("english"), f"article {seed} needs an English title"
    assert data["articles"]["002"]["title"] is None, "seed 002 has no title"


@pytest.mark.parametrize("seed", SEED_IDS)
def test_every_seed_has_entries(data: dict, seed: str) -> None:
    assert len(data["errata"][seed]) >= 15, f"seed {seed}: only {len(data['errata'][seed])} errata"


def test_fields(entries: list[tuple[str, dict]], originals: dict) -> None:
    ids = [entry.get("id") for _, entry in entries]
    assert len(ids) == len(set(ids)), f"duplicate ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    for seed, items in {s: [e for t, e in entries if t == s] for s in SEED_IDS}.items():
        assert [e["id"] for e in items] == [f"s{seed}-{n}" for n in range(1, len(items) + 1)], (
            f"seed {seed}: ids must be s{seed}-1, s{seed}-2, ... in file order")
    for seed, entry in entries:
        name = entry.get("id", "?")
        for field in REQUIRED:
            assert isinstance(entry.get(field), str) and entry[field].strip(), f"{name}: field {field!r} missing or empty"
        assert entry["kind"] in KINDS, f"{name}: kind {entry['kind']!r} not in {sorted(KINDS)}"
        if entry["kind"] == "code":
            assert isinstance(entry.get("code_block"), int), f"{name}: a code entry needs code_block: <int>"
        else:
            assert "code_block" not in entry, f"{name}: code_block only for kind: code"
        unknown = set(entry) - {*REQUIRED, "code_block"}
        assert not unknown, f"{name}: unknown fields {sorted(unknown)}"
        assert entry["link"].startswith("sec-"), f"{name}: link a section (sec-*), not {entry['link']!r}"
        for first, last in parse_ranges(entry["lines"]):
            assert 1 <= first and last <= originals[seed]["lines"], (
                f"{name}: lines {entry['lines']} outside the article's {originals[seed]['lines']} lines")


def test_paraphrased_not_copied(entries: list[tuple[str, dict]]) -> None:
    """The originals are paraphrased in English: no Chinese text in an entry."""
    for _, entry in entries:
        for field in ("where", "says", "truth"):
            found = CJK.findall(entry[field])
            assert not found, f"{entry['id']}.{field} contains Chinese text {''.join(found)!r}: paraphrase in English"


@pytest.mark.parametrize("seed", SEED_IDS)
def test_every_code_block_covered(data: dict, originals: dict, seed: str) -> None:
    blocks = [parse_ranges(b)[0] for b in originals[seed]["code_blocks"]]
    code = [e for e in data["errata"][seed] if e["kind"] == "code"]
    covered = {e["code_block"] for e in code}
    missing = sorted(set(range(1, len(blocks) + 1)) - covered)
    extra = sorted(covered - set(range(1, len(blocks) + 1)))
    assert not missing, f"seed {seed}: code blocks {missing} of {len(blocks)} have no errata entry"
    assert not extra, f"seed {seed}: entries name code blocks {extra}, the seed has {len(blocks)}"
    for entry in code:
        first_block, last_block = blocks[entry["code_block"] - 1]
        for first, last in parse_ranges(entry["lines"]):
            # a code entry points into its block (the explanation right after it may be cited too)
            assert first_block <= first and last <= last_block + 3, (
                f"{entry['id']}: lines {entry['lines']} not in code block {entry['code_block']} "
                f"(lines {first_block}-{last_block})")


def test_links_exist_and_execute_code(entries: list[tuple[str, dict]], sections: dict) -> None:
    for _, entry in entries:
        assert entry["link"] in sections, f"{entry['id']}: link {entry['link']!r} is not a section label in book/**/*.md"
        chapter, executes = sections[entry["link"]]
        assert executes, f"{entry['id']}: section {entry['link']} ({chapter}) executes no code: link a section that demonstrates the correction"


def test_linked_chapters_are_in_the_toc(entries: list[tuple[str, dict]], sections: dict) -> None:
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    for _, entry in entries:
        chapter = sections[entry["link"]][0].removesuffix(".md")
        assert f"file: {chapter}\n" in toc, f"{entry['id']}: {chapter} is not listed in _toc.yml (not executed)"


def test_originals_checksums_when_available(originals: dict) -> None:
    """Optional: where the originals are at hand (SEEDS_DIR), the committed facts match them."""
    folder = os.environ.get("SEEDS_DIR")
    if not folder:
        return  # nothing outside the repository is needed; this is a maintainer's check
    for seed, facts in originals.items():
        raw = (Path(folder) / facts["file"]).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == facts["sha256"], f"{facts['file']} changed"
        text = raw.decode("utf-8")
        assert len(text.splitlines()) == facts["lines"]
        fences = [n for n, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith("```")]
        pairs = [f"{a}-{b}" for a, b in zip(fences[::2], fences[1::2])]
        assert pairs == facts["code_blocks"], f"seed {seed}: code blocks {pairs}"


def test_api_appendix_documents_every_module() -> None:
    page = (ROOT / "book" / "appendix" / "30_api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. automodule:: companion\.(\w+)\s*$", page, re.MULTILINE))
    modules = {p.stem for p in (ROOT / "companion").glob("*.py") if not p.stem.startswith("_")}
    assert modules - documented == set(), f"add to book/appendix/30_api.md: {sorted(modules - documented)}"
    assert documented - modules == set(), f"no such module: {sorted(documented - modules)}"


def test_api_appendix_example_runs(capsys) -> None:
    """The first Python block of the API page is a complete example: it must run as printed."""
    page = (ROOT / "book" / "appendix" / "30_api.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(.*?)```", page, re.DOTALL).group(1)
    exec(compile(example, "30_api.md example", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.startswith("tensor([") and printed.count(",") == 4   # g_1 .. g_5


def test_one_bibliography_directive() -> None:
    pages = [p for p in (ROOT / "book").rglob("*.md") if "{bibliography}" in p.read_text(encoding="utf-8")]
    assert [p.relative_to(ROOT).as_posix() for p in pages] == ["book/appendix/90_references.md"]
