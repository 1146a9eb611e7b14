"""Execute every chapter listed in _toc.yml, several at a time, into the build's cache.

Usage: python scripts/preexecute.py [--jobs N] [--cache DIR]

Jupyter Book executes notebooks one after the other; on a 2-core machine that
is most of the build. This script empties the execution cache, executes the
chapters in N parallel kernels (one thread each, as in the build) and stores
each executed notebook in the jupyter-cache that myst-nb reads with
``execute_notebooks: cache``. The build then finds every chapter already
executed, so nothing is ever served from an older run: the cache is rebuilt
from scratch by every `make book`.

A chapter that fails here is left out of the cache; the build then executes it
itself and reports the error as a warning, which fails `-W`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from multiprocessing import Pool
from pathlib import Path

from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution
from myst_nb.core.read import read_myst_markdown_notebook

sys.path.insert(0, str(Path(__file__).resolve().parent))
from executed_notebooks import ROOT, ipc_kernels, is_notebook, toc_documents  # noqa: E402

TIMEOUT_PER_CELL = 120  # seconds, as execute.timeout in _config.yml


def read(path: Path):
    """The notebook as myst-nb reads it, so that the cache key (code cells + kernelspec) matches."""
    return read_myst_markdown_notebook(path.read_text(encoding="utf-8"), path=path)


def execute(path: Path):
    notebook = read(path)
    result = single_nb_execution(
        notebook, cwd=str(path.parent), timeout=TIMEOUT_PER_CELL, allow_errors=False, meta_override=True,
        config=ipc_kernels(),
    )
    error = None if result.err is None else result.exc_string
    return path, notebook, result.time, error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at once (default 2)")
    parser.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    chapters = [d for d in toc_documents(ROOT / "_toc.yml") if d.exists() and is_notebook(d)]
    shutil.rmtree(args.cache, ignore_errors=True)
    cache = get_cache(str(args.cache))
    start, failed = time.perf_counter(), []
    with Pool(args.jobs) as pool:
        for path, notebook, seconds, error in pool.imap_unordered(execute, chapters):
            name = path.relative_to(ROOT)
            if error is not None:
                failed.append(name)
                print(f"FAILED   {name} (the build will execute it again and report the error)\n{error}")
                continue
            cache.cache_notebook_bundle(
                CacheBundleIn(notebook, str(path), data={"execution_seconds": seconds}),
                check_validity=False,
                overwrite=True,
            )
            print(f"{seconds:6.1f} s  {name}")
    print(f"{len(chapters) - len(failed)}/{len(chapters)} chapters executed in "
          f"{time.perf_counter() - start:.0f} s with {args.jobs} kernels at a time")
    return 0  # failures surface in the build, with Sphinx's file and line


if __name__ == "__main__":
    sys.exit(main())
