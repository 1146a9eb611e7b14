"""Sphinx extension: the errata index, rendered from book/_data/errata.yaml.

Directives (MyST: ```{errata-table} 000 ... ```):

- ``errata-table SEED`` -- every error found in the original article ``SEED``
  (000 ... 004), grouped by kind (formula, concept, claim, code), one table per kind:
  where it is (section and line range), what it says (paraphrased), and what is true,
  ending with the chapter and section of the book whose executed code shows it.
- ``errata-summary`` -- one table with the number of entries per article and per kind,
  and the number of code blocks of each article (every one has at least one entry).

Links are real cross-references: the "Shown in" link is the MyST role
``{ref}`label``` parsed in place, so Sphinx resolves it like any other ``{ref}``
and a label that does not exist fails the ``-W`` build ("undefined label").
Cell text is parsed as MyST inline/block markup, so ``$math$``, ``code`` and
``{cite}`` work inside the data file.

The data file is a build dependency of the page that uses it: editing the YAML
rebuilds the page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

DATA_FILE = "book/_data/errata.yaml"
ORIGINALS_FILE = "book/_data/originals.yaml"
FIELDS = ("id", "kind", "where", "lines", "says", "truth", "link")
# Kinds in the order the index shows them, with the heading of each group.
KINDS = {
    "formula": "Formulas: an equation that is wrong or missing",
    "concept": "Concepts: a wrong definition or description of how something works",
    "claim": "Claims: cause, effect or advice that measurement or the literature contradicts",
    "code": "Code: one entry per separate bug of each code block",
}
_LABEL = re.compile(r"^\(([A-Za-z0-9_.:-]+)\)=\s*$", re.MULTILINE)


def chapter_labels(book: Path) -> dict[str, str]:
    """Every label in the book's chapters -> the chapter label (``ch-*``) of its file."""
    owner: dict[str, str] = {}
    for path in book.rglob("*.md"):
        labels = _LABEL.findall(path.read_text(encoding="utf-8"))
        chapter = next((label for label in labels if label.startswith("ch-")), None)
        for label in labels:
            owner[label] = chapter or label
    return owner


def load_errata(path: Path) -> dict[str, Any]:
    """Read and minimally validate the errata file (the unit test checks the rest)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "articles" not in data or "errata" not in data:
        raise ValueError(f"{path}: expected top-level keys 'articles' and 'errata'")
    for seed, entries in data["errata"].items():
        for entry in entries:
            missing = [field for field in FIELDS if field not in entry]
            if missing:
                raise ValueError(f"{path}: entry {entry.get('id', '?')} of seed {seed} lacks {missing}")
    return data


class _ErrataDirective(SphinxDirective):
    """Shared helpers: data loading and MyST-parsed table cells."""

    def data(self) -> dict[str, Any]:
        path = Path(self.env.srcdir) / self.config.errata_data_file
        self.env.note_dependency(str(path))
        return load_errata(path)

    def originals(self) -> dict[str, Any]:
        path = Path(self.env.srcdir) / ORIGINALS_FILE
        self.env.note_dependency(str(path))
        return yaml.safe_load(path.read_text(encoding="utf-8"))

    def translatable(self, node: nodes.TextElement) -> nodes.TextElement:
        """Give a generated heading the directive's source, so the Chinese edition translates it.

        Sphinx extracts and translates only text nodes that know their source; the cells'
        MyST text gets it from the nested parse, the headings written here need it set.
        """
        node.source, node.line = self.get_source_info()
        return node

    def cell(self, markup: str) -> nodes.entry:
        entry = nodes.entry()
        # Nested parse: the text is MyST, so {ref}, $...$ and `code` become real nodes.
        self.state.nested_parse(StringList(markup.splitlines() or [""]), self.content_offset, entry)
        return entry

    def table(self, widths: list[int], header: list[str], rows: list[list[str]], classes: list[str]) -> nodes.table:
        table = nodes.table(classes=["errata-table", *classes])
        group = nodes.tgroup(cols=len(widths))
        table += group
        for width in widths:
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        row = nodes.row()
        for text in header:
            entry = nodes.entry()
            entry += self.translatable(nodes.paragraph(text, text))
            row += entry
        head += row
        body = nodes.tbody()
        group += body
        for cells in rows:
            row = nodes.row()
            for markup in cells:
                row += self.cell(markup)
            body += row
        return table


def _shown_in(entry: dict[str, Any], owner: dict[str, str]) -> str:
    link = entry["link"]
    chapter = owner.get(link, link)
    if chapter == link:
        return "{ref}`" + link + "`"
    return "{ref}`" + chapter + "`, section {ref}`" + link + "`"


class ErrataTable(_ErrataDirective):
    """``errata-table SEED``: every error of one original article, one table per kind."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        seed = self.arguments[0].strip()
        data = self.data()
        if seed not in data["errata"]:
            raise self.error(f"errata-table: no entries for seed {seed!r} in {self.config.errata_data_file}")
        owner = chapter_labels(Path(self.env.srcdir) / "book")
        header = ["Where in the original", "What it says (paraphrased)", "What is true, and where it is shown"]
        result: list[nodes.Node] = []
        for kind, heading in KINDS.items():
            group = [e for e in data["errata"][seed] if e["kind"] == kind]
            if not group:
                continue
            title = f"{heading} ({len(group)})"
            result.append(self.translatable(nodes.rubric(title, title)))
            rows = []
            for entry in group:
                block = f", code block {entry['code_block']}" if kind == "code" else ""
                rows.append(
                    [
                        f"**{entry['id']}** {entry['where']}{block}, lines {entry['lines']}",
                        entry["says"],
                        f"{entry['truth']}\n\nShown in: {_shown_in(entry, owner)}",
                    ]
                )
            result.append(self.table([20, 30, 50], header, rows, [f"errata-seed-{seed}", f"errata-{kind}"]))
        return result


class ErrataSummary(_ErrataDirective):
    """``errata-summary``: counts per article and per kind."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        data, originals = self.data(), self.originals()
        rows = []
        totals = [0] * (len(KINDS) + 2)
        for seed, entries in data["errata"].items():
            counts = [len(entries), *(sum(1 for e in entries if e["kind"] == k) for k in KINDS),
                      len(originals[seed]["code_blocks"])]
            totals = [t + c for t, c in zip(totals, counts)]
            article = data["articles"][seed]
            name = f"《{article['title']}》" if article["title"] else f"*{article['english']}*"
            rows.append([f"{seed}", name, *(str(c) for c in counts)])
        rows.append(["", "**all five**", *(f"**{t}**" for t in totals)])
        header = ["Seed", "Article", "Errors", *(k for k in KINDS), "Code blocks in the article"]
        return [self.table([6, 34, 8, 9, 9, 8, 8, 12], header, rows, ["errata-summary"])]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("errata_data_file", DATA_FILE, "env")
    app.add_directive("errata-table", ErrataTable)
    app.add_directive("errata-summary", ErrataSummary)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
