"""A small, readable training loop that refuses to train through a divergence.

:func:`fit` is the loop every chapter uses: mini-batch or full-batch training
with an optional L1/L2 penalty, a proximal L1 step, gradient clipping through
torch's own ``clip_grad_norm_``/``clip_grad_value_``, early stopping on the
validation loss and a per-step gradient monitor. It costs one device-to-host
synchronisation per step: the step's loss and total gradient norm are read
together, which is also how a NaN/Inf is caught *before* the optimizer step
would spread it into the weights.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from ._checks import check_choice, check_int, check_nonnegative, check_positive
from .reproducibility import generator

__all__ = ["DivergenceError", "History", "accuracy", "evaluate", "fit"]

Pair = tuple[torch.Tensor, torch.Tensor]


class DivergenceError(RuntimeError):
    """Raised by :func:`fit` when the loss or the gradient norm becomes NaN or infinite.

    Attributes:
        step: the optimizer step (0-based) at which the non-finite value appeared;
            that step's update was *not* applied.
        loss: the data loss at that step (may be ``nan`` or ``inf``).
        grad_norm: the total gradient 2-norm at that step, before clipping.
        layer_norms: parameter name -> gradient 2-norm at that step.
    """

    def __init__(self, step: int, loss: float, grad_norm: float, layer_norms: dict[str, float]):
        self.step = step
        self.loss = loss
        self.grad_norm = grad_norm
        self.layer_norms = layer_norms
        largest = sorted(layer_norms.items(), key=lambda kv: -_sort_key(kv[1]))[:3]
        shown = ", ".join(f"{name}={value:.3g}" for name, value in largest)
        super().__init__(
            f"training diverged at step {step}: loss={loss:.4g}, gradient norm={grad_norm:.4g}"
            f" (largest layer gradient norms: {shown}). Lower the learning rate, fix the"
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
        grad_norm: total gradient 2-norm at every step, before clipping.
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
    """What :func:`fit` needs of a monitor: ``record(step)`` right after ``backward()``."""

    def record(self, step: int) -> None: ...


def _correct_count(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of correct predictions, as a tensor (no host sync)."""
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        predicted = outputs.argmax(dim=1)
        return (predicted == y).sum()
    # A single logit per example: class 1 when the logit is positive.
    predicted = (outputs.reshape(-1) > 0).to(y.dtype)
    return (predicted == y.reshape(-1)).sum()


def accuracy(outputs: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correct predictions, always in ``[0, 1]``.

    Multi-class logits ``[n, K]`` (K > 1) are compared by ``argmax``; a single
    logit per example (``[n]`` or ``[n, 1]``) predicts class 1 when it is > 0.

    Args:
        outputs: the model's logits.
        y: class indices ``[n]`` (multi-class) or 0/1 labels (binary).
    """
    if len(outputs) != len(y):
        raise ValueError(f"outputs and y must have the same length, got {len(outputs)} and {len(y)}")
    if len(y) == 0:
        raise ValueError("y must contain at least one example, got an empty tensor")
    return _correct_count(outputs, y).item() / len(y)


def _check_pair(name: str, data: Any) -> Pair:
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"{name} must be a pair (X, y) of tensors, got {type(data).__name__}")
    X, y = data
    if not (isinstance(X, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError(f"{name} must be a pair (X, y) of tensors")
    if len(X) != len(y):
        raise ValueError(f"{name}: X and y must have the same length, got {len(X)} and {len(y)}")
    if len(X) == 0:
        raise ValueError(f"{name} must contain at least one example")
    return X, y


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Pair,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
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


def _grad_norms_by_name(model: nn.Module) -> dict[str, float]:
    named = [(name, p.grad) for name, p in model.named_parameters() if p.grad is not None]
    norms = torch.stack([g.detach().float().norm() for _, g in named]).tolist()
    return {name: value for (name, _), value in zip(named, norms)}


def _group_lrs(optimizer: torch.optim.Optimizer) -> list[tuple[list[torch.Tensor], float]]:
    return [(group["params"], float(group["lr"])) for group in optimizer.param_groups]


def fit(
    model: nn.Module,
    train: Pair,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
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

    After ``backward()`` the monitor records, the total gradient norm is taken
    (and clipped), the step's loss and norm are checked for NaN/Inf, and only
    then does the optimizer step. With ``proximal_l1`` each step is followed by
    soft thresholding with threshold :math:`\\eta\\lambda` (the proximal L1
    step, which produces exact zeros; an L1 penalty through autograd does not).

    Args:
        model: the network; its parameters and ``train`` must be on one device.
        train: ``(X, y)`` tensors.
        loss_fn: e.g. ``nn.CrossEntropyLoss()``; called as ``loss_fn(model(X), y)``.
        optimizer: a constructed torch optimizer over the model's parameters.
        epochs: number of passes over ``train`` (>= 1).
        batch_size: examples per step (>= 1), or ``None`` for full-batch steps.
        val: optional ``(X, y)`` evaluated after every epoch.
        metric: ``None`` or ``"accuracy"`` (argmax for multi-class logits,
            logit > 0 for a single logit).
        l1: strength :math:`\\lambda_1 \\ge 0` of the L1 penalty added to the loss.
        l2: strength :math:`\\lambda_2 \\ge 0` of the L2 penalty (gradient :math:`\\lambda_2 w`).
        proximal_l1: strength :math:`\\lambda \\ge 0` of the proximal L1 step.
        clip_norm: if given (> 0), ``clip_grad_norm_(params, clip_norm)``.
        clip_value: if given (> 0), ``clip_grad_value_(params, clip_value)``.
        monitor: anything with ``record(step)``, e.g. :class:`companion.diagnostics.GradientMonitor`.
        augment: optional function applied to each training batch's inputs before the
            forward pass (a fresh random transform per step; labels unchanged), e.g.
            ``lambda xb: companion.augment.augment_batch(xb, max_shift=1, image_shape=(8, 8))``.
            The recorded training loss and metric are those of the augmented batches.
        patience: stop after this many epochs (>= 1) without a lower validation loss
            (needs ``val``).
        restore_best: with ``patience``, load the weights of the best epoch at the end.
        on_divergence: ``"raise"`` a :class:`DivergenceError`, or ``"record"`` the
            step in ``History.diverged_step`` and stop.
        seed: seed of the private generator that shuffles the mini-batches.

    Returns:
        A :class:`History`.

    Raises:
        DivergenceError: the loss or gradient norm became NaN/Inf and
            ``on_divergence="raise"``.

    See the chapters "Exploding and vanishing gradients" and "Does L1/L2 prevent
    exploding gradients?" for uses.
    """
    X, y = _check_pair("train", train)
    if val is not None:
        val = _check_pair("val", val)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable, e.g. nn.CrossEntropyLoss()")
    epochs = check_int("epochs", epochs, minimum=1)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, minimum=1)
    if metric is not None:
        metric = check_choice("metric", metric, ("accuracy",))
    l1 = check_nonnegative("l1", l1)
    l2 = check_nonnegative("l2", l2)
    proximal_l1 = check_nonnegative("proximal_l1", proximal_l1)
    if clip_norm is not None:
        clip_norm = check_positive("clip_norm", clip_norm)
    if clip_value is not None:
        clip_value = check_positive("clip_value", clip_value)
    if patience is not None:
        patience = check_int("patience", patience, minimum=1)
        if val is None:
            raise ValueError("patience needs val: early stopping watches the validation loss")
    on_divergence = check_choice("on_divergence", on_divergence, ("raise", "record"))
    if augment is not None and not callable(augment):
        raise TypeError("augment must be callable: a batch of inputs -> a batch of the same shape")
    seed = check_int("seed", seed, minimum=0)

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    penalized: list[torch.Tensor] = []
    if l1 or l2 or proximal_l1:
        from .penalties import l1_penalty, l2_penalty, penalized_parameters

        penalized = penalized_parameters(model)
        penalized_ids = {id(p) for p in penalized}
    if proximal_l1:
        from .proximal import proximal_l1_step_

    history = History()
    n = len(X)
    step_size = n if batch_size is None else batch_size
    shuffler = generator(seed)
    best_val, best_state, epochs_without_improvement = math.inf, None, 0
    step = 0
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=shuffler) if batch_size is not None else None
        epoch_losses: list[float] = []
        epoch_correct = 0.0
        for start in range(0, n, step_size):
            if order is None:
                xb, yb = X, y
            else:
                idx = order[start : start + step_size].to(X.device)
                xb, yb = X[idx], y[idx]
            if augment is not None:
                xb = augment(xb)
                if not isinstance(xb, torch.Tensor) or len(xb) != len(yb):
                    raise ValueError("augment must return a tensor with one row per example")
            optimizer.zero_grad(set_to_none=True)
            outputs = model(xb)
            data_loss = loss_fn(outputs, yb)
            loss = data_loss
            if l1:
                loss = loss + l1_penalty(penalized, l1)
            if l2:
                loss = loss + l2_penalty(penalized, l2)
            loss.backward()
            if monitor is not None:
                monitor.record(step)
            grads = [p.grad for p in params if p.grad is not None]
            if clip_norm is not None:
                total_norm = torch.nn.utils.clip_grad_norm_(params, clip_norm)
            else:
                total_norm = torch.nn.utils.get_total_norm(grads)
            if clip_value is not None:
                torch.nn.utils.clip_grad_value_(params, clip_value)
            tracked = [data_loss.detach().float(), total_norm.float()]
            if metric is not None:
                tracked.append(_correct_count(outputs.detach(), yb).float())
            # The one host sync of the step: loss, norm (and correct count) together.
            values = torch.stack(tracked).tolist()
            loss_value, norm_value = values[0], values[1]
            history.step_loss.append(loss_value)
            history.grad_norm.append(norm_value)
            if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
                history.stopped_epoch = epoch + 1
                if on_divergence == "record":
                    history.diverged_step = step
                    return history
                raise DivergenceError(step, loss_value, norm_value, _grad_norms_by_name(model))
            optimizer.step()
            if proximal_l1:
                with torch.no_grad():
                    for group_params, lr in _group_lrs(optimizer):
                        targets = [p for p in group_params if id(p) in penalized_ids]
                        if targets:
                            proximal_l1_step_(targets, lr * proximal_l1)
            epoch_losses.append(loss_value * len(yb))
            if metric is not None:
                epoch_correct += values[2]
            step += 1
        history.train_loss.append(sum(epoch_losses) / n)
        if metric is not None:
            history.train_metric.append(epoch_correct / n)
        history.stopped_epoch = epoch + 1
        if val is not None:
            val_loss, val_metric = evaluate(model, val, loss_fn, metric=metric)
            history.val_loss.append(val_loss)
            if val_metric is not None:
                history.val_metric.append(val_metric)
            if val_loss < best_val:
                best_val, history.best_epoch, epochs_without_improvement = val_loss, epoch, 0
                if patience is not None and restore_best:
                    best_state = copy.deepcopy(model.state_dict())
            else:
                epochs_without_improvement += 1
            if patience is not None and epochs_without_improvement >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
