"""Open every page of the built site in headless Chromium and fail on what a reader would see broken.

Usage: python scripts/browser_check.py [HTML_DIR] [--screenshots DIR] [--only SUBSTRING]

Two checks, both over ``_build/html`` by default:

1. A static check of the whole site, no browser needed: every ``href``/``src`` in every
   built HTML file that points inside the site must name a file that exists, and its
   ``#anchor``, if any, must be an ``id`` (or ``name``) in that file; every figure a
   chapter's source names (``name: fig-...``) must be on its page, and a chapter whose
   source calls ``plt.show()`` must show at least one image.
2. A browser check: the site is served over a local HTTP server on 127.0.0.1, and
   headless Chromium (driven over the Chrome DevTools Protocol with the ``websockets``
   package) opens every page. A page fails on
     - a console error or an uncaught JavaScript exception,
     - a request that failed or answered >= 400 (a 404 of a link, script, image or font),
     - a request to any host other than the local server (the site must work offline),
     - an image that did not load,
     - a math element that MathJax did not typeset, or typeset as an error,
     - an exercise solution that is visible before its toggle is clicked, or whose
       toggle does not reveal it (checked on the first solution of each page).
   A screenshot of each page goes to ``_build/screenshots/`` (first 1280x2400 pixels).

Without Chromium (or the websockets package): with ``CI=true`` this is an error; otherwise
the browser part is skipped with a loud message and the exit status is that of the link check.
Chromium: Debian's ``chromium`` package (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads"}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
]
PAGE_TIMEOUT_S = 60.0
SCREEN_W, SCREEN_MAX_H = 1280, 2400


# ----------------------------------------------------------------- static link check
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
            if name in ("id",) or (name == "name" and tag == "a"):
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
        return None  # external (reported by the browser check if the page loads it)
    if not parts.path:
        return page, unquote(parts.fragment)
    target = (root / unquote(parts.path).lstrip("/")) if parts.path.startswith("/") else (page.parent / unquote(parts.path))
    target = Path(os.path.normpath(target))
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def html_pages(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.html") if not (set(p.relative_to(root).parts[:-1]) & SKIP_DIRS))


def check_links(root: Path) -> list[str]:
    """Every internal href/src of every page resolves to a file, and its anchor exists."""
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


FIGURE_NAME = re.compile(r"^\s*name:\s*(fig-[A-Za-z0-9_-]+)\s*$", re.MULTILINE)


def check_figures(root: Path) -> list[str]:
    """Every figure a chapter's source names is in its page, and plotting pages show images.

    Guards against figures silently disappearing, e.g. when MPLBACKEND=Agg reaches the
    kernel and plt.show() stops emitting a PNG (the build then only warns for figures
    that the text cross-references).
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


# ----------------------------------------------------------------- local HTTP server
@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


# ----------------------------------------------------------------- Chrome DevTools Protocol
class CDP:
    """A minimal synchronous CDP client over one browser websocket (flattened sessions)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _recv(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from Chromium")
        return json.loads(self.ws.recv(timeout=remaining))

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = PAGE_TIMEOUT_S) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            answer = self._recv(deadline)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, session: str, timeout: float = PAGE_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    return
            self.events.append(self._recv(deadline))


@contextlib.contextmanager
def chromium(executable: str) -> Iterator[str]:
    """Start headless Chromium with a fresh profile; yield its browser websocket URL."""
    profile = tempfile.mkdtemp(prefix="browser-check-")
    process = subprocess.Popen(
        [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            if process.poll() is not None:
                raise RuntimeError(f"Chromium exited with status {process.returncode} at start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("Chromium did not open its DevTools port within 60 s")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        yield f"ws://127.0.0.1:{port}{path}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


# What the page itself reports once loaded and typeset.
PAGE_PROBE = """
(async () => {
  const hasMath = document.querySelector('span.math, div.math') !== null;
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  if (document.fonts && document.fonts.ready) { await document.fonts.ready; }
  const math = [...document.querySelectorAll('span.math, div.math')];
  const untypeset = math.filter(el => !el.querySelector('mjx-container'));
  const errors = [...document.querySelectorAll('mjx-merror, [data-mjx-error]')];
  // Exercise solutions (sphinx-exercise; CONTRIBUTING.md: :class: dropdown) must start collapsed.
  const solutions = [...document.querySelectorAll('div.solution')];
  const openSolutions = solutions.filter(el => [...el.children].some(
    child => !child.classList.contains('admonition-title') && child.tagName !== 'BUTTON' && child.offsetHeight > 0));
  // ... and open when their toggle is clicked (checked on the first one, then closed again).
  let toggleWorks = null;
  if (solutions.length) {
    const button = solutions[0].querySelector('button');
    const body = () => [...solutions[0].children].filter(
      child => !child.classList.contains('admonition-title') && child.tagName !== 'BUTTON');
    if (button) {
      button.click();
      await new Promise(resolve => setTimeout(resolve, 300));
      toggleWorks = body().some(child => child.offsetHeight > 0);
      button.click();
      await new Promise(resolve => setTimeout(resolve, 300));
    } else {
      toggleWorks = false;
    }
  }
  const images = [...document.images].filter(img => !img.complete || img.naturalWidth === 0);
  return {
    title: document.title,
    math: math.length,
    mathjax: !!window.MathJax,
    hasMath: hasMath,
    untypeset: untypeset.slice(0, 3).map(el => el.textContent.slice(0, 80)),
    untypesetCount: untypeset.length,
    mathErrors: errors.slice(0, 3).map(el => (el.getAttribute('data-mjx-error') || el.textContent).slice(0, 80)),
    brokenImages: images.map(img => img.getAttribute('src')),
    solutions: solutions.length,
    openSolutions: openSolutions.map(el => el.id),
    toggleWorks: toggleWorks,
    height: Math.ceil(document.documentElement.scrollHeight),
  };
})()
"""


def check_page(cdp: CDP, base: str, relative: str, screenshot: Path | None) -> tuple[list[str], dict[str, Any]]:
    target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    problems: list[str] = []
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.call(f"{domain}.enable", session=session)
        cdp.call("Emulation.setDeviceMetricsOverride",
                 {"width": SCREEN_W, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        cdp.events.clear()
        cdp.call("Page.navigate", {"url": f"{base}/{relative}"}, session=session)
        cdp.wait_for("Page.loadEventFired", session)
        probe = cdp.call("Runtime.evaluate", {"expression": PAGE_PROBE, "awaitPromise": True,
                                              "returnByValue": True}, session=session)
        if "exceptionDetails" in probe:
            raise RuntimeError(f"page probe failed: {probe['exceptionDetails'].get('text')}")
        info = probe["result"]["value"]
        time.sleep(0.2)  # let late console messages and font requests arrive
        cdp.call("Runtime.evaluate", {"expression": "1"}, session=session)  # flush events
        problems += _problems_from_events(cdp.events, session, base)
        if info["hasMath"] and not info["mathjax"]:
            problems.append("page has math but MathJax did not load")
        if info["untypesetCount"]:
            problems.append(f"{info['untypesetCount']} math element(s) not typeset, e.g. {info['untypeset']}")
        if info["mathErrors"]:
            problems.append(f"MathJax error(s): {info['mathErrors']}")
        if info["openSolutions"]:
            problems.append(f"solution(s) visible without clicking their toggle: {info['openSolutions']}")
        if info["toggleWorks"] is False:
            problems.append("the first solution's toggle does not reveal it (no button, or nothing shown)")
        for src in info["brokenImages"]:
            problems.append(f"image did not load: {src}")
        if screenshot is not None:
            # A tall viewport rather than captureBeyondViewport+clip, which shifted some pages sideways.
            height = min(max(info["height"], 900), SCREEN_MAX_H)
            cdp.call("Emulation.setDeviceMetricsOverride",
                     {"width": SCREEN_W, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
            cdp.call("Runtime.evaluate", {"expression": "window.scrollTo(0, 0)"}, session=session)
            shot = cdp.call("Page.captureScreenshot", {"format": "png"}, session=session)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        return problems, info
    finally:
        cdp.call("Target.closeTarget", {"targetId": target})
        cdp.events = [e for e in cdp.events if e.get("sessionId") != session]


def _problems_from_events(events: list[dict[str, Any]], session: str, base: str) -> list[str]:
    problems: list[str] = []
    requests: dict[str, str] = {}
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            requests[params["requestId"]] = url
            if url == f"{base}/favicon.ico":
                continue  # the browser asks for it by itself; the site declares no icon
            if not url.startswith((base + "/", "data:", "blob:", "about:")):
                problems.append(f"request outside the site (must work offline): {url}")
        elif method == "Network.responseReceived":
            status = params["response"]["status"]
            if status >= 400 and params["response"]["url"] != f"{base}/favicon.ico":
                problems.append(f"HTTP {status}: {params['response']['url']}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            url = requests.get(params["requestId"], "?")
            problems.append(f"request failed ({params.get('errorText')}): {url}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            problems.append(f"console {params['type']}: {text[:200]}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            problems.append(f"uncaught exception: {str(text)[:200]}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            if entry.get("url") == f"{base}/favicon.ico":
                continue
            problems.append(f"browser log error: {entry.get('text', '')[:200]} {entry.get('url', '')}")
    return list(dict.fromkeys(problems))  # a 404 is reported by several events: once is enough


def find_chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def loud_skip(reason: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n!!! BROWSER CHECK SKIPPED: {reason}\n!!! Pages were NOT opened in a browser "
          f"(math, images, console errors unchecked).\n!!! Install it: apt-get install -y chromium; "
          f"pip install websockets\n{bar}\n", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", default=str(ROOT / "_build" / "html"))
    parser.add_argument("--screenshots", default=None, help="default: <html_dir>/../screenshots")
    parser.add_argument("--only", default=None, help="check only pages whose path contains this")
    args = parser.parse_args(argv)
    root = Path(args.html_dir).resolve()
    if not (root / "index.html").is_file():
        print(f"browser_check: no built site at {root} (run `make book` first)", file=sys.stderr)
        return 1
    shots = Path(args.screenshots) if args.screenshots else root.parent / "screenshots"
    in_ci = os.environ.get("CI", "").lower() == "true"

    pages = [p.relative_to(root).as_posix() for p in html_pages(root)]
    if args.only:
        pages = [p for p in pages if args.only in p]

    link_problems = check_links(root)
    print(f"link check: {len(html_pages(root))} pages, {len(link_problems)} broken internal link(s)")
    for problem in link_problems:
        print(f"  BROKEN LINK {problem}")
    figure_problems = check_figures(root)
    print(f"figure check: {len(figure_problems)} problem(s)")
    for problem in figure_problems:
        print(f"  MISSING FIGURE {problem}")
    link_problems += figure_problems

    executable = find_chromium()
    try:
        import websockets.sync.client  # noqa: F401
    except ImportError:
        executable_ok, reason = False, "the Python package 'websockets' is not installed"
    else:
        executable_ok, reason = executable is not None, "Chromium not found (chromium, chromium-browser)"
    if not executable_ok:
        if in_ci:
            print(f"browser_check: {reason}; CI=true, so this is a failure", file=sys.stderr)
            return 1
        loud_skip(reason)
        return 1 if link_problems else 0

    failures = 0
    started = time.monotonic()
    from websockets.sync.client import connect

    with serve(root) as base, chromium(executable) as ws_url, connect(ws_url, max_size=None, open_timeout=30) as ws:
        cdp = CDP(ws)
        for relative in pages:
            shot = shots / (relative.removesuffix(".html").replace("/", "__") + ".png")
            try:
                problems, info = check_page(cdp, base, relative, shot)
            except (TimeoutError, RuntimeError) as error:
                problems, info = [f"could not check: {error}"], {"math": "?"}
            status = "FAIL" if problems else "ok  "
            print(f"{status} {relative} (math elements: {info['math']}, solutions: {info.get('solutions', '?')})")
            for problem in problems:
                print(f"       {problem}")
            failures += bool(problems)
    print(f"browser check: {len(pages)} pages in {time.monotonic() - started:.0f} s, {failures} failed; "
          f"screenshots in {shots}")
    return 1 if failures or link_problems else 0


if __name__ == "__main__":
    sys.exit(main())
