"""Sphinx extension: how code cells show on the site, decided from their code (chapters unchanged).

* **Assertion cells collapse under a "checks" toggle.** A code cell whose statements are all
  ``assert`` statements (the claim pinned for CI) is shown folded, with the toggle "Show the
  checks", instead of a block of asserts interrupting the text; nothing is removed.
* **Glue plumbing disappears.** A code cell whose statements are all calls of ``glue(...)`` (or a
  helper named ``glue_*``) and that printed nothing only hands numbers to the prose: it is
  removed from the page. The numbers are in the text, and the cell stays in every notebook.

Only the HTML changes: the executed notebooks, nbval and the reader notebooks keep every cell.
Runs before myst-nb's own ``HideInputCells`` (priority 199), which turns ``hide_mode`` into
the toggle.
"""

from __future__ import annotations

import ast
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform


def _statements(source: str) -> list[ast.stmt] | None:
    try:
        return ast.parse(source).body
    except SyntaxError:  # IPython magics and the like: leave the cell alone
        return None


def is_check_cell(source: str) -> bool:
    """Every statement of the cell is an ``assert``."""
    body = _statements(source)
    return bool(body) and all(isinstance(s, ast.Assert) for s in body)


def is_glue_cell(source: str) -> bool:
    """Every statement of the cell is a call ``glue(...)`` or ``glue_<something>(...)``."""
    body = _statements(source)
    return bool(body) and all(
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and isinstance(s.value.func, ast.Name)
        and (s.value.func.id == "glue" or s.value.func.id.startswith("glue_"))
        for s in body
    )


class CellDisplay(SphinxPostTransform):
    default_priority = 150
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(nodes.container)):
            if node.get("nb_element") != "cell_code" or node.get("hide_mode") or not node.children:
                continue
            source_node = node.children[0]
            if source_node.get("nb_element") != "cell_code_source":
                continue
            source = source_node.astext()
            has_output = node.children[-1].get("nb_element") == "cell_code_output"
            if is_glue_cell(source) and not has_output:
                node.parent.remove(node)
            elif is_check_cell(source):
                node["hide_mode"] = "input"
                node["prompt_show"] = "Show the checks"
                node["prompt_hide"] = "Hide the checks"


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_post_transform(CellDisplay)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
