"""Execute one or more MyST Markdown chapters the way the book build does, and time them.

Usage: python scripts/run_chapter.py book/part1/01_exploding_vanishing.md [...]

For authors: a fast check of a chapter without building the whole book. Prints
the wall time of each chapter and fails (exit 1) on the first cell error. With
--save DIR, the executed notebooks are written there for inspection.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jupytext
import nbclient


def run(path: Path, timeout: int) -> tuple[float, object]:
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(
        notebook, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start, notebook


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell")
    parser.add_argument("--save", type=Path, help="folder for the executed .ipynb files")
    args = parser.parse_args()
    for path in args.chapters:
        try:
            elapsed, notebook = run(path, args.timeout)
        except nbclient.exceptions.CellExecutionError as error:
            print(f"FAILED {path}\n{error}", file=sys.stderr)
            return 1
        print(f"{elapsed:6.1f} s  {path}")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            jupytext.write(notebook, args.save / (path.stem + ".ipynb"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
