"""Tests for companion.remedies: documented keys, determinism, the remedies' changes, verdict rules."""

from __future__ import annotations

import math

import pytest

from companion import remedies as R


def test_remedies_and_settings_listed():
    assert len(R.REMEDIES) == 10 and len(set(R.REMEDIES)) == 10
    assert R.SETTINGS == ("exploding", "vanishing", "overfitting")


@pytest.mark.parametrize("remedy", [r for r in R.REMEDIES + R.EXTRA_REMEDIES if r != "distributed"])
def test_apply_remedy_changes_the_config(remedy):
    for setting in R.SETTINGS:
        base = R.base_config(setting)
        assert R.apply_remedy(base, remedy) != base
    assert R.apply_remedy(R.base_config("exploding"), None) == R.base_config("exploding")


def test_gradient_experiment_keys_and_determinism():
    a = R.gradient_experiment("vanishing", "smaller_network", seed=1)
    b = R.gradient_experiment("vanishing", "smaller_network", seed=1)
    assert tuple(a) == R.GRADIENT_KEYS
    assert a == b
    c = R.gradient_experiment("vanishing", "smaller_network", seed=2)
    assert c["ratio_init"] != a["ratio_init"]


def test_baselines_show_their_problem():
    exploding = R.gradient_experiment("exploding")
    vanishing = R.gradient_experiment("vanishing")
    assert exploding["ratio_init"] > 100 and vanishing["ratio_init"] < 1e-6
    assert exploding["diverged_step"] is None
    assert math.isfinite(exploding["loss_final"])
    over = R.overfitting_experiment()
    assert tuple(over) == R.OVERFITTING_KEYS
    assert over["train_accuracy"] == 1.0 and over["gap"] > 0.1
    assert over == R.overfitting_experiment()


def test_lr_does_not_change_initial_ratio():
    base = R.gradient_experiment("exploding")
    slow = R.gradient_experiment("exploding", "learning_rate")
    assert slow["ratio_init"] == base["ratio_init"]
    assert slow["loss_init"] == base["loss_init"]


def _g(ratio, loss_final, loss_init=2.0, diverged=None):
    return {"ratio_init": ratio, "loss_init": loss_init, "loss_final": loss_final,
            "loss_change": loss_final / loss_init, "diverged_step": diverged}


def test_classify_gradient_rules():
    base = _g(1000.0, 1.5)
    assert R.classify_gradient("exploding", base, _g(2.0, 1.0)) == "fixes"
    assert R.classify_gradient("exploding", base, _g(0.2, 2.0)) == "fixes"      # loss not judged
    assert R.classify_gradient("exploding", base, _g(50.0, 1.5)) == "partly"    # 20x closer to 1
    assert R.classify_gradient("exploding", base, _g(1000.0, 1.0)) == "no effect"
    assert R.classify_gradient("exploding", base, _g(400.0, 1.5)) == "no effect"
    assert R.classify_gradient("exploding", base, _g(5000.0, 1.5)) == "makes worse"
    assert R.classify_gradient("exploding", base, _g(1.0, math.inf, diverged=3)) == "makes worse"
    vanishing = _g(1e-8, 2.0)
    assert R.classify_gradient("vanishing", vanishing, _g(1e-5, 2.0)) == "partly"
    assert R.classify_gradient("vanishing", vanishing, _g(1e-9, 2.0)) == "makes worse"
    assert R.classify_gradient("vanishing", vanishing, _g(5e-9, 2.0)) == "no effect"


def _o(train, test):
    return {"train_accuracy": train, "test_accuracy": test, "gap": train - test, "epochs_run": 10}


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
    with pytest.raises(ValueError, match="missing the keys"):
        R.classify_gradient("exploding", {}, _g(1.0, 1.0))
    with pytest.raises(ValueError, match="missing the keys"):
        R.classify_overfitting(_o(1.0, 0.8), {"gap": 0.1})


def test_verdict_markdown_from_fake_results():
    g, o = _g(100.0, 1.0), _o(1.0, 0.8)
    results = {"baseline": {"exploding": [g, g], "vanishing": [_g(1e-6, 1.0)] * 2, "overfitting": [o, o]}}
    for remedy in R.REMEDIES:
        results[remedy] = {"exploding": [_g(2.0, 1.0), _g(20.0, 1.0)],
                           "vanishing": [_g(1e-6, 1.0, diverged=4), _g(1e-6, 1.0)],
                           "overfitting": [_o(1.0, 0.9), _o(1.0, 0.9)]}
    table = R.verdicts(results)
    assert table["clipping"] == {"exploding": ["fixes", "partly"], "vanishing": ["makes worse", "no effect"],
                                 "overfitting": ["fixes", "fixes"]}
    text = R.verdict_markdown(results)
    assert text.count("\n") == 12
    assert "**fixes** 1/2, partly 1 (ρ 2–20)" in text           # ties: the order of VERDICTS
    assert "NaN 1/2" in text and "**fixes** 2/2 (test 90%, gap 10)" in text


def test_majority():
    assert R.majority(["partly", "fixes", "partly"]) == ("partly", 2)
    assert R.majority(["no effect", "fixes"]) == ("fixes", 1)          # tie: first in VERDICTS
    with pytest.raises(ValueError, match="at least one"):
        R.majority([])


@pytest.mark.parametrize("setting, remedy", [("exploding", None), ("exploding", "activation"),
                                             ("exploding", "early_stopping"), ("vanishing", "l1_l2"),
                                             ("vanishing", "clipping")])
def test_gradient_trials_match_single_runs(setting, remedy):
    # Oracle: each member of the stacked run against a run of its own (companion.training.fit).
    stacked = R.gradient_trials(setting, remedy, seeds=[0, 3])
    for k, seed in enumerate([0, 3]):
        one = R.gradient_experiment(setting, remedy, seed=seed)
        assert stacked[k]["ratio_init"] == pytest.approx(one["ratio_init"], rel=1e-4)
        assert stacked[k]["loss_init"] == pytest.approx(one["loss_init"], rel=1e-5)
        assert stacked[k]["diverged_step"] == one["diverged_step"]
        # loss_final is not compared: 10 steps of this chaotic network amplify the rounding
        # differences of a batched matrix product into visibly different losses.


@pytest.mark.parametrize("remedy", [None, "l1_l2", "learning_rate", "smaller_network", "data_normalization"])
def test_overfitting_trials_match_single_runs(remedy):
    stacked = R.overfitting_trials(remedy, seeds=[0, 3])
    for k, seed in enumerate([0, 3]):
        one = R.overfitting_experiment(remedy, seed=seed)
        for key in R.OVERFITTING_KEYS:
            assert stacked[k][key] == pytest.approx(one[key], abs=1e-6), key


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
    import dataclasses

    import torch

    config = dataclasses.replace(R.base_config("overfitting"), lr=2.0, patience=3)
    data = R._data(config, torch.device("cpu"))
    ens = R._ensemble(config, [0, 3], torch.device("cpu"))
    diverged, _, stopped = R._train_ensemble(ens, data, config, [0, 3])
    assert diverged == [None, None] and max(stopped) < config.steps
    with torch.no_grad():
        test = (R._stacked_forward(ens.params, data.test[0], config, training=False).argmax(-1)
                == data.test[1]).float().mean(1).tolist()
    for k, seed in enumerate([0, 3]):
        model = R._model(config, seed, torch.device("cpu"))
        history = R._train(model, data, config, seed)
        assert stopped[k] == history.stopped_epoch
        assert test[k] == pytest.approx(R._accuracies(model, data)[1], abs=1e-6)
