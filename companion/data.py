"""Seeded synthetic data and offline real data sets (no downloads, ever).

Synthetic sets are generated from a seed; real ones ship inside scikit-learn
(``load_digits``, ``load_diabetes``, ``load_breast_cancer``), so every chapter
runs without a network. Splits are stratified where labels are classes and are
standardized with statistics of the training part only (no leakage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._checks import check_int, check_nonnegative, check_positive, check_probability
from .reproducibility import generator

__all__ = [
    "DataSplit",
    "adding_problem",
    "breast_cancer",
    "diabetes",
    "digits",
    "two_spirals",
]

Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DataSplit:
    """Train, validation and test parts, each a pair ``(X, y)`` of tensors."""

    train: Pair
    val: Pair
    test: Pair

    def to(self, device: torch.device | str) -> DataSplit:
        """Return a copy with every tensor moved to ``device``."""
        return DataSplit(*[(X.to(device), y.to(device)) for X, y in (self.train, self.val, self.test)])

    @property
    def sizes(self) -> tuple[int, int, int]:
        """Number of examples in (train, val, test)."""
        return tuple(len(part[1]) for part in (self.train, self.val, self.test))


def _generator(seed: int) -> torch.Generator:
    return generator(seed)


def two_spirals(
    n_samples: int, *, noise: float = 0.1, turns: float = 1.5, seed: int = 0
) -> Pair:
    """Two interleaved spirals, a classic task that a linear model cannot solve.

    Point :math:`i` of class :math:`c \\in \\{0, 1\\}` lies at angle
    :math:`\\theta_i = 2\\pi\\,\\mathrm{turns}\\,\\sqrt{u_i}` and radius
    :math:`r_i = \\theta_i / (2\\pi\\,\\mathrm{turns})`, rotated by :math:`\\pi c`,
    plus Gaussian noise of standard deviation ``noise``.

    Args:
        n_samples: total number of points (>= 2); the classes differ by at most one.
        noise: standard deviation of the added noise (>= 0).
        turns: number of turns of each spiral (> 0).
        seed: seed of the private generator (the global RNG is untouched).

    Returns:
        ``X`` float32 of shape ``[n, 2]`` and ``y`` int64 of shape ``[n]``.
    """
    n_samples = check_int("n_samples", n_samples, minimum=2)
    noise = check_nonnegative("noise", noise)
    turns = check_positive("turns", turns)
    gen = _generator(seed)
    y = torch.arange(n_samples) % 2
    theta = 2 * math.pi * turns * torch.rand(n_samples, generator=gen).sqrt()
    radius = theta / (2 * math.pi * turns)
    angle = theta + math.pi * y
    X = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    X = X + noise * torch.randn(n_samples, 2, generator=gen)
    return X.float(), y.long()


def adding_problem(n_samples: int, length: int, *, seed: int = 0) -> Pair:
    """The adding problem of Hochreiter & Schmidhuber (1997), a long-range memory task.

    Each sequence has ``length`` steps with two channels: a value drawn from
    :math:`U[0, 1]` and a marker that is 1 at exactly two positions (one in each
    half of the sequence) and 0 elsewhere. The target is the sum of the two
    marked values, so the loss at the last step depends on inputs up to
    ``length`` steps back. Predicting the mean (1.0) gives an MSE of about 1/6.

    Args:
        n_samples: number of sequences (>= 1).
        length: number of time steps (>= 2).
        seed: seed of the private generator.

    Returns:
        ``X`` float32 ``[n, length, 2]`` and ``y`` float32 ``[n, 1]``.
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    length = check_int("length", length, minimum=2)
    gen = _generator(seed)
    values = torch.rand(n_samples, length, generator=gen)
    half = length // 2
    first = torch.randint(0, half, (n_samples,), generator=gen)
    second = torch.randint(half, length, (n_samples,), generator=gen)
    markers = torch.zeros(n_samples, length)
    rows = torch.arange(n_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = torch.stack([values, markers], dim=2)
    y = (values[rows, first] + values[rows, second]).unsqueeze(1)
    return X.float(), y.float()


def _split_indices(
    y: torch.Tensor, val_fraction: float, test_fraction: float, seed: int, stratify: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shuffle (per class when ``stratify``) and cut into train/val/test indices."""
    gen = _generator(seed)
    groups = [torch.nonzero(y == c).flatten() for c in torch.unique(y)] if stratify else [torch.arange(len(y))]
    parts: list[list[torch.Tensor]] = [[], [], []]
    for idx in groups:
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_test = round(test_fraction * len(idx))
        n_val = round(val_fraction * len(idx))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    # A final shuffle so that classes are interleaved inside each part.
    return tuple(torch.cat(p)[torch.randperm(sum(len(q) for q in p), generator=gen)] for p in parts)


def _standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Centre and scale every tensor with the training part's per-feature statistics."""
    dims = 0
    mean = train.mean(dim=dims, keepdim=True)
    std = train.std(dim=dims, keepdim=True)
    std = torch.where(std > 0, std, torch.ones_like(std))  # constant pixels stay 0
    return [(t - mean) / std for t in (train, *others)]


def _check_fractions(val_fraction: float, test_fraction: float) -> tuple[float, float]:
    val_fraction = check_probability("val_fraction", val_fraction)
    test_fraction = check_probability("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}"
        )
    return val_fraction, test_fraction


def digits(
    *,
    n_train: int | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    standardize: bool = True,
    flatten: bool = True,
) -> DataSplit:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), split and tensorised.

    Pixels (0..16) are first scaled to [0, 1]. The split is stratified by class.
    ``n_train`` keeps only the first ``n_train`` training examples (after
    shuffling), the way to provoke overfitting on a small training set; the
    validation and test parts keep their full size.

    Args:
        n_train: size of the training part, or ``None`` for all of it (>= 10).
        val_fraction, test_fraction: fractions of the whole set (sum < 1).
        seed: seed of the split.
        standardize: centre and scale each pixel with training statistics.
        flatten: ``X`` as ``[n, 64]`` (True) or images ``[n, 1, 8, 8]`` (False).

    Returns:
        A :class:`DataSplit`; ``X`` float32, ``y`` int64 in ``0..9``.
    """
    from sklearn.datasets import load_digits

    val_fraction, test_fraction = _check_fractions(val_fraction, test_fraction)
    bunch = load_digits()
    X = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    train_idx, val_idx, test_idx = _split_indices(y, val_fraction, test_fraction, seed, stratify=True)
    if n_train is not None:
        n_train = check_int("n_train", n_train, minimum=10)
        if n_train > len(train_idx):
            raise ValueError(f"n_train must be <= {len(train_idx)} (the training part), got {n_train}")
        train_idx = train_idx[:n_train]
    parts = [X[train_idx], X[val_idx], X[test_idx]]
    if standardize:
        parts = _standardize(*parts)
    if not flatten:
        parts = [p.reshape(-1, 1, 8, 8) for p in parts]
    labels = [y[train_idx], y[val_idx], y[test_idx]]
    return DataSplit(*zip(parts, labels))


def breast_cancer(
    *, val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0, standardize: bool = True
) -> DataSplit:
    """scikit-learn's Wisconsin breast-cancer set (569 examples, 30 features, binary).

    Returns:
        A :class:`DataSplit`; ``X`` float32 ``[n, 30]``, ``y`` float32 ``[n]`` in
        ``{0., 1.}`` (float, as ``BCEWithLogitsLoss`` expects; 1 = benign).
    """
    from sklearn.datasets import load_breast_cancer

    val_fraction, test_fraction = _check_fractions(val_fraction, test_fraction)
    bunch = load_breast_cancer()
    X = torch.tensor(bunch.data, dtype=torch.float32)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    idx = _split_indices(y, val_fraction, test_fraction, seed, stratify=True)
    parts = [X[i] for i in idx]
    if standardize:
        parts = _standardize(*parts)
    return DataSplit(*[(p, y[i].float()) for p, i in zip(parts, idx)])


def diabetes(*, standardize: bool = True, dtype: torch.dtype = torch.float64) -> Pair:
    """scikit-learn's diabetes regression set (442 patients, 10 features).

    With ``standardize`` the features are centred and scaled to unit variance
    and the target is centred, so a model without intercept is appropriate
    (scikit-learn's ``Ridge(fit_intercept=False)`` / ``Lasso(fit_intercept=False)``).

    Returns:
        ``X`` ``[442, 10]`` and ``y`` ``[442]`` in ``dtype``.
    """
    from sklearn.datasets import load_diabetes

    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    bunch = load_diabetes(scaled=False)
    X = torch.tensor(bunch.data, dtype=dtype)
    y = torch.tensor(bunch.target, dtype=dtype)
    if standardize:
        X = (X - X.mean(0)) / X.std(0)
        y = y - y.mean()
    return X, y
