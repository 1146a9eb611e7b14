"""companion.data: shapes, determinism, leakage-free splits, and the tasks' definitions."""

import pytest
import torch

from companion import data


def test_two_spirals_shapes_balance_and_determinism():
    X, y = data.two_spirals(201, noise=0.0, seed=3)
    assert X.shape == (201, 2) and X.dtype == torch.float32
    assert y.dtype == torch.int64 and set(y.tolist()) == {0, 1}
    assert abs(int((y == 0).sum()) - int((y == 1).sum())) <= 1
    X2, y2 = data.two_spirals(201, noise=0.0, seed=3)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    # Without noise every point lies within the unit disc (radius = theta / max theta).
    assert X.norm(dim=1).max() <= 1.0 + 1e-6
    # The two classes are point reflections of the same spiral: radii have the same distribution.
    assert not torch.equal(data.two_spirals(201, seed=4)[0], X)


def test_adding_problem_target_is_sum_of_marked_values():
    X, y = data.adding_problem(64, 30, seed=1)
    assert X.shape == (64, 30, 2) and y.shape == (64, 1)
    markers = X[:, :, 1]
    assert torch.equal(markers.sum(dim=1), torch.full((64,), 2.0))
    # one marker in each half
    assert torch.equal(markers[:, :15].sum(dim=1), torch.ones(64))
    expected = (X[:, :, 0] * markers).sum(dim=1, keepdim=True)
    torch.testing.assert_close(y, expected)


def test_digits_split_is_stratified_disjoint_and_standardized_on_train():
    split = data.digits(seed=0)
    n_train, n_val, n_test = split.sizes
    assert n_train + n_val + n_test == 1797
    assert abs(n_test - 0.2 * 1797) < 12 and abs(n_val - 0.2 * 1797) < 12
    X_train, y_train = split.train
    assert X_train.shape[1] == 64
    # standardized with training statistics: train mean ~0 per pixel, others not exactly
    assert X_train.mean(dim=0).abs().max() < 1e-5
    for _, y in (split.train, split.val, split.test):
        counts = torch.bincount(y, minlength=10)
        assert counts.min() > 0
    # disjoint: no test image appears in train (digits has a few exact duplicates, so compare rows with their labels)
    train_rows = {tuple(r) + (int(c),) for r, c in zip(X_train.tolist(), y_train.tolist())}
    test_rows = [tuple(r) + (int(c),) for r, c in zip(split.test[0].tolist(), split.test[1].tolist())]
    assert sum(r in train_rows for r in test_rows) < 5


def test_digits_small_training_set_and_images():
    split = data.digits(n_train=100, flatten=False, seed=2)
    assert split.train[0].shape == (100, 1, 8, 8)
    assert split.val[0].shape[1:] == (1, 8, 8)
    raw = data.digits(standardize=False, seed=2)
    assert raw.train[0].min() >= 0 and raw.train[0].max() <= 1


def test_breast_cancer_binary_float_labels():
    split = data.breast_cancer(seed=0)
    X, y = split.train
    assert X.shape[1] == 30 and y.dtype == torch.float32
    assert set(y.unique().tolist()) == {0.0, 1.0}
    assert sum(split.sizes) == 569


def test_diabetes_matches_sklearn_standardized():
    from sklearn.datasets import load_diabetes

    X, y = data.diabetes()
    raw = load_diabetes(scaled=False)
    assert X.shape == (442, 10) and X.dtype == torch.float64
    torch.testing.assert_close(X.mean(0), torch.zeros(10, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(X.std(0), torch.ones(10, dtype=torch.float64))
    assert abs(float(y.mean())) < 1e-9
    assert abs(float(y.std()) - float(raw.target.std(ddof=1))) < 1e-9


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: data.two_spirals(1), "n_samples must be >= 2"),
        (lambda: data.two_spirals(10, noise=-1), "noise must be >= 0"),
        (lambda: data.adding_problem(4, 1), "length must be >= 2"),
        (lambda: data.digits(val_fraction=0.6, test_fraction=0.5), "val_fraction \\+ test_fraction must be < 1"),
        (lambda: data.digits(n_train=5000), "n_train must be <="),
        (lambda: data.digits(seed=-1), "seed must be >= 0"),
        (lambda: data.diabetes(dtype=torch.int64), "dtype must be a floating"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
