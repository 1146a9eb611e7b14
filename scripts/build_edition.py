"""Build the book in another builder or language from the same sources and execution cache.

Usage: python scripts/build_edition.py zh          the Chinese site into _build/html/zh
       python scripts/build_edition.py gettext     the message templates (.pot) into _build/gettext
       python scripts/build_edition.py gettext zh  both at once, one process each (`make book`)

Run after `jupyter-book build` (``make book`` does both): it reads the executed notebooks
from the jupyter-cache that build filled, so no chapter is executed a second time, and
the glued numbers, outputs and figures of the Chinese site are those of the English one.

The `jupyter-book` command cannot pass Sphinx's ``language`` (nor a builder's own
settings), so this script calls the function behind it, ``jupyter_book.sphinx.build_sphinx``,
with the same ``_config.yml`` and a few overrides: the language and the catalogues in
``locales/`` for the Chinese site; one catalogue per page (``gettext_compact=False``) for the
templates. Both build with warnings as errors, as the English site does.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
LOCALES = ROOT / "locales"
# Sphinx's name of the Chinese edition's language; the site is published under /zh/.
LANGUAGES = {"zh": "zh_CN"}


def common_overrides() -> dict[str, object]:
    """What `jupyter-book build . --all -W -n` would pass, plus the shared execution cache."""
    return {
        "external_toc_path": (ROOT / "_toc.yml").as_posix(),
        "latex_individualpages": False,
        "nitpicky": True,
        "nb_execution_cache_path": str(CACHE),
        "gettext_compact": False,
        "gettext_uuid": False,
        "gettext_location": False,
    }


def cache_records() -> set[int]:
    from jupyter_cache import get_cache

    return {record.pk for record in get_cache(CACHE).list_cache_records()}


def build(builder: str, out: Path, doctrees: Path, overrides: dict[str, object]) -> int:
    """One Sphinx build; fails if it had to execute a chapter (the cache must be complete)."""
    from jupyter_book.sphinx import build_sphinx

    before = cache_records()
    result = build_sphinx(
        ROOT, out, noconfig=True, path_config=ROOT / "_config.yml", confoverrides=overrides,
        builder=builder, doctreedir=doctrees, warningiserror=True, keep_going=True,
        freshenv=True, force_all=True, quiet=True,
    )
    executed = cache_records() - before
    if executed:
        print(f"build_edition ({builder} into {out}): {len(executed)} chapter(s) were executed again; the execution "
              "cache was not filled by this build's `make book`", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("edition", nargs="+", choices=["gettext", *LANGUAGES],
                        help="several: built at the same time, one process each")
    args = parser.parse_args()
    if not CACHE.is_dir():
        parser.error(f"no execution cache at {CACHE}: run `make book` first")
    if len(args.edition) > 1:
        builds = [subprocess.Popen([sys.executable, __file__, edition]) for edition in args.edition]
        return max(build.wait() for build in builds)
    args.edition = args.edition[0]
    start = time.perf_counter()
    overrides = common_overrides()
    if args.edition == "gettext":
        out = BUILD / "gettext"
        shutil.rmtree(out, ignore_errors=True)
        status = build("gettext", out, BUILD / "edition-doctrees" / "gettext", overrides)
    else:
        language = LANGUAGES[args.edition]
        # Built beside the English site, then moved under it: myst-nb writes the executed
        # notebooks next to the output folder, which must not be inside the English site.
        staging = BUILD / f"edition-{args.edition}" / "html"
        shutil.rmtree(staging, ignore_errors=True)
        # Sphinx compiles each catalogue (.po) into a .mo beside it: work on a copy, so that
        # the repository's locales/ holds only the sources.
        locales = BUILD / f"edition-{args.edition}" / "locales"
        shutil.rmtree(locales, ignore_errors=True)
        shutil.copytree(LOCALES, locales, ignore=shutil.ignore_patterns("*.mo"))
        overrides |= {"language": language, "locale_dirs": [str(locales)]}
        status = build("html", staging, BUILD / f"edition-{args.edition}" / ".doctrees", overrides)
        if status == 0:
            target = BUILD / "html" / args.edition
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(staging, target)
    print(f"build_edition {args.edition}: status {status} in {time.perf_counter() - start:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
