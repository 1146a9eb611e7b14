"""Execute one edited chapter and rebuild the site incrementally around it (for authors).

Usage: python scripts/chapter_site.py book/part1/01_exploding_vanishing.md [--no-site]

The chapter is executed the way ``make book`` executes it (scripts/preexecute.py: one kernel,
one thread, the cell timeout of _config.yml) and its wall time printed; the first cell error
fails (exit 1). The executed notebook replaces the chapter's entry in the build's execution
cache, then ``jupyter-book build .`` runs without ``--all``: Sphinx re-reads only the pages
whose sources changed and finds this chapter already executed, so the chapter runs once.

A preview, not a release: pages that did not change keep their old outputs (even if
``companion/`` changed), an incremental Sphinx build does not repeat old warnings, and
``_build/book.key`` is removed so that the next ``make book`` rebuilds everything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from preexecute import execute  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "_build" / ".jupyter_cache"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapter", type=Path)
    parser.add_argument("--no-site", action="store_true", help="only execute and time the chapter")
    parser.add_argument("--toc", type=Path, help="another table of contents for the build (default _toc.yml)")
    args = parser.parse_args()
    chapter = args.chapter.resolve()
    if not chapter.is_file() or chapter.suffix != ".md":
        parser.error(f"chapter must be a MyST Markdown file under book/, got {args.chapter}")
    path, notebook, seconds, error = execute(chapter)
    if error is not None:
        print(f"FAILED {args.chapter}\n{error}", file=sys.stderr)
        return 1
    print(f"{seconds:6.1f} s  {args.chapter} executed")
    if args.no_site:
        return 0
    if not (ROOT / "_build" / "html").is_dir() or not CACHE.is_dir():
        print("no earlier build in _build/ to update: `make book` builds the whole site once")
        return 0
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    get_cache(str(CACHE)).cache_notebook_bundle(
        CacheBundleIn(notebook, str(path), data={"execution_seconds": seconds}),
        check_validity=False, overwrite=True,
    )
    (ROOT / "_build" / "book.key").unlink(missing_ok=True)
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", ".", "--keep-going", "--quiet"]
    if args.toc is not None:
        command += ["--toc", str(args.toc)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=os.environ)
    print(f"{time.perf_counter() - start:6.1f} s  site rebuilt incrementally (_build/html)")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
