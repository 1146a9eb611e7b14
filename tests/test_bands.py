"""companion.bands against numpy's median/min/max and the polygon matplotlib draws."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from companion.bands import band, plot_band


def test_band_matches_numpy():
    table = np.random.default_rng(3).normal(size=(5, 7))  # seeded oracle data, not a book seed
    median, low, high = band(torch.tensor(table))
    np.testing.assert_allclose(median, np.median(table, axis=0))
    np.testing.assert_allclose(low, table.min(0))
    np.testing.assert_allclose(high, table.max(0))


def test_band_ignores_non_finite_entries():
    median, low, high = band([[1.0, math.nan], [3.0, math.inf], [2.0, math.nan]])
    assert median[0] == 2.0 and low[0] == 1.0 and high[0] == 3.0
    assert all(math.isnan(v[1]) for v in (median, low, high))


def test_plot_band_draws_median_and_range():
    fig, ax = plt.subplots()
    plot_band(ax, [[1.0, 4.0], [3.0, 2.0], [2.0, 8.0]], label="a", x=[10, 20], logy=True)
    (line,) = ax.lines
    np.testing.assert_allclose(line.get_xdata(), [10, 20])
    np.testing.assert_allclose(line.get_ydata(), [2.0, 4.0])
    assert line.get_label() == "a (3 seeds)" and ax.get_yscale() == "log"
    ys = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert ys.min() == 1.0 and ys.max() == 8.0
    plt.close(fig)


@pytest.mark.parametrize("bad, match", [([1.0, 2.0], "values must be a non-empty 2-D table"),
                                        ([[]], "values must be a non-empty 2-D table")])
def test_bad_values_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        band(bad)


def test_bad_x_and_alpha_are_named():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="x must have one entry per column"):
        plot_band(ax, [[1.0, 2.0]], label="a", x=[1.0])
    with pytest.raises(ValueError, match="alpha must be in"):
        plot_band(ax, [[1.0, 2.0]], label="a", alpha=0)
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plot_band(object(), [[1.0]], label="a")
    plt.close(fig)
