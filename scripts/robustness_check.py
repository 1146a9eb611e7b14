"""Execute every chapter on other random draws and other float32 kernels: assertions only.

Usage: python scripts/robustness_check.py [--jobs N] [--seed-offset K] [--no-mkl-cbwr]
                                         [--no-cpu-capability] [CHAPTER.md ...]

The book's claims are about methods, not about one random draw on one CPU. This
script re-executes the chapters (all chapters of _toc.yml by default) in a
configuration that differs from the published one in three ways at once:

* ``COMPANION_SEED_OFFSET=K`` (default 1000): every seed that passes through the
  companion's seeding helpers is shifted by K, so every random draw changes
  (initial weights, data samples, splits, batch order, dropout masks, augmentation);
* ``MKL_CBWR=COMPATIBLE``: other BLAS kernels, with the float32 rounding of other CPUs;
* ``ATEN_CPU_CAPABILITY=default``: torch's elementwise kernels without AVX2/AVX-512.

Nothing is compared with the published outputs (the numbers differ by design):
a chapter passes when every cell, assertion cells included, runs without error.
``--no-mkl-cbwr`` / ``--no-cpu-capability`` drop one setting, ``--seed-offset 0``
keeps the published draws, so each setting can be checked on its own. Exit
status 1 if any chapter failed; its failing cell and error are printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import jupytext
import nbclient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from executed_notebooks import ROOT, ipc_kernels, is_notebook, toc_documents  # noqa: E402

TIMEOUT_PER_CELL = 120  # seconds, as execute.timeout in _config.yml


def execute(job: tuple[Path, dict[str, str]]) -> tuple[Path, float, str | None]:
    path, environment = job
    # The kernel inherits this worker's environment: set it before the kernel starts
    # (ATEN_CPU_CAPABILITY and MKL_CBWR are read when torch is imported).
    os.environ.update(environment)
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(
        notebook, timeout=TIMEOUT_PER_CELL, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}}, config=ipc_kernels(),
    )
    start = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        return path, time.perf_counter() - start, str(error)
    return path, time.perf_counter() - start, None


def configuration(args: argparse.Namespace) -> dict[str, str]:
    environment = {"COMPANION_SEED_OFFSET": str(args.seed_offset), "OMP_NUM_THREADS": "1"}
    if not args.no_mkl_cbwr:
        environment["MKL_CBWR"] = "COMPATIBLE"
    if not args.no_cpu_capability:
        environment["ATEN_CPU_CAPABILITY"] = "default"
    return environment


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="default: every chapter of _toc.yml")
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at once (default 2)")
    parser.add_argument("--seed-offset", type=int, default=1000, help="COMPANION_SEED_OFFSET (default 1000)")
    parser.add_argument("--no-mkl-cbwr", action="store_true", help="do not set MKL_CBWR=COMPATIBLE")
    parser.add_argument("--no-cpu-capability", action="store_true", help="do not set ATEN_CPU_CAPABILITY=default")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.seed_offset < 0:
        parser.error(f"--seed-offset must be >= 0, got {args.seed_offset}")
    chapters = args.chapters or [d for d in toc_documents(ROOT / "_toc.yml") if d.exists() and is_notebook(d)]
    chapters = [path.resolve() for path in chapters]
    environment = configuration(args)
    print("configuration: " + " ".join(f"{k}={v}" for k, v in sorted(environment.items())))
    start, failed = time.perf_counter(), []
    with Pool(args.jobs) as pool:
        for path, seconds, error in pool.imap_unordered(execute, [(c, environment) for c in chapters]):
            name = path.relative_to(ROOT)
            if error is None:
                print(f"{seconds:6.1f} s  {name}", flush=True)
            else:
                failed.append(name)
                print(f"FAILED   {name}\n{error}", flush=True)
    total = time.perf_counter() - start
    print(f"{len(chapters) - len(failed)} passed, {len(failed)} failed "
          f"(chapters in the alternate configuration, {total:.0f} s with {args.jobs} kernels at a time)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
