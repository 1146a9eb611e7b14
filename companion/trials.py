"""One training configuration under several seeds: per-seed scores and their spread.

A claim about a regularizer ("dropout lowers the test loss", "noise augmentation
narrows the gap") is a claim about the method, so it must hold for more than one
random draw of the initial weights, dropout masks and augmentations. This module
trains one configuration (a model factory, full-batch Adam, an optional L1/L2
penalty, an optional augmentation, optional early stopping) under several seeds
*together*, as a stacked :mod:`companion.ensemble` evaluated with ``torch.vmap``,
and returns typed per-seed results with their spread across seeds::

    trials = run_trials(lambda: companion.models.mlp(64, 10, depth=2, width=128),
                        data, seeds=range(5), epochs=100)
    trials.test_acc.min, trials.test_acc.max   # the range across the five seeds
    trials.runs[0].history.val_loss            # seed 0's validation loss per epoch

Member k is seeded with ``seed_everything(seeds[k])`` before the factory builds it
(so its initial weights are those of a single run with that seed) and, being an
independent slice of every stacked tensor, follows the trajectory a single run
would follow (tested against a hand-written loop). Randomness *inside* training
differs from a single run: dropout masks come from torch's global generator
(``vmap(..., randomness="different")``, one independent mask per member), and
augmentations from one ``companion.generator(seeds[k])`` per member.

See the chapters of Part IV ("Dropout, done right" and the three after it).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_int, check_nonnegative, check_positive
from .ensemble import Ensemble, build
from .reproducibility import generator

__all__ = ["SeedResult", "Spread", "TrialHistory", "Trials", "run_trials"]

Pair = tuple[torch.Tensor, torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
_SCORES = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")


@dataclass(frozen=True)
class Spread:
    """One quantity measured once per seed, and what holds across the seeds.

    Attributes:
        values: the per-seed values, in the order of the seeds.
    """

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        """Arithmetic mean :math:`\\frac1K\\sum_k v_k`."""
        return statistics.fmean(self.values)

    @property
    def median(self) -> float:
        """Median of the values (mean of the middle two for an even count)."""
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        """Smallest value."""
        return min(self.values)

    @property
    def max(self) -> float:
        """Largest value."""
        return max(self.values)

    @property
    def range(self) -> float:
        """Spread across seeds, :math:`\\max_k v_k - \\min_k v_k`."""
        return self.max - self.min

    def count(self, predicate: Callable[[float], bool]) -> int:
        """Number of seeds whose value satisfies ``predicate``, e.g. ``spread.count(lambda v: v > 0)``."""
        return sum(bool(predicate(v)) for v in self.values)

    def __sub__(self, other: Spread) -> Spread:
        """Paired per-seed difference ``self.values[k] - other.values[k]`` (same seeds, same order)."""
        if not isinstance(other, Spread) or len(other.values) != len(self.values):
            raise ValueError("a paired difference needs two Spreads over the same seeds")
        return Spread(tuple(a - b for a, b in zip(self.values, other.values)))


@dataclass(frozen=True)
class TrialHistory:
    """One seed's curves, one entry per epoch it trained (``stopped_epoch`` entries).

    Attributes:
        train_loss: data loss of each epoch's full-batch step (training mode, before the
            update; penalty excluded, augmented inputs when augmenting).
        val_loss, val_acc, test_loss, test_acc: after each epoch's update, in evaluation mode
            (empty for a split that was not in ``curves``).
        best_epoch: 0-based epoch of the lowest validation loss (among those trained), or
            ``None`` without validation curves.
        stopped_epoch: number of epochs trained (``epochs`` unless early stopping stopped it).
    """

    train_loss: list[float]
    val_loss: list[float]
    val_acc: list[float]
    test_loss: list[float]
    test_acc: list[float]
    best_epoch: int | None
    stopped_epoch: int


@dataclass(frozen=True)
class SeedResult:
    """What one seed's run scored at the end (best weights restored with ``patience``).

    Losses are the mean data loss, accuracies fractions in ``[0, 1]``, all in evaluation mode.
    """

    seed: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    test_loss: float
    test_acc: float
    history: TrialHistory
    model: nn.Module

    @property
    def gap(self) -> float:
        """Train-test accuracy gap, ``train_acc - test_acc``."""
        return self.train_acc - self.test_acc


@dataclass(frozen=True)
class Trials:
    """The per-seed results of :func:`run_trials`, and each score's :class:`Spread` across seeds."""

    runs: tuple[SeedResult, ...]

    def spread(self, name: str) -> Spread:
        """The :class:`Spread` of a score (``"test_acc"``, ``"gap"``, ...) across the seeds."""
        if name not in (*_SCORES, "gap"):
            raise ValueError(f"name must be one of {(*_SCORES, 'gap')}, got {name!r}")
        return Spread(tuple(getattr(r, name) for r in self.runs))

    @property
    def seeds(self) -> list[int]:
        """The logical seeds, one per run."""
        return [r.seed for r in self.runs]

    train_loss = property(lambda self: self.spread("train_loss"), doc="Spread of the final training loss.")
    train_acc = property(lambda self: self.spread("train_acc"), doc="Spread of the training accuracy.")
    val_loss = property(lambda self: self.spread("val_loss"), doc="Spread of the validation loss.")
    val_acc = property(lambda self: self.spread("val_acc"), doc="Spread of the validation accuracy.")
    test_loss = property(lambda self: self.spread("test_loss"), doc="Spread of the test loss.")
    test_acc = property(lambda self: self.spread("test_acc"), doc="Spread of the test accuracy.")
    gap = property(lambda self: self.spread("gap"), doc="Spread of the train-test accuracy gap.")


@torch.no_grad()
def _scores(ens: Ensemble, pair: Pair, loss_fn) -> torch.Tensor:
    """Loss and accuracy of every member on ``pair`` in evaluation mode, shape ``(K, 2)``."""
    x, y = pair
    mode = ens.training
    out = ens.eval()(x)
    ens.train(mode)
    loss = torch.vmap(loss_fn, in_dims=(0, None))(out, y)
    return torch.stack([loss, (out.argmax(-1) == y).float().mean(1)], dim=1)


def _penalty(weights: list[torch.Tensor], l1: float, l2: float) -> torch.Tensor:
    """:math:`\\sum_k (\\lambda_1\\lVert w_k\\rVert_1 + \\frac{\\lambda_2}{2}\\lVert w_k\\rVert_2^2)`; member k's gradient is its own."""
    total = weights[0].new_zeros(())
    for w in weights:
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + 0.5 * l2 * w.pow(2).sum()
    return total


class _Stopper:
    """Early stopping for every member at once, on the device (the rule of ``ReduceLROnPlateau``/``fit``).

    A member improves when its validation loss is strictly below its best so far; after
    ``patience`` epochs without improvement it stops, and its weights of the best epoch are kept.
    """

    def __init__(self, ens: Ensemble, patience: int | None) -> None:
        k, device = ens.size, ens.device
        self.patience = patience
        self.best = torch.full((k,), float("inf"), device=device)
        self.best_epoch = torch.zeros(k, dtype=torch.long, device=device)
        self.wait = torch.zeros(k, dtype=torch.long, device=device)
        self.active = torch.ones(k, dtype=torch.bool, device=device)
        self.stopped = torch.zeros(k, dtype=torch.long, device=device)
        self.saved = {n: p.detach().clone() for n, p in ens.params.items()} if patience else None

    def update(self, epoch: int, val_loss: torch.Tensor, ens: Ensemble) -> None:
        improved = (val_loss < self.best) & self.active
        self.best = torch.where(improved, val_loss, self.best)
        self.best_epoch = torch.where(improved, epoch, self.best_epoch)
        self.stopped = torch.where(self.active, epoch + 1, self.stopped)
        if self.patience is None:
            return
        for name, p in ens.params.items():
            mask = improved.view((-1,) + (1,) * (p.dim() - 1))
            self.saved[name] = torch.where(mask, p.detach(), self.saved[name])
        self.wait = torch.where(improved, 0, self.wait + 1)
        self.active = self.active & (self.wait < self.patience)

    def restore(self, ens: Ensemble) -> None:
        if self.saved is not None:
            with torch.no_grad():
                for name, p in ens.params.items():
                    p.copy_(self.saved[name])


def _check_arguments(factory, data, seeds, epochs, lr, l1, l2, augment, patience, curves):
    if not callable(factory):
        raise TypeError(f"factory must be callable (no arguments -> nn.Module), got {type(factory).__name__}")
    if not all(hasattr(data, part) for part in ("train", "val", "test")):
        raise TypeError(f"data must have train, val and test pairs (a companion.data.DataSplit), got {type(data).__name__}")
    seeds = [check_int("seeds[i]", s, minimum=0) for s in seeds]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must hold at least 2 distinct seeds, got {seeds}")
    if augment is not None and not callable(augment):
        raise TypeError("augment must be callable: (inputs, generator) -> inputs of the same shape")
    curves = tuple(curves)
    if any(c not in ("val", "test") for c in curves):
        raise ValueError(f"curves must name splits among ('val', 'test'), got {curves}")
    if patience is not None:
        patience = check_int("patience", patience, minimum=1)
        if "val" not in curves:
            raise ValueError("patience needs curves to include 'val': early stopping watches the validation loss")
    return (seeds, check_int("epochs", epochs, minimum=1), check_positive("lr", lr),
            check_nonnegative("l1", l1), check_nonnegative("l2", l2), patience, curves)


def run_trials(
    factory: Callable[[], nn.Module],
    data,
    *,
    seeds: Sequence[int] = range(5),
    epochs: int = 100,
    lr: float = 3e-3,
    l1: float = 0.0,
    l2: float = 0.0,
    augment: Augment | None = None,
    patience: int | None = None,
    curves: Sequence[str] = ("val",),
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    same_initialization: bool = False,
) -> Trials:
    """Train ``factory()`` once per seed, all seeds together, with full-batch Adam; score every split.

    Each epoch is one full-batch Adam step on member k's objective

    .. math::

        \\mathcal L_k(\\theta_k) + \\lambda_1 \\lVert w_k \\rVert_1 + \\tfrac{\\lambda_2}{2}\\lVert w_k \\rVert_2^2

    (``w_k``: member k's weight matrices, not its biases, as ``fit(..., l1=, l2=)``),
    followed by the validation and test loss and accuracy in evaluation mode. With
    ``patience`` a member stops after ``patience`` epochs without a strictly lower
    validation loss and its best epoch's weights are restored, as
    ``companion.training.fit(..., patience=, restore_best=True)`` does for one model.

    Args:
        factory: builds one fresh model (no arguments); called after ``seed_everything(seed)``
            for each seed, then moved to the training data's device. Models with BatchNorm
            running statistics cannot be stacked.
        data: a :class:`companion.data.DataSplit` (``train``, ``val``, ``test`` pairs, one device).
        seeds: two or more distinct logical seeds (``COMPANION_SEED_OFFSET`` is added).
        epochs: full-batch steps, ``>= 1``.
        lr: Adam's learning rate, ``> 0``.
        l1, l2: penalty strengths :math:`\\lambda_1, \\lambda_2 \\ge 0`.
        augment: optional ``augment(x, generator) -> x'`` applied to the training inputs
            at every step, with member k's own ``companion.generator(seeds[k])``
            (a CPU generator), so every seed sees its own augmentations.
        patience: early stopping on the validation loss (``>= 1``), or ``None``.
        curves: the splits (``"val"``, ``"test"``) scored after every epoch for
            :class:`TrialHistory`; the others only at the end, which is cheaper
            (an evaluation of 360 digits costs more than a step on 100).
        loss_fn: the mean loss of one model's outputs; default ``nn.CrossEntropyLoss()``.
        same_initialization: allow a ``factory`` that builds the same model for every seed
            (see :func:`companion.ensemble.build`), to isolate the other random streams.

    Returns:
        :class:`Trials`: one :class:`SeedResult` per seed, in the order of ``seeds``.
    """
    seeds, epochs, lr, l1, l2, patience, curves = _check_arguments(
        factory, data, seeds, epochs, lr, l1, l2, augment, patience, curves)
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    x, y = data.train
    ens = build(factory, seeds, device=x.device, same_initialization=same_initialization)
    opt = torch.optim.Adam(ens.parameters(), lr=lr, foreach=True)
    weights = [p for _, p in ens.weights()]
    gens = [generator(s) for s in seeds] if augment is not None else None
    stopper, records = _Stopper(ens, patience), []
    for epoch in range(epochs):
        ens.train()
        xb = x if gens is None else torch.stack([augment(x, g) for g in gens])
        opt.zero_grad(set_to_none=False)
        losses = torch.vmap(loss_fn, in_dims=(0, None))(ens(xb, per_model=gens is not None), y)
        (losses.sum() + _penalty(weights, l1, l2)).backward()
        opt.step()
        scored = {part: _scores(ens, getattr(data, part), loss_fn) for part in curves}
        records.append(torch.cat([losses.detach()[:, None], *scored.values()], dim=1))
        if "val" in scored:
            stopper.update(epoch, scored["val"][:, 0], ens)
        if patience is not None and not bool(stopper.active.any()):  # one sync per epoch, only when stopping
            break
    stopper.restore(ens)
    return _collect(ens, data, loss_fn, seeds, torch.stack(records), stopper, curves, len(records))


def _collect(ens: Ensemble, data, loss_fn, seeds: list[int], records: torch.Tensor, stopper: _Stopper,
             curves: tuple[str, ...], trained: int) -> Trials:
    """Final scores of every split and the per-seed curves, read back with one host sync."""
    final = torch.cat([_scores(ens, part, loss_fn) for part in (data.train, data.val, data.test)], dim=1)
    rows = records.permute(1, 2, 0).tolist()  # (K, 1 + 2 * len(curves), epochs)
    final, best = final.tolist(), stopper.best_epoch.tolist()
    stopped = stopper.stopped.tolist() if "val" in curves else [trained] * len(seeds)
    runs = []
    for k, (seed, model) in enumerate(zip(seeds, ens.unstack())):
        n = stopped[k]
        columns = iter(rows[k])
        found = {"train_loss": next(columns)[:n]}
        for part in curves:
            found[f"{part}_loss"], found[f"{part}_acc"] = next(columns)[:n], next(columns)[:n]
        lists = {name: found.get(name, []) for name in ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc")}
        history = TrialHistory(**lists, best_epoch=best[k] if "val" in curves else None, stopped_epoch=n)
        runs.append(SeedResult(seed, *final[k], history=history, model=model.eval()))
    return Trials(tuple(runs))
