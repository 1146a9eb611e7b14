"""Cheap, seeded experiments that test the ten remedies of seed 002 against three problems.

The untitled article on exploding gradients and regularization (seed 002) lists ten remedies
for exploding gradients without testing any. This module runs each remedy as one change to a
baseline configuration, in three settings, and returns measured numbers:

* ``"exploding"``: a tanh MLP (:math:`L = 16`, width 32, weights :math:`\\mathcal N(0, 4^2/n)`) on
  128 digit images, trained by full-batch SGD (:math:`\\eta = 0.3`, :data:`GRADIENT_STEPS`
  steps); its gradient grows from the output to the input, :math:`g_1/g_{L+1} \\gg 1` at
  step 0, and within a few steps the saturated network's ratio collapses far below 1.
* ``"vanishing"``: the same network with sigmoid and :math:`\\mathcal N(0, 1/n)`, :math:`\\eta = 1`:
  :math:`g_1/g_{L+1} \\ll 1` and the loss hardly moves.
* ``"overfitting"``: a tanh MLP (:math:`L = 2`, width 128, :math:`\\mathcal N(0, 1/n)`) on 50
  digit images, 60 full-batch SGD steps with :math:`\\eta = 0.3`; its training accuracy
  reaches 100% while its test accuracy does not.

Baselines use the raw pixels in [0, 1] (so that "data normalization" is a change) and plain
full-batch SGD (so that the distributed run, which uses the same SGD, is comparable).

The ten remedies, in the article's order (:data:`REMEDIES`): ``activation`` (ReLU instead of
the saturating activation, same weight scale), ``initialization`` (He/Kaiming normal with the
activation's gain), ``learning_rate`` (divided by 10), ``dropout`` (:math:`p = 0.5` after every
hidden activation), ``smaller_network`` (depth and width divided by 4), ``data_normalization``
(standardized pixels), ``l2`` (an L2 penalty :math:`\\tfrac{\\lambda}{2}\\lVert w\\rVert^2`; in
the gradient settings :math:`\\lambda = 0.05/\\eta`, so that every step multiplies the weights by
:math:`1 - \\eta\\lambda = 0.95`, the shrinkage of :math:`\\lambda = 1` at :math:`\\eta = 0.05` in the
chapter on L1/L2 and explosion; :math:`\\lambda = 10^{-2}` against overfitting), ``early_stopping`` (patience 3 on the validation loss, best weights
restored), ``distributed`` (data-parallel SGD; :func:`distributed_experiments` runs real DDP on
2 processes, :mod:`companion.distributed`, while the multi-seed functions use the baseline's run,
whose full-batch gradient DDP reproduces) and ``clipping``
(``clip_grad_norm_`` at 1). One extra (:data:`EXTRA_REMEDIES`): ``augmentation``, random shifts
of the images by up to one pixel (:mod:`companion.augment`), which the article describes as a
regularizer but does not list.

:func:`gradient_experiment` and :func:`gradient_trials` return one :class:`GradientOutcome` per
seed, :func:`overfitting_experiment` and :func:`overfitting_trials` one :class:`OverfittingOutcome`.
:func:`classify_gradient` and :func:`classify_overfitting` turn an outcome and its baseline's
into one of :data:`VERDICTS` by fixed, documented thresholds. The gradient verdict is about
what training does: whether the network trains (:func:`trains`) and whether
:math:`\\rho = g_1/g_{L+1}` stays balanced over the steps it trains (:func:`median_ratio`,
:func:`balanced`).

A verdict must hold for more than one random draw. :func:`gradient_experiment` and
:func:`overfitting_experiment` run one seed (with ``companion.training.fit``);
:func:`gradient_trials`, :func:`overfitting_trials` and :func:`run_all` run several seeds at
once as one stacked network (the weights of all seeds stacked along a first dimension, one
batched matrix product per layer), member k starting from seed k's initial weights and
following the same SGD; :func:`verdicts` judges each seed against the same seed's baseline,
and :func:`verdict_markdown` reports the counts and ranges.

See the chapter "The verdict".
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from ._checks import check_choice, check_int
from .reproducibility import generator as _generator

__all__ = [
    "REMEDIES",
    "EXTRA_REMEDIES",
    "SETTINGS",
    "VERDICTS",
    "Config",
    "GradientOutcome",
    "OverfittingOutcome",
    "Outcome",
    "base_config",
    "apply_remedy",
    "gradient_experiment",
    "overfitting_experiment",
    "distributed_experiments",
    "classify_gradient",
    "GRADIENT_STEPS",
    "TRAIN_ACCURACY_BAR",
    "LOSS_WORSE_FACTOR",
    "median_ratio",
    "balanced",
    "trains",
    "classify_overfitting",
    "gradient_trials",
    "overfitting_trials",
    "run_all",
    "LABELS",
    "NAMES",
    "majority",
    "verdicts",
    "verdict_markdown",
]

#: The ten remedies of seed 002, in the article's order (keys of :func:`apply_remedy`).
REMEDIES = (
    "activation",
    "initialization",
    "learning_rate",
    "dropout",
    "smaller_network",
    "data_normalization",
    "l2",
    "early_stopping",
    "distributed",
    "clipping",
)
#: Remedies the article describes but does not list among the ten (measured as an extra row).
EXTRA_REMEDIES = ("augmentation",)
#: The three problems each remedy is tested against.
SETTINGS = ("exploding", "vanishing", "overfitting")
#: Row labels of the verdict table, remedy key -> text.
LABELS = {
    "activation": "1. ReLU instead of a saturating activation",
    "initialization": "2. Xavier/He initialization",
    "learning_rate": "3. smaller learning rate (/10)",
    "dropout": "4. dropout (p = 0.5)",
    "smaller_network": "5. smaller network (depth, width /4)",
    "data_normalization": "6. data normalization",
    "l2": "7. L2 penalty (weights ×0.95 per step; λ = 0.01 vs overfitting)",
    "early_stopping": "8. early stopping (patience 3)",
    "distributed": "9. distributed training (same gradient as 1 process)",
    "clipping": "10. gradient clipping (norm 1)",
    "augmentation": "extra: data augmentation (random shifts of 1 pixel)",
}
#: Short names of the remedies for running text, remedy key -> name (the label without its
#: number and its parenthesis).
NAMES = {
    "activation": "ReLU instead of a saturating activation",
    "initialization": "Xavier/He initialization",
    "learning_rate": "smaller learning rate",
    "dropout": "dropout",
    "smaller_network": "smaller network",
    "data_normalization": "data normalization",
    "l2": "L2 penalty",
    "early_stopping": "early stopping",
    "distributed": "distributed training",
    "clipping": "gradient clipping",
    "augmentation": "augmentation",
}
#: The four possible verdicts of :func:`classify_gradient` and :func:`classify_overfitting`.
VERDICTS = ("fixes", "partly", "no effect", "makes worse")

#: Number of full-batch SGD steps in the exploding and vanishing settings. The exploding baseline's
#: ratio collapses within about 20 steps, and 40 steps of 22 configurations x 5 seeds fit the chapter's budget.
GRADIENT_STEPS = 40
#: The bar of :func:`trains`, a training accuracy measured in evaluation mode after training.
#: Chance is 0.1, and predicting the most frequent class of the 128 images gives 0.13 to 0.15.
TRAIN_ACCURACY_BAR = 0.25
#: A final training loss above this factor times the baseline's is "makes worse" in :func:`classify_gradient`.
LOSS_WORSE_FACTOR = 1.25


@dataclass(frozen=True)
class Config:
    """One experiment: the network, the data and the training loop."""

    activation: str
    init: str
    c: float | None  # weights N(0, c^2/n) when init == "normal"
    depth: int
    width: int
    lr: float
    steps: int
    n_train: int
    standardize: bool = False
    dropout: float = 0.0
    l2: float = 0.0
    patience: int | None = None
    clip_norm: float | None = None
    augment: bool = False
    l2_remedy: float = 1e-2  # the strength the "l2" remedy sets


@dataclass(frozen=True)
class GradientOutcome:
    """What one training run of the exploding or vanishing setting measured (one seed).

    :math:`\\rho = g_1/g_{L+1}` is the ratio of the Frobenius norms
    :math:`g_\\ell = \\lVert\\partial\\mathcal L/\\partial W_\\ell\\rVert_F` of the data loss's gradient
    at the first and the last weight matrix, before clipping and before a penalty's gradient
    is added. Losses are mean cross-entropies in nats (chance: :math:`\\ln 10 \\approx 2.30`),
    accuracies fractions in [0, 1].

    Attributes:
        ratio_init: :math:`\\rho` at step 0, the explosion (much above 1) or the vanishing
            (much below 1) itself.
        ratios: :math:`\\rho` at every step run, one entry per step in order, up to and
            including a diverged step (that entry may be NaN); with early stopping, the steps
            up to the stop.
        loss_init: the training loss at step 0 (training mode, before the first update).
        loss_final: the training loss of the trained network in evaluation mode (for early
            stopping, with the restored best weights); infinite if training diverged.
        train_accuracy: the training accuracy of the same network; NaN if training diverged.
        diverged_step: the step (0-based) at which the loss became NaN or infinite, or None.
    """

    ratio_init: float
    ratios: tuple[float, ...]
    loss_init: float
    loss_final: float
    train_accuracy: float
    diverged_step: int | None


@dataclass(frozen=True)
class OverfittingOutcome:
    """What one training run of the overfitting setting measured (one seed).

    Accuracies are fractions in [0, 1], measured in evaluation mode after training (for early
    stopping, with the restored best weights).

    Attributes:
        train_accuracy: accuracy on the 50 training images.
        test_accuracy: accuracy on the held-out test images.
        gap: train_accuracy minus test_accuracy (multiply by 100 for percentage points).
        epochs_run: full-batch SGD steps run (60 unless early stopping stopped sooner).
    """

    train_accuracy: float
    test_accuracy: float
    gap: float
    epochs_run: int


#: One seed's outcome, either kind (the values of the lists :func:`run_all` returns).
Outcome = GradientOutcome | OverfittingOutcome


def _overfitting_outcome(train: float, test: float, epochs_run: int) -> OverfittingOutcome:
    return OverfittingOutcome(train_accuracy=train, test_accuracy=test, gap=train - test, epochs_run=epochs_run)


def _check_outcome(name: str, value: object, kind: type) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be of type {kind.__name__}, got {type(value).__name__}")


def base_config(setting: str) -> Config:
    """The baseline :class:`Config` of ``setting`` (one of :data:`SETTINGS`)."""
    setting = check_choice("setting", setting, SETTINGS)
    if setting == "exploding":
        return Config("tanh", "normal", 4.0, depth=16, width=32, lr=0.3, steps=GRADIENT_STEPS, n_train=128,
                      l2_remedy=0.05 / 0.3)
    if setting == "vanishing":
        return Config("sigmoid", "normal", 1.0, depth=16, width=32, lr=1.0, steps=GRADIENT_STEPS, n_train=128,
                      l2_remedy=0.05 / 1.0)
    return Config("tanh", "normal", 1.0, depth=2, width=128, lr=0.3, steps=60, n_train=50)


def apply_remedy(config: Config, remedy: str | None) -> Config:
    """Return ``config`` changed by one remedy (``None``: unchanged); see the module docstring."""
    if remedy is None:
        return config
    remedy = check_choice("remedy", remedy, REMEDIES + EXTRA_REMEDIES)
    if remedy == "activation":
        return replace(config, activation="relu")
    if remedy == "initialization":
        return replace(config, init="kaiming", c=None)
    if remedy == "learning_rate":
        return replace(config, lr=config.lr / 10)
    if remedy == "dropout":
        return replace(config, dropout=0.5)
    if remedy == "smaller_network":
        return replace(config, depth=max(1, config.depth // 4), width=max(1, config.width // 4))
    if remedy == "data_normalization":
        return replace(config, standardize=True)
    if remedy == "l2":
        return replace(config, l2=config.l2_remedy)
    if remedy == "early_stopping":
        return replace(config, patience=3)
    if remedy == "clipping":
        return replace(config, clip_norm=1.0)
    if remedy == "augmentation":
        return replace(config, augment=True)
    return config  # "distributed" changes how the gradient is computed, not the config


@functools.lru_cache(maxsize=8)
def _digits(n_train: int, standardize: bool):
    from .data import digits

    return digits(n_train=n_train, standardize=standardize, seed=0)


def _data(config: Config, device: torch.device):
    # Cached: the same split is used by many experiments and is never modified.
    return _digits(config.n_train, config.standardize).to(device)


def _model(config: Config, seed: int, device: torch.device) -> nn.Module:
    from .models import mlp
    from .reproducibility import seed_everything

    seed_everything(seed)
    std = None if config.c is None else config.c / math.sqrt(config.width)
    model = mlp(64, 10, depth=config.depth, width=config.width, activation=config.activation,
                init=config.init, std=std, dropout=config.dropout)
    return model.to(device)


def _augmenter(config: Config, seed: int):
    """Random shifts by up to one pixel, drawn from a seeded generator (``None`` if off)."""
    if not config.augment:
        return None
    from .augment import augment_batch

    generator = _generator(seed)
    return lambda xb: augment_batch(xb, max_shift=1, image_shape=(8, 8), generator=generator)


def _device(device: torch.device | str | None) -> torch.device:
    return torch.device("cpu") if device is None else torch.device(device)


def _train_loss(model: nn.Module, data) -> float:
    from .training import evaluate

    return evaluate(model, data.train, nn.CrossEntropyLoss())[0]


def _gradient_result(ratios: list[float], losses: list[float], diverged: int | None,
                     loss_final: float, train_accuracy: float) -> GradientOutcome:
    loss_final = loss_final if diverged is None and math.isfinite(loss_final) else math.inf
    if diverged is not None:
        ratios = ratios[:diverged + 1]  # the ratio at the step that diverged is still reported (may be NaN)
    return GradientOutcome(
        ratio_init=ratios[0],
        ratios=tuple(ratios),
        loss_init=losses[0],
        loss_final=loss_final,
        train_accuracy=train_accuracy if diverged is None else math.nan,
        diverged_step=diverged,
    )


class _RatioMonitor:
    """``fit``'s monitor: :math:`g_1/g_{L+1}` of the data loss after every backward pass."""

    def __init__(self, model: nn.Module) -> None:
        self.first, self.last = model.linears[0].weight, model.linears[-1].weight
        self.ratios: list[float] = []

    def record(self, step: int) -> None:
        self.ratios.append((self.first.grad.norm() / self.last.grad.norm()).item())


def gradient_experiment(
    setting: str,
    remedy: str | None = None,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> GradientOutcome:
    """Train the ``setting``'s network with one remedy and measure its gradients.

    Trains full-batch for ``config.steps`` steps (the companion's ``fit``, with
    ``on_divergence="record"``) and records, after every backward pass, the ratio
    :math:`\\rho = g_1/g_{L+1}` of :math:`g_\\ell = \\lVert\\partial\\mathcal L/\\partial W_\\ell\\rVert_F`
    of the data loss (before clipping and before a penalty's gradient is added).

    Args:
        setting: ``"exploding"`` or ``"vanishing"``.
        remedy: one of :data:`REMEDIES` except ``"distributed"`` (see
            :func:`distributed_experiments`), or ``None`` for the baseline.
        seed: seeds the weights (and dropout masks).
        device: where to run (default CPU).

    Returns:
        The run's :class:`GradientOutcome`.
    """

    setting = check_choice("setting", setting, ("exploding", "vanishing"))
    if remedy == "distributed":
        raise ValueError("remedy 'distributed' runs in distributed_experiments(), which starts the processes once")
    seed = check_int("seed", seed, minimum=0)
    device = _device(device)
    config = apply_remedy(base_config(setting), remedy)
    data = _data(config, device)
    model = _model(config, seed, device)
    monitor = _RatioMonitor(model)
    history = _train(model, data, config, seed, monitor=monitor)
    return _gradient_result(monitor.ratios, history.step_loss, history.diverged_step,
                            _train_loss(model, data), _accuracies(model, data)[0])


def _train(model: nn.Module, data, config: Config, seed: int, monitor=None):
    """Full-batch SGD on the setting's training data with the remedy's options; divergence recorded."""
    from .training import fit

    return fit(
        model, data.train, loss_fn=nn.CrossEntropyLoss(), epochs=config.steps,
        optimizer=torch.optim.SGD(model.parameters(), lr=config.lr),
        val=data.val if config.patience else None, patience=config.patience,
        l2=config.l2, clip_norm=config.clip_norm, on_divergence="record", seed=seed,
        augment=_augmenter(config, seed), monitor=monitor,
    )


def _accuracies(model: nn.Module, data) -> tuple[float, float]:
    from .training import evaluate

    loss_fn = nn.CrossEntropyLoss()
    train = evaluate(model, data.train, loss_fn, metric="accuracy")[1]
    test = evaluate(model, data.test, loss_fn, metric="accuracy")[1]
    return train, test


def overfitting_experiment(
    remedy: str | None = None,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> OverfittingOutcome:
    """Train the overfitting setting's network with one remedy; measure train and test accuracy.

    Args:
        remedy: one of :data:`REMEDIES` except ``"distributed"``, or ``None`` for the baseline.
        seed: seeds the weights (and dropout masks).
        device: where to run (default CPU).

    Returns:
        The run's :class:`OverfittingOutcome`.
    """

    if remedy == "distributed":
        raise ValueError("remedy 'distributed' runs in distributed_experiments(), which starts the processes once")
    seed = check_int("seed", seed, minimum=0)
    device = _device(device)
    config = apply_remedy(base_config("overfitting"), remedy)
    data = _data(config, device)
    model = _model(config, seed, device)
    history = _train(model, data, config, seed)
    train, test = _accuracies(model, data)
    return _overfitting_outcome(train, test, history.stopped_epoch)


def distributed_experiments(
    *, seed: int = 0, world_size: int = 2, start_method: str = "auto"
) -> dict[str, Outcome]:
    """Run the three baselines data-parallel (real gloo DDP), in one start of the processes.

    Each rank gets an equal shard of the full batch; the gradient after the all-reduce is
    the full-batch gradient (:mod:`companion.distributed`), so the runs are the baselines'
    SGD runs computed by ``world_size`` processes.

    ``start_method`` is passed to :func:`companion.distributed.run_jobs`; ``"auto"`` forks
    (a fraction of a second) on a POSIX machine without CUDA and spawns otherwise.

    Returns:
        A dict with the keys ``"exploding"`` and ``"vanishing"`` (each a
        :class:`GradientOutcome`) and ``"overfitting"`` (an :class:`OverfittingOutcome`).
    """
    from .distributed import DataParallelJob, run_jobs

    seed = check_int("seed", seed, minimum=0)
    world_size = check_int("world_size", world_size, minimum=1)
    cpu = torch.device("cpu")
    jobs, splits, models = [], {}, {}
    for setting in SETTINGS:
        config = base_config(setting)
        data = _data(config, cpu)
        X, y = data.train
        usable = len(X) - len(X) % world_size  # equal shards
        splits[setting] = data
        models[setting] = _model(config, seed, cpu)
        jobs.append(DataParallelJob(copy.deepcopy(models[setting]), X[:usable], y[:usable],
                                    loss_fn="cross_entropy", steps=config.steps, lr=config.lr))
    results = dict(zip(SETTINGS, run_jobs(jobs, world_size=world_size, start_method=start_method)))
    out: dict[str, Outcome] = {}
    for setting in ("exploding", "vanishing"):
        res = results[setting]
        models[setting].load_state_dict(res.state_dict)
        ratios = [float(g[0] / g[-1]) for g in res.step_weight_grad_norms]
        out[setting] = _gradient_result(ratios, res.losses, res.diverged_step,
                                        _train_loss(models[setting], splits[setting]),
                                        _accuracies(models[setting], splits[setting])[0])
    model = models["overfitting"]
    model.load_state_dict(results["overfitting"].state_dict)
    train, test = _accuracies(model, splits["overfitting"])
    out["overfitting"] = _overfitting_outcome(train, test, len(results["overfitting"].losses))
    return out


def _log_ratio(r: float) -> float:
    return math.log10(r) if r > 0 and math.isfinite(r) else (math.inf if r == math.inf else -math.inf)


def median_ratio(result: GradientOutcome) -> float:
    """The median of :math:`\\rho = g_1/g_{L+1}` over the steps recorded in ``result.ratios``.

    The median of :math:`\\log_{10}\\rho` (the geometric middle, so that 100 and 0.01 are equally
    far from balance); NaN entries (a diverged step) are left out; a ratio of 0 (the first
    layer's gradient underflowed) counts as :math:`-\\infty`. ``nan`` if no step is left.
    """
    _check_outcome("result", result, GradientOutcome)
    logs = sorted(_log_ratio(r) for r in result.ratios if not math.isnan(r))
    if not logs:
        return math.nan
    mid = len(logs) // 2
    m = logs[mid] if len(logs) % 2 else (logs[mid - 1] + logs[mid]) / 2
    return 10.0 ** m if math.isfinite(m) else (math.inf if m == math.inf else 0.0)


def balanced(result: GradientOutcome) -> bool:
    """Whether the gradient stayed balanced while training: :math:`0.1 \\le` :func:`median_ratio` :math:`\\le 10`."""
    m = median_ratio(result)
    return 0.1 <= m <= 10


def trains(result: GradientOutcome) -> bool:
    """Whether the network trained: no divergence and training accuracy >= :data:`TRAIN_ACCURACY_BAR`."""
    _check_outcome("result", result, GradientOutcome)
    return result.diverged_step is None and result.train_accuracy >= TRAIN_ACCURACY_BAR


def classify_gradient(setting: str, baseline: GradientOutcome, result: GradientOutcome) -> str:
    """Verdict of a remedy on ``"exploding"`` or ``"vanishing"``: what training did, against the same seed's baseline.

    Two questions a practitioner asks, both measured over the training run (:func:`trains`,
    :func:`balanced`): does the network train (training accuracy at least
    :data:`TRAIN_ACCURACY_BAR` after the run, no NaN/Inf), and does the gradient stay balanced
    while it trains (the median over the steps of :math:`\\rho = g_1/g_{L+1}` within
    :math:`[0.1, 10]`)?

    * **makes worse**: training diverged (NaN/Inf) where the baseline did not, or it trains
      worse: the final training loss exceeds :data:`LOSS_WORSE_FACTOR` times the baseline's;
    * **fixes**: it trains and the gradient stays balanced;
    * **partly**: one of the two holds where the baseline's run lacks it;
    * **no effect**: anything else.

    Raises:
        TypeError: if ``baseline`` or ``result`` is not a :class:`GradientOutcome`.
    """
    setting = check_choice("setting", setting, ("exploding", "vanishing"))
    _check_outcome("baseline", baseline, GradientOutcome)
    _check_outcome("result", result, GradientOutcome)
    if result.diverged_step is not None and baseline.diverged_step is None:
        return "makes worse"
    if result.loss_final > LOSS_WORSE_FACTOR * baseline.loss_final:
        return "makes worse"
    t, b = trains(result), balanced(result)
    if t and b:
        return "fixes"
    if (t and not trains(baseline)) or (b and not balanced(baseline)):
        return "partly"
    return "no effect"


def classify_overfitting(baseline: OverfittingOutcome, result: OverfittingOutcome) -> str:
    """Verdict of a remedy on overfitting from test accuracy and train-test gap.

    With :math:`\\Delta` = change of test accuracy in percentage points and :math:`q` = gap /
    baseline gap:

    * **makes worse**: :math:`\\Delta \\le -2`;
    * **fixes**: :math:`\\Delta \\ge 2` and :math:`q \\le 0.5`;
    * **partly**: :math:`\\Delta \\ge 1`, or :math:`q \\le 0.8` with :math:`\\Delta > -1`;
    * **no effect**: anything else.

    Raises:
        TypeError: if ``baseline`` or ``result`` is not an :class:`OverfittingOutcome`.
    """
    _check_outcome("baseline", baseline, OverfittingOutcome)
    _check_outcome("result", result, OverfittingOutcome)
    delta = 100 * (result.test_accuracy - baseline.test_accuracy)
    q = result.gap / baseline.gap if baseline.gap > 0 else math.inf
    if delta <= -2:
        return "makes worse"
    if delta >= 2 and q <= 0.5:
        return "fixes"
    if delta >= 1 or (q <= 0.8 and delta > -1):
        return "partly"
    return "no effect"


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = [check_int("seeds[i]", s, minimum=0) for s in seeds]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must hold at least 2 distinct seeds, got {seeds}")
    return seeds


def _ensemble(config: Config, seeds: list[int], device: torch.device):
    """One member per seed, each with the initial weights :func:`_model` gives that seed."""
    from .ensemble import build
    from .models import mlp

    std = None if config.c is None else config.c / math.sqrt(config.width)
    return build(lambda: mlp(64, 10, depth=config.depth, width=config.width, activation=config.activation,
                             init=config.init, std=std, dropout=config.dropout), seeds, device=device)


_PHI = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}


def _stacked_forward(params: dict[str, torch.Tensor], x: torch.Tensor, config: Config, *,
                     training: bool) -> torch.Tensor:
    """Logits of every member, shape ``(K, batch, 10)``: ``companion.models.MLP.forward`` on stacked weights.

    ``x`` is ``(batch, 64)`` (the same inputs for every member) or ``(K, batch, 64)``. One
    batched matrix product per layer (``baddbmm``) instead of ``vmap`` over the module: the
    same arithmetic at about half the per-step cost for these small networks (tested
    against single runs). In training mode each member draws its own dropout mask.
    """
    weights = [params[f"linears.{l}.weight"] for l in range(config.depth + 1)]
    biases = [params[f"linears.{l}.bias"] for l in range(config.depth + 1)]
    h = x.expand(len(weights[0]), -1, -1) if x.dim() == 2 else x
    for l, (w, b) in enumerate(zip(weights, biases)):
        h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        if l < config.depth:
            h = _PHI[config.activation](h)
            if config.dropout and training:
                h = nn.functional.dropout(h, config.dropout, training=True)
    return h


def _member_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's mean cross-entropy, shape ``(K,)``."""
    k, n = logits.shape[:2]
    return nn.functional.cross_entropy(logits.reshape(k * n, -1), y.repeat(k), reduction="none").view(k, n).mean(1)


def _train_ensemble(ens, data, config: Config, seeds: list[int]) -> tuple[list[int | None], torch.Tensor, list[int]]:
    """Full-batch SGD for every member at once: the batched counterpart of :func:`_train`.

    One step per member is what ``fit`` does for one model: data loss, backward, the
    remedy's clipping (per member, as ``clip_grad_norm_``), the SGD update
    :math:`\\theta \\leftarrow \\theta - \\eta\\,(g + \\lambda w)` with the L2 penalty's gradient
    :math:`\\lambda w` on the weight matrices only (as ``fit(..., l2=)``; written out rather
    than built with ``torch.optim.SGD``, whose first construction imports ``torch._dynamo``,
    seconds on a small machine), and with ``patience`` early stopping on the validation loss with
    the best weights restored (the rule of :mod:`companion.trials`). A member whose loss turns
    non-finite is reported with that step; its weights are then left as they are.

    Returns:
        ``(diverged_step per member, data loss per step and member (steps, K), steps run per member)``.
    """
    from .augment import augment_batch
    from .ensemble import clip_factors, member_grad_norms
    from .trials import _Stopper

    x, y = data.train
    params = ens.params
    weights = [p for name, p in params.items() if name.endswith("weight")]
    others = [p for name, p in params.items() if not name.endswith("weight")]
    generators = [_generator(s) for s in seeds] if config.augment else None
    stopper = _Stopper(ens, config.patience) if config.patience else None
    alive = torch.ones(len(seeds), dtype=torch.bool, device=x.device)
    losses, ratios = [], []
    for step in range(config.steps):
        xb = x if generators is None else torch.stack(  # every member sees its own random shifts
            [augment_batch(x, max_shift=1, image_shape=(8, 8), generator=g) for g in generators])
        loss = _member_losses(_stacked_forward(params, xb, config, training=True), y)
        alive = alive & torch.isfinite(loss)
        # Members share no parameter: d(sum of losses)/d(member k) is member k's own gradient.
        # A diverged member's non-finite weights stay its own; it is reported and left alone.
        torch.where(alive, loss, 0.0).sum().backward()
        # rho = g_1/g_{L+1} of the data loss at this step, per member (before clipping and the
        # penalty's gradient): two norms per member, kept on the device until the end.
        ratios.append(params["linears.0.weight"].grad.flatten(1).norm(dim=1)
                      / params[f"linears.{config.depth}.weight"].grad.flatten(1).norm(dim=1))
        if config.clip_norm is not None:  # per member, the factor clip_grad_norm_ would apply
            scale = clip_factors(member_grad_norms(list(params.values())), config.clip_norm)
            for p in params.values():
                p.grad *= scale.view((-1,) + (1,) * (p.dim() - 1))
        with torch.no_grad():  # plain SGD, as torch.optim.SGD(weight_decay=l2 on the weights) computes it
            for p in weights:
                p.add_(p.grad.add(p, alpha=config.l2) if config.l2 else p.grad, alpha=-config.lr)
            for p in others:
                p.add_(p.grad, alpha=-config.lr)
        for p in params.values():
            p.grad = None
        losses.append(torch.where(alive, loss.detach(), math.nan))
        if stopper is not None:
            with torch.no_grad():
                val = _member_losses(_stacked_forward(params, data.val[0], config, training=False), data.val[1])
            stopper.update(step, val, ens)
            if not bool(stopper.active.any()):  # one host sync per step, only when stopping early
                break
    if stopper is not None:
        stopper.restore(ens)
        stopped = stopper.stopped.tolist()
    else:
        stopped = [len(losses)] * len(seeds)
    loss = torch.stack(losses).cpu()  # the one host synchronisation of the run
    ratio = torch.stack(ratios).cpu()
    finite = torch.isfinite(loss)
    diverged = [None if bool(finite[:, k].all()) else int((~finite[:, k]).nonzero()[0]) for k in range(len(seeds))]
    return diverged, loss, stopped, ratio


def gradient_trials(
    setting: str,
    remedy: str | None = None,
    *,
    seeds: Sequence[int] = range(5),
    device: torch.device | str | None = None,
) -> list[GradientOutcome]:
    """:func:`gradient_experiment` for several seeds at once, as one stacked ensemble.

    Member k starts from the initial weights of ``gradient_experiment(setting, remedy,
    seed=seeds[k])`` and trains by the same full-batch SGD; the ratio
    :math:`\\rho = g_1/g_{L+1}` of the data loss is recorded at every step on the device (two
    norms per member and step, one host synchronisation at the end); with early stopping,
    the steps up to the member's stop. In training mode each member draws its own dropout
    mask. ``"distributed"`` runs the baseline's SGD: data-parallel training computes the same
    full-batch gradient as one process (chapter "Distributed training"), so its results are
    the baseline's.

    Returns:
        One :class:`GradientOutcome` per seed, in the order of ``seeds``.
    """
    setting = check_choice("setting", setting, ("exploding", "vanishing"))
    seeds = _check_seeds(seeds)
    device = _device(device)
    config = apply_remedy(base_config(setting), remedy)
    data = _data(config, device)
    ens = _ensemble(config, seeds, device)
    x, y = data.train
    diverged, step_loss, stopped, ratio = _train_ensemble(ens, data, config, seeds)
    with torch.no_grad():
        logits = _stacked_forward(ens.params, x, config, training=False)
        final = _member_losses(logits, y).tolist()
        accuracy = (logits.argmax(-1) == y).float().mean(1).tolist()
    return [_gradient_result(ratio[:stopped[k], k].tolist(), step_loss[:, k].tolist(), diverged[k],
                             final[k], accuracy[k])
            for k in range(len(seeds))]


def overfitting_trials(
    remedy: str | None = None,
    *,
    seeds: Sequence[int] = range(6),
    device: torch.device | str | None = None,
) -> list[OverfittingOutcome]:
    """:func:`overfitting_experiment` for several seeds at once, as one stacked ensemble.

    Member k starts from the initial weights of ``overfitting_experiment(remedy,
    seed=seeds[k])``; the training is the same full-batch SGD (dropout masks and shifts are
    drawn per member, so those two remedies follow other random draws than a single run).
    ``"distributed"`` is the baseline's run (see :func:`gradient_trials`).

    Returns:
        One :class:`OverfittingOutcome` per seed, in the order of ``seeds``.
    """
    seeds = _check_seeds(seeds)
    device = _device(device)
    config = apply_remedy(base_config("overfitting"), remedy)
    data = _data(config, device)
    ens = _ensemble(config, seeds, device)
    _, _, stopped, _ = _train_ensemble(ens, data, config, seeds)
    with torch.no_grad():
        train, test = ((_stacked_forward(ens.params, xs, config, training=False).argmax(-1) == ys).float().mean(1).tolist()
                       for xs, ys in (data.train, data.test))
    return [_overfitting_outcome(train[k], test[k], stopped[k]) for k in range(len(seeds))]


def run_all(
    *,
    seeds: Sequence[int] = range(5),
    overfitting_seeds: Sequence[int] = range(6),
    device: torch.device | str | None = None,
) -> dict[str, dict[str, list[Outcome]]]:
    """Every remedy in every setting, plus the baselines, over several seeds: the verdict table's data.

    Args:
        seeds: the seeds of the exploding and vanishing settings (two or more).
        overfitting_seeds: the seeds of the overfitting setting, whose test accuracy varies
            more from seed to seed.
        device: where to run (default CPU).

    Returns:
        ``{"baseline": {setting: [outcome per seed]}, remedy: {setting: [...]}, ...}`` with one
        entry per remedy in :data:`REMEDIES` and :data:`EXTRA_REMEDIES`: the lists of
        :class:`GradientOutcome` of :func:`gradient_trials` for ``"exploding"`` and
        ``"vanishing"``, of :class:`OverfittingOutcome` of :func:`overfitting_trials` for
        ``"overfitting"``.
    """
    out: dict[str, dict[str, list[Outcome]]] = {}
    for remedy in (None, *REMEDIES, *EXTRA_REMEDIES):
        key = "baseline" if remedy is None else remedy
        if remedy == "distributed":  # the baseline's runs: same full-batch gradient, same SGD
            out[key] = copy.deepcopy(out["baseline"])
            continue
        out[key] = {s: gradient_trials(s, remedy, seeds=seeds, device=device) for s in ("exploding", "vanishing")}
        out[key]["overfitting"] = overfitting_trials(remedy, seeds=overfitting_seeds, device=device)
    return out


def verdicts(results: dict[str, dict[str, list[Outcome]]]) -> dict[str, dict[str, list[str]]]:
    """``{remedy: {setting: [verdict per seed]}}`` for the output of :func:`run_all`.

    Seed k of a remedy is judged against seed k of the baseline (same initial weights
    wherever the remedy leaves the network unchanged).
    """
    base = results["baseline"]
    out = {}
    for remedy in [r for r in REMEDIES + EXTRA_REMEDIES if r in results]:
        r = results[remedy]
        out[remedy] = {s: [classify_gradient(s, b, x) for b, x in zip(base[s], r[s], strict=True)]
                       for s in ("exploding", "vanishing")}
        out[remedy]["overfitting"] = [classify_overfitting(b, x)
                                      for b, x in zip(base["overfitting"], r["overfitting"], strict=True)]
    return out


def majority(per_seed: Sequence[str]) -> tuple[str, int]:
    """The verdict most seeds reached and how many reached it (ties: the first in :data:`VERDICTS`)."""
    if not per_seed:
        raise ValueError("per_seed must hold at least one verdict")
    counts = {v: list(per_seed).count(v) for v in VERDICTS}
    best = max(VERDICTS, key=lambda v: counts[v])  # max keeps the first of equal counts
    return best, counts[best]


def _range(values: Sequence[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}–{format(hi, fmt)}"


def _cell(setting: str, results: list[Outcome]) -> str:
    if setting == "overfitting":
        return (f"test {_range([100 * r.test_accuracy for r in results], '.0f')}%, "
                f"gap {_range([100 * r.gap for r in results], '.0f')}")
    n = len(results)
    alive = [r for r in results if r.diverged_step is None]
    text = (f"trains {sum(trains(r) for r in results)}/{n}"
            + (f" (acc {_range([100 * r.train_accuracy for r in alive], '.0f')}%)" if alive else "")
            + f", balanced {sum(balanced(r) for r in results)}/{n} "
            f"(median ρ {_range([median_ratio(r) for r in results], '.2g')})")
    if len(alive) < n:
        steps = _range([r.diverged_step for r in results if r.diverged_step is not None], "d")
        text += f", NaN {n - len(alive)}/{n} at step {steps}"
    return text


def _verdict_cell(per_seed: list[str]) -> str:
    counts = [(v, per_seed.count(v)) for v in VERDICTS if per_seed.count(v)]
    counts.sort(key=lambda vc: -vc[1])  # stable: ties keep the order of VERDICTS
    first, *rest = counts
    return f"**{first[0]}** {first[1]}/{len(per_seed)}" + "".join(f", {v} {c}" for v, c in rest)


def verdict_markdown(results: dict[str, dict[str, list[Outcome]]]) -> str:
    """The verdict table as Markdown: one row per remedy, each cell the verdicts' counts and the measured range.

    A gradient cell reads e.g. "**fixes** 4/5, partly 1 (trains 4/5 (acc 20–52%), balanced 5/5
    (median ρ 1.2–4.4))": four of five seeds reached "fixes", one "partly"; four seeds reached
    :data:`TRAIN_ACCURACY_BAR`, the training accuracies ranged from 20% to 52%; the median over
    the training steps of :math:`\\rho = g_1/g_{L+1}` was within :math:`[0.1, 10]` in all five
    and ranged from 1.2 to 4.4. ", NaN k/n at step s" counts the diverged seeds. Overfitting
    cells give the range of the test accuracy and of the train-test gap in percentage points.
    The first row is the baseline.
    """
    table = verdicts(results)
    lines = ["| remedy (seed 002) | exploding | vanishing | overfitting |", "| --- | --- | --- | --- |"]
    base = results["baseline"]
    lines.append("| baseline (no remedy) | " + " | ".join(_cell(s, base[s]) for s in SETTINGS) + " |")
    for remedy in table:
        cells = [f"{_verdict_cell(table[remedy][s])} ({_cell(s, results[remedy][s])})" for s in SETTINGS]
        lines.append(f"| {LABELS[remedy]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
