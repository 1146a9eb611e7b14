"""Sphinx extension: the book's two editions, English and Chinese, from one source.

The Chinese site is the English one built again with ``language = zh_CN`` and the
catalogues in ``locales/zh_CN/LC_MESSAGES/`` (``scripts/build_edition.py zh``):

- Glued numbers work in translated paragraphs. Sphinx parses each translation as a small
  document of its own, which has no notebook and so no glue data: while the ``Locale``
  transform runs, myst-nb's glue lookup falls back to the page being translated.
- The site's own words. The theme leaves some of its interface in English (or, for a few
  words, in traditional characters) when ``language`` is ``zh_CN``, and the book's extensions
  write a few words of their own ("Show the checks"). All of them are in the catalogue
  ``site.po`` (the list is ``INTERFACE_WORDS``), which is put in front of the theme's and
  Sphinx's own translations; the title, author and search-box text are translated with it.
- A language switch. Every page links to the same page of the other edition (template
  ``book/_templates/language-switch.html`` in the article header, and ``<link
  rel="alternate" hreflang>`` in the head): the Chinese site is published under ``zh/``
  of the English one.
- Code, program output and docstrings stay as they are. Tables and text that a code cell
  prints (``Markdown(...)`` outputs included) are program output: their words and numbers come
  from the run, so they are kept out of the catalogues (a figure's caption, written by the
  author in the cell's metadata, is translated), as are the companion's docstrings
  that the API appendix shows (part of the code; they would otherwise be most of the
  messages of the book).
"""

from __future__ import annotations

import functools
import gettext
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import sphinx.locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from docutils import nodes
from myst_nb.core.variables import VariableOutput
from myst_nb.ext.glue import directives as glue_directives
from myst_nb.ext.glue import roles as glue_roles
from myst_nb.ext.glue.utils import RetrievalError
from myst_nb.ext.glue.utils import retrieve_glue_data as _myst_retrieve_glue_data
from myst_nb.sphinx_ext import HideCodeCellNode
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

# Interface words of the theme and of the book's extensions that the Chinese edition
# translates (catalogue locales/zh_CN/LC_MESSAGES/site.po; scripts/catalogues.py checks it).
INTERFACE_WORDS = (
    # book/_ext/cell_display.py and myst-nb's prompts of folded cells
    "Show the checks",
    "Hide the checks",
    "Show code cell content",
    "Hide code cell content",
    "Show code cell source",
    "Hide code cell source",
    "Show code cell output",
    "Hide code cell output",
    "Show code cell outputs",
    "Hide code cell outputs",
    "Click to show",
    "Click to hide",
    # configuration: title, author, search box
    "Gradients and Regularization, Corrected",
    "The companion-book authors",
    "Search this book...",
    # the language switch's tooltip (its text names the other language in that language)
    "Read this page in Chinese",
    "Read this page in English",
    # theme words left in English or in traditional characters
    "Color mode",
    "System Settings",
    "Toggle primary sidebar",
    "Toggle secondary sidebar",
    "Main",
    "Page",
    "Print to PDF",
    "On this page",
    "Search...",
    "© Copyright %(copyright)s.",
)
# Words that chapters glue into sentences (names of remedies and regularizers, chosen by the
# measurements): translated where a translated sentence pastes them. Separators of lists are
# translated too; short lowercase identifiers (scikit-learn's diabetes columns: bmi, s5) and
# values without words ("1", "λ=0.1") stay.
GLUED_WORDS = (
    # companion.remedies.NAMES (tests/test_catalogues.py checks that every one is here)
    "ReLU instead of a saturating activation",
    "Xavier/He initialization",
    "smaller learning rate",
    "dropout",
    "smaller network",
    "data normalization",
    "L2 penalty",
    "early stopping",
    "distributed training",
    "gradient clipping",
    "augmentation",
    # part4/04's regularizers, and what a chapter glues when a list is empty
    "L1",
    "L2",
    "noise augmentation",
    "none",
)
_LIST_SEPARATORS = (("; ", "；"), (", ", "、"), (" and ", " 和 "))
_IDENTIFIER = re.compile(r"^[a-z]{1,3}[0-9]?$")

# Where each edition is published, relative to the English site's root.
EDITIONS = {"en": "", "zh_CN": "zh/"}
# The language names of each edition, as <html lang> and hreflang write them.
HREFLANG = {"en": "en", "zh_CN": "zh-CN"}


# The glue data of the page being translated (myst-nb wrote it beside the executed notebook),
# and the translations of GLUED_WORDS.
_translating: dict[str, dict[str, Any]] = {}
_glued_words: dict[str, str] = {}
_logger = logging.getLogger(__name__)


def _retrieve_glue_data(document: nodes.document, key: str) -> VariableOutput:
    """myst-nb's lookup, falling back to the glue data of the page being translated."""
    try:
        return _myst_retrieve_glue_data(document, key)
    except RetrievalError:
        if key not in _translating:
            raise
        data = dict(_translating[key]["data"])
        if "text/plain" in data and _glued_words:
            data["text/plain"] = translate_glued_text(data["text/plain"], _glued_words, key)
        return VariableOutput(data=data, metadata=_translating[key].get("metadata", {}), nb_renderer=None, vtype="glue")


def translate_glued_text(text: str, words: dict[str, str], key: str = "") -> str:
    """A glued string value (its repr, as myst-nb stores it) with its words translated.

    Numbers and other values pass unchanged. A list joined by "; ", ", " or " and " is
    translated part by part; a word without a translation is a build warning, so that a new
    name cannot slip into the Chinese text in English.
    """
    if len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0]:
        return text
    quote, value = text[0], text[1:-1]

    def translate(part: str, separators: tuple[tuple[str, str], ...]) -> str:
        if part in words:
            return words[part]
        for index, (english, chinese) in enumerate(separators):
            if english in part:
                rest = separators[index + 1:]
                return chinese.join(translate(piece, rest) for piece in part.split(english))
        if _IDENTIFIER.match(part) or not re.search(r"[A-Za-z]{2}", part):
            return part  # a column name, a number, "λ=0.1": nothing to translate
        _logger.warning(f"glued value {key!r}: no translation of {part!r} (add it to GLUED_WORDS and site.po)")
        return part

    return quote + translate(value, _LIST_SEPARATORS) + quote


class _TranslationStarts(SphinxTransform):
    default_priority = 19  # Sphinx's Locale transform is 20

    def apply(self, **kwargs: Any) -> None:
        _translating.clear()
        if language(self.app) == "en":
            return
        # Where myst-nb's parser has just written the page's glue data (myst_nb.sphinx_ext).
        glue = Path(self.app.outdir).parent / "jupyter_execute" / f"{self.env.docname}.glue.json"
        if glue.is_file():
            _translating.update(json.loads(glue.read_text(encoding="utf-8")))
        messages = site_messages(self.app)
        _glued_words.clear()
        _glued_words.update({word: messages[word] for word in GLUED_WORDS if word in messages})


class _TranslationEnds(SphinxTransform):
    default_priority = 21

    def apply(self, **kwargs: Any) -> None:
        _translating.clear()


class TocCaptions(SphinxTransform):
    """Translate the captions of the table of contents ("Part I. The problem", ...).

    sphinx-external-toc inserts the toctrees into the root page at priority 100, after
    Sphinx's ``Locale`` transform (20) has translated the page: the gettext build extracts the
    captions (it reads the finished page) but nothing translates them. This does, from the
    same catalogue.
    """

    default_priority = 101

    def apply(self, **kwargs: Any) -> None:
        captioned = [toctree for toctree in self.document.findall(addnodes.toctree) if toctree.get("caption")]
        if language(self.app) == "en" or not captioned:
            return
        from sphinx.locale import init as init_locale
        from sphinx.util.i18n import docname_to_domain

        folders = [str(Path(self.app.srcdir, folder)) for folder in self.config.locale_dirs]
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        catalogue, found = init_locale(folders, self.config.language, domain)
        if found:
            for toctree in captioned:
                toctree["caption"] = catalogue.gettext(toctree["caption"])


def _in_caption(node: nodes.Node) -> bool:
    while node is not None:
        if isinstance(node, (nodes.caption, nodes.legend)):
            return True
        node = node.parent
    return False


class OutputStaysAsItIs(SphinxTransform):
    """Mark code-cell outputs and autodoc's docstring text as not translatable.

    Runs before Sphinx's ``Locale`` transform (priority 20), which then neither translates
    these nodes nor, in the gettext build, extracts them into the templates.
    """

    default_priority = 15

    def apply(self, **kwargs: Any) -> None:
        for output in self.document.findall(nodes.container):
            if output.get("nb_element") == "cell_code_output":
                for node in output.findall(nodes.TextElement):
                    if not _in_caption(node):  # a figure's caption is the author's text
                        node["translatable"] = False
        for node in self.document.findall(nodes.TextElement):
            if "docstring of " in (node.source or ""):
                node["translatable"] = False


def language(app: Sphinx) -> str:
    return app.config.language or "en"


def site_messages(app: Sphinx) -> dict[str, str]:
    """The interface words of the build's language, English -> translation ({} in English)."""
    lang = language(app)
    if lang == "en":
        return {}
    messages: dict[str, str] = {}
    for folder in app.config.locale_dirs:
        path = Path(app.confdir or app.srcdir, folder, lang, "LC_MESSAGES", "site.po")
        if path.is_file():
            messages |= _read_site_catalogue(str(path), lang)
    return messages


@functools.cache
def _read_site_catalogue(path: str, lang: str) -> dict[str, str]:
    """One site.po, read once per process, i.e. per build (every page asks for the interface words)."""
    with open(path, "rb") as handle:
        catalogue = read_po(handle, locale=lang)
    return {m.id: m.string for m in catalogue if m.id and m.string and not m.fuzzy}


def _gnu_translations(lang: str, messages: dict[str, str]) -> gettext.GNUTranslations:
    catalogue = Catalog(locale=lang)
    for english, translated in messages.items():
        catalogue.add(english, translated)
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def _search_terms(app: Sphinx, config: Any) -> None:
    """Teach the Chinese search index the glossary's terms.

    Sphinx splits Chinese text into words with jieba, whose general dictionary cuts a term
    such as 正则化 into 正则 + 化, so a search for the term found one page. The glossary's
    Chinese terms become a jieba user dictionary (``html_search_options["dict"]``): each
    term is then indexed as a word, besides its parts.
    """
    import logging as std_logging

    import jieba

    jieba.setLogLevel(std_logging.WARNING)  # its start-up chatter
    scripts = str(Path(__file__).resolve().parents[2] / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    from catalogues import glossary_terms

    words = set()
    for chinese in glossary_terms().values():
        words.add(chinese.replace(" ", ""))
        words.update(re.findall(r"[\u4e00-\u9fff]{2,}", chinese))
    path = Path(app.outdir).parent / "search-terms.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{word} 100000\n" for word in sorted(words)), encoding="utf-8")
    config.html_search_options = {**(config.html_search_options or {}), "dict": str(path)}


def _translate_configuration(app: Sphinx, config: Any) -> None:
    if language(app).startswith("zh"):
        _search_terms(app, config)
    messages = site_messages(app)
    if not messages:
        return
    config.html_title = messages.get(config.html_title, config.html_title)
    config.author = messages.get(config.author, config.author)
    options = dict(config.html_theme_options)
    if "search_bar_text" in options:
        options["search_bar_text"] = messages.get(options["search_bar_text"], options["search_bar_text"])
    config.html_theme_options = options


def _interface_in_front(app: Sphinx) -> None:
    """Put site.po in front of Sphinx's and the themes' translations (templates included)."""
    messages = site_messages(app)
    if not messages:
        return
    for key in (("general", "sphinx"), ("general", "booktheme")):  # (namespace, catalogue)
        ours = _gnu_translations(language(app), messages)
        theirs = sphinx.locale.translators.get(key)
        if theirs is not None:
            ours.add_fallback(theirs)
        sphinx.locale.translators[key] = ours
    app.translator = sphinx.locale.translators[("general", "sphinx")]
    templates = getattr(app.builder, "templates", None)
    if templates is not None and hasattr(templates, "environment"):
        templates.environment.install_gettext_translations(app.translator)
        # A few theme templates write interface words as literal attributes, without _():
        # translate exactly those attribute values in every rendered page.
        render = templates.render
        literal = {
            f'{attribute}="{english}"': f'{attribute}="{messages[english]}"'
            for attribute in ("title", "aria-label", "placeholder")
            for english in messages
        }

        def render_translated(template: str, context: dict[str, Any]) -> str:
            html = render(template, context)
            for english, translated in literal.items():
                html = html.replace(english, translated)
            return html

        templates.render = render_translated


class FoldedCellPrompts(SphinxPostTransform):
    """Translate the prompts of folded cells, set by myst-nb (priority 199) and cell_display."""

    default_priority = 200
    formats = ("html",)

    def apply(self, **kwargs: Any) -> None:
        messages = site_messages(self.app)
        if not messages:
            return
        for node in self.document.findall(HideCodeCellNode):
            for key in ("prompt_show", "prompt_hide"):
                node[key] = messages.get(node[key], node[key])


def _other_edition(app: Sphinx, pagename: str) -> tuple[str, str]:
    """(URL of this page in the other edition, relative to this page; that edition's language)."""
    lang = language(app)
    other = "zh_CN" if lang == "en" else "en"
    to_english_root = "../" * pagename.count("/") + ("../" * EDITIONS[lang].count("/"))
    return f"{to_english_root}{EDITIONS[other]}{pagename}.html", other


def _language_switch(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    if app.builder.format != "html":
        return
    url, other = _other_edition(app, pagename)
    messages = site_messages(app)
    text, title = ("中文", "Read this page in Chinese") if other != "en" else ("English", "Read this page in English")
    context["language_switch"] = {
        "url": url,
        "hreflang": HREFLANG[other],
        # The name of the other language is written in that language, in both editions.
        "text": text,
        "title": messages.get(title, title),
    }
    context["metatags"] = context.get("metatags", "") + (
        f'\n<link rel="alternate" hreflang="{HREFLANG[other]}" href="{url}" />'
    )


class _Terms(list):
    """A list whose ``in`` is a set lookup."""

    def __init__(self) -> None:
        super().__init__()
        self._members: set[str] = set()

    def extend(self, terms: Any) -> None:
        terms = list(terms)
        super().extend(terms)
        self._members.update(terms)

    def __contains__(self, term: object) -> bool:
        return term in self._members


def _fast_chinese_search_index() -> None:
    """Sphinx's Chinese indexer keeps every Latin word of the book in a list and asks, for each
    word it stems, whether the word is in that list: quadratic, 12 s of this build. The same
    answers, from a set."""
    from sphinx.search import zh

    original_init = zh.SearchChinese.init

    def init(self: Any, options: dict[str, str]) -> None:
        original_init(self, options)
        self.latin_terms = _Terms()

    zh.SearchChinese.init = init


def setup(app: Sphinx) -> dict[str, Any]:
    _fast_chinese_search_index()
    app.connect("config-inited", _translate_configuration)
    app.connect("builder-inited", _interface_in_front)
    app.connect("html-page-context", _language_switch)
    app.add_post_transform(FoldedCellPrompts)
    app.add_transform(OutputStaysAsItIs)
    app.add_transform(TocCaptions)
    app.add_transform(_TranslationStarts)
    app.add_transform(_TranslationEnds)
    # The glue roles and directives call the lookup by the name they imported.
    glue_roles.retrieve_glue_data = _retrieve_glue_data
    glue_directives.retrieve_glue_data = _retrieve_glue_data
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
