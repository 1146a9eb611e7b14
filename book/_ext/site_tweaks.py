"""Sphinx extension: small fixes that make the built site work for a reader, offline.

1. A ".ipynb" download button on every executed chapter. sphinx-book-theme offers the
   executed notebook only when a launch service (Binder, Colab, ...) is configured; this
   book configures none, to avoid buttons pointing at placeholder URLs. For every page
   that myst-nb executed, this copies ``_build/jupyter_execute/<page>.ipynb`` (the
   notebook with the outputs the site shows) to ``<outdir>/_sources/<page>.ipynb`` and
   sets ``ipynb_source``, which the theme's download button lists next to ``.md`` and
   ``.pdf``.
2. Each inline ``<script>`` once. Under Jupyter Book 1 the inline configuration
   scripts of sphinx-thebe and sphinx-togglebutton are registered twice; sphinx-thebe's
   declares ``const THEBE_JS_URL``, so the second copy is a JavaScript SyntaxError on
   every page (a console error the browser check reports): the builder receives each
   inline script registered at ``builder-inited`` twice, once with filename ``None`` and
   once with ``''``. Identical script entries are dropped from the page context before
   rendering.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx


def _add_notebook(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    if doctree is None or context.get("ipynb_source"):
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
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
