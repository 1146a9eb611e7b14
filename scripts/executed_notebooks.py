"""List the executed notebook of every chapter in _toc.yml; fail if one is missing.

Usage: python scripts/executed_notebooks.py [BUILD_DIR]

Used by `make test`: the printed paths are handed to strict nbval, so every
chapter the site publishes is re-executed and its text outputs compared with
what the site shows. A chapter with code cells that the build did not execute, or whose
published notebook has a code cell that was never run,
is an error, never a silent skip.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import sys
import tempfile
from pathlib import Path

from sphinx_external_toc.api import FileItem, GlobItem
from sphinx_external_toc.parsing import parse_toc_yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_documents(toc_path: Path) -> list[Path]:
    """Every document of the TOC, globs expanded, in reading order."""
    site_map = parse_toc_yaml(toc_path)
    documents: list[Path] = []

    # The site map does not expand globs itself: walk its entries in order.
    def walk(docname: str) -> None:
        documents.append(ROOT / f"{docname}.md")
        for subtree in site_map[docname].subtrees:
            for item in subtree.items:
                if isinstance(item, GlobItem):  # a str subclass: test it first
                    for path in sorted(ROOT.glob(f"{item}.md")):
                        documents.append(path)
                elif isinstance(item, FileItem):
                    walk(item)
    walk(site_map.root.docname)
    return documents


@functools.cache
def _ipc_folder() -> Path:
    """This process's folder for kernel socket files, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="kernel-ipc-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def ipc_kernels():
    """Configuration for nbclient: kernels talk over IPC sockets (files), not TCP ports.

    With TCP, jupyter_client picks each kernel's ports by binding port 0 and releasing it;
    two processes that start kernels at the same moment (a pool of two workers) can be given
    the same port, and one kernel then dies with "Address already in use". IPC sockets live
    in a folder of this process's own, where jupyter_client numbers them 1, 2, ... past the
    files that exist, so no two kernels share a name.
    """
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(_ipc_folder() / "kernel")
    return config


def is_notebook(path: Path) -> bool:
    return "```{code-cell}" in path.read_text(encoding="utf-8")


def unexecuted_cells(notebook_path: Path) -> int:
    """Number of code cells of a published notebook that carry no execution count."""
    notebook = json.loads(notebook_path.read_text(encoding="utf-8"))
    return sum(
        1 for cell in notebook["cells"]
        if cell["cell_type"] == "code" and cell.get("execution_count") is None
    )


def main() -> int:
    build = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build"
    missing, found = [], []
    for document in toc_documents(ROOT / "_toc.yml"):
        if not document.exists():
            missing.append(f"{document.relative_to(ROOT)} (listed in _toc.yml, no such file)")
            continue
        if not is_notebook(document):
            continue
        executed = build / "jupyter_execute" / document.relative_to(ROOT).with_suffix(".ipynb")
        if executed.exists():
            unrun = unexecuted_cells(executed)
            if unrun:
                # nbval compares nothing in a cell that was never run: that would pass vacuously.
                missing.append(f"{executed} has {unrun} code cell(s) without outputs from an execution")
            found.append(executed)
        else:
            missing.append(f"{document.relative_to(ROOT)} (no executed notebook at {executed})")
    if missing:
        print("Chapters in _toc.yml that the build did not execute:", *missing, sep="\n  ", file=sys.stderr)
        return 1
    if not found:
        print("No executed chapter found: nothing would be tested.", file=sys.stderr)
        return 1
    print("\n".join(str(path) for path in found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
