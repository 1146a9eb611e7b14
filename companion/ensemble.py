"""Train one small network under several seeds at once: a stacked ensemble.

A claim about a training method must hold for more than one random draw, so the
book trains every small experiment under several seeds. Training them one after
the other pays the Python and kernel-launch overhead once per seed; stacking the
K copies' parameters along a new leading dimension and evaluating them with
:func:`torch.vmap` pays it once for all K (``torch.func.stack_module_state``).
The members stay independent: every operation of the forward pass, the loss, the
backward pass and an element-wise optimizer (SGD, momentum, Adam, AdamW) acts on
each member's slice alone, so member k follows exactly the trajectory it would
follow trained alone (tested against a loop of single runs).

Each member keeps its own record: the data loss and the per-layer weight-gradient
norms :math:`g_\\ell = \\lVert \\partial\\mathcal L_k / \\partial W_\\ell \\rVert_F`
at every step, and the step at which it diverged. A member whose loss or gradient
becomes non-finite is reported with that step (:attr:`EnsembleHistory.diverged_step`);
from then on its gradient is zeroed and its records are NaN, and the other members
train on unaffected.

See the chapter "The verdict" for a use over ten remedies and five seeds.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_int, check_positive
from .reproducibility import generator, seed_everything

__all__ = ["Ensemble", "EnsembleHistory", "accuracy", "build", "clip_factors", "evaluate_loss",
           "member_grad_norms", "train"]

Optimizer = torch.optim.Optimizer


class Ensemble:
    """K models of one architecture whose parameters are stacked along dimension 0.

    Args:
        models: two or more modules of identical structure (same parameter names and
            shapes), on one device. Modules with BatchNorm running statistics are
            refused: updating a buffer in place is not possible under ``vmap``.

    Calling the ensemble on ``x`` of shape ``(batch, ...)`` feeds the same batch to
    every member; with ``per_model=True``, ``x`` has shape ``(K, batch, ...)`` and member
    k sees ``x[k]``. The result has shape ``(K, batch, ...)``. Dropout draws an
    independent mask for each member.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        models = list(models)
        if len(models) < 2 or not all(isinstance(m, nn.Module) for m in models):
            raise ValueError(f"models must be a sequence of at least 2 nn.Module, got {len(models)} item(s)")
        _check_same_structure(models)
        params, buffers = torch.func.stack_module_state(models)
        self.params: dict[str, torch.Tensor] = params
        self.buffers: dict[str, torch.Tensor] = buffers
        self.size = len(models)
        self._template = copy.deepcopy(models[0])  # real tensors: unstack() loads into copies of it
        self._base = copy.deepcopy(models[0]).to("meta")  # structure only: parameters come from self.params
        self._base.train(models[0].training)

    @property
    def device(self) -> torch.device:
        return next(iter(self.params.values())).device

    @property
    def training(self) -> bool:
        return self._base.training

    def train(self, mode: bool = True) -> Ensemble:
        """Put every member in training (``True``) or evaluation mode, like ``nn.Module.train``."""
        self._base.train(mode)
        return self

    def eval(self) -> Ensemble:
        return self.train(False)

    def parameters(self) -> list[torch.Tensor]:
        """The stacked parameters (leaf tensors of shape ``(K, *shape)``), for an optimizer."""
        return list(self.params.values())

    def weights(self) -> list[tuple[str, torch.Tensor]]:
        """The stacked weight matrices (each member's parameters with >= 2 dimensions), input side first."""
        return [(name, p) for name, p in self.params.items() if p.dim() >= 3]

    def __call__(self, x: torch.Tensor, *, per_model: bool = False) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a tensor, got {type(x).__name__}")
        if per_model and (x.dim() < 2 or x.shape[0] != self.size):
            raise ValueError(f"with per_model=True, x must have shape (K={self.size}, batch, ...), got {tuple(x.shape)}")

        def member(params, buffers, inputs):
            return torch.func.functional_call(self._base, (params, buffers), (inputs,))

        in_x = 0 if per_model else None
        return torch.vmap(member, in_dims=(0, 0, in_x), randomness="different")(self.params, self.buffers, x)

    def unstack(self) -> list[nn.Module]:
        """Independent copies of the K members with the current parameters."""
        members = []
        for k in range(self.size):
            module = copy.deepcopy(self._template)
            state = {name: t[k].detach().clone() for name, t in {**self.params, **self.buffers}.items()}
            module.load_state_dict(state)
            module.train(self.training)
            members.append(module)
        return members


def _check_same_structure(models: list[nn.Module]) -> None:
    reference = [(n, tuple(p.shape), p.device) for n, p in models[0].named_parameters()]
    for i, model in enumerate(models[1:], start=1):
        found = [(n, tuple(p.shape), p.device) for n, p in model.named_parameters()]
        if found != reference:
            raise ValueError(f"models[{i}] differs from models[0] in its parameters' names, shapes or devices")
    for model in models:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
                raise ValueError(
                    "models with BatchNorm running statistics cannot be stacked (vmap cannot update buffers "
                    "in place); build them with track_running_stats=False or train them one by one"
                )


def build(
    factory: Callable[[], nn.Module],
    seeds: Sequence[int],
    *,
    device: torch.device | str | None = None,
    same_initialization: bool = False,
) -> Ensemble:
    """One member per seed: ``seed_everything(seed)`` then ``factory()``, stacked.

    Args:
        factory: called once per seed with no arguments; returns a fresh module. It must not
            seed the random generators itself: members that come out identical raise
            ``ValueError`` (the seeds would have been ignored), unless ``same_initialization``.
        seeds: two or more distinct non-negative logical seeds (``COMPANION_SEED_OFFSET``
            is added, as everywhere in the companion).
        device: where the stacked parameters live (default: where ``factory`` put them).
        same_initialization: allow identical members, for an experiment that isolates another
            source of randomness (dropout masks, batch order) on purpose.

    Example:
        >>> ens = build(lambda: companion.models.mlp(2, 2, depth=4, width=16), seeds=range(5))
    """
    seeds = _check_seeds(seeds, None)
    models = []
    for seed in seeds:
        seed_everything(seed)
        model = factory()
        if not isinstance(model, nn.Module):
            raise TypeError(f"factory must return an nn.Module, got {type(model).__name__}")
        models.append(model if device is None else model.to(device))
    if not same_initialization:
        _check_members_differ(models, seeds)
    return Ensemble(models)


def _check_members_differ(models: Sequence[nn.Module], seeds: Sequence[int]) -> None:
    """Refuse members that are identical: the factory re-seeded, so the seeds were ignored."""
    first = [p.detach() for p in models[0].parameters()]
    if not first:
        return
    for seed, model in zip(seeds[1:], models[1:]):
        if all(torch.equal(a, b.detach().to(a.device)) for a, b in zip(first, model.parameters())):
            raise ValueError(
                f"factory built identical members for seeds {seeds[0]} and {seed}: it must not seed "
                "the random generators itself (build seeds each member before calling it)"
            )


def _check_seeds(seeds: Sequence[int], size: int | None) -> list[int]:
    seeds = [check_int("seeds[i]", s, minimum=0) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    if size is None and len(seeds) < 2:
        raise ValueError(f"seeds must hold at least 2 seeds, got {seeds}")
    if size is not None and len(seeds) != size:
        raise ValueError(f"seeds must hold one seed per member ({size}), got {len(seeds)}")
    return seeds


@dataclass
class EnsembleHistory:
    """What :func:`train` recorded, one column per member.

    Attributes:
        loss: data loss at each step before the update, shape ``(steps, K)``; NaN from a
            member's divergence on.
        grad_norms: per-layer weight-gradient norms :math:`g_\\ell` of the data loss,
            shape ``(steps, K, layers)`` (input side first), or ``None`` if not recorded.
        diverged_step: for each member, the first step whose loss or gradient was
            non-finite, or ``None``.
        weight_names: the names of the recorded weights, input side first.
    """

    loss: torch.Tensor
    grad_norms: torch.Tensor | None
    diverged_step: list[int | None]
    weight_names: list[str]

    @property
    def diverged_count(self) -> int:
        """How many members diverged."""
        return sum(step is not None for step in self.diverged_step)

    def ratio(self, first: int = 0, last: int = -1) -> torch.Tensor:
        """:math:`g_{\\text{first}} / g_{\\text{last}}` at every step, shape ``(steps, K)``."""
        if self.grad_norms is None:
            raise RuntimeError("no gradient norms were recorded: train with record_grad_norms=True")
        return self.grad_norms[..., first] / self.grad_norms[..., last]


def _batches(n: int, batch_size: int | None, generators: list[torch.Generator] | None, device):
    """Index tensors for one epoch: ``None`` for the full batch, else ``(K, b)`` per-member batches."""
    if batch_size is None or batch_size >= n:
        return [None]
    order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
    return [order[:, i:i + batch_size] for i in range(0, n, batch_size)]


def member_grad_norms(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Each member's total gradient norm over stacked ``params`` (member first), shape ``(K,)``.

    The norm ``torch.nn.utils.clip_grad_norm_`` would compute on member k alone.
    """
    return torch.stack([p.grad.flatten(1).pow(2).sum(1) for p in params]).sum(0).sqrt()


def clip_factors(norms: torch.Tensor, clip_norm: float) -> torch.Tensor:
    """The factor ``clip_grad_norm_`` applies to each member's gradient: ``min(1, c / (norm + 1e-6))``."""
    return (clip_norm / (norms + 1e-6)).clamp(max=1.0)


def _step(ens, xb, yb, per_model, loss_fn, alive, clip_norm, weight_params):
    """One step for every member: returns (losses, per-layer norms, members still finite)."""
    out = ens(xb, per_model=per_model)
    losses = torch.vmap(loss_fn, in_dims=(0, 0 if per_model else None))(out, yb)
    alive = alive & torch.isfinite(losses)
    torch.where(alive, losses, torch.zeros_like(losses)).sum().backward()
    params = ens.parameters()
    norms = member_grad_norms(params)
    alive = alive & torch.isfinite(norms)
    layer_norms = torch.stack([p.grad.flatten(1).norm(dim=1) for p in weight_params], dim=-1)
    scale = alive.to(losses.dtype)
    if clip_norm is not None:  # per member, as clip_grad_norm_ on each model alone
        scale = scale * clip_factors(norms, clip_norm)
    for p in params:
        shape = (-1,) + (1,) * (p.dim() - 1)
        # where() and not a product: a diverged member's NaN gradient must become 0, not NaN
        p.grad = torch.where(alive.view(shape), p.grad * scale.view(shape), torch.zeros_like(p.grad))
    return losses, layer_norms, alive


def train(
    ensemble: Ensemble,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: Callable[[list[torch.Tensor]], Optimizer] | Optimizer,
    epochs: int,
    batch_size: int | None = None,
    clip_norm: float | None = None,
    seeds: Sequence[int] | None = None,
    record_grad_norms: bool = True,
) -> EnsembleHistory:
    """Train every member on ``data``: one step = forward, data loss, backward, clip, update.

    Member k minimises its own mean loss :math:`\\mathcal L_k`; the sum
    :math:`\\sum_k \\mathcal L_k` is back-propagated once, and since no parameter is
    shared, :math:`\\partial(\\sum_j \\mathcal L_j)/\\partial\\theta_k = \\partial\\mathcal L_k/\\partial\\theta_k`.

    Args:
        ensemble: the stacked models (see :func:`build`).
        data: ``(x, y)`` on the ensemble's device; every member trains on the same data.
        loss_fn: mean loss of one member's outputs and targets, e.g. ``nn.CrossEntropyLoss()``.
        optimizer: an element-wise optimizer over ``ensemble.parameters()``, or a function
            that builds one from them, e.g. ``lambda p: torch.optim.SGD(p, lr=0.1)``.
            (Optimizers that mix elements, e.g. LBFGS, would couple the members.)
        epochs: passes over the data, ``>= 1``.
        batch_size: examples per step; ``None`` (default) for full-batch steps. Each
            member draws its own batch order from ``companion.generator(seeds[k])``.
        clip_norm: if set, each member's gradient is rescaled to total norm at most this,
            as ``torch.nn.utils.clip_grad_norm_`` would do on that member alone.
        seeds: logical seeds of the members' batch orders (default ``0 .. K-1``).
        record_grad_norms: record :math:`g_\\ell` at every step (costs one norm per layer).

    Returns:
        An :class:`EnsembleHistory`. No host synchronisation happens during training.
    """
    x, y = _check_data(ensemble, data)
    epochs = check_int("epochs", epochs, minimum=1)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, minimum=1)
    if clip_norm is not None:
        clip_norm = check_positive("clip_norm", clip_norm)
    seeds = _check_seeds(range(ensemble.size) if seeds is None else seeds, ensemble.size)
    opt = optimizer if isinstance(optimizer, Optimizer) else optimizer(ensemble.parameters())
    if not isinstance(opt, Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or build one, got {type(opt).__name__}")
    weights = ensemble.weights()
    generators = None if batch_size is None else [generator(s) for s in seeds]
    alive = torch.ones(ensemble.size, dtype=torch.bool, device=ensemble.device)
    losses, norms = [], []
    ensemble.train()
    for _ in range(epochs):
        for index in _batches(len(x), batch_size, generators, x.device):
            xb, yb = (x, y) if index is None else (x[index], y[index])
            opt.zero_grad(set_to_none=False)
            loss, layer_norms, alive = _step(ensemble, xb, yb, index is not None, loss_fn, alive,
                                             clip_norm, [p for _, p in weights])
            opt.step()
            losses.append(torch.where(alive, loss.detach(), math.nan))
            if record_grad_norms:
                norms.append(torch.where(alive[:, None], layer_norms, math.nan))
    return _history(losses, norms if record_grad_norms else None, [n for n, _ in weights])


def _history(losses, norms, names) -> EnsembleHistory:
    loss = torch.stack(losses).cpu()  # the one host synchronisation of the run
    finite = torch.isfinite(loss)
    diverged = [None if bool(finite[:, k].all()) else int((~finite[:, k]).nonzero()[0]) for k in range(loss.shape[1])]
    grad_norms = None if norms is None else torch.stack(norms).cpu()
    return EnsembleHistory(loss=loss, grad_norms=grad_norms, diverged_step=diverged, weight_names=names)


def _check_data(ensemble: Ensemble, data) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(ensemble, Ensemble):
        raise TypeError(f"ensemble must be a companion.ensemble.Ensemble, got {type(ensemble).__name__}")
    if not (isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)):
        raise TypeError("data must be a pair (x, y) of tensors")
    x, y = data
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must hold the same number (> 0) of examples, got {len(x)} and {len(y)}")
    if x.device != ensemble.device:
        raise ValueError(f"data is on {x.device} but the ensemble is on {ensemble.device}: move it with .to()")
    return x, y


@torch.no_grad()
def evaluate_loss(ensemble: Ensemble, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable) -> torch.Tensor:
    """Each member's mean loss on ``(x, y)`` in evaluation mode, shape ``(K,)``."""
    x, y = _check_data(ensemble, (x, y))
    mode = ensemble.training
    out = ensemble.eval()(x)
    ensemble.train(mode)
    return torch.vmap(loss_fn, in_dims=(0, None))(out, y)


@torch.no_grad()
def accuracy(ensemble: Ensemble, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's fraction of correct class predictions (argmax of the logits) in evaluation mode, shape ``(K,)``."""
    x, y = _check_data(ensemble, (x, y))
    mode = ensemble.training
    out = ensemble.eval()(x)
    ensemble.train(mode)
    if out.dim() != 3 or out.shape[-1] < 2:
        raise ValueError(f"accuracy needs logits of shape (K, batch, classes >= 2), got {tuple(out.shape)}")
    return (out.argmax(-1) == y).float().mean(1)
