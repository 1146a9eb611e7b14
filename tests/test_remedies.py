"""Tests for companion.remedies: typed outcomes, determinism, the remedies' changes, verdict rules."""

from __future__ import annotations

import dataclasses
import math

import pytest

from companion import remedies as R


def test_remedies_and_settings_listed():
    assert len(R.REMEDIES) == 10 and len(set(R.REMEDIES)) == 10
    assert R.SETTINGS == ("exploding", "vanishing", "overfitting")
    every = R.REMEDIES + R.EXTRA_REMEDIES
    assert set(R.LABELS) == set(R.NAMES) == set(every)
    for remedy in R.REMEDIES:  # a name is its label without the number and the parenthesis
        assert R.LABELS[remedy].startswith(f"{R.REMEDIES.index(remedy) + 1}. {R.NAMES[remedy]}")


def test_outcomes_are_frozen_dataclasses():
    fields = [f.name for f in dataclasses.fields(R.GradientOutcome)]
    assert fields == ["ratio_init", "ratios", "loss_init", "loss_final", "train_accuracy", "diverged_step"]
    assert [f.name for f in dataclasses.fields(R.OverfittingOutcome)] == [
        "train_accuracy", "test_accuracy", "gap", "epochs_run"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        _o(1.0, 0.8).gap = 0.0


@pytest.mark.parametrize("remedy", [r for r in R.REMEDIES + R.EXTRA_REMEDIES if r != "distributed"])
def test_apply_remedy_changes_the_config(remedy):
    for setting in R.SETTINGS:
        base = R.base_config(setting)
        assert R.apply_remedy(base, remedy) != base
    assert R.apply_remedy(R.base_config("exploding"), None) == R.base_config("exploding")


def test_gradient_experiment_type_and_determinism():
    a = R.gradient_experiment("vanishing", "smaller_network", seed=1)
    b = R.gradient_experiment("vanishing", "smaller_network", seed=1)
    assert isinstance(a, R.GradientOutcome) and isinstance(a.ratios, tuple)
    assert a == b
    c = R.gradient_experiment("vanishing", "smaller_network", seed=2)
    assert c.ratio_init != a.ratio_init


def test_baselines_show_their_problem():
    exploding = R.gradient_experiment("exploding")
    vanishing = R.gradient_experiment("vanishing")
    assert exploding.ratio_init > 100 and vanishing.ratio_init < 1e-6
    assert exploding.diverged_step is None
    assert math.isfinite(exploding.loss_final)
    assert len(exploding.ratios) == R.GRADIENT_STEPS
    # The exploding net saturates: its ratio collapses far below 1 during training, and it does not train.
    assert R.median_ratio(exploding) < 0.1 and not R.trains(exploding) and not R.balanced(vanishing)
    over = R.overfitting_experiment()
    assert isinstance(over, R.OverfittingOutcome)
    assert over.train_accuracy == 1.0 and over.gap > 0.1
    assert over == R.overfitting_experiment()


def test_lr_and_clipping_do_not_change_initial_ratio():
    # Same initial weights: rho at step 0 is the same; what differs is the trajectory after it.
    base = R.gradient_experiment("exploding")
    for remedy in ("learning_rate", "clipping"):
        other = R.gradient_experiment("exploding", remedy)
        assert other.ratio_init == base.ratio_init
        assert other.loss_init == base.loss_init
        assert other.ratios[5:] != base.ratios[5:]


def _g(ratio, loss_final, accuracy=0.13, loss_init=2.0, diverged=None, ratios=None):
    """A fake gradient outcome; ``ratio`` is rho at every one of 5 steps unless ``ratios`` is given."""
    ratios = (ratio,) * 5 if ratios is None else tuple(ratios)
    return R.GradientOutcome(ratio_init=ratios[0], ratios=ratios, loss_init=loss_init, loss_final=loss_final,
                             train_accuracy=accuracy, diverged_step=diverged)


def test_median_ratio_against_sorted_logs():
    # Oracle: the middle of the sorted ratios (odd count), the geometric mean of the middle two (even).
    assert R.median_ratio(_g(0, 0, ratios=[1e3, 1e-12, 2.0, 0.5, 30.0])) == pytest.approx(2.0)
    assert R.median_ratio(_g(0, 0, ratios=[100.0, 1.0, 0.01, 1e4])) == pytest.approx(10.0)
    assert R.median_ratio(_g(0, 0, ratios=[0.0, 0.0, 5.0])) == 0.0              # underflowed gradient
    assert R.median_ratio(_g(0, 0, ratios=[0.5, math.nan, 2.0, 0.7])) == pytest.approx(0.7)  # NaN left out
    assert math.isnan(R.median_ratio(_g(0, 0, ratios=[math.nan])))
    with pytest.raises(TypeError, match="result must be of type GradientOutcome, got dict"):
        R.median_ratio({"ratios": [3.0]})


def test_trains_and_balanced():
    assert R.trains(_g(1.0, 1.0, accuracy=R.TRAIN_ACCURACY_BAR)) and not R.trains(_g(1.0, 1.0, accuracy=0.2))
    assert not R.trains(_g(1.0, math.inf, accuracy=math.nan, diverged=2))
    assert R.balanced(_g(0.1, 1.0)) and R.balanced(_g(10.0, 1.0)) and not R.balanced(_g(11.0, 1.0))
    # balanced is judged over the whole run, not at step 0: 1000 at step 0, then near 1
    assert R.balanced(_g(0, 1.0, ratios=[1000.0, 3.0, 1.0, 0.5, 0.3]))
    assert not R.balanced(_g(0, 1.0, ratios=[2.0, 1e-3, 1e-8, 1e-12, 1e-13]))  # collapses after step 0


def test_classify_gradient_rules():
    base = _g(1e-10, 2.3, ratios=[500.0, 1e-3, 1e-8, 1e-10, 1e-12])   # exploding, then collapsed; chance
    assert R.classify_gradient("exploding", base, _g(2.0, 1.5, accuracy=0.4)) == "fixes"
    assert R.classify_gradient("exploding", base, _g(2.0, 2.3)) == "partly"                 # balanced only
    assert R.classify_gradient("exploding", base, _g(1e-6, 1.8, accuracy=0.3)) == "partly"  # trains only
    assert R.classify_gradient("exploding", base, _g(1e-6, 2.3)) == "no effect"
    assert R.classify_gradient("exploding", base, _g(400.0, 5.0)) == "makes worse"          # loss > 1.25 x base
    assert R.classify_gradient("exploding", base, _g(1.0, 2.8)) == "partly"                 # 1.22 x: not worse
    assert R.classify_gradient("exploding", base, _g(1.0, math.inf, math.nan, diverged=3)) == "makes worse"
    assert R.classify_gradient("exploding", base, base) == "no effect"
    good = _g(1.0, 1.0, accuracy=0.5)                      # a baseline that already trains and is balanced
    assert R.classify_gradient("vanishing", good, _g(1.0, 1.1, accuracy=0.5)) == "fixes"
    assert R.classify_gradient("vanishing", good, _g(1e-5, 1.1, accuracy=0.5)) == "no effect"  # no improvement


def _o(train, test):
    return R.OverfittingOutcome(train_accuracy=train, test_accuracy=test, gap=train - test, epochs_run=10)


def test_classify_overfitting_rules():
    base = _o(1.0, 0.80)
    assert R.classify_overfitting(base, _o(0.95, 0.88)) == "fixes"
    assert R.classify_overfitting(base, _o(1.0, 0.815)) == "partly"
    assert R.classify_overfitting(base, _o(0.95, 0.80)) == "partly"
    assert R.classify_overfitting(base, _o(1.0, 0.80)) == "no effect"
    assert R.classify_overfitting(base, _o(1.0, 0.77)) == "makes worse"


def test_bad_arguments():
    with pytest.raises(ValueError, match="setting must be one of"):
        R.base_config("overfit")
    with pytest.raises(ValueError, match="setting must be one of"):
        R.gradient_experiment("overfitting")
    with pytest.raises(ValueError, match="remedy must be one of"):
        R.apply_remedy(R.base_config("exploding"), "batchnorm")
    with pytest.raises(ValueError, match="distributed_experiments"):
        R.gradient_experiment("exploding", "distributed")
    with pytest.raises(ValueError, match="distributed_experiments"):
        R.overfitting_experiment("distributed")
    with pytest.raises(ValueError, match="seed must be >= 0"):
        R.gradient_experiment("exploding", seed=-1)
    with pytest.raises(TypeError, match="baseline must be of type GradientOutcome, got dict"):
        R.classify_gradient("exploding", {}, _g(1.0, 1.0))
    with pytest.raises(TypeError, match="result must be of type GradientOutcome, got OverfittingOutcome"):
        R.classify_gradient("exploding", _g(1.0, 1.0), _o(1.0, 0.8))
    with pytest.raises(TypeError, match="result must be of type OverfittingOutcome, got dict"):
        R.classify_overfitting(_o(1.0, 0.8), {"gap": 0.1})
    with pytest.raises(TypeError, match="baseline must be of type OverfittingOutcome, got GradientOutcome"):
        R.classify_overfitting(_g(1.0, 1.0), _o(1.0, 0.8))
    with pytest.raises(TypeError, match="result must be of type GradientOutcome"):
        R.trains(_o(1.0, 0.8))


def test_verdict_markdown_from_fake_results():
    g, o = _g(100.0, 2.3), _o(1.0, 0.8)
    results = {"baseline": {"exploding": [g, g], "vanishing": [_g(1e-6, 2.3)] * 2, "overfitting": [o, o]}}
    for remedy in R.REMEDIES:
        results[remedy] = {"exploding": [_g(2.0, 1.0, accuracy=0.5), _g(2.0, 2.3, accuracy=0.2)],
                           "vanishing": [_g(1e-6, math.inf, math.nan, diverged=4), _g(1e-6, 2.3)],
                           "overfitting": [_o(1.0, 0.9), _o(1.0, 0.9)]}
    table = R.verdicts(results)
    assert table["clipping"] == {"exploding": ["fixes", "partly"], "vanishing": ["makes worse", "no effect"],
                                 "overfitting": ["fixes", "fixes"]}
    text = R.verdict_markdown(results)
    assert text.count("\n") == 12
    # ties: the order of VERDICTS
    assert "**fixes** 1/2, partly 1 (trains 1/2 (acc 20–50%), balanced 2/2 (median ρ 2))" in text
    assert "NaN 1/2 at step 4" in text and "**fixes** 2/2 (test 90%, gap 10)" in text


def test_majority():
    assert R.majority(["partly", "fixes", "partly"]) == ("partly", 2)
    assert R.majority(["no effect", "fixes"]) == ("fixes", 1)          # tie: first in VERDICTS
    with pytest.raises(ValueError, match="at least one"):
        R.majority([])


@pytest.mark.parametrize("setting, remedy", [("exploding", None), ("exploding", "activation"),
                                             ("exploding", "early_stopping"), ("vanishing", "l2"),
                                             ("vanishing", "clipping")])
def test_gradient_trials_match_single_runs(setting, remedy):
    # Oracle: each member of the stacked run against a run of its own (companion.training.fit).
    stacked = R.gradient_trials(setting, remedy, seeds=[0, 3])
    for k, seed in enumerate([0, 3]):
        one = R.gradient_experiment(setting, remedy, seed=seed)
        assert stacked[k].ratio_init == pytest.approx(one.ratio_init, rel=1e-4)
        assert stacked[k].ratios[:2] == pytest.approx(one.ratios[:2], rel=1e-3, nan_ok=True)
        if remedy != "early_stopping":  # where it stops depends on the later, chaotic steps
            steps = R.GRADIENT_STEPS if one.diverged_step is None else one.diverged_step + 1
            assert len(stacked[k].ratios) == len(one.ratios) == steps
        assert stacked[k].loss_init == pytest.approx(one.loss_init, rel=1e-5)
        assert stacked[k].diverged_step == one.diverged_step
        # Later steps are not compared: this chaotic network amplifies the rounding
        # differences of a batched matrix product into visibly different trajectories.


@pytest.mark.parametrize("remedy", [None, "l2", "learning_rate", "smaller_network", "data_normalization"])
def test_overfitting_trials_match_single_runs(remedy):
    stacked = R.overfitting_trials(remedy, seeds=[0, 3])
    for k, seed in enumerate([0, 3]):
        one = R.overfitting_experiment(remedy, seed=seed)
        for field in dataclasses.fields(R.OverfittingOutcome):
            key = field.name
            assert getattr(stacked[k], key) == pytest.approx(getattr(one, key), abs=1e-6), key


def test_distributed_trials_are_the_baseline():
    base = R.gradient_trials("vanishing", seeds=[0, 1])
    assert R.gradient_trials("vanishing", "distributed", seeds=[0, 1]) == base


def test_trials_reject_bad_seeds():
    with pytest.raises(ValueError, match="at least 2 distinct seeds"):
        R.gradient_trials("exploding", seeds=[1])
    with pytest.raises(ValueError, match="at least 2 distinct seeds"):
        R.overfitting_trials(seeds=[2, 2])
    with pytest.raises(ValueError, match=r"seeds\[i\] must be >= 0"):
        R.overfitting_trials(seeds=[0, -1])


def test_augmentation_is_deterministic_and_changes_training():
    a = R.overfitting_experiment("augmentation", seed=0)
    assert a == R.overfitting_experiment("augmentation", seed=0)
    assert a != R.overfitting_experiment(seed=0)


def test_stacked_early_stopping_matches_fit():
    # lr = 2 makes the validation loss rise within a few steps, so patience 3 stops every member;
    # oracle: companion.training.fit on each seed alone (stopped epoch, restored weights' accuracy).
    import torch

    config = dataclasses.replace(R.base_config("overfitting"), lr=2.0, patience=3)
    data = R._data(config, torch.device("cpu"))
    ens = R._ensemble(config, [0, 3], torch.device("cpu"))
    diverged, losses, stopped, ratios = R._train_ensemble(ens, data, config, [0, 3])
    assert ratios.shape == losses.shape == (len(losses), 2)
    assert diverged == [None, None] and max(stopped) < config.steps
    with torch.no_grad():
        test = (R._stacked_forward(ens.params, data.test[0], config, training=False).argmax(-1)
                == data.test[1]).float().mean(1).tolist()
    for k, seed in enumerate([0, 3]):
        model = R._model(config, seed, torch.device("cpu"))
        history = R._train(model, data, config, seed)
        assert stopped[k] == history.stopped_epoch
        assert test[k] == pytest.approx(R._accuracies(model, data)[1], abs=1e-6)
