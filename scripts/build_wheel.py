"""Build the companion's wheel (distribution ``gradreg-companion``) into ``_build/wheel/``.

Usage: python scripts/build_wheel.py [--dest DIR]

The wheel is built from a copy of ``pyproject.toml``, ``README.md`` and ``companion/`` in a
temporary folder, so the repository gets no ``build/`` folder, and without build isolation
(setuptools from the lock in requirements.txt), so no network is needed. Older wheels in
DEST are removed. Used by ``make wheel`` and by the site extension ``book/_ext/companion_wheel.py``,
which offers the wheel on the API appendix page. Prints the wheel's path.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "gradreg_companion"  # the wheel's file-name form of gradreg-companion


def companion_version(root: Path = ROOT) -> str:
    """``__version__`` of ``companion/__init__.py``, read without importing the package (nor torch)."""
    tree = ast.parse((root / "companion" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError("companion/__init__.py has no __version__ = '...' line")


def wheel_name(version: str | None = None) -> str:
    """The wheel's file name, e.g. ``gradreg_companion-0.1.0-py3-none-any.whl``."""
    return f"{DISTRIBUTION}-{version or companion_version()}-py3-none-any.whl"


def build_wheel(dest: Path = ROOT / "_build" / "wheel") -> Path:
    """Build the wheel into ``dest`` and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob(f"{DISTRIBUTION}-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "src"
        source.mkdir()
        shutil.copy2(ROOT / "pyproject.toml", source)
        shutil.copy2(ROOT / "README.md", source)
        shutil.copytree(ROOT / "companion", source / "companion",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
             "--wheel-dir", str(dest), str(source)],
            check=True, cwd=work,
        )
    wheel = dest / wheel_name()
    if not wheel.is_file():
        raise RuntimeError(f"pip wheel did not produce {wheel}")
    return wheel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=ROOT / "_build" / "wheel")
    args = parser.parse_args()
    print(build_wheel(args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
