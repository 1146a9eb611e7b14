"""The Chinese edition's catalogue tools (scripts/catalogues.py) and edition extension.

The catalogue check itself runs in ``make test`` against the templates of a fresh build
(``make catalogues-check``); these tests pin what it counts as a problem, on small examples,
and check the committed catalogues' structure without a build.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import catalogues  # noqa: E402
import edition  # noqa: E402


def test_markup_kept_passes():
    english = "The ratio is {glue:text}`r:.2f` for $c = 2$ with `nn.Linear` ({ref}`sec-x`)."
    chinese = "当 $c = 2$ 时，使用 `nn.Linear` 的比值为 {glue:text}`r:.2f`（{ref}`sec-x`）。"
    assert catalogues.markup_problems(english, chinese) == []


@pytest.mark.parametrize(
    ("chinese", "what"),
    [
        ("比值为 {glue:text}`r:.3f`，$c = 2$，`nn.Linear`，{ref}`sec-x`。", "role"),  # a glue format changed
        ("比值为 {glue:text}`r:.2f`，$c = 3$，`nn.Linear`，{ref}`sec-x`。", "formula"),  # a formula changed
        ("比值为 {glue:text}`r:.2f`，$c = 2$，nn.Linear，{ref}`sec-x`。", "inline code"),  # code lost
        ("比值为 {glue:text}`r:.2f`，$c = 2$，`nn.Linear`。", "role"),  # a reference dropped
    ],
)
def test_markup_lost_or_changed_is_a_problem(chinese, what):
    english = "The ratio is {glue:text}`r:.2f` for $c = 2$ with `nn.Linear` ({ref}`sec-x`)."
    problems = catalogues.markup_problems(english, chinese)
    assert len(problems) == 1 and problems[0].startswith(what), problems


def test_titles_of_references_and_words_in_formulas_may_be_translated():
    english = "See {ref}`the proof <sec-proof>` and $x \\text{ (linear)}$."
    chinese = "见 {ref}`证明 <sec-proof>` 与 $x \\text{（线性）}$。"
    assert catalogues.markup_problems(english, chinese) == []


def test_glossary_terms_are_required():
    terms = {"learning rate": "学习率", "L2 regularization": "L2正则化"}
    english = "A smaller learning rate and L2 regularization."
    assert catalogues.term_problems(english, "更小的学习率和 L2 正则化。", terms) == []  # spaces ignored
    problems = catalogues.term_problems(english, "更小的步长和 L2 正则化。", terms)
    assert problems == ["glossary: 'learning rate' is '学习率'"]
    # A term inside a formula or code is not prose.
    assert catalogues.term_problems("`learning_rate` and $\\text{learning rate}$", "代码", terms) == []


def test_glossary_is_read_from_the_glossary_page():
    terms = catalogues.glossary_terms()
    assert len(terms) >= 25
    assert terms["exploding gradient"] == "梯度爆炸" and terms["weight decay"] == "权重衰减"
    assert terms["long short-term memory"] == "长短期记忆网络"  # the first of "长短期记忆网络, LSTM"


@pytest.mark.parametrize(
    ("msgid", "needed"),
    [("\n\\lVert w\\rVert_2^2\n", False), ("$x$", False), ("`l2_penalty`", False), ("0.25", False), ("0.25 to 0.31", True),
     ("The ratio $r$", True), ("{ref}`sec-x` shows it", True)],
)
def test_what_needs_translating(msgid, needed):
    assert catalogues.needs_translation(msgid) is needed


def test_glued_words_are_translated_part_by_part():
    words = {"smaller network": "更小的网络", "none": "无", "L2 penalty": "L2 惩罚项"}
    assert edition.translate_glued_text("'smaller network; L2 penalty'", words) == "'更小的网络；L2 惩罚项'"
    assert edition.translate_glued_text("'none'", words) == "'无'"
    assert edition.translate_glued_text("'sex and s5'", words) == "'sex 和 s5'"  # dataset columns stay
    assert edition.translate_glued_text("'bp, s1, s3'", words) == "'bp、s1、s3'"
    assert edition.translate_glued_text("0.125", words) == "0.125"  # not a string
    assert edition.translate_glued_text("'λ=0.1'", words) == "'λ=0.1'"


def test_glued_words_cover_every_remedy_name():
    from companion import remedies

    assert set(remedies.NAMES.values()) <= set(edition.GLUED_WORDS)


def test_every_page_has_a_catalogue_and_site_words_are_translated():
    pages = {p.relative_to(ROOT).with_suffix("") for p in (ROOT / "book").rglob("*.md")
             if "_" not in p.relative_to(ROOT).parts[1][:1]}
    po = {p.relative_to(catalogues.CATALOGUES).with_suffix("") for p in catalogues.CATALOGUES.rglob("*.po")}
    assert pages <= po, sorted(map(str, pages - po))
    site = catalogues.read(catalogues.CATALOGUES / catalogues.SITE_CATALOGUE)
    translated = {m.id for m in site if m.id and m.string and not m.fuzzy}
    assert set(catalogues.site_words()) <= translated


def test_export_and_import_round_trip(tmp_path):
    from babel.messages.catalog import Catalog

    po, exported = tmp_path / "page.po", tmp_path / "page.yaml"
    catalog = Catalog(locale="zh_CN")
    catalog.add("The step $\\eta$ is {glue:text}`lr`.")
    catalog.add("\n\\eta < 2/L\n")
    catalogues.write(po, catalog)
    catalogues.export(po, exported)
    text = exported.read_text(encoding="utf-8")
    assert "zh: ''" in text  # the prose waits for a translator
    exported.write_text(text.replace("zh: ''", "zh: |-\n    步长 $\\eta$ 为 {glue:text}`lr`。", 1), encoding="utf-8")
    assert catalogues.import_(po, exported) == 0
    strings = {m.id: m.string for m in catalogues.read(po) if m.id}
    assert strings["The step $\\eta$ is {glue:text}`lr`."] == "步长 $\\eta$ 为 {glue:text}`lr`。"
    assert strings["\n\\eta < 2/L\n"] == "\n\\eta < 2/L\n"  # a formula is pre-filled with itself


def test_a_translation_that_opens_a_block_is_a_problem():
    # "1. ..." would be re-parsed as a numbered list and Sphinx would silently keep the English.
    assert catalogues._BLOCK_START.match("1. 标题") and catalogues._BLOCK_START.match("- 条目")
    assert not catalogues._BLOCK_START.match("1.5 倍") and not catalogues._BLOCK_START.match("$-x$ 的值")
