"""Turn the book's executed chapters into plain notebooks a reader runs in any Jupyter.

Usage: python scripts/reader_notebooks.py [--out DIR] [--build DIR] [CHAPTER.md ...]

A chapter's source is a MyST Markdown notebook: plain Jupyter (Lab, Notebook, VS Code, Colab)
shows its roles and directives as raw text, and its first cell imports ``myst_nb`` for
``glue``. This script starts from the notebook the build published
(``_build/jupyter_execute/<page>.ipynb`` and the glued values beside it, ``<page>.glue.json``)
and writes a notebook with

* the glued values written into the Markdown as numbers, formatted by the role's format spec
  (``{glue:text}`ratio:.1f``` becomes ``12.3``), the values of that build;
* MyST turned into plain Markdown: ``(label)=`` lines dropped; ``{ref}``, ``{numref}``,
  ``{doc}`` as links inside the notebook or plain text naming the other chapter; ``{cite}`` as
  (Author, year) with a references cell at the end (DOI or URL where the entry has one);
  ``{math}`` as ``$...$``; exercises as a bold "Exercise N" and their solutions in a collapsed
  ``<details>`` block (the solution's code cells collapsed too); admonitions as block quotes;
  figure captions as a "Figure N." line under the figure;
* ``from myst_nb import glue`` replaced by a stand-in that does nothing, so the notebook needs
  nothing beyond the companion and its dependencies;
* a first cell that says how to install the companion and stops with a clear message if the
  installed version is not the book's;
* every output of the build kept (figures, printed tables).

Writes ``notebooks/<part>_<chapter>.ipynb`` (``make notebooks``); the site extension
``book/_ext/site_tweaks.py`` offers the same notebooks as each chapter's download.
Exit status 1 if a chapter has no executed notebook in the build or if MyST syntax is left.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from ast import literal_eval
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_wheel import companion_version, wheel_name  # noqa: E402

GLUE_PREFIX = "application/papermill.record/"
GLUE_IMPORT = re.compile(r"^([ \t]*)from myst_nb import glue[ \t]*$", re.MULTILINE)
GLUE_STAND_IN = (
    "{indent}def glue(name, value, display=True):  # the book's glue pasted values into its text; here the text already holds them\n"
    "{indent}    if display:\n"
    "{indent}        from IPython.display import display as _display\n"
    "{indent}        _display(value)"
)
MYST_NB_IMPORT = re.compile(r"^\s*(from|import)\s+myst_nb\b", re.MULTILINE)
ROLE = re.compile(r"\{(?P<name>[a-z][a-z0-9:_-]*)\}`(?P<content>[^`]*)`")
LABEL_LINE = re.compile(r"^\s*\((?P<label>[^()\s]+)\)=\s*$")
FENCE_OPEN = re.compile(r"^(?P<indent>\s*)(?P<fence>:{3,}|`{3,})\{(?P<name>[a-z][a-z0-9_-]*)\}\s*(?P<arg>.*?)\s*$")
PLAIN_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})")
OPTION = re.compile(r"^\s*:(?P<key>[a-zA-Z_-]+):\s*(?P<value>.*)$")
HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*$")
ADMONITIONS = {
    "note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error",
    "seealso", "admonition",
}
# Patterns that must not survive the conversion (checked by leftovers()).
LEFTOVER_PATTERNS = [
    re.compile(r"\{[a-z][a-z0-9:_-]*\}`"),       # a role
    re.compile(r"^\s*\([^()\s]+\)=\s*$", re.M),  # a label line
    re.compile(r"^\s*(:{3,}|`{3,})\{", re.M),     # a directive
    re.compile(r"^\s*:{3,}\s*$", re.M),          # a colon fence's end
]


# ----------------------------------------------------------------------------- the book's index
@dataclass
class Target:
    """Where a label points: its page, its title, and its kind (section, exercise, figure)."""

    page: str
    kind: str
    title: str
    number: int | None = None


@dataclass
class BookIndex:
    """Labels, page titles and bibliography of the whole book, for cross-references."""

    targets: dict[str, Target] = field(default_factory=dict)
    page_titles: dict[str, str] = field(default_factory=dict)
    bibliography: dict[str, dict[str, str]] = field(default_factory=dict)

    def add_notebook(self, page: str, notebook: nbformat.NotebookNode) -> None:
        """Index the labels of one page (``page`` is its docname, e.g. ``book/part1/01_x``)."""
        exercises = figures = 0
        pending: str | None = None
        for cell in notebook.cells:
            if cell.cell_type == "code":
                figure = cell.metadata.get("mystnb", {}).get("figure", {})
                if figure.get("name"):
                    figures += 1
                    self.targets[figure["name"]] = Target(page, "figure", figure.get("caption", ""), figures)
                continue
            if cell.cell_type != "markdown":
                continue
            lines = cell.source.splitlines()
            for i, line in enumerate(lines):
                if (m := LABEL_LINE.match(line)) is not None:
                    pending = m["label"]
                    continue
                if (m := HEADING.match(line)) is not None:
                    title = strip_markup(m["title"])
                    if len(m["hashes"]) == 1 and page not in self.page_titles:
                        self.page_titles[page] = title
                    if pending is not None:
                        self.targets[pending] = Target(page, "section", title)
                    pending = None
                    continue
                if line.strip():
                    pending = None
                if (m := FENCE_OPEN.match(line)) is not None and m["name"] == "exercise":
                    exercises += 1
                    for option in lines[i + 1:]:
                        if (o := OPTION.match(option)) is None:
                            break
                        if o["key"] == "label":
                            self.targets[o["value"].strip()] = Target(page, "exercise", m["arg"], exercises)

    def add_bibtex(self, path: Path) -> None:
        """Read a BibTeX file: author, year, title and DOI/URL of each key."""
        from pybtex.database import parse_file  # in the build's lock; only the build converts

        database = parse_file(str(path))
        for key, entry in database.entries.items():
            people = entry.persons.get("author", [])
            surnames = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in people]
            fields = {name.lower(): str(value).replace("{", "").replace("}", "") for name, value in entry.fields.items()}
            self.bibliography[key] = {
                "surnames": surnames,
                "year": fields.get("year", "n.d."),
                "title": fields.get("title", key),
                "venue": fields.get("booktitle") or fields.get("journal") or fields.get("publisher") or "",
                "doi": fields.get("doi", ""),
                "url": fields.get("url", ""),
                "authors": ", ".join(" ".join([*p.first_names, *p.last_names]) for p in people).replace("{", "").replace("}", ""),
            }


def strip_markup(text: str) -> str:
    """A heading's text as plain words (roles reduced to their content)."""
    return ROLE.sub(lambda m: m["content"].split("<")[0].strip(), text).strip()


def book_index(root: Path = ROOT) -> BookIndex:
    """The index of every page of the book (MyST sources read with jupytext) and its references."""
    import jupytext

    index = BookIndex()
    for path in sorted((root / "book").rglob("*.md")):
        if any(part.startswith(("_", ".")) for part in path.relative_to(root).parts):
            continue
        index.add_notebook(path.relative_to(root).with_suffix("").as_posix(), jupytext.read(path))
    for bib in sorted((root / "book").glob("*.bib")):
        index.add_bibtex(bib)
    return index


# ----------------------------------------------------------------------------- glue values
def glue_values(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """The ``text/plain`` of every glued value of an executed notebook, by name."""
    values: dict[str, str] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if scrapbook is None:
                continue
            prefix = scrapbook.get("mime_prefix", "")
            text = output.get("data", {}).get(prefix + "text/plain")
            if text is not None:
                values[scrapbook["name"]] = text if isinstance(text, str) else "".join(text)
    return values


def format_glued(text: str, spec: str) -> str:
    """Format a glued value as myst-nb's ``{glue:text}`` role does (same rules, same result)."""
    try:
        value = literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if spec == "":
        return str(value)
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, spec)


# ----------------------------------------------------------------------------- Markdown
def jupyter_anchor(title: str) -> str:
    """The anchor Jupyter gives a heading: its text with spaces as hyphens."""
    return "#" + re.sub(r"\s+", "-", title.strip())


class Converter:
    """Converts one executed chapter notebook; see the module docstring."""

    def __init__(self, page: str, index: BookIndex, values: dict[str, str]) -> None:
        self.page = page
        self.index = index
        self.values = values
        self.cited: list[str] = []
        self.in_solution: str | None = None  # the "Exercise N" whose solution is open
        self.missing: list[str] = []
        self.exercise_count = 0
        self.details_open = False  # a <details> block is open in the cell being converted
        self.pending_summary: str | None = None  # a solution's <details> opens at its first text

    # roles -----------------------------------------------------------------
    def role(self, match: re.Match[str]) -> str:
        name, content = match["name"], match["content"]
        if name in ("glue:text", "glue", "glue:md"):
            key, _, spec = content.rpartition(":") if ":" in content else (content, "", "")
            if "::" in key:  # a value glued in another page is not in this notebook
                self.missing.append(f"{content} (glued from another page)")
                return content
            if key not in self.values:
                self.missing.append(content)
                return content
            return format_glued(self.values[key], spec)
        if name == "math":
            return f"${content}$"
        if name in ("ref", "numref", "doc", "eq", "term", "download", "any", "external"):
            text = self.reference(name, content)
            # "see exercise {ref}`ex-x`" would read "see exercise Exercise 2": keep the number only.
            before = match.string[max(0, match.start() - 9):match.start()].lower()
            for word in ("exercise ", "figure "):
                if before.endswith(word) and text.startswith(word.capitalize()):
                    return text[len(word):]
            return text
        if name.startswith("cite"):
            return self.citation(content)
        # Any other role: its text, so that nothing of MyST is left.
        return content

    def reference(self, name: str, content: str) -> str:
        explicit, target = None, content.strip()
        if (m := re.fullmatch(r"(?s)(?P<text>.*?)\s*<(?P<target>[^<>]+)>", content.strip())) is not None:
            explicit, target = m["text"].strip(), m["target"].strip()
        if name == "eq":
            return f"({target})"
        if name in ("term", "download", "external"):
            return explicit or target
        if name == "doc":
            page = target.lstrip("/") if target.startswith("/") else self.relative_page(target)
            title = self.index.page_titles.get(page, explicit or target)
            return self.elsewhere(explicit or title, page)
        hit = self.index.targets.get(target)
        if hit is None:
            return explicit or target
        if hit.kind in ("figure", "exercise"):
            word = "Figure" if hit.kind == "figure" else "Exercise"
            text = f"{word} {hit.number}"
            if explicit:
                text = explicit.replace("%s", str(hit.number)).replace("{number}", str(hit.number))
            if hit.page != self.page:
                chapter = self.index.page_titles.get(hit.page, hit.page)
                return f"{text} of the chapter *{chapter}*"
            return text
        text = explicit or hit.title
        if hit.page == self.page:
            return f"[{text}]({jupyter_anchor(hit.title)})"
        return self.elsewhere(text, hit.page, section=hit.title)

    def elsewhere(self, text: str, page: str, section: str | None = None) -> str:
        """A reference into another page: named in words (the notebook stands alone)."""
        chapter = self.index.page_titles.get(page, page)
        if section is None or section == chapter:
            return f"*{text}* (chapter *{chapter}*)" if text != chapter else f"the chapter *{chapter}*"
        return f"*{text}* (in the chapter *{chapter}*)"

    def relative_page(self, target: str) -> str:
        base = Path(self.page).parent
        return (base / target).as_posix().replace("/./", "/")

    def citation(self, content: str) -> str:
        parts = []
        for key in (k.strip() for k in content.split(",")):
            entry = self.index.bibliography.get(key)
            if entry is None:
                parts.append(key)
                continue
            if key not in self.cited:
                self.cited.append(key)
            surnames = entry["surnames"]
            who = surnames[0] if len(surnames) == 1 else (
                " and ".join(surnames) if len(surnames) == 2 else f"{surnames[0]} et al." if surnames else key)
            parts.append(f"{who}, {entry['year']}")
        return "(" + "; ".join(parts) + ")"

    def inline(self, text: str) -> str:
        return ROLE.sub(self.role, text)

    # blocks ----------------------------------------------------------------
    def markdown(self, source: str) -> str:
        """One Markdown cell: labels, directives and roles turned into plain Markdown."""
        out: list[str] = []
        stack: list[tuple[str, str]] = []  # (fence, directive) of the open colon/backtick directives
        # A solution that began in an earlier cell goes on here: a <details> block cannot span
        # cells, so this cell's part gets its own, opened at its first line of text (none if
        # the cell only closes the solution).
        self.details_open = False
        self.pending_summary = None if self.in_solution is None else f"Solution to {self.in_solution} (continued)"

        def emit(text: str) -> None:
            if self.pending_summary is not None and text.strip():
                out.extend([f"<details><summary><b>{self.pending_summary}</b></summary>", ""])
                self.details_open, self.pending_summary = True, None
            out.append(text)

        lines = source.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            plain = PLAIN_FENCE.match(line)
            if plain is not None and FENCE_OPEN.match(line) is None:
                # A literal code block: copy it unchanged up to its closing fence.
                fence = plain["fence"]
                emit(line)
                i += 1
                while i < len(lines) and not lines[i].strip().startswith(fence):
                    emit(lines[i])
                    i += 1
                if i < len(lines):
                    emit(lines[i])
                i += 1
                continue
            if LABEL_LINE.match(line):
                i += 1
                continue
            opened = FENCE_OPEN.match(line)
            if opened is not None:
                name, arg, fence = opened["name"], opened["arg"], opened["fence"]
                i += 1
                options = {}
                while i < len(lines) and (o := OPTION.match(lines[i])) is not None:
                    options[o["key"]] = o["value"]
                    i += 1
                if self.details_open and name == "solution-start":  # the previous one was never closed
                    out += ["", "</details>"]
                out += self.open_directive(name, arg, options)
                if name in ("solution-start", "solution-end"):
                    # Both are empty directives: skip to their closing fence.
                    while i < len(lines) and lines[i].strip() != fence:
                        i += 1
                    i += 1
                    continue
                stack.append((fence, name))
                if name == "math":
                    out.append("$$")
                continue
            if stack and line.strip() == stack[-1][0]:
                _, name = stack.pop()
                out += self.close_directive(name)
                i += 1
                continue
            text = self.inline(line)
            if stack and stack[-1][1] in ADMONITIONS:
                text = "> " + text if text.strip() else ">"
            emit(text)
            i += 1
        if self.details_open:
            out += ["", "</details>"]
        elif self.pending_summary is not None and not self.pending_summary.endswith("(continued)"):
            out += [f"*{self.pending_summary}: the folded code cell below.*"]
        self.pending_summary = None
        return "\n".join(out).strip("\n")

    def open_directive(self, name: str, arg: str, options: dict[str, str]) -> list[str]:
        if name == "exercise":
            self.exercise_count += 1
            title = f" ({self.inline(arg)})" if arg else ""
            return [f"**Exercise {self.exercise_count}**{title}", ""]
        if name == "solution-start":
            hit = self.index.targets.get(arg.strip())
            number = hit.number if hit is not None and hit.page == self.page else self.exercise_count
            self.in_solution, self.details_open = f"Exercise {number}", False
            self.pending_summary = f"Solution to {self.in_solution}"  # opened at its first line of text
            return []
        if name == "solution-end":
            closing = ["", "</details>"] if self.details_open else []
            if self.pending_summary is not None and not self.pending_summary.endswith("(continued)"):
                closing = [f"*{self.pending_summary}: the folded code cell below.*"]
            self.in_solution, self.details_open, self.pending_summary = None, False, None
            return closing
        if name in ADMONITIONS:
            title = self.inline(arg) if arg else name.capitalize()
            return [f"> **{title}**", ">"]
        if name == "math":
            return []
        # Any other directive (figure, margin, ...): its content as plain Markdown.
        return [f"**{self.inline(arg)}**", ""] if arg else []

    def close_directive(self, name: str) -> list[str]:
        if name == "math":
            return ["$$"]
        return [""]

    # the notebook --------------------------------------------------------------
    def convert(self, executed: nbformat.NotebookNode, version: str) -> nbformat.NotebookNode:
        cells = [self.intro_cell(version), self.version_cell(version)]
        for source_cell in executed.cells:
            cell = copy.deepcopy(source_cell)
            if cell.cell_type == "markdown":
                cell.source = self.markdown(cell.source)
                if cell.source.strip():
                    cells.append(nbformat.v4.new_markdown_cell(cell.source))
                continue
            if cell.cell_type != "code":
                cells.append(cell)
                continue
            cells.append(self.code(cell))
            figure = source_cell.metadata.get("mystnb", {}).get("figure", {})
            if figure.get("caption"):
                number = self.index.targets.get(figure.get("name", ""), Target(self.page, "figure", "", None)).number
                label = f"Figure {number}." if number else "Figure."
                cells.append(nbformat.v4.new_markdown_cell(f"*{label} {self.inline(figure['caption'])}*"))
        if self.cited:
            cells.append(nbformat.v4.new_markdown_cell(self.references()))
        notebook = nbformat.v4.new_notebook(cells=cells)
        notebook.metadata = {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
        for number, cell in enumerate(notebook.cells):
            cell["id"] = f"cell-{number:03d}"  # stable ids: the same build gives the same file
        nbformat.validate(notebook)
        return notebook

    def code(self, cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
        cell.source = GLUE_IMPORT.sub(lambda m: GLUE_STAND_IN.format(indent=m[1]), cell.source)
        if MYST_NB_IMPORT.search(cell.source):
            raise ValueError(f"{self.page}: a code cell uses myst_nb beyond `from myst_nb import glue`:\n{cell.source}")
        outputs = []
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if scrapbook is not None and scrapbook.get("mime_prefix"):
                continue  # glue(..., display=False): nothing a reader would see
            if scrapbook is not None:
                output.metadata.pop("scrapbook")
            outputs.append(output)
        cell.outputs = outputs
        metadata = {k: v for k, v in cell.metadata.items() if k not in ("mystnb", "execution")}
        tags = set(metadata.get("tags", []))
        jupyter = dict(metadata.get("jupyter", {}))
        if tags & {"hide-cell", "hide-input", "remove-cell", "remove-input"} or self.in_solution is not None:
            jupyter["source_hidden"] = True
        if tags & {"hide-cell", "hide-output", "remove-cell", "remove-output"} or self.in_solution is not None:
            jupyter["outputs_hidden"] = True
        if self.in_solution is not None:
            metadata["tags"] = sorted(tags | {"solution"})
        if jupyter:
            metadata["jupyter"] = jupyter
        cell.metadata = metadata
        return cell

    def intro_cell(self, version: str) -> nbformat.NotebookNode:
        chapter = self.index.page_titles.get(self.page, self.page)
        return nbformat.v4.new_markdown_cell(
            f"*A chapter of the book **Gradients and Regularization, Corrected**: {chapter}.*\n\n"
            "**Before you run this notebook**, install the book's companion package (import name "
            f"`companion`, version {version}) and a Jupyter kernel into one environment, for example:\n\n"
            "```bash\n"
            "python3 -m venv venv && . venv/bin/activate\n"
            "# without a GPU, first the CPU build of torch (optional):\n"
            "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu\n"
            "# the wheel is linked from the book's appendix \"Companion API\":\n"
            f"pip install {wheel_name(version)} jupyterlab\n"
            "```\n\n"
            "or `pip install -e .` in a clone of the book's repository. The numbers in the text are "
            "those of the book's build; a run on another machine may differ in the last digits, not "
            "in the conclusions. Solutions to the exercises are folded: click to open them."
        )

    def version_cell(self, version: str) -> nbformat.NotebookNode:
        source = (
            f'BOOK_COMPANION_VERSION = "{version}"   # the companion this notebook was executed with\n'
            "try:\n"
            "    import companion\n"
            "except ModuleNotFoundError:\n"
            "    raise ModuleNotFoundError(\n"
            f'        "This notebook needs the book\'s companion package: pip install {wheel_name(version)} "\n'
            '        "(linked from the appendix \\"Companion API\\"), or pip install -e . in a clone of the book."\n'
            "    ) from None\n"
            "if companion.__version__ != BOOK_COMPANION_VERSION:\n"
            "    raise RuntimeError(\n"
            '        f"companion {companion.__version__} is installed; this notebook was written for "\n'
            f'        f"{{BOOK_COMPANION_VERSION}}: pip install {wheel_name(version)} (from the book\'s site)"\n'
            "    )\n"
        )
        return nbformat.v4.new_code_cell(source)

    def references(self) -> str:
        lines = ["## References", ""]
        for key in self.cited:
            entry = self.index.bibliography[key]
            where = f" {entry['venue']}." if entry["venue"] else ""
            link = f" https://doi.org/{entry['doi']}" if entry["doi"] else (f" {entry['url']}" if entry["url"] else "")
            lines.append(f"- {entry['authors']} ({entry['year']}). *{entry['title']}*.{where}{link}")
        return "\n".join(lines)


def convert(
    executed: nbformat.NotebookNode, page: str, index: BookIndex, version: str, values: dict[str, str] | None = None
) -> nbformat.NotebookNode:
    """The reader notebook of one executed chapter.

    Args:
        executed: the executed notebook (its glue outputs, or ``values``, give the numbers).
        page: its docname, e.g. ``book/part1/01_exploding_vanishing``.
        index: labels, titles and references of the whole book (:func:`book_index`).
        version: the companion's version the first cell checks for.
        values: glued values by name (``text/plain``); default: read from ``executed``'s outputs.

    Raises:
        KeyError: a ``{glue:text}`` names a value that was not glued.
    """
    converter = Converter(page, index, glue_values(executed) if values is None else values)
    notebook = converter.convert(executed, version)
    if converter.missing:
        raise KeyError(f"{page}: glued values not found in the executed notebook: {', '.join(converter.missing)}")
    return notebook


def leftovers(notebook: nbformat.NotebookNode) -> list[str]:
    """MyST syntax left in the Markdown cells (outside code blocks), and myst_nb imports."""
    found = []
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            if MYST_NB_IMPORT.search(cell.source):
                found.append(f"cell {number}: imports myst_nb")
            continue
        prose = re.sub(r"(?ms)^\s*(`{3,}|~{3,}).*?^\s*\1\s*$", "", cell.source)  # code blocks are literal
        for pattern in LEFTOVER_PATTERNS:
            for match in pattern.finditer(prose):
                found.append(f"cell {number}: {match.group(0).strip()!r}")
    return found


# ----------------------------------------------------------------------------- the build's notebooks
def executed_from_build(build: Path, page: str) -> tuple[nbformat.NotebookNode, dict[str, str]]:
    """The notebook the build published for ``page`` and the values it glued.

    myst-nb writes the executed notebook to ``<build>/jupyter_execute/<page>.ipynb`` (with the
    outputs the page shows; book/_ext/cached_outputs.py) and moves the glued values out of it
    into ``<page>.glue.json`` beside it.
    """
    executed = build / "jupyter_execute" / f"{page}.ipynb"
    if not executed.is_file():
        raise FileNotFoundError(f"{page} has no executed notebook at {executed}: run `make book` first")
    notebook = nbformat.read(executed, as_version=4)
    values = glue_values(notebook)
    sidecar = executed.with_suffix(".glue.json")
    if sidecar.is_file():
        for key, output in json.loads(sidecar.read_text(encoding="utf-8")).items():
            text = output.get("data", {}).get("text/plain")
            if text is not None:
                values[key] = text if isinstance(text, str) else "".join(text)
    return notebook, values


def output_name(source: Path, root: Path = ROOT) -> str:
    """``book/part1/01_x.md`` -> ``part1_01_x.ipynb``."""
    relative = source.resolve().relative_to(root / "book").with_suffix(".ipynb")
    return "_".join(relative.parts)


def write_reader_notebooks(chapters: list[Path], out: Path, build: Path = ROOT / "_build") -> list[str]:
    """Convert each chapter's published notebook into ``out``; return the failures (empty if none)."""
    index, version = book_index(), companion_version()
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for source in chapters:
        page = source.resolve().relative_to(ROOT).with_suffix("").as_posix()
        try:
            executed, values = executed_from_build(build, page)
            notebook = convert(executed, page, index, version, values)
        except (FileNotFoundError, KeyError, ValueError) as error:
            failed.append(f"{source}: {error}")
            continue
        left = leftovers(notebook)
        if left:
            failed.append(f"{source}: MyST left in the reader notebook: {'; '.join(left[:5])}")
            continue
        nbformat.write(notebook, out / output_name(source))
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="default: every chapter of _toc.yml with code")
    parser.add_argument("--out", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--build", type=Path, default=ROOT / "_build", help="the build folder (default _build)")
    args = parser.parse_args()
    from executed_notebooks import is_notebook, toc_documents

    chapters = args.chapters or [d for d in toc_documents(ROOT / "_toc.yml") if d.exists() and is_notebook(d)]
    failed = write_reader_notebooks(chapters, args.out, args.build)
    if failed:
        print(*failed, sep="\n", file=sys.stderr)
        return 1
    print(f"{len(chapters)} reader notebooks in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
