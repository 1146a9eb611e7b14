"""A small, readable training loop that refuses to train through a divergence.

:func:`fit` is the loop every chapter uses: mini-batch or full-batch training
with an optional L1/L2 penalty, a proximal L1 step, gradient clipping through
torch's own ``clip_grad_norm_``/``clip_grad_value_``, early stopping on the
validation loss (:class:`EarlyStopping`), a per-step gradient monitor and an
``after_step`` callback (e.g. a max-norm constraint). It is built from small
parts, one per stage of a step:

1. :func:`fit_options` checks every argument once and returns a :class:`FitOptions`;
   the data are checked before training (shapes, dtypes, NaN/Inf);
2. ``_batches`` yields the (shuffled) mini-batches of one epoch;
3. ``_train_step``: forward, ``backward()`` of the *data* loss, the monitor
   records (so it sees :math:`\\partial\\mathcal L/\\partial W` of the data loss
   alone), the penalty's gradient is added, clip, divergence check, optimizer step,
   proximal step, ``after_step``;
4. :class:`EarlyStopping` decides after each epoch, as
   ``torch.optim.lr_scheduler.ReduceLROnPlateau`` does for a learning rate.

It costs one device-to-host synchronisation per step: the step's loss and total
gradient norm are read together, which is also how a NaN/Inf is caught *before*
the optimizer step would spread it into the weights.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from ._checks import check_choice, check_int, check_nonnegative, check_positive
from .reproducibility import generator

__all__ = [
    "DivergenceError",
    "EarlyStopping",
    "FitOptions",
    "History",
    "accuracy",
    "evaluate",
    "fit",
    "fit_options",
]

Pair = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class DivergenceError(RuntimeError):
    """Raised by :func:`fit` when the loss or the gradient norm becomes NaN or infinite.

    Attributes:
        step: the optimizer step (0-based) at which the non-finite value appeared;
            that step's update was *not* applied.
        loss: the data loss at that step (may be ``nan`` or ``inf``).
        grad_norm: the total gradient 2-norm at that step, before clipping.
        parameter_norms: parameter name -> gradient 2-norm at that step (biases too).
    """

    def __init__(self, step: int, loss: float, grad_norm: float, parameter_norms: dict[str, float]):
        self.step = step
        self.loss = loss
        self.grad_norm = grad_norm
        self.parameter_norms = parameter_norms
        largest = sorted(parameter_norms.items(), key=lambda kv: -_sort_key(kv[1]))[:3]
        shown = ", ".join(f"{name}={value:.3g}" for name, value in largest)
        super().__init__(
            f"training diverged at step {step}: loss={loss:.4g}, gradient norm={grad_norm:.4g}"
            f" (largest parameter gradient norms: {shown}). Lower the learning rate, fix the"
            " initialization, or clip the gradient norm; fit(..., on_divergence='record')"
            " records the step instead of raising."
        )


def _sort_key(value: float) -> float:
    return math.inf if math.isnan(value) else value


@dataclass
class History:
    """What :func:`fit` measured. Per-epoch lists have one entry per completed epoch.

    Attributes:
        train_loss: mean data loss (penalty excluded) over each epoch's steps.
        val_loss: validation data loss after each epoch (empty without ``val``).
        train_metric, val_metric: the ``metric`` per epoch (empty without ``metric``).
        step_loss: data loss at every optimizer step.
        grad_norm: total gradient 2-norm at every step (data loss plus penalty, the
            gradient the optimizer receives), before clipping.
        diverged_step: the step at which the loss or gradient became non-finite
            (only with ``on_divergence="record"``), else ``None``.
        best_epoch: epoch (0-based) with the lowest validation loss, if ``val`` given.
        stopped_epoch: number of epochs actually run.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    diverged_step: int | None = None
    best_epoch: int | None = None
    stopped_epoch: int = 0

    @property
    def diverged(self) -> bool:
        """Whether training stopped on a non-finite loss or gradient."""
        return self.diverged_step is not None


class Recorder(Protocol):
    """What :func:`fit` needs of a monitor: ``record(step)`` right after the data loss's ``backward()``."""

    def record(self, step: int) -> None: ...


class EarlyStopping:
    """Stop when a watched value has not improved for ``patience`` checks.

    Shaped like ``torch.optim.lr_scheduler.ReduceLROnPlateau``: call :meth:`step`
    with the value after every epoch. With ``mode="min"`` a value :math:`v` improves
    on the best :math:`b` so far when

    .. math:: v < b - \\delta \\quad(\\texttt{mode="max"}: v > b + \\delta),

    with :math:`\\delta` = ``min_delta``; a NaN never improves. After ``patience``
    checks in a row without improvement, :meth:`step` returns ``True``.

    Args:
        mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
        patience: checks without improvement before stopping (>= 1), or ``None`` to
            only track the best value and never stop.
        min_delta: :math:`\\delta \\ge 0`, the least change that counts as improvement.

    Attributes:
        best: the best value so far (``inf`` for ``"min"``, ``-inf`` for ``"max"`` before the first).
        best_epoch: index (0-based) of the :meth:`step` call that gave ``best``, or ``None``.
        num_bad_epochs: checks since the last improvement.
        improved: whether the latest :meth:`step` improved on the best.

    Example:
        >>> stopper = EarlyStopping(patience=2)
        >>> [stopper.step(v) for v in (3.0, 2.0, 2.5, 2.1)]
        [False, False, False, True]
        >>> stopper.best, stopper.best_epoch
        (2.0, 1)
    """

    def __init__(self, mode: str = "min", patience: int | None = 10, min_delta: float = 0.0) -> None:
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.patience = None if patience is None else check_int("patience", patience, minimum=1)
        self.min_delta = check_nonnegative("min_delta", min_delta)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.num_bad_epochs = 0
        self.improved = False
        self._checks = 0

    def is_better(self, value: float) -> bool:
        """Whether ``value`` improves on :attr:`best` by more than ``min_delta``."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float) -> bool:
        """Record ``value``; return ``True`` when training should stop."""
        value = float(value)
        self.improved = self.is_better(value)
        if self.improved:
            self.best, self.best_epoch, self.num_bad_epochs = value, self._checks, 0
        else:
            self.num_bad_epochs += 1
        self._checks += 1
        return self.patience is not None and self.num_bad_epochs >= self.patience


def _correct_count(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of correct predictions, as a tensor (no host sync)."""
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        predicted = outputs.argmax(dim=1)
        return (predicted == y).sum()
    # A single logit per example: class 1 when the logit is positive.
    predicted = (outputs.reshape(-1) > 0).to(y.dtype)
    return (predicted == y.reshape(-1)).sum()


def _check_class_targets(name: str, y: torch.Tensor) -> None:
    """Accuracy compares predicted classes with class indices, never with one-hot rows."""
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(
            f"{name} must hold one class index per example (shape [n]) for metric='accuracy',"
            f" got shape {tuple(y.shape)} (one-hot or probabilities?): pass y.argmax(dim=1)"
        )


def accuracy(outputs: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correct predictions, always in ``[0, 1]``.

    Multi-class logits ``[n, K]`` (K > 1) are compared by ``argmax``; a single
    logit per example (``[n]`` or ``[n, 1]``) predicts class 1 when it is > 0.

    Args:
        outputs: the model's logits.
        y: class indices ``[n]`` (multi-class) or 0/1 labels (binary); not one-hot.
    """
    if len(outputs) != len(y):
        raise ValueError(f"outputs and y must have the same length, got {len(outputs)} and {len(y)}")
    if len(y) == 0:
        raise ValueError("y must contain at least one example, got an empty tensor")
    _check_class_targets("y", y)
    return _correct_count(outputs, y).item() / len(y)


def _check_pair(name: str, data: Any) -> Pair:
    if hasattr(data, "train") and hasattr(data, "val") and hasattr(data, "test"):
        advice = "pass split.train (and val=split.val)" if name == "train" else "pass one part, e.g. split.test"
        raise TypeError(
            f"{name} must be a pair (x, y) of tensors, got a {type(data).__name__} with parts"
            f" train/val/test: {advice}"
        )
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"{name} must be a pair (x, y) of tensors, got {type(data).__name__}")
    X, y = data
    if not (isinstance(X, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError(f"{name} must be a pair (x, y) of tensors, got ({type(X).__name__}, {type(y).__name__})")
    if len(X) != len(y):
        raise ValueError(f"{name}: X and y must have the same length, got {len(X)} and {len(y)}")
    if len(X) == 0:
        raise ValueError(f"{name} must contain at least one example")
    return X, y


def _input_features(model: nn.Module) -> int | None:
    """The number of input features ``model`` expects, where its first layer says so."""
    first = model[0] if isinstance(model, nn.Sequential) and len(model) > 0 else model
    features = getattr(first, "in_features", None)
    # 0: a lazy layer (nn.LazyLinear) that learns its size from the first batch
    return features if isinstance(features, int) and features > 0 else None


def _check_finite(name: str, tensor: torch.Tensor) -> None:
    if not tensor.is_floating_point():
        return
    bad = int((~torch.isfinite(tensor)).sum())  # one host sync, before training only
    if bad:
        raise ValueError(
            f"{name} holds {bad} non-finite values (NaN or Inf) out of {tensor.numel()}: the data,"
            " not the training, is broken; drop or repair those rows first"
            " (e.g. keep = torch.isfinite(x).all(dim=1))"
        )


def _check_data(name: str, data: Any, model: nn.Module, metric: str | None) -> Pair:
    """Check a pair before training: types, lengths, features, dtype, NaN/Inf, targets."""
    X, y = _check_pair(name, data)
    features = _input_features(model)
    if features is not None and (X.ndim < 2 or X.shape[-1] != features):
        hint = f": add the feature axis with x.reshape(-1, {features})" if X.ndim == 1 else ""
        raise ValueError(
            f"{name} x must have shape [n, {features}] (the model's first layer takes {features}"
            f" features), got shape {tuple(X.shape)}{hint}"
        )
    dtypes = [p.dtype for p in model.parameters() if p.is_floating_point()]
    if X.is_floating_point() and dtypes and X.dtype != dtypes[0]:
        raise TypeError(
            f"{name} x has dtype {X.dtype} but the model's parameters are {dtypes[0]}: convert"
            f" one of them, e.g. x.to({dtypes[0]}) (or model.to({X.dtype}))"
        )
    _check_finite(f"{name} x", X)
    _check_finite(f"{name} y", y)
    if metric == "accuracy":
        _check_class_targets(f"{name} y", y)
    return X, y


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Pair,
    loss_fn: LossFn,
    *,
    metric: str | None = None,
) -> tuple[float, float | None]:
    """Data loss (and metric) of ``model`` on ``data`` in evaluation mode.

    The model is put in ``eval()`` mode (dropout off, batch norm uses running
    statistics) and restored to its previous mode afterwards.

    Returns:
        ``(loss, metric_value)``; ``metric_value`` is ``None`` without ``metric``.
    """
    X, y = _check_pair("data", data)
    if metric is not None:
        metric = check_choice("metric", metric, ("accuracy",))
        _check_class_targets("data y", y)
    was_training = model.training
    model.eval()
    try:
        outputs = model(X)
        loss = loss_fn(outputs, y)
        if metric is None:
            return loss.item(), None
        loss_value, correct = torch.stack([loss.float(), _correct_count(outputs, y).float()]).tolist()
        return loss_value, correct / len(y)
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class FitOptions:
    """Every setting of :func:`fit`, checked once by :func:`fit_options` (see :func:`fit` for each)."""

    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    epochs: int
    batch_size: int | None = None
    metric: str | None = None
    l1: float = 0.0
    l2: float = 0.0
    proximal_l1: float = 0.0
    clip_norm: float | None = None
    clip_value: float | None = None
    monitor: Recorder | None = None
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    after_step: Callable[[nn.Module, int], None] | None = None
    patience: int | None = None
    restore_best: bool = True
    on_divergence: str = "raise"
    seed: int = 0


def _optional(check: Callable[[str, Any], Any], name: str, value: Any) -> Any:
    return None if value is None else check(name, value)


def _check_callable(name: str, value: Any, what: str) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable ({what}), got {type(value).__name__}")


def fit_options(*, has_val: bool = False, **settings: Any) -> FitOptions:
    """Check :func:`fit`'s keyword arguments and return them as a :class:`FitOptions`.

    Every error names the argument, the value received and what is allowed.
    ``has_val`` says whether a validation set was given (``patience`` needs one).
    """
    o = FitOptions(**settings)
    if not isinstance(o.optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(o.optimizer).__name__}")
    if not callable(o.loss_fn):
        raise TypeError(f"loss_fn must be callable, e.g. nn.CrossEntropyLoss(), got {type(o.loss_fn).__name__}")
    _check_callable("augment", o.augment, "a batch of inputs -> a batch of the same shape")
    _check_callable("after_step", o.after_step, "after_step(model, step), e.g. a max-norm constraint")
    if o.monitor is not None and not callable(getattr(o.monitor, "record", None)):
        raise TypeError(f"monitor must have a record(step) method, got {type(o.monitor).__name__}")
    patience = _optional(lambda n, v: check_int(n, v, minimum=1), "patience", o.patience)
    if patience is not None and not has_val:
        raise ValueError("patience needs val: early stopping watches the validation loss")
    if not isinstance(o.restore_best, bool):
        raise TypeError(f"restore_best must be a bool, got {type(o.restore_best).__name__}")
    return FitOptions(
        loss_fn=o.loss_fn, optimizer=o.optimizer, monitor=o.monitor, augment=o.augment,
        after_step=o.after_step, restore_best=o.restore_best, patience=patience,
        epochs=check_int("epochs", o.epochs, minimum=1),
        batch_size=_optional(lambda n, v: check_int(n, v, minimum=1), "batch_size", o.batch_size),
        metric=_optional(lambda n, v: check_choice(n, v, ("accuracy",)), "metric", o.metric),
        l1=check_nonnegative("l1", o.l1),
        l2=check_nonnegative("l2", o.l2),
        proximal_l1=check_nonnegative("proximal_l1", o.proximal_l1),
        clip_norm=_optional(check_positive, "clip_norm", o.clip_norm),
        clip_value=_optional(check_positive, "clip_value", o.clip_value),
        on_divergence=check_choice("on_divergence", o.on_divergence, ("raise", "record")),
        seed=check_int("seed", o.seed, minimum=0),
    )


def _batches(
    X: torch.Tensor, y: torch.Tensor, examples_per_step: int, order: torch.Tensor | None
) -> Iterator[Pair]:
    """One epoch's batches: ``examples_per_step`` rows each, in ``order`` (``None``: full batch)."""
    for start in range(0, len(X), examples_per_step):
        if order is None:
            yield X, y
        else:
            idx = order[start : start + examples_per_step].to(X.device)
            yield X[idx], y[idx]


class _Penalties:
    """The weights a penalty touches, and the penalty's gradient added to theirs."""

    def __init__(self, model: nn.Module, options: FitOptions) -> None:
        self.l1, self.l2, self.proximal = options.l1, options.l2, options.proximal_l1
        self.weights: list[torch.Tensor] = []
        if self.l1 or self.l2 or self.proximal:
            from .penalties import penalized_parameters

            self.weights = penalized_parameters(model)
        self._ids = {id(p) for p in self.weights}

    def add_gradient(self) -> None:
        """Accumulate :math:`\\lambda_1\\operatorname{sign}(w) + \\lambda_2 w` into each weight's ``.grad``."""
        if not (self.l1 or self.l2):
            return
        from .penalties import l1_penalty, l2_penalty

        terms = ([l1_penalty(self.weights, self.l1)] if self.l1 else []) + (
            [l2_penalty(self.weights, self.l2)] if self.l2 else []
        )
        sum(terms[1:], terms[0]).backward()

    @torch.no_grad()
    def proximal_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Soft-threshold the penalized weights by :math:`\\eta\\lambda` of their parameter group."""
        if not self.proximal:
            return
        from .proximal import proximal_l1_step_

        for group in optimizer.param_groups:
            targets = [p for p in group["params"] if id(p) in self._ids]
            if targets:
                proximal_l1_step_(targets, float(group["lr"]) * self.proximal)


def _clip_and_measure(params: list[torch.Tensor], options: FitOptions) -> torch.Tensor:
    """Total gradient norm before clipping; clips by norm and/or value as asked."""
    if options.clip_norm is not None:
        total_norm = torch.nn.utils.clip_grad_norm_(params, options.clip_norm)
    else:
        total_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    if options.clip_value is not None:
        torch.nn.utils.clip_grad_value_(params, options.clip_value)
    return total_norm


@dataclass
class _StepResult:
    loss: float
    grad_norm: float
    correct: float = 0.0

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss) and math.isfinite(self.grad_norm)


def _train_step(
    model: nn.Module, batch: Pair, step: int, options: FitOptions,
    params: list[torch.Tensor], penalties: _Penalties,
) -> _StepResult:
    """One optimizer step; the update is skipped when the loss or gradient is not finite."""
    xb, yb = batch
    if options.augment is not None:
        xb = options.augment(xb)
        if not isinstance(xb, torch.Tensor) or len(xb) != len(yb):
            raise ValueError("augment must return a tensor with one row per example")
    options.optimizer.zero_grad(set_to_none=True)
    outputs = model(xb)
    data_loss = options.loss_fn(outputs, yb)
    data_loss.backward()
    if options.monitor is not None:
        options.monitor.record(step)  # the data loss's gradient, before the penalty's is added
    penalties.add_gradient()
    total_norm = _clip_and_measure(params, options)
    tracked = [data_loss.detach().float(), total_norm.float()]
    if options.metric is not None:
        tracked.append(_correct_count(outputs.detach(), yb).float())
    # The one host sync of the step: loss, norm (and correct count) together.
    result = _StepResult(*torch.stack(tracked).tolist())
    if not result.finite:
        return result
    options.optimizer.step()
    penalties.proximal_step(options.optimizer)
    if options.after_step is not None:
        options.after_step(model, step)
    return result


def _diverged(model: nn.Module, history: History, step: int, result: _StepResult, options: FitOptions) -> History:
    if options.on_divergence == "record":
        history.diverged_step = step
        return history
    from .diagnostics import parameter_grad_norms

    raise DivergenceError(step, result.loss, result.grad_norm, parameter_grad_norms(model))


def _validate(model: nn.Module, val: Pair, history: History, options: FitOptions) -> None:
    val_loss, val_metric = evaluate(model, val, options.loss_fn, metric=options.metric)
    history.val_loss.append(val_loss)
    if val_metric is not None:
        history.val_metric.append(val_metric)


def fit(
    model: nn.Module,
    train: Pair,
    *,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int | None = None,
    val: Pair | None = None,
    metric: str | None = None,
    l1: float = 0.0,
    l2: float = 0.0,
    proximal_l1: float = 0.0,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    monitor: Recorder | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    after_step: Callable[[nn.Module, int], None] | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    on_divergence: str = "raise",
    seed: int = 0,
) -> History:
    """Train ``model`` on ``train`` and return what was measured.

    Each step minimises the data loss plus the optional penalties on the
    weights of linear, convolutional and recurrent layers (biases and
    normalization parameters are never penalised; see
    :func:`companion.penalties.penalized_parameters`):

    .. math::

        \\mathcal{L}_{\\text{step}} = \\mathcal{L}(f(X_b), y_b)
            + \\lambda_1 \\lVert w \\rVert_1 + \\tfrac{\\lambda_2}{2} \\lVert w \\rVert_2^2 .

    A step back-propagates the data loss :math:`\\mathcal L` alone, lets the monitor
    record (so it sees :math:`\\partial\\mathcal L/\\partial W`, never the penalty),
    then adds the penalty's gradient :math:`\\lambda_1\\operatorname{sign}(w) +
    \\lambda_2 w`, takes the total gradient norm (and clips), checks the loss and
    norm for NaN/Inf, and only then does the optimizer step. With ``proximal_l1``
    each step is followed by soft thresholding with threshold :math:`\\eta\\lambda`
    (the proximal L1 step, which produces exact zeros; an L1 penalty through autograd
    does not). Then ``after_step(model, step)`` runs.

    Args:
        model: the network; its parameters and ``train`` must be on one device.
        train: ``(x, y)`` tensors, e.g. ``split.train`` of a :class:`companion.data.DataSplit`.
            Checked before training: no NaN/Inf, the model's dtype, its number of input
            features (when its first layer says it).
        loss_fn: e.g. ``nn.CrossEntropyLoss()``; called as ``loss_fn(model(x), y)``.
        optimizer: a constructed torch optimizer over the model's parameters.
        epochs: number of passes over ``train`` (>= 1).
        batch_size: examples per step (>= 1), or ``None`` for full-batch steps.
        val: optional ``(x, y)`` evaluated after every epoch.
        metric: ``None`` or ``"accuracy"`` (argmax for multi-class logits,
            logit > 0 for a single logit; ``y`` holds class indices, not one-hot rows).
        l1: strength :math:`\\lambda_1 \\ge 0` of the L1 penalty added to the loss.
        l2: strength :math:`\\lambda_2 \\ge 0` of the L2 penalty (gradient :math:`\\lambda_2 w`).
        proximal_l1: strength :math:`\\lambda \\ge 0` of the proximal L1 step.
        clip_norm: if given (> 0), ``clip_grad_norm_(params, clip_norm)``.
        clip_value: if given (> 0), ``clip_grad_value_(params, clip_value)``.
        monitor: anything with ``record(step)``, e.g. :class:`companion.diagnostics.GradientMonitor`;
            called after the data loss's ``backward()``, before the penalty's gradient is added.
        augment: optional function applied to each training batch's inputs before the
            forward pass (a fresh random transform per step; labels unchanged), e.g.
            ``lambda xb: companion.augment.augment_batch(xb, max_shift=1, image_shape=(8, 8))``.
            The recorded training loss and metric are those of the augmented batches.
        after_step: optional ``after_step(model, step)`` called after every optimizer
            step (and proximal step), e.g.
            ``lambda m, s: companion.constraints.max_norm_(m, 3.0)``.
        patience: stop after this many epochs (>= 1) without a lower validation loss
            (needs ``val``); see :class:`EarlyStopping`.
        restore_best: with ``patience``, load the weights of the best epoch at the end.
        on_divergence: ``"raise"`` a :class:`DivergenceError`, or ``"record"`` the
            step in ``History.diverged_step`` and stop.
        seed: seed of the private generator that shuffles the mini-batches.

    Returns:
        A :class:`History`.

    Raises:
        DivergenceError: the loss or gradient norm became NaN/Inf and
            ``on_divergence="raise"``.
        ValueError, TypeError: a bad argument or bad data, named in the message.

    See the chapters "Exploding and vanishing gradients" and "Does L1/L2 prevent
    exploding gradients?" for uses.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    options = fit_options(
        has_val=val is not None, loss_fn=loss_fn, optimizer=optimizer, epochs=epochs,
        batch_size=batch_size, metric=metric, l1=l1, l2=l2, proximal_l1=proximal_l1,
        clip_norm=clip_norm, clip_value=clip_value, monitor=monitor, augment=augment,
        after_step=after_step, patience=patience, restore_best=restore_best,
        on_divergence=on_divergence, seed=seed,
    )
    train = _check_data("train", train, model, options.metric)
    if val is not None:
        val = _check_data("val", val, model, options.metric)
    return _run(model, train, val, options)


def _run(model: nn.Module, train: Pair, val: Pair | None, options: FitOptions) -> History:
    """The epoch loop of :func:`fit`, on checked arguments."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    penalties = _Penalties(model, options)
    X, y = train
    n = len(X)
    examples_per_step = n if options.batch_size is None else options.batch_size
    shuffler = generator(options.seed)
    stopper = EarlyStopping("min", patience=options.patience)
    history, best_state, step = History(), None, 0
    model.train()
    for epoch in range(options.epochs):
        order = torch.randperm(n, generator=shuffler) if options.batch_size is not None else None
        loss_sum, correct = 0.0, 0.0
        for batch in _batches(X, y, examples_per_step, order):
            result = _train_step(model, batch, step, options, params, penalties)
            history.step_loss.append(result.loss)
            history.grad_norm.append(result.grad_norm)
            if not result.finite:
                history.stopped_epoch = epoch + 1
                return _diverged(model, history, step, result, options)
            loss_sum += result.loss * len(batch[1])
            correct += result.correct
            step += 1
        history.train_loss.append(loss_sum / n)
        if options.metric is not None:
            history.train_metric.append(correct / n)
        history.stopped_epoch = epoch + 1
        if val is None:
            continue
        _validate(model, val, history, options)
        stop = stopper.step(history.val_loss[-1])
        history.best_epoch = stopper.best_epoch
        if stopper.improved and options.patience is not None and options.restore_best:
            best_state = copy.deepcopy(model.state_dict())
        if stop:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
