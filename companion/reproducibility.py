"""Seeds, threads and device: what every chapter calls once at its top.

Nothing here runs at import time (house style: no side effects at import). Each
function is an explicit call that returns ``None`` or a plain value, so a
chapter cell that calls it prints nothing that changes between runs.
"""

from __future__ import annotations

import os
import random

import torch

from ._checks import check_int

__all__ = ["default_device", "seed_everything", "setup_chapter"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy (if installed) and torch (CPU and CUDA).

    Args:
        seed: a non-negative integer.

    Unlike ``torch.manual_seed`` this returns ``None``: a generator object would
    print its memory address into the book and change every run.
    """
    seed = check_int("seed", seed, minimum=0)
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
