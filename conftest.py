"""pytest configuration shared by the unit tests and the notebook run.

The notebook run (`make test`) re-executes with strict nbval every notebook that
the book build executed (`_build/jupyter_execute/**.ipynb`). myst-nb moves the
values a chapter `glue`s into the prose out of the notebook and into a sidecar
file `<chapter>.glue.json`, so a plain nbval run would see them as unexpected
outputs. Here each glued value produced by the re-execution is compared with
the value the site shows (from that sidecar file): the numbers in the prose
must reproduce exactly, like every other text output.
"""

from __future__ import annotations

import json
from pathlib import Path

GLUE_PREFIX = "application/papermill.record/"

try:
    from nbval.plugin import IPyNbCell
except ImportError:  # nbval absent: unit tests only
    IPyNbCell = None


def _glued_values(notebook_path: Path) -> dict[str, dict]:
    sidecar = notebook_path.with_suffix(".glue.json")
    if not sidecar.exists():
        return {}
    return json.loads(sidecar.read_text(encoding="utf-8"))


if IPyNbCell is not None:
    _compare_outputs = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        glued = _glued_values(Path(str(self.fspath)))
        remaining = []
        for output in test:
            records = {k: v for k, v in output.get("data", {}).items() if k.startswith(GLUE_PREFIX)}
            if not records:
                remaining.append(output)
                continue
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            published = glued.get(name, {}).get("data", {})
            for mime, value in records.items():
                plain_mime = mime[len(GLUE_PREFIX):]
                if plain_mime in ("image/png", "image/jpeg"):
                    continue  # images are not compared, as nbval does by default
                if name not in glued or self.sanitize(published.get(plain_mime)) != self.sanitize(value):
                    self.comparison_traceback = [
                        f"glued value {name!r} ({plain_mime}) differs from the published one:\n"
                        f"  published: {published.get(plain_mime)!r}\n  re-executed: {value!r}"
                    ]
                    return False
        return _compare_outputs(self, remaining, ref, skip_compare)

    IPyNbCell.compare_outputs = compare_outputs
