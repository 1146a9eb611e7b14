"""companion: the tested toolkit behind the book.

Each module is named after one concept and is imported on first use, so
``import companion`` is cheap and has no side effects::

    import companion
    companion.setup_chapter(seed=0)
    loss = loss + companion.penalties.l2_penalty(model.parameters(), strength=1e-3)

See the appendix "Companion API" for every public function.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .reproducibility import default_device, generator, offset_seed, seed_everything, setup_chapter

__version__ = "0.1.0"

# The concept modules; each is imported lazily by ``__getattr__`` below.
_MODULES = (
    "augment",
    "bands",
    "constraints",
    "data",
    "diagnostics",
    "distributed",
    "dropout",
    "ensemble",
    "hooks",
    "initialization",
    "linear",
    "models",
    "penalties",
    "penalty_probe",
    "plotting",
    "proximal",
    "recurrent",
    "remedies",
    "reproducibility",
    "scratch",
    "training",
    "trials",
)

__all__ = [*_MODULES, "default_device", "generator", "offset_seed", "seed_everything", "setup_chapter"]


def __getattr__(name: str) -> ModuleType:
    if name in _MODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'companion' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
