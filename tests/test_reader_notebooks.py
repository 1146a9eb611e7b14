"""scripts/reader_notebooks.py: a small MyST chapter becomes a plain notebook that runs without myst_nb.

The synthetic chapter below uses every MyST construct the book's chapters use (labels,
glue roles with format specs, ref/numref/cite/math roles, exercises with solutions that
span a code cell, an admonition, a figure caption). It is executed once, as the build
does, converted, and the result is checked as text and by running it in a fresh kernel
where ``import myst_nb`` fails.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import textwrap
from pathlib import Path

import jupytext
import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import reader_notebooks as rn  # noqa: E402

PAGE = "book/partX/01_synthetic"
CHAPTER = textwrap.dedent('''\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
        format_version: 0.13
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---

    (ch-synthetic)=
    # A synthetic chapter

    As shown by {cite}`glorot2010`, see {ref}`the ratio section <sec-synthetic-ratio>`
    and {numref}`fig-synthetic-table`; the identity {math}`a^2 = a \\cdot a` holds.

    ```{code-cell} ipython3
    :tags: [hide-cell]
    from myst_nb import glue
    ```

    (sec-synthetic-ratio)=
    ## The ratio

    :::{note}
    The ratio is {glue:text}`ratio:.1f`, the share {glue:text}`share:.0%`,
    the tiny value {glue:text}`tiny:.1e` and the name {glue:text}`name`.
    :::

    ```python
    # a literal block: {glue:text}`not_a_role` stays as written
    ```

    ```{code-cell} ipython3
    ratio, share, tiny = 12.3456, 0.25, 3.2e-7
    glue("ratio", ratio, display=False)
    glue("share", share, display=False)
    glue("tiny", tiny, display=False)
    glue("name", "He", display=False)
    ```

    ```{code-cell} ipython3
    ---
    mystnb:
      figure:
        caption: The ratio printed, with {glue:text}`ratio:.2f` inside.
        name: fig-synthetic-table
    ---
    print(f"ratio = {ratio:.3f}")
    ```

    ## Exercises

    :::{exercise}
    :label: ex-synthetic-1
    Compute twice the ratio.
    :::

    :::{solution-start} ex-synthetic-1
    :class: dropdown
    :::
    Multiply by two:

    ```{code-cell} ipython3
    print(2 * ratio)
    ```

    The answer is about {glue:text}`ratio:.0f` times two.

    :::{solution-end}
    :::
    ''')
BIB = textwrap.dedent("""\
    @inproceedings{glorot2010,
      author = {Glorot, Xavier and Bengio, Yoshua},
      title  = {Understanding the difficulty of training deep feedforward neural networks},
      year   = {2010},
      url    = {https://proceedings.mlr.press/v9/glorot10a.html}
    }
    """)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """The synthetic chapter executed as the build does (its glue outputs still in it)."""
    source = jupytext.reads(CHAPTER, fmt="myst")
    nbclient.NotebookClient(source, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path_factory.mktemp("run"))}}).execute()
    return source


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> rn.BookIndex:
    bib = tmp_path_factory.mktemp("bib") / "refs.bib"
    bib.write_text(BIB, encoding="utf-8")
    index = rn.BookIndex()
    index.add_notebook(PAGE, jupytext.reads(CHAPTER, fmt="myst"))
    index.add_bibtex(bib)
    return index


@pytest.fixture(scope="module")
def converted(executed: nbformat.NotebookNode, index: rn.BookIndex) -> nbformat.NotebookNode:
    return rn.convert(copy.deepcopy(executed), PAGE, index, version="9.9.9")


def test_values_from_the_published_notebook_and_its_glue_sidecar(executed, index, tmp_path) -> None:
    # myst-nb publishes the notebook without the display=False glue outputs and writes them
    # to <page>.glue.json beside it; the conversion must find them there.
    published = copy.deepcopy(executed)
    sidecar = {}
    for cell in published.cells:
        if cell.cell_type == "code":
            glued = [o for o in cell.outputs if "scrapbook" in o.get("metadata", {})]
            for output in glued:
                prefix = output.metadata.scrapbook.mime_prefix
                sidecar[output.metadata.scrapbook.name] = {
                    "output_type": "display_data", "metadata": {},
                    "data": {k[len(prefix):]: v for k, v in output.data.items()},
                }
            cell.outputs = [o for o in cell.outputs if o not in glued]
    target = tmp_path / "jupyter_execute" / f"{PAGE}.ipynb"
    target.parent.mkdir(parents=True)
    nbformat.write(published, target)
    target.with_suffix(".glue.json").write_text(json.dumps(sidecar), encoding="utf-8")
    notebook, values = rn.executed_from_build(tmp_path, PAGE)
    assert values == {"ratio": "12.3456", "share": "0.25", "tiny": "3.2e-07", "name": "'He'"}
    assert "The ratio is 12.3" in markdown(rn.convert(notebook, PAGE, index, "9.9.9", values))
    with pytest.raises(FileNotFoundError, match="make book"):
        rn.executed_from_build(tmp_path, "book/partX/none")


def markdown(notebook: nbformat.NotebookNode) -> str:
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def test_no_myst_left(converted: nbformat.NotebookNode) -> None:
    assert rn.leftovers(converted) == []
    text = markdown(converted)
    assert "(sec-synthetic-ratio)=" not in text and ":::" not in text
    assert "{glue:text}`not_a_role`" in text  # literal code blocks are left alone


def test_glue_values_written_with_their_format(converted: nbformat.NotebookNode) -> None:
    text = markdown(converted)
    assert "The ratio is 12.3, the share 25%," in text
    assert "the tiny value 3.2e-07 and the name He." in text
    assert "*Figure 1. The ratio printed, with 12.35 inside.*" in text
    assert "The answer is about 12 times two." in text


def test_myst_turned_into_plain_markdown(converted: nbformat.NotebookNode) -> None:
    text = markdown(converted)
    assert "As shown by (Glorot and Bengio, 2010), see [the ratio section](#The-ratio)" in text
    assert "and Figure 1; the identity $a^2 = a \\cdot a$ holds." in text
    assert "> **Note**" in text and "> The ratio is 12.3" in text       # admonition -> quote
    assert "**Exercise 1**" in text
    assert re.search(r"<details><summary><b>Solution to Exercise 1</b></summary>\s+Multiply by two:\s+</details>", text)
    assert "Solution to Exercise 1 (continued)" in text
    assert "https://proceedings.mlr.press/v9/glorot10a.html" in text     # references carry the URL
    solution = [c for c in converted.cells if "solution" in c.metadata.get("tags", [])]
    assert len(solution) == 1 and solution[0].metadata["jupyter"]["source_hidden"] is True


def test_outputs_kept_and_glue_plumbing_gone(converted: nbformat.NotebookNode) -> None:
    code = [cell for cell in converted.cells if cell.cell_type == "code"]
    printed = [o.get("text", "") for cell in code for o in cell.outputs if o.output_type == "stream"]
    assert "ratio = 12.346\n" in printed
    assert not any("scrapbook" in o.get("metadata", {}) for cell in code for o in cell.outputs)
    assert not any(rn.MYST_NB_IMPORT.search(cell.source) for cell in code)
    assert 'BOOK_COMPANION_VERSION = "9.9.9"' in code[0].source


def test_missing_glue_value_is_an_error() -> None:
    notebook = jupytext.reads(CHAPTER, fmt="myst")  # never executed: nothing glued
    with pytest.raises(KeyError, match="ratio:.1f"):
        rn.convert(notebook, PAGE, rn.BookIndex(), version="9.9.9")


@pytest.mark.slow
def test_runs_in_a_fresh_kernel_without_myst_nb(converted, tmp_path, monkeypatch) -> None:
    import companion

    blocker = tmp_path / "blocker" / "myst_nb"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'myst_nb\'")\n')
    monkeypatch.setenv("PYTHONPATH", f"{blocker.parent}{':' + str(ROOT)}")
    notebook = nbformat.from_dict(converted)
    notebook.cells[1].source = notebook.cells[1].source.replace("9.9.9", companion.__version__)
    probe = nbformat.v4.new_code_cell("try:\n    import myst_nb\nexcept ModuleNotFoundError:\n    print('no myst_nb')")
    notebook.cells.insert(2, probe)
    work = tmp_path / "empty"
    work.mkdir()
    nbclient.NotebookClient(notebook, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}}).execute()
    assert notebook.cells[2].outputs[0]["text"] == "no myst_nb\n"
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "ratio = 12.346" in printed and "24.6912" in printed


def test_wrong_companion_version_stops_with_a_message(converted, tmp_path) -> None:
    check = converted.cells[1].source.replace("import companion", "companion = type('Fake', (), {'__version__': '0.0.1'})")
    namespace: dict = {}
    with pytest.raises(RuntimeError, match="companion 0.0.1 is installed; this notebook was written for"):
        exec(check, namespace)
