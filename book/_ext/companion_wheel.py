"""Sphinx extension: build the companion's wheel and offer it on the site.

At ``builder-inited`` the wheel of the companion (distribution ``gradreg-companion``,
version from ``companion/__init__.py``) is built by ``scripts/build_wheel.py`` into
``_build/wheel/``; at ``build-finished`` it is copied to ``<outdir>/_downloads/``. The role

    {companion-wheel}`download`

renders a link to it from any page (the text is the wheel's file name; the role's content is
ignored), so no page writes the version by hand. The site's link check (``make
browser-check``) fails if the link points at a file that is not there.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

ROOT = Path(__file__).resolve().parents[2]


def _build_wheel_module():
    scripts = str(ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    import build_wheel

    return build_wheel


def _build(app: Sphinx) -> None:
    try:
        app._companion_wheel = _build_wheel_module().build_wheel(Path(app.outdir).parent / "wheel")
    except Exception as error:  # pip's own message says what failed
        raise ExtensionError(f"could not build the companion wheel: {error}") from error


def _copy(app: Sphinx, exception: Exception | None) -> None:
    wheel = getattr(app, "_companion_wheel", None)
    if exception is not None or wheel is None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_downloads"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, target / wheel.name)


def _role(name: str, rawtext: str, text: str, lineno: int, inliner: Any, options: dict | None = None, content: Any = None):
    env = inliner.document.settings.env
    wheel = _build_wheel_module().wheel_name()
    depth = env.docname.count("/")
    uri = "../" * depth + f"_downloads/{wheel}"
    return [nodes.reference(rawtext, wheel, refuri=uri, classes=["companion-wheel"])], []


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _build)
    app.connect("build-finished", _copy)
    app.add_role("companion-wheel", _role)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
