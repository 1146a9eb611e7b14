"""Two plots every chapter draws: a quantity per layer, and curves over training.

Both draw on an ``Axes`` the caller created (so chapters control figure layout),
label the axes, add a legend and return ``None`` (nothing for a notebook to print).

See the chapter "Exploding and vanishing gradients" for the first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

__all__ = ["plot_curves", "plot_layer_norms"]


def _as_array(name: str, values: Sequence[float] | torch.Tensor) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"curve {name!r} must be 1-D, got shape {arr.shape}")
    return arr


def _check(ax: object, curves: object) -> None:
    if not hasattr(ax, "plot") or not hasattr(ax, "set_yscale"):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty dict {label: values}")


def _draw(ax, curves, *, xlabel, ylabel, logy, start, marker) -> None:
    _check(ax, curves)
    if not isinstance(logy, bool):
        raise TypeError(f"logy must be a bool, got {type(logy).__name__}")
    for label, values in curves.items():
        y = _as_array(str(label), values)
        x = np.arange(start, start + len(y))
        ax.plot(x, y, marker=marker, markersize=3, label=str(label))
    if logy:
        # Non-positive values (an exactly-zero gradient) cannot be shown on a log axis;
        # matplotlib masks them rather than failing.
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()


def plot_layer_norms(
    ax,
    curves: Mapping[str, Sequence[float] | torch.Tensor],
    *,
    ylabel: str = "gradient norm",
    xlabel: str = "layer",
    logy: bool = True,
    start: int = 1,
) -> None:
    """Plot one quantity per layer (e.g. :math:`g_\\ell`) for several configurations.

    Layer :math:`\\ell` is drawn at x = ``start + index``: with the default ``start=1``
    the first entry is layer 1 (the input side), as in the book's notation. The y axis
    is logarithmic by default, because gradients that explode or vanish change
    geometrically with depth and show up as straight lines there.

    Args:
        ax: a matplotlib ``Axes``.
        curves: ``{label: values}``, each a 1-D sequence or tensor (any device).
        ylabel: y-axis label.
        xlabel: x-axis label.
        logy: logarithmic y axis.
        start: x value of the first entry (use 0 for time steps starting at 0).
    """
    _draw(ax, curves, xlabel=xlabel, ylabel=ylabel, logy=logy, start=start, marker="o")


def plot_curves(
    ax,
    curves: Mapping[str, Sequence[float] | torch.Tensor],
    *,
    xlabel: str = "epoch",
    ylabel: str = "loss",
    logy: bool = False,
    start: int = 1,
) -> None:
    """Plot training curves (loss, accuracy, norm...) against epochs or steps.

    Args:
        ax: a matplotlib ``Axes``.
        curves: ``{label: values}``, each a 1-D sequence or tensor; curves may differ in
            length (a diverged run stops early).
        xlabel: x-axis label.
        ylabel: y-axis label.
        logy: logarithmic y axis.
        start: x value of the first entry (1: the first epoch is epoch 1).
    """
    _draw(ax, curves, xlabel=xlabel, ylabel=ylabel, logy=logy, start=start, marker=None)
