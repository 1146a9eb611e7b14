"""Sphinx extension: small fixes that make the built site work for a reader, offline.

1. A ".ipynb" download button on every executed chapter, offering the *reader notebook*.
   sphinx-book-theme offers the executed notebook only when a launch service (Binder,
   Colab, ...) is configured; this book configures none, to avoid buttons pointing at
   placeholder URLs. For every page that myst-nb executed, this converts
   ``_build/jupyter_execute/<page>.ipynb`` (the notebook with the outputs the site shows)
   with ``scripts/reader_notebooks.py`` (glued numbers written into the text, MyST turned
   into plain Markdown, no myst_nb import, a first cell that checks the companion's
   version), writes it to ``<outdir>/_sources/<page>.ipynb`` and sets ``ipynb_source``,
   which the theme's download button lists next to ``.md`` and ``.pdf``. A chapter that
   cannot be converted (a glued value missing, MyST left over) is a build error.
2. Each inline ``<script>`` once. Under Jupyter Book 1 the inline configuration
   scripts of sphinx-thebe and sphinx-togglebutton are registered twice; sphinx-thebe's
   declares ``const THEBE_JS_URL``, so the second copy is a JavaScript SyntaxError on
   every page (a console error the browser check reports): the builder receives each
   inline script registered at ``builder-inited`` twice, once with filename ``None`` and
   once with ``''``. Identical script entries are dropped from the page context before
   rendering.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nbformat
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError


def _reader_notebooks():
    """scripts/reader_notebooks.py, imported from the repository."""
    scripts = str(Path(__file__).resolve().parents[2] / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    import reader_notebooks

    return reader_notebooks


def _add_notebook(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    if doctree is None or context.get("ipynb_source"):
        return
    build = Path(app.outdir).parent
    if not (build / "jupyter_execute" / f"{pagename}.ipynb").is_file():
        return
    rn = _reader_notebooks()
    if not hasattr(app, "_reader_index"):
        app._reader_index = (rn.book_index(), rn.companion_version())
    index, version = app._reader_index
    try:
        executed, values = rn.executed_from_build(build, pagename)
        notebook = rn.convert(executed, pagename, index, version, values)
    except (KeyError, ValueError) as error:
        raise ExtensionError(f"reader notebook of {pagename}: {error}") from error
    left = rn.leftovers(notebook)
    if left:
        raise ExtensionError(f"reader notebook of {pagename}: MyST left over: {'; '.join(left[:5])}")
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def _script_key(script: Any) -> tuple[Any, ...]:
    attributes = getattr(script, "attributes", {}) or {}
    # An inline script is registered once with filename None (app.add_js_file at builder-inited)
    # and once with filename '' (the builder copying the registry): the same script.
    return (str(getattr(script, "filename", script) or ""), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def _dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    # Before sphinx-book-theme's add_header_buttons (priority 501) reads ipynb_source.
    app.connect("html-page-context", _add_notebook, priority=400)
    # After every extension has added its scripts (page-specific ones at priority 500).
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
