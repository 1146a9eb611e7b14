"""trials.run_trials against hand-written single-seed loops and companion.training.fit."""

from __future__ import annotations

import statistics

import pytest
import torch
from torch import nn

import companion
from companion.augment import augment_batch
from companion.data import DataSplit
from companion.training import fit
from companion.trials import Spread, Trials, run_trials


def _data(n_train: int = 40) -> DataSplit:
    g = companion.generator(11)
    X = torch.rand(n_train + 60, 16, generator=g)
    y = (X[:, :4].sum(1) * 2.5).long().clamp(max=9) % 4
    return DataSplit((X[:n_train], y[:n_train]), (X[n_train:n_train + 30], y[n_train:n_train + 30]),
                     (X[n_train + 30:], y[n_train + 30:]))


def _factory(dropout: float = 0.0):
    return lambda: companion.models.mlp(16, 4, depth=2, width=24, dropout=dropout)


def _by_hand(seed: int, data: DataSplit, epochs: int, l1: float = 0.0, l2: float = 0.0) -> nn.Module:
    """The oracle: one model, one seed, a plain loop of full-batch Adam steps with the penalty written out."""
    companion.seed_everything(seed)
    model = _factory()()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(data.train[0]), data.train[1])
        for lin in model.linears:
            loss = loss + l1 * lin.weight.abs().sum() + 0.5 * l2 * lin.weight.pow(2).sum()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("l1, l2", [(0.0, 0.0), (0.0, 0.05), (1e-3, 0.0)])
def test_each_seed_equals_a_single_run_by_hand(l1, l2):
    data = _data()
    trials = run_trials(_factory(), data, seeds=[3, 0, 5], epochs=30, l1=l1, l2=l2)
    assert trials.seeds == [3, 0, 5]
    for run in trials.runs:
        oracle = _by_hand(run.seed, data, 30, l1, l2)
        for (name, a), b in zip(oracle.state_dict().items(), run.model.state_dict().values()):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
        with torch.no_grad():
            for part in ("train", "val", "test"):
                X, y = getattr(data, part)
                out = oracle(X)
                assert getattr(run, f"{part}_loss") == pytest.approx(nn.functional.cross_entropy(out, y).item(), rel=1e-4)
                assert getattr(run, f"{part}_acc") == pytest.approx((out.argmax(1) == y).float().mean().item(), abs=1.5 / len(y))


def test_curves_and_early_stopping_match_fit():
    data = _data()
    trials = run_trials(_factory(), data, seeds=[0, 1], epochs=60, patience=4, curves=("val", "test"))
    for run in trials.runs:
        companion.seed_everything(run.seed)
        model = _factory()()
        hist = fit(model, data.train, loss_fn=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
                   epochs=60, val=data.val, metric="accuracy", patience=4)
        assert run.history.stopped_epoch == hist.stopped_epoch and run.history.best_epoch == hist.best_epoch
        assert run.history.val_loss == pytest.approx(hist.val_loss, rel=1e-4)
        assert run.history.train_loss == pytest.approx(hist.train_loss, rel=1e-4)
        assert len(run.history.test_acc) == hist.stopped_epoch
        assert run.val_loss == pytest.approx(min(hist.val_loss), rel=1e-4)          # best weights restored


def test_no_curves_means_empty_lists_and_full_length():
    trials = run_trials(_factory(), _data(), seeds=[0, 1], epochs=7, curves=())
    h = trials.runs[0].history
    assert len(h.train_loss) == 7 and h.val_loss == [] and h.test_acc == [] and h.best_epoch is None
    assert h.stopped_epoch == 7


def test_dropout_masks_differ_between_members():
    # Identical initial weights for every seed (the factory reseeds): only the dropout masks can differ.
    def constant(dropout):
        def make():
            companion.seed_everything(7)
            return companion.models.mlp(16, 4, depth=2, width=24, dropout=dropout)
        return make
    data = _data()
    with_masks = run_trials(constant(0.5), data, seeds=[0, 1, 2], epochs=1, curves=(), same_initialization=True)
    without = run_trials(constant(0.0), data, seeds=[0, 1, 2], epochs=1, curves=(), same_initialization=True)
    with pytest.raises(ValueError, match="identical members"):   # by accident, it is an error
        run_trials(constant(0.0), data, seeds=[0, 1, 2], epochs=1, curves=())
    assert len({r.history.train_loss[0] for r in with_masks.runs}) == 3
    assert len({r.history.train_loss[0] for r in without.runs}) == 1


def test_each_seed_has_its_own_augmentation_stream():
    seen = []
    def record(xb, g):
        out = augment_batch(xb, noise_std=0.1, generator=g)
        seen.append(out)
        return out
    data = _data()
    run_trials(_factory(), data, seeds=[4, 9], epochs=1, augment=record, curves=())
    for k, seed in enumerate([4, 9]):   # oracle: the member's own generator, drawn once
        expected = augment_batch(data.train[0], noise_std=0.1, generator=companion.generator(seed))
        torch.testing.assert_close(seen[k], expected)


def test_spread_against_statistics():
    s = Spread((0.5, 0.9, 0.7, 0.6))
    assert s.mean == pytest.approx(statistics.fmean(s.values)) and s.median == pytest.approx(0.65)
    assert (s.min, s.max) == (0.5, 0.9) and s.range == pytest.approx(0.4)
    assert s.count(lambda v: v > 0.65) == 2
    assert (s - Spread((0.5, 0.5, 0.5, 0.5))).values == pytest.approx((0.0, 0.4, 0.2, 0.1))
    with pytest.raises(ValueError, match="paired"):
        s - Spread((1.0,))


def test_trials_summaries_are_spreads_of_the_runs():
    trials = run_trials(_factory(), _data(), seeds=[0, 1, 2], epochs=5, curves=())
    assert isinstance(trials, Trials)
    assert trials.test_acc.values == tuple(r.test_acc for r in trials.runs)
    assert trials.gap.values == pytest.approx(tuple(r.train_acc - r.test_acc for r in trials.runs))
    with pytest.raises(ValueError, match="name must be one of"):
        trials.spread("accuracy")


@pytest.mark.parametrize("kwargs, message", [
    ({"seeds": [0]}, "seeds must hold at least 2 distinct seeds"),
    ({"seeds": [1, 1]}, "seeds must hold at least 2 distinct seeds"),
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"lr": 0.0}, "lr must be > 0"),
    ({"l2": -1.0}, "l2 must be >= 0"),
    ({"patience": 3, "curves": ()}, "patience needs curves to include 'val'"),
    ({"curves": ("train",)}, "curves must name splits"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_trials(_factory(), _data(), **kwargs)


def test_bad_types():
    with pytest.raises(TypeError, match="factory must be callable"):
        run_trials(None, _data())
    with pytest.raises(TypeError, match="data must have train, val and test"):
        run_trials(_factory(), (torch.zeros(3, 16), torch.zeros(3)))
