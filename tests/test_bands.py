"""companion.bands against numpy's median/min/max and the polygon matplotlib draws."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from companion.bands import band, plot_band, plot_bands


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


def test_plot_bands_draws_one_labelled_band_per_entry():
    fig, ax = plt.subplots()
    tables = {"a": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([[5.0, 6.0], [7.0, 8.0], [9.0, 1.0]])}
    plot_bands(ax, tables, x=[10, 20], logy=True, xlabel="depth", ylabel="ratio")
    assert [line.get_label() for line in ax.get_lines()] == ["a (2 seeds)", "b (3 seeds)"]
    assert list(ax.get_lines()[0].get_xdata()) == [10, 20] and list(ax.get_lines()[1].get_ydata()) == [7.0, 6.0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "depth" and ax.get_ylabel() == "ratio"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a (2 seeds)", "b (3 seeds)"]
    with pytest.raises(ValueError, match="bands must hold at least one"):
        plot_bands(ax, {})
    plt.close(fig)
