"""The build's key: one hash of everything a build of the book depends on.

Usage: python scripts/build_key.py            print the key of the current sources
       python scripts/build_key.py --check    exit 0 if _build/book.key holds that key
       python scripts/build_key.py --write    store the key in _build/book.key

``make book`` skips the build when ``--check`` succeeds, so ``make test`` right after
``make book`` reuses the site, the executed notebooks and the jupyter-cache instead of
executing every chapter a second time (nbval and the robustness check still execute them).
``make book`` writes the key only after a build that succeeded; ``FORCE=1 make book``
rebuilds anyway.

The key is the sha256 of the relative path and content of every file that can change the
built site: the TOC and config, every file under ``book/`` (chapters, data, bibliography,
site extensions and static files), the Chinese edition's catalogues, the ``companion`` package, the lock and
``pyproject.toml``, and the scripts the build runs; plus the environment variables that
change what the chapters compute.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY_FILE = ROOT / "_build" / "book.key"
FILES = ["_config.yml", "_toc.yml", "requirements.txt", "pyproject.toml", "README.md", "Makefile"]
FOLDERS = ["book", "companion", "scripts", "locales"]
SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
# Read by the chapters or by torch/BLAS when the book executes (the build runs one thread).
ENVIRONMENT = ["COMPANION_SEED_OFFSET", "MKL_CBWR", "ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS", "PYTHONHASHSEED"]


def source_files(root: Path = ROOT) -> list[Path]:
    """Every file the key covers, sorted."""
    files = [root / name for name in FILES if (root / name).is_file()]
    for folder in FOLDERS:
        files += [
            path for path in (root / folder).rglob("*")
            if path.is_file() and not SKIPPED_PARTS & set(path.relative_to(root).parts) and path.suffix != ".pyc"
        ]
    return sorted(set(files))


def build_key(root: Path = ROOT, environment: dict[str, str] | None = None) -> str:
    """The sha256 (hex) of the sources' paths and contents and of the relevant environment."""
    environment = os.environ if environment is None else environment
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for name in ENVIRONMENT:
        digest.update(f"{name}={environment.get(name, '')}\0".encode())
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 0 if the stored key matches, 1 if not")
    group.add_argument("--write", action="store_true", help="store the key in _build/book.key")
    parser.add_argument("--key-file", type=Path, default=KEY_FILE)
    args = parser.parse_args()
    key = build_key()
    if args.check:
        stored = args.key_file.read_text().strip() if args.key_file.is_file() else ""
        return 0 if stored == key and (ROOT / "_build" / "html").is_dir() else 1
    if args.write:
        args.key_file.parent.mkdir(parents=True, exist_ok=True)
        args.key_file.write_text(key + "\n")
    print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
