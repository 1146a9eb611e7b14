"""Argument validation shared by every companion module.

Every public function validates its arguments up front and raises an error that
names the argument, shows the bad value and says what is allowed, e.g.
``ValueError: strength must be >= 0, got -0.1``. These helpers keep those
messages uniform across the package.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Real
from typing import Any

import torch

__all__ = [
    "check_choice",
    "check_int",
    "check_nonnegative",
    "check_positive",
    "check_probability",
    "check_real",
    "as_tensor_list",
    "check_items",
]


def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a finite float, or raise ``TypeError``/``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (Real, torch.Tensor)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_nonnegative(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking ``value >= 0``."""
    value = check_real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking ``value > 0``."""
    value = check_real(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def check_probability(name: str, value: Any, *, inclusive_high: bool = True) -> float:
    """Return ``value`` as a float in ``[0, 1]`` (or ``[0, 1)`` if ``inclusive_high`` is False)."""
    value = check_real(name, value)
    high_ok = value <= 1 if inclusive_high else value < 1
    if value < 0 or not high_ok:
        interval = "[0, 1]" if inclusive_high else "[0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int after checking its type and ``value >= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` (lower-cased) if it is one of ``choices``; else name them all."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {list(choices)}, got {type(value).__name__}")
    key = value.lower()
    if key not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return key


def as_tensor_list(name: str, params: torch.Tensor | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """Turn a tensor or an iterable of tensors (a generator too) into a non-empty list, once."""
    if isinstance(params, torch.Tensor):
        tensors = [params]
    else:
        try:
            tensors = list(params)
        except TypeError:
            raise TypeError(
                f"{name} must be a tensor or an iterable of tensors, got {type(params).__name__}"
            ) from None
    return check_items(name, tensors, torch.Tensor, "tensor")


def check_items(name: str, values: Iterable[Any], kind: type, what: str, *, hint: str = "") -> list:
    """Return ``values`` as a non-empty list whose items are all ``kind`` (called ``what``)."""
    items = list(values)
    if not items:
        raise ValueError(f"{name} must contain at least one {what}, got an empty sequence")
    for i, value in enumerate(items):
        if not isinstance(value, kind):
            raise TypeError(f"{name}[{i}] must be a {what}, got {type(value).__name__}{hint}")
    return items
