"""The built site, read without a browser: its pages, internal links and figures.

Used by ``scripts/test_site.py`` (the browser check run by ``make browser-check``):

* :func:`html_pages` lists the pages a reader can open (not ``_static``/``_sources``/...);
* :func:`check_links`: every ``href``/``src`` that points inside the site names a file that
  exists, and its ``#anchor``, if any, is an ``id`` (or ``<a name>``) in that file;
* :func:`check_figures`: every figure a chapter's source names (``name: fig-...``) is on its
  page, and a chapter whose source calls ``plt.show()`` shows at least one image;
* :func:`serve`: the site over a local HTTP server on 127.0.0.1 (a context manager).
"""

from __future__ import annotations

import contextlib
import functools
import html.parser
import http.server
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

SKIP_DIRS = {"_static", "_sources", "_images", "_downloads"}
FIGURE_NAME = re.compile(r"^\s*name:\s*(fig-[A-Za-z0-9_-]+)\s*$", re.MULTILINE)


class _LinkParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []  # (attribute, url)
        self.anchors: set[str] = set()
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.images += tag == "img"
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (name == "name" and tag == "a"):
                self.anchors.add(value)
            if name in ("href", "src") and not (tag == "link" and ("rel", "preconnect") in attrs):
                self.links.append((name, value))


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _LinkParser:
    parser = _LinkParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def _internal_target(page: Path, url: str, root: Path) -> tuple[Path, str] | None:
    """The file and fragment an internal URL points to; None for external or special URLs."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("//", "#!")):
        return None  # external: the browser check fails a page that loads it
    if not parts.path:
        return page, unquote(parts.fragment)
    path = unquote(parts.path)
    target = (root / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
    target = Path(os.path.normpath(target))
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def html_pages(root: Path) -> list[Path]:
    """Every page of the site under ``root``, sorted (support folders excluded)."""
    return sorted(p for p in root.rglob("*.html") if not (set(p.relative_to(root).parts[:-1]) & SKIP_DIRS))


def check_links(root: Path) -> list[str]:
    """Problems with internal links: a missing file, a missing anchor, a path leaving the site."""
    problems: list[str] = []
    for page in html_pages(root):
        for attribute, url in _parse(page).links:
            if url.startswith(("mailto:", "javascript:", "data:")):
                continue
            resolved = _internal_target(page, url, root)
            if resolved is None:
                continue
            target, fragment = resolved
            where = f"{page.relative_to(root)}: {attribute}={url!r}"
            if root not in target.parents and target != root:
                problems.append(f"{where} points outside the site")
            elif not target.is_file():
                problems.append(f"{where}: no file {target.relative_to(root)}")
            elif fragment and target.suffix == ".html" and fragment not in _parse(target).anchors:
                problems.append(f"{where}: no anchor #{fragment} in {target.relative_to(root)}")
    return problems


def check_figures(root: Path) -> list[str]:
    """Problems with figures: one named in a chapter's source but not on its page, or none at all.

    Guards against figures disappearing silently (e.g. MPLBACKEND=Agg reaching the kernel,
    so that ``plt.show()`` emits no PNG; the build only warns for referenced figures).
    """
    problems: list[str] = []
    for page in html_pages(root):
        relative = page.relative_to(root)
        source = root / "_sources" / relative.with_suffix(".md")
        if not source.is_file():
            continue
        text = source.read_text(encoding="utf-8")
        if "{code-cell}" not in text:
            continue
        parsed = _parse(page)
        for name in FIGURE_NAME.findall(text):
            if name not in parsed.anchors:
                problems.append(f"{relative}: figure {name!r} named in the source is not on the page")
        if "plt.show()" in text and not parsed.images:
            problems.append(f"{relative}: the source calls plt.show() but the page has no image")
    return problems


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser that closes a page cancels its pending requests: not the site's fault.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
