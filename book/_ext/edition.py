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
  from the run, so they are kept out of the catalogues, as are the companion's docstrings
  that the API appendix shows (part of the code; they would otherwise be most of the
  messages of the book).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gettext
import io

import sphinx.locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from docutils import nodes
from myst_nb.sphinx_ext import HideCodeCellNode
from sphinx.application import Sphinx
from myst_nb.ext.glue import directives as glue_directives
from myst_nb.ext.glue import roles as glue_roles
from myst_nb.core.variables import VariableOutput
from myst_nb.ext.glue.utils import RetrievalError
from myst_nb.ext.glue.utils import retrieve_glue_data as _myst_retrieve_glue_data
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform

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
# Where each edition is published, relative to the English site's root.
EDITIONS = {"en": "", "zh_CN": "zh/"}
# The language names of each edition, as <html lang> and hreflang write them.
HREFLANG = {"en": "en", "zh_CN": "zh-CN"}


# The glue data of the page being translated (myst-nb wrote it beside the executed notebook).
_translating: dict[str, dict[str, Any]] = {}


def _retrieve_glue_data(document: nodes.document, key: str) -> VariableOutput:
    """myst-nb's lookup, falling back to the glue data of the page being translated."""
    try:
        return _myst_retrieve_glue_data(document, key)
    except RetrievalError:
        if key not in _translating:
            raise
        data = _translating[key]
        return VariableOutput(data=data["data"], metadata=data.get("metadata", {}), nb_renderer=None, vtype="glue")


class _TranslationStarts(SphinxTransform):
    default_priority = 19  # Sphinx's Locale transform is 20

    def apply(self, **kwargs: Any) -> None:
        _translating.clear()
        if not self.config.language or self.config.language == "en":
            return
        # Where myst-nb's parser has just written the page's glue data (myst_nb.sphinx_ext).
        glue = Path(self.app.outdir).parent / "jupyter_execute" / f"{self.env.docname}.glue.json"
        if glue.is_file():
            _translating.update(json.loads(glue.read_text(encoding="utf-8")))


class _TranslationEnds(SphinxTransform):
    default_priority = 21

    def apply(self, **kwargs: Any) -> None:
        _translating.clear()


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
            with path.open("rb") as handle:
                catalogue = read_po(handle, locale=lang)
            messages |= {m.id: m.string for m in catalogue if m.id and m.string and not m.fuzzy}
    return messages


def _gnu_translations(lang: str, messages: dict[str, str]) -> gettext.GNUTranslations:
    catalogue = Catalog(locale=lang)
    for english, translated in messages.items():
        catalogue.add(english, translated)
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def _translate_configuration(app: Sphinx, config: Any) -> None:
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


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", _translate_configuration)
    app.connect("builder-inited", _interface_in_front)
    app.connect("html-page-context", _language_switch)
    app.add_post_transform(FoldedCellPrompts)
    app.add_transform(OutputStaysAsItIs)
    app.add_transform(_TranslationStarts)
    app.add_transform(_TranslationEnds)
    # The glue roles and directives call the lookup by the name they imported.
    glue_roles.retrieve_glue_data = _retrieve_glue_data
    glue_directives.retrieve_glue_data = _retrieve_glue_data
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
