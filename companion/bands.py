"""Plot a quantity measured under several seeds: the median and the min-max band.

A claim about a method is measured over several random draws; its figure shows the
spread across them, not one draw. :func:`plot_band` draws, for each x, the median of
the per-seed values as a line and the range from the smallest to the largest as a
shaded band of the same colour.

See the chapters of Part III ("Initialization", "Activations", "Normalization layers",
"Residual connections").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

__all__ = ["plot_band", "plot_bands", "band"]


def band(values: Sequence[Sequence[float]] | torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column median, minimum and maximum of a (seeds x points) table.

    .. math:: \\mathrm{med}_j = \\operatorname{median}_k v_{kj},\\quad
              \\mathrm{lo}_j = \\min_k v_{kj},\\quad \\mathrm{hi}_j = \\max_k v_{kj}

    Non-finite entries (a diverged seed) are ignored column by column; a column with
    no finite entry gives NaN.

    Args:
        values: one row per seed, one column per point (layer, step, depth...), at least one row.

    Returns:
        ``(median, low, high)`` as 1-D float64 arrays.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    table = np.asarray(values, dtype=float)
    if table.ndim != 2 or table.shape[0] < 1 or table.shape[1] < 1:
        raise ValueError(f"values must be a non-empty 2-D table (seeds x points), got shape {table.shape}")
    masked = np.where(np.isfinite(table), table, np.nan)
    empty = np.all(np.isnan(masked), axis=0)
    filled = np.where(empty[None, :], 0.0, masked)  # avoid numpy's all-NaN warning; restored below
    median, low, high = (np.where(empty, np.nan, f(filled, axis=0)) for f in (np.nanmedian, np.nanmin, np.nanmax))
    return median, low, high


def plot_band(
    ax,
    values: Sequence[Sequence[float]] | torch.Tensor,
    *,
    label: str,
    x: Sequence[float] | None = None,
    logy: bool = False,
    alpha: float = 0.25,
) -> None:
    """Draw the median across seeds as a line and the min-max range as a band.

    Args:
        ax: a matplotlib ``Axes``.
        values: one row per seed, one column per x (see :func:`band`).
        label: legend label, with the number of seeds appended (``"He (5 seeds)"``).
        x: positions of the columns (default ``1, 2, ...``: layer 1 first).
        logy: log-scale the y axis.
        alpha: opacity of the band, in (0, 1].

    Returns:
        ``None``.
    """
    if not hasattr(ax, "plot") or not hasattr(ax, "fill_between"):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    median, low, high = band(values)
    xs = np.arange(1, len(median) + 1) if x is None else np.asarray(x, dtype=float)
    if xs.shape != median.shape:
        raise ValueError(f"x must have one entry per column ({len(median)}), got {len(xs)}")
    seeds = len(values)
    (line,) = ax.plot(xs, median, marker="o", markersize=3, label=f"{label} ({seeds} seeds)")
    ax.fill_between(xs, low, high, color=line.get_color(), alpha=alpha, linewidth=0)
    if logy:
        ax.set_yscale("log")


def plot_bands(
    ax,
    bands: Mapping[str, Sequence[Sequence[float]] | torch.Tensor],
    *,
    x: Sequence[float] | None = None,
    logy: bool = False,
    xlabel: str = "layer",
    ylabel: str = "",
    legend: bool = True,
) -> None:
    """One :func:`plot_band` per entry of ``bands`` on ``ax``, labelled axes and (optionally) a legend.

    Args:
        ax: a matplotlib ``Axes``.
        bands: legend label -> a (seeds x points) table, drawn in this order.
        x: positions of the columns, shared by every table (default ``1, 2, ...``).
        logy: log-scale the y axis.
        xlabel, ylabel: axis labels.
        legend: draw the legend (False for all but one panel of a figure that shares it).

    Returns:
        ``None``.
    """
    if not bands:
        raise ValueError("bands must hold at least one (label -> values) entry, got none")
    for label, values in bands.items():
        plot_band(ax, values, label=label, x=x, logy=logy)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend()

