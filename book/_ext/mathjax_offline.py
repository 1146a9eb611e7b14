"""Sphinx extension: serve MathJax 3 from the built site instead of a CDN.

The site must typeset its math without network access. ``scripts/fetch_mathjax.sh``
(run by ``make book``) unpacks the npm package ``mathjax@3.2.2`` (checksum-pinned)
into ``_build/mathjax/``; this extension

1. points ``mathjax_path`` at ``mathjax/es5/tex-mml-chtml.js``, a path relative to
   the site's ``_static/`` folder (Sphinx resolves relative ``mathjax_path`` there),
   unless the configuration already names a local path;
2. refuses to build with the CDN (an http(s) ``mathjax_path``) and fails early,
   with the command to run, when the unpacked package is missing;
3. copies the package's ``es5/`` tree (the loader, its TeX extensions and the
   CHTML woff fonts) to ``<outdir>/_static/mathjax/`` after an HTML build.

No third-party file is committed: the package comes from the npm registry at
build time, like the Python packages come from PyPI.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError, ExtensionError
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
LOCAL_PATH = "mathjax/es5/tex-mml-chtml.js"
DEFAULT_SOURCE = "_build/mathjax"


def _source(app: Sphinx) -> Path:
    """The unpacked npm package (holds es5/); $MATHJAX_DIR overrides the config."""
    configured = os.environ.get("MATHJAX_DIR") or app.config.mathjax_offline_source
    path = Path(configured)
    return path if path.is_absolute() else Path(app.srcdir) / path


def _configure(app: Sphinx, config: Config) -> None:
    path = config.mathjax_path or ""
    if "://" in path or path.startswith("//"):
        default = "https://cdn.jsdelivr.net/npm/mathjax@3"
        if not path.startswith(default):
            raise ConfigError(f"mathjax_offline: mathjax_path must be a local path, got {path!r}")
        config.mathjax_path = LOCAL_PATH


def _check_source(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    loader = _source(app) / "es5" / "tex-mml-chtml.js"
    if not loader.is_file():
        raise ExtensionError(
            f"mathjax_offline: {loader} not found. Run `bash scripts/fetch_mathjax.sh` "
            "(npm required; `make book` does it) or set MATHJAX_DIR to an unpacked mathjax@3 package."
        )


def _copy(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source = _source(app) / "es5"
    target = Path(app.outdir) / "_static" / "mathjax" / "es5"
    shutil.copytree(source, target, dirs_exist_ok=True)
    license_file = _source(app) / "LICENSE"
    if license_file.is_file():
        shutil.copy2(license_file, target.parent / "LICENSE")
    LOGGER.info("mathjax_offline: copied MathJax from %s to %s", source, target)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("mathjax_offline_source", DEFAULT_SOURCE, "html")
    # After sphinx.ext.mathjax registered mathjax_path (priority > 500 default order is fine).
    app.connect("config-inited", _configure, priority=800)
    app.connect("builder-inited", _check_source)
    app.connect("build-finished", _copy)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
