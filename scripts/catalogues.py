"""The Chinese edition's translation catalogues: update, check, and hand to a translator.

Usage:
  python scripts/catalogues.py update          templates from the sources, merged into locales/
  python scripts/catalogues.py check           fail on anything the Chinese edition lacks
  python scripts/catalogues.py export PO YAML  a catalogue as YAML, for translating by hand
  python scripts/catalogues.py import PO YAML  the translated YAML back into the catalogue

The English chapters are the source of truth. ``update`` runs the gettext build
(``scripts/build_edition.py gettext``: one template per page, from the same executed notebooks
as the site) and merges every template into its catalogue under
``locales/zh_CN/LC_MESSAGES/``: a new sentence arrives untranslated, a changed one arrives
*fuzzy* (the closest old translation kept, marked for review), a removed one is dropped.

``check`` is part of ``make test``. It fails when a catalogue

- lacks a message of its page, or has one untranslated or fuzzy (an English sentence changed
  and its Chinese was not reviewed);
- keeps a stale message: obsolete (``#~``), or no longer in the page, or a whole catalogue
  whose page is gone;
- translates a message without its markup: every role target (``{ref}``, ``{glue:text}``,
  ``{cite}``, ...), every piece of inline code and every formula of the English must appear
  in the Chinese (formulas may translate the words of their ``\\text{...}``);
- starts with Markdown block syntax ("1. ", "- ", "> ", "# ", "|"): Sphinx would parse the
  translation as a list, quote or heading and silently keep the English;
- uses another word than the glossary's for one of its terms: where the English says a
  glossary term, the Chinese says the glossary's Chinese term (``book/appendix/20_glossary.md``
  is the one list of terms both editions use).

The interface words of the site itself (theme, extensions) live in
``locales/zh_CN/LC_MESSAGES/site.po`` and are checked the same way against the list of words
``book/_ext/edition.py`` translates.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = "zh_CN"
CATALOGUES = ROOT / "locales" / LANGUAGE / "LC_MESSAGES"
TEMPLATES = ROOT / "_build" / "gettext"
GLOSSARY = ROOT / "book" / "appendix" / "20_glossary.md"
SITE_CATALOGUE = "site.po"
PROJECT = "Gradients and Regularization, Corrected"

# {role}`target` -- with "Title <target>" the title is translated, the target kept.
_ROLE = re.compile(r"\{([a-z:-]+)\}`([^`]*)`")
_CODE = re.compile(r"(?<![`{}a-z])``?([^`]+?)``?(?!`)")
_MATH = re.compile(r"(?<![\\$])\$\$?(.+?)\$\$?", re.S)
_TEXT_IN_MATH = re.compile(r"\\(?:text|mathrm|textrm|operatorname\*?)\{[^{}]*\}")
_GLOSSARY_TERM = re.compile(r"^(\S[^\n(]*?) \((.+)\)$", re.M)
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# A translation is parsed as one paragraph (or title): one that opens a list, quote, heading
# or table is not, and Sphinx silently keeps the English.
_BLOCK_START = re.compile(r"^(\d+[.)] |[-*+>] |#{1,6} |\|)")


def read(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=LANGUAGE)


HEADER = """\
# Chinese edition of "Gradients and Regularization, Corrected": the translation of one page.
# The English page is the source; `python scripts/catalogues.py update` merges its changes in
# and `make test` fails until every message here is translated and reviewed (not fuzzy)."""


def write(path: Path, catalog: Catalog) -> None:
    catalog.project = PROJECT
    catalog.version = ""
    catalog.fuzzy = False
    catalog.header_comment = HEADER
    catalog.msgid_bugs_address = ""
    catalog.last_translator = "The companion-book authors"
    catalog.language_team = "The companion-book authors"
    for message in catalog:
        message.flags -= {"python-format", "python-brace-format"}
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=0, omit_header=False, include_previous=True, no_location=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def role_targets(text: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for name, body in _ROLE.findall(text):
        target = body.rsplit("<", 1)[1].rstrip(">") if body.endswith(">") and "<" in body else body
        found[f"{{{name}}}`{target.strip()}`"] += 1
    return found


def inline_code(text: str) -> Counter[str]:
    return Counter(_CODE.findall(_MATH.sub(" ", _ROLE.sub(" ", text))))


def formulas(text: str) -> Counter[str]:
    bare = _ROLE.sub(" ", text)
    return Counter(re.sub(r"\s+", "", _TEXT_IN_MATH.sub("", m)) for m in _MATH.findall(bare))


def markup_problems(msgid: str, msgstr: str) -> list[str]:
    """What markup of the English is missing from (or added to) its translation."""
    problems = []
    for what, extract in (("role", role_targets), ("inline code", inline_code), ("formula", formulas)):
        english, chinese = extract(msgid), extract(msgstr)
        if english != chinese:
            lost = list((english - chinese).elements())
            added = list((chinese - english).elements())
            problems.append(f"{what}: missing {lost} added {added}")
    return problems


def glossary_terms() -> dict[str, str]:
    """English term -> Chinese term, from the glossary's entries ``english (中文)``."""
    text = GLOSSARY.read_text(encoding="utf-8")
    block = text.split("```{glossary}", 1)[1].split("```", 1)[0]
    terms = {}
    for english, chinese in _GLOSSARY_TERM.findall(block):
        terms[english.strip()] = chinese.split(",")[0].strip()
    return terms


def _plain(text: str) -> str:
    """The words of a message: no roles' targets, formulas or code."""
    text = _ROLE.sub(lambda m: m.group(2).split("<")[0] if m.group(1) in ("ref", "numref", "doc") else " ", text)
    return _CODE.sub(" ", _MATH.sub(" ", text))


def term_problems(msgid: str, msgstr: str, terms: dict[str, str]) -> list[str]:
    problems = []
    english = _plain(msgid).lower()
    chinese = re.sub(r"\s+", "", _plain(msgstr)).lower()
    for term, zh in terms.items():
        pattern = r"(?<![a-z-])" + re.escape(term.lower()) + r"(?:s|es)?(?![a-z])"
        if re.search(pattern, english) and re.sub(r"\s+", "", zh).lower() not in chinese:
            problems.append(f"glossary: '{term}' is '{zh}'")
    return problems


def needs_translation(msgid: str) -> bool:
    """False for messages with no words to translate: formulas, numbers, code, labels."""
    if msgid.startswith("\n"):  # a display formula
        return False
    return bool(_LATIN_WORD.search(_CODE.sub(" ", _MATH.sub(" ", _ROLE.sub(" ", msgid)))))


def templates() -> dict[Path, Catalog]:
    return {
        pot.relative_to(TEMPLATES).with_suffix(".po"): read(pot) for pot in sorted(TEMPLATES.rglob("*.pot"))
    }


def site_words() -> list[str]:
    extensions = str(ROOT / "book" / "_ext")
    if extensions not in sys.path:
        sys.path.insert(0, extensions)
    from edition import GLUED_WORDS, INTERFACE_WORDS

    return list(INTERFACE_WORDS) + list(GLUED_WORDS)


def update() -> int:
    status = subprocess.call([sys.executable, str(ROOT / "scripts" / "build_edition.py"), "gettext"])
    if status:
        return status
    expected = templates()
    site = Catalog(locale=LANGUAGE)
    for word in site_words():
        site.add(word)
    expected[Path(SITE_CATALOGUE)] = site
    for relative, template in expected.items():
        path = CATALOGUES / relative
        catalog = read(path) if path.exists() else Catalog(locale=LANGUAGE)
        catalog.update(template, no_fuzzy_matching=False, update_header_comment=False)
        # A removed sentence's translation is of no use once fuzzy matching has had its chance.
        catalog.obsolete.clear()
        write(path, catalog)
    for path in sorted(CATALOGUES.rglob("*.po")):
        if path.relative_to(CATALOGUES) not in expected:
            print(f"stale catalogue (its page is gone): {path.relative_to(ROOT)}; remove it")
    return 0


def check() -> int:
    if not TEMPLATES.is_dir():
        print(f"no templates in {TEMPLATES}: run `make book` first", file=sys.stderr)
        return 2
    expected = templates()
    expected_site = set(site_words())
    terms = glossary_terms()
    problems: list[str] = []
    counted = Counter()
    catalogues = sorted(CATALOGUES.rglob("*.po"))
    for path in catalogues:
        relative = path.relative_to(CATALOGUES)
        catalog = read(path)
        if relative == Path(SITE_CATALOGUE):
            wanted = expected_site
        elif relative in expected:
            wanted = {m.id for m in expected[relative] if m.id}
        else:
            problems.append(f"{relative}: stale catalogue, its page is gone")
            continue
        have = {m.id for m in catalog if m.id}
        for msgid in sorted(wanted - have):
            problems.append(f"{relative}: untranslated (new) {msgid[:80]!r}")
        for message in catalog:
            if not message.id:
                continue
            short = f"{relative}: {message.id[:80]!r}"
            counted["messages"] += 1
            if message.id not in wanted:
                problems.append(f"{short}: stale, no longer in the page")
            elif not message.string:
                problems.append(f"{short}: untranslated")
            elif message.fuzzy:
                problems.append(f"{short}: fuzzy (the English changed; review the Chinese)")
            elif relative == Path(SITE_CATALOGUE) and message.string == message.id:
                problems.append(f"{short}: the 'translation' is the English")
            elif relative != Path(SITE_CATALOGUE) and needs_translation(message.id) and not _CJK.search(message.string):
                problems.append(f"{short}: the 'translation' has no Chinese")
            elif _BLOCK_START.match(message.string):
                problems.append(f"{short}: starts with Markdown block syntax ({message.string[:4]!r}); Sphinx "
                                "parses it as a list/quote/heading and shows the English instead")
            else:
                problems += [f"{short}: {p}" for p in markup_problems(message.id, message.string)]
                problems += [f"{short}: {p}" for p in term_problems(message.id, message.string, terms)]
        for message in catalog.obsolete.values():
            problems.append(f"{relative}: stale, obsolete message {message.id[:80]!r}; remove it")
    for relative in sorted(set(expected) - {p.relative_to(CATALOGUES) for p in catalogues}):
        problems.append(f"{relative}: no catalogue for this page")
    for problem in problems:
        print(problem)
    print(f"catalogues: {counted['messages']} messages in {len(catalogues)} catalogues, "
          f"{len(problems)} problems")
    return 1 if problems else 0


# --- for translators: a catalogue as YAML with block scalars (no escaping of backslashes) ---

def export(po: Path, out: Path) -> int:
    import yaml

    catalog = read(po)
    entries = []
    for number, message in enumerate((m for m in catalog if m.id), 1):
        string = message.string or ("" if needs_translation(message.id) else message.id)
        entries.append({"n": number, "en": message.id, "zh": string, **({"fuzzy": True} if message.fuzzy else {})})

    class Block(yaml.SafeDumper):
        pass

    def text(dumper, value):
        style = "|" if "\n" in value or len(value) > 60 or "\\" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Block.add_representer(str, text)
    out.write_text(yaml.dump(entries, Dumper=Block, allow_unicode=True, sort_keys=False, width=10**6), encoding="utf-8")
    return 0


def import_(po: Path, source: Path) -> int:
    import yaml

    catalog = read(po)
    entries = yaml.safe_load(source.read_text(encoding="utf-8"))
    by_id = {m.id: m for m in catalog if m.id}
    unknown = 0
    for entry in entries:
        english = entry["en"].rstrip("\n") if not entry["en"].startswith("\n") else entry["en"]
        message = by_id.get(entry["en"]) or by_id.get(english)
        if message is None:
            unknown += 1
            print(f"not in {po.name}: {entry['en'][:80]!r}", file=sys.stderr)
            continue
        message.string = entry.get("zh") or ""
        if message.string and not entry.get("fuzzy"):
            message.flags.discard("fuzzy")
    write(po, catalog)
    return 1 if unknown else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("update")
    sub.add_parser("check")
    for name in ("export", "import"):
        command = sub.add_parser(name)
        command.add_argument("po", type=Path)
        command.add_argument("yaml", type=Path)
    args = parser.parse_args()
    if args.command == "update":
        return update()
    if args.command == "check":
        return check()
    if args.command == "export":
        return export(args.po, args.yaml)
    return import_(args.po, args.yaml)


if __name__ == "__main__":
    sys.exit(main())
