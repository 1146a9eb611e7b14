"""Seeds, threads and device: what every chapter calls once at its top.

Nothing here runs at import time (house style: no side effects at import). Each
function is an explicit call that returns ``None`` or a plain value, so a
chapter cell that calls it prints nothing that changes between runs.

One switch moves every random draw of the book at once: the environment variable
``COMPANION_SEED_OFFSET`` (a non-negative integer, default 0) is added to every
seed that passes through this module, so that ``make test`` can re-run every
chapter on other draws and check that its claims are about the method, not about
one draw. Chapters and companion functions therefore never seed torch, NumPy or
scikit-learn directly: they call :func:`seed_everything`, :func:`generator` or
:func:`offset_seed` with a *logical* seed (0, 1, 2, ...).
"""

from __future__ import annotations

import os
import random

import torch

from ._checks import check_int

__all__ = [
    "SEED_OFFSET_VARIABLE",
    "default_device",
    "generator",
    "offset_seed",
    "seed_everything",
    "seed_offset",
    "setup_chapter",
]

SEED_OFFSET_VARIABLE = "COMPANION_SEED_OFFSET"


def seed_offset() -> int:
    """The offset added to every seed: ``COMPANION_SEED_OFFSET`` from the environment, or 0.

    Raises:
        ValueError: if the variable is set to anything but a non-negative integer.
    """
    raw = os.environ.get(SEED_OFFSET_VARIABLE, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{SEED_OFFSET_VARIABLE} must be a non-negative integer, got {raw!r}")
    return value


def offset_seed(seed: int) -> int:
    """Return the seed actually used for the logical ``seed``: ``seed + seed_offset()``.

    Pass the result to libraries that take a seed of their own, e.g.
    ``train_test_split(..., random_state=offset_seed(0))``.

    Args:
        seed: a non-negative integer.
    """
    return check_int("seed", seed, minimum=0) + seed_offset()


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with :func:`offset_seed` of ``seed``.

    Independent random streams (data, batch order, dropout masks) each get their own
    generator, so that changing one stream leaves the others as they were.
    """
    return torch.Generator(device=device).manual_seed(offset_seed(seed))


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy (if installed) and torch (CPU and CUDA).

    The seed used is :func:`offset_seed` of ``seed`` (``seed`` plus
    ``COMPANION_SEED_OFFSET``).

    Args:
        seed: a non-negative integer.

    Unlike ``torch.manual_seed`` this returns ``None``: a generator object would
    print its memory address into the book and change every run.
    """
    seed = offset_seed(seed)
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:  # numpy is optional for the companion itself
        pass
    else:
        np.random.seed(seed)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    """Return ``cuda`` when a GPU is present, else ``cpu``.

    Chapters move models and data to this device; their conclusions do not
    depend on it (CI runs on the CPU).
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup_chapter(seed: int = 0, *, threads: int = 1) -> None:
    """Make a chapter deterministic and its figures uniform.

    Seeds every generator, pins torch to ``threads`` intra-op threads (one
    thread gives bitwise-identical CPU results run after run; two threads
    differ in the last digits) and sets a readable matplotlib style.

    Args:
        seed: a non-negative integer passed to :func:`seed_everything`.
        threads: number of intra-op threads, ``>= 1``.

    See the chapter "Exploding and vanishing gradients" for the first use.
    """
    threads = check_int("threads", threads, minimum=1)
    seed_everything(seed)
    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import matplotlib as mpl
    except ImportError:
        return
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 4.0),
            "figure.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "svg.hashsalt": "companion",
        }
    )
