"""The built site as a reader sees it: every page opened in headless Chromium (Playwright).

Run by ``make browser-check`` (part of ``make test``)::

    SITE_DIR=_build/html python -m pytest scripts/test_site.py

Two link/figure tests read the HTML files (no browser). Then one test per page: the site
is served on 127.0.0.1 and the system Chromium (Debian's ``chromium``; ``CHROMIUM=path``
to choose another) opens the page through Playwright. A page fails on

- a console error or an uncaught JavaScript exception;
- a request that failed or answered >= 400 (a 404 of a link, script, image or font);
- a request to any host other than the local server (the site must work offline);
- an image that did not load;
- a math element that MathJax did not typeset, or typeset as an error;
- an exercise solution visible before its toggle is clicked, or a toggle that does not
  reveal it (checked on the first solution of each page);
- in the Chinese edition (``zh/``), a title drawn without a CJK font.

File-level tests also check that both editions have every page, that ``<html lang>`` is
``en`` or ``zh-CN``, and that each page's language switch leads to the same page in the
other edition; a browser test searches each edition for a few of its words.

A screenshot of each page (first 1280x2400 pixels) goes to ``_build/screenshots/``.
Without Chromium the browser tests fail when ``CI=true`` and are skipped loudly otherwise.
"""

from __future__ import annotations

import html.parser
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from site_pages import check_figures, check_links, html_pages, serve  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(os.environ.get("SITE_DIR", ROOT / "_build" / "html")).resolve()
SCREENSHOTS = SITE.parent / "screenshots"
WIDTH, MAX_HEIGHT = 1280, 2400
PAGES = [p.relative_to(SITE).as_posix() for p in html_pages(SITE)] if SITE.is_dir() else []

# What the page reports once MathJax and the fonts are ready.
PAGE_PROBE = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  if (document.fonts && document.fonts.ready) { await document.fonts.ready; }
  const math = [...document.querySelectorAll('span.math, div.math')];
  const untypeset = math.filter(el => !el.querySelector('mjx-container'));
  const errors = [...document.querySelectorAll('mjx-merror, [data-mjx-error]')];
  // sphinx-exercise solutions (CONTRIBUTING.md: :class: dropdown) must start collapsed ...
  const solutions = [...document.querySelectorAll('div.solution')];
  const body = el => [...el.children].filter(
    child => !child.classList.contains('admonition-title') && child.tagName !== 'BUTTON');
  const open = solutions.filter(el => body(el).some(child => child.offsetHeight > 0));
  // ... and open when their toggle is clicked (the first one, then closed again).
  let toggleWorks = null;
  if (solutions.length) {
    const button = solutions[0].querySelector('button');
    toggleWorks = false;
    if (button) {
      button.click();
      await new Promise(resolve => setTimeout(resolve, 300));
      toggleWorks = body(solutions[0]).some(child => child.offsetHeight > 0);
      button.click();
      await new Promise(resolve => setTimeout(resolve, 300));
    }
  }
  return {
    hasMath: math.length > 0,
    mathjax: !!window.MathJax,
    untypeset: untypeset.slice(0, 3).map(el => el.textContent.slice(0, 80)),
    untypesetCount: untypeset.length,
    mathErrors: errors.slice(0, 3).map(el => (el.getAttribute('data-mjx-error') || el.textContent).slice(0, 80)),
    brokenImages: [...document.images].filter(img => !img.complete || img.naturalWidth === 0)
                                      .map(img => img.getAttribute('src')),
    openSolutions: open.map(el => el.id),
    toggleWorks: toggleWorks,
    height: Math.ceil(document.documentElement.scrollHeight),
  };
}
"""


def test_site_is_built():
    assert (SITE / "index.html").is_file(), f"no built site at {SITE}: run `make book` first"


def test_internal_links_resolve():
    problems = check_links(SITE)
    assert not problems, "broken internal links:\n" + "\n".join(problems)


def test_named_figures_are_on_their_pages():
    problems = check_figures(SITE)
    assert not problems, "\n".join(problems)


# The Chinese edition is published under zh/ of the English site (scripts/build_edition.py).
EDITIONS = {"": "en", "zh/": "zh-CN"}
_SWITCH = re.compile(r'<a href="([^"]+)" hreflang="([^"]+)"[^>]*class="btn btn-sm btn-language-switch"')
_HTML_LANG = re.compile(r"<html[^>]*\slang=\"([^\"]+)\"")


def _edition(relative: str) -> str:
    return "zh/" if relative.startswith("zh/") else ""


def test_both_editions_have_every_page():
    english = {p for p in PAGES if not _edition(p)}
    chinese = {p.removeprefix("zh/") for p in PAGES if _edition(p)}
    assert english == chinese, f"only English: {sorted(english - chinese)}; only Chinese: {sorted(chinese - english)}"


@pytest.mark.parametrize("relative", PAGES)
def test_language_and_switch(relative):
    """<html lang> per edition; one switch, leading to the same page in the other edition."""
    html = (SITE / relative).read_text(encoding="utf-8")
    edition = _edition(relative)
    if 'http-equiv="Refresh"' in html and "<html" not in html:
        return  # index.html: only a redirect to the first page
    assert _HTML_LANG.search(html) and _HTML_LANG.search(html).group(1) == EDITIONS[edition], relative
    if relative.endswith(("genindex.html", "search.html")):
        return  # generated pages have no article header
    switches = _SWITCH.findall(html)
    assert len(switches) == 1, f"{relative}: {len(switches)} language switches"
    url, hreflang = switches[0]
    other = "" if edition else "zh/"
    target = os.path.normpath((SITE / relative).parent / url)
    assert target == str(SITE / other / relative.removeprefix(edition)), f"{relative}: switch leads to {url}"
    assert hreflang == EDITIONS[other]


class _ArticleText(html.parser.HTMLParser):
    """The prose of a page's article: no code, program output, formulas or citations.

    A figure's caption counts even inside a cell's output: the author wrote it.
    """

    SKIPPED_TAGS = {"pre", "code", "script", "style", "math"}
    SKIPPED_CLASSES = {"cell_output", "math", "highlight", "output", "pasted-text", "citation", "literal"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, int]] = []
        self.skipping = self.article = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = set((dict(attrs).get("class") or "").split())
        skip = tag in self.SKIPPED_TAGS or bool(classes & self.SKIPPED_CLASSES)
        self.article += tag == "article"
        saved = self.skipping
        if tag == "figcaption":
            self.skipping = 0
        self.skipping += skip
        self.stack.append((tag, skip, saved))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            name, skip, saved = self.stack.pop()
            self.skipping -= skip
            if name == "figcaption":
                self.skipping = saved
            self.article -= name == "article"
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.article and not self.skipping:
            self.text.append(data)


_ENGLISH_RUN = re.compile(r"(?:[A-Za-z][A-Za-z'’-]*[ ,]+){4,}[A-Za-z]+")


@pytest.mark.parametrize("relative", [p for p in PAGES if _edition(p) and not p.endswith(
    ("genindex.html", "py-modindex.html", "search.html", "30_api.html"))])
def test_chinese_pages_have_no_english_prose(relative):
    """A sentence left in English: a message Sphinx could not apply (it keeps the English then).

    The API appendix is left out: it shows the companion's docstrings, which stay English.
    """
    parser = _ArticleText()
    parser.feed((SITE / relative).read_text(encoding="utf-8"))
    runs = _ENGLISH_RUN.findall(" ".join(parser.text))
    assert not runs, f"{relative}: English left in the Chinese page: {runs[:5]}"


def _chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    reason = "Chromium not found (apt-get install -y chromium, or CHROMIUM=/path/to/chrome)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so the browser check cannot be skipped")
    print(f"\n{'!' * 78}\n!!! BROWSER CHECK SKIPPED: {reason}\n!!! Pages were NOT opened in a "
          f"browser: math, images, console errors unchecked.\n{'!' * 78}", file=sys.stderr)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[tuple[object, str]]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with serve(SITE) as base, sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium, base
        finally:
            chromium.close()


def _watch(page, base: str) -> list[str]:
    """Subscribe to the page's events; the returned list fills with what a reader would see broken."""
    problems: list[str] = []
    icon = f"{base}/favicon.ico"  # the browser asks for it by itself; the site declares none

    def request(req):
        if req.url != icon and not req.url.startswith((base + "/", "data:", "blob:", "about:")):
            problems.append(f"request outside the site (must work offline): {req.url}")

    def response(resp):
        if resp.status >= 400 and resp.url != icon:
            problems.append(f"HTTP {resp.status}: {resp.url}")

    def failed(req):
        if req.url != icon:
            problems.append(f"request failed ({req.failure}): {req.url}")

    def console(message):
        if message.type in ("error", "assert") and icon not in (message.location or {}).get("url", ""):
            problems.append(f"console {message.type}: {message.text[:200]}")

    page.on("request", request)
    page.on("response", response)
    page.on("requestfailed", failed)
    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"uncaught exception: {str(error)[:200]}"))
    return problems


def _probe(page) -> dict:
    """Run PAGE_PROBE; a page that redirects (index.html's meta refresh) is probed where it lands."""
    from playwright.sync_api import Error

    for _ in range(3):
        try:
            return page.evaluate(PAGE_PROBE)
        except Error as error:
            if "context was destroyed" not in str(error):
                raise
            page.wait_for_load_state("load")
    return page.evaluate(PAGE_PROBE)


def _fonts_of(page, selector: str) -> list[str]:
    """The platform fonts Chromium used to draw the text of the first element matching selector."""
    session = page.context.new_cdp_session(page)
    session.send("DOM.enable")
    session.send("CSS.enable")
    root = session.send("DOM.getDocument")["root"]["nodeId"]
    node = session.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    if not node:
        return []
    fonts = session.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return [font["familyName"] for font in fonts if font["glyphCount"]]


@pytest.mark.parametrize(("query", "edition"), [("gradient", ""), ("regularization", ""), ("梯度", "zh/"), ("正则化", "zh/"), ("梯度爆炸", "zh/")])
def test_search_finds_words(browser, query, edition):
    """The site's search (Sphinx's index; jieba splits the Chinese words) finds pages."""
    chromium, base = browser
    page = chromium.new_page()
    try:
        page.goto(f"{base}/{edition}search.html?q={query}", wait_until="load")
        # Sphinx writes the summary ("Search finished, found N page(s)...", translated) only
        # once every result is listed; until then it is empty.
        page.wait_for_function(
            "() => (document.querySelector('#search-results p.search-summary')?.innerText || '').trim().length > 0",
            timeout=30_000)
        found = page.locator("#search-results ul.search li").count()
    finally:
        page.close()
    assert found >= 5, f"search for {query!r} in {edition or 'en/'} found {found} pages"


@pytest.mark.parametrize("relative", PAGES)
def test_page_shows_no_problem(browser, relative):
    chromium, base = browser
    page = chromium.new_page(viewport={"width": WIDTH, "height": 900})
    try:
        problems = _watch(page, base)
        page.goto(f"{base}/{relative}", wait_until="load", timeout=60_000)
        info = _probe(page)
        page.wait_for_timeout(200)  # late console messages and font requests
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
        problems += [f"image did not load: {src}" for src in info["brokenImages"]]
        if _edition(relative) and page.locator("article h1").count():
            fonts = _fonts_of(page, "article h1")  # the Chinese title must be drawn in a CJK font
            if not any("CJK" in name or "Hei" in name or "Song" in name for name in fonts):
                problems.append(f"the Chinese title is drawn without a CJK font: {fonts}")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": WIDTH, "height": min(max(info["height"], 900), MAX_HEIGHT)})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=SCREENSHOTS / (relative.removesuffix(".html").replace("/", "__") + ".png"))
    finally:
        page.close()
    problems = list(dict.fromkeys(problems))  # a 404 is reported by several events: once is enough
    assert not problems, f"{relative}:\n  " + "\n  ".join(problems)
