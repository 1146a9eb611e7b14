"""Sphinx extension: the errata index, rendered from book/_data/errata.yaml.

Directives (MyST: ```{errata-table} 000 ... ```):

- ``errata-table SEED`` -- one table of every error found in the original
  article ``SEED`` (000 ... 004): where it is, what it says (paraphrased), and what
  is true, ending with the section of the book that shows it.
- ``errata-summary`` -- one table with the number of entries per article and how
  many of them link to a chapter section.

Links are real cross-references: the "Shown in" link is the MyST role
``{ref}`label``` parsed in place, so Sphinx resolves it like any other ``{ref}``
and a label that does not exist fails the ``-W`` build ("undefined label").
Cell text is parsed as MyST inline/block markup, so ``$math$``, ``code`` and
``{cite}`` work inside the data file.

The data file is a build dependency of the page that uses it: editing the YAML
rebuilds the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

DATA_FILE = "book/_data/errata.yaml"
FIELDS = ("id", "kind", "where", "says", "truth")
KIND_LABEL = {"formula": "formula", "concept": "concept", "claim": "claim", "code": "code"}


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
            if ("link" in entry) == ("planned" in entry):
                raise ValueError(f"{path}: entry {entry['id']} needs exactly one of 'link' or 'planned'")
    return data


class _ErrataDirective(SphinxDirective):
    """Shared helpers: data loading and MyST-parsed table cells."""

    def data(self) -> dict[str, Any]:
        path = Path(self.env.srcdir) / self.config.errata_data_file
        self.env.note_dependency(str(path))
        return load_errata(path)

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
            entry += nodes.paragraph(text=text)
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


def _shown_in(entry: dict[str, Any]) -> str:
    if "link" in entry:
        return "{ref}`" + entry["link"] + "`"
    return f"*in preparation* (`{entry['planned']}`)"


class ErrataTable(_ErrataDirective):
    """``errata-table SEED``: every error of one original article."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        seed = self.arguments[0].strip()
        data = self.data()
        if seed not in data["errata"]:
            raise self.error(f"errata-table: no entries for seed {seed!r} in {self.config.errata_data_file}")
        rows = []
        for number, entry in enumerate(data["errata"][seed], start=1):
            kind = KIND_LABEL[entry["kind"]]
            if entry["kind"] == "code":
                kind = f"code block {entry['code_block']}"
            rows.append(
                [
                    f"**{number}.** {entry['where']}\n\n*{kind}*",
                    entry["says"],
                    f"{entry['truth']}\n\nShown in: {_shown_in(entry)}",
                ]
            )
        header = ["Where in the original", "What it says (paraphrased)", "What is true"]
        return [self.table([20, 30, 50], header, rows, [f"errata-seed-{seed}"])]


class ErrataSummary(_ErrataDirective):
    """``errata-summary``: counts per article."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        data = self.data()
        rows = []
        totals = [0, 0, 0, 0]
        for seed, entries in data["errata"].items():
            counts = [
                len(entries),
                sum(1 for e in entries if e["kind"] == "code"),
                sum(1 for e in entries if "link" in e),
                sum(1 for e in entries if str(e.get("link", "")).startswith("sec-")),
            ]
            totals = [t + c for t, c in zip(totals, counts)]
            article = data["articles"][seed]
            name = f"《{article['title']}》" if article["title"] else f"*{article['english']}*"
            rows.append([f"{seed}", name, *(str(c) for c in counts)])
        rows.append(["", "**all five**", *(f"**{t}**" for t in totals)])
        header = ["Seed", "Article", "Errors listed", "Code blocks", "Linked", "Linked to a section"]
        return [self.table([6, 40, 12, 12, 10, 14], header, rows, ["errata-summary"])]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("errata_data_file", DATA_FILE, "env")
    app.add_directive("errata-table", ErrataTable)
    app.add_directive("errata-summary", ErrataSummary)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
