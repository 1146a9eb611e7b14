"""Tests for companion.plotting on the non-interactive Agg backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from companion.plotting import plot_curves, plot_layer_norms  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_plot_layer_norms(ax):
    result = plot_layer_norms(ax, {"sigmoid": [1e-6, 1e-3, 1.0], "relu": torch.tensor([1.0, 2.0, 3.0])})
    assert result is None
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "layer" and ax.get_ylabel() == "gradient norm"
    lines = ax.get_lines()
    assert [l.get_label() for l in lines] == ["sigmoid", "relu"]
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3])  # layer 1 first
    np.testing.assert_allclose(lines[1].get_ydata(), [1.0, 2.0, 3.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sigmoid", "relu"]


def test_plot_curves(ax):
    plot_curves(ax, {"train": [3.0, 2.0, 1.0], "val": [3.5, 2.5]}, ylabel="MSE", start=0)
    assert ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "MSE"
    lines = ax.get_lines()
    assert len(lines) == 2 and len(lines[1].get_xdata()) == 2
    np.testing.assert_array_equal(lines[0].get_xdata(), [0, 1, 2])
    assert ax.get_legend() is not None


def test_plot_curves_log_and_nonfinite(ax):
    plot_curves(ax, {"diverged": [1.0, 10.0, float("inf"), float("nan")]}, logy=True, xlabel="step")
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step"


def test_bad_inputs(ax):
    with pytest.raises(ValueError, match="curves"):
        plot_layer_norms(ax, {})
    with pytest.raises(TypeError, match="ax"):
        plot_curves("not an axes", {"a": [1.0]})
    with pytest.raises(ValueError, match="1-D"):
        plot_layer_norms(ax, {"a": [[1.0, 2.0]]})
    with pytest.raises(TypeError, match="logy"):
        plot_curves(ax, {"a": [1.0]}, logy="yes")
