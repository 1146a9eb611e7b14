"""scripts/build_key.py and scripts/build_wheel.py: the build's cache key and the companion wheel."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_key  # noqa: E402
import build_wheel  # noqa: E402


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A miniature repository with one file in each place the key covers."""
    for name in ["_config.yml", "_toc.yml", "requirements.txt", "pyproject.toml",
                 "book/part1/01_x.md", "companion/__init__.py", "scripts/s.py"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}\n")
    return tmp_path


def test_key_changes_with_every_source_and_the_seed_offset(tree: Path) -> None:
    base = build_key.build_key(tree, environment={})
    assert build_key.build_key(tree, environment={}) == base          # deterministic
    for name in ["book/part1/01_x.md", "companion/__init__.py", "requirements.txt", "_config.yml", "scripts/s.py"]:
        original = (tree / name).read_text()
        (tree / name).write_text(original + "# edited\n")
        assert build_key.build_key(tree, environment={}) != base, name
        (tree / name).write_text(original)
    assert build_key.build_key(tree, environment={"COMPANION_SEED_OFFSET": "1000"}) != base
    (tree / "book" / "new.md").write_text("x")                          # a new file counts too
    assert build_key.build_key(tree, environment={}) != base


def test_key_ignores_caches(tree: Path) -> None:
    base = build_key.build_key(tree, environment={})
    (tree / "companion" / "__pycache__").mkdir()
    (tree / "companion" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (tree / "_build").mkdir()
    (tree / "_build" / "anything").write_text("x")
    assert build_key.build_key(tree, environment={}) == base


def test_version_is_read_from_the_package() -> None:
    import companion

    assert build_wheel.companion_version() == companion.__version__
    assert build_wheel.wheel_name() == f"gradreg_companion-{companion.__version__}-py3-none-any.whl"


@pytest.mark.slow
def test_wheel_metadata(tmp_path: Path) -> None:
    import companion

    wheel = build_wheel.build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"gradreg_companion-{companion.__version__}.dist-info/METADATA").decode()
    assert "companion/__init__.py" in names and "companion/penalties.py" in names
    assert "Name: gradreg-companion" in metadata and f"Version: {companion.__version__}" in metadata
    assert "Requires-Python: >=3.11" in metadata
    assert "Requires-Dist: torch<2.14,>=2.13" in metadata
    assert not any(name.startswith("tests/") for name in names)
