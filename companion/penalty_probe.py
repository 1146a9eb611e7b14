"""Train K seeds of one network with a penalty or a constraint, watching the data-loss gradient.

Does an L1/L2 penalty, or a max-norm / spectral-norm constraint, change how the
gradient scales from layer to layer while a network trains? The quantity to watch
is the first-to-last ratio :math:`g_1/g_{L+1}` of the weight gradients of the
*data* loss :math:`\\mathcal L`, read before the penalty's own gradient is added
(that gradient, :math:`\\lambda w` or :math:`\\lambda\\operatorname{sign}(w)`, would
otherwise dominate a vanishing layer's norm and fake a "recovery").

:func:`train_penalized` runs full-batch SGD on every member of a stacked
:class:`~companion.ensemble.Ensemble` at once (one member per seed): each step
records :math:`g_\\ell` of the data loss, adds the penalty's gradient (through
:func:`~companion.penalties.l1_penalty` / :func:`~companion.penalties.l2_penalty`),
steps, and applies an optional in-place constraint to every member's weights
(e.g. :func:`~companion.constraints.max_norm_`), at initialization too.

See the chapter "Does L1/L2 prevent exploding gradients?".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_choice, check_int, check_nonnegative, check_positive
from .ensemble import Ensemble
from .penalties import l1_penalty, l2_penalty

__all__ = ["PenaltyRun", "member_weights", "train_penalized"]

Constraint = Callable[[list[torch.Tensor]], None]
_PENALTIES = {"l1": l1_penalty, "l2": l2_penalty}


@dataclass(frozen=True)
class PenaltyRun:
    """What :func:`train_penalized` recorded, one column per member (seed).

    Attributes:
        ratios: data-loss ratio :math:`g_1/g_{L+1}` before each step, shape ``(steps, K)``.
        losses: data loss before each step, shape ``(steps, K)``.
        accuracies: training accuracy before each step and after the last, ``(steps + 1, K)``.
    """

    ratios: torch.Tensor
    losses: torch.Tensor
    accuracies: torch.Tensor


def member_weights(ensemble: Ensemble) -> list[torch.Tensor]:
    """Every member's weight matrices as separate 2-D views, for in-place constraints.

    ``max_norm_(member_weights(ens), 1.0)`` caps the rows of each member's
    :math:`W_\\ell` exactly as ``max_norm_(model, 1.0)`` does on that member alone.
    """
    if not isinstance(ensemble, Ensemble):
        raise TypeError(f"ensemble must be a companion.ensemble.Ensemble, got {type(ensemble).__name__}")
    return [w[k] for _, w in ensemble.weights() for k in range(ensemble.size)]


def _check(ensemble, data, lr, steps, penalty, strength, constraint):
    if not isinstance(ensemble, Ensemble):
        raise TypeError(f"ensemble must be a companion.ensemble.Ensemble, got {type(ensemble).__name__}")
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError("data must be a pair (x, y) of tensors")
    if constraint is not None and not callable(constraint):
        raise TypeError(f"constraint must be a callable on a list of weights or None, got {type(constraint).__name__}")
    return (check_positive("lr", lr), check_int("steps", steps, minimum=1),
            check_choice("penalty", penalty, tuple(_PENALTIES)), check_nonnegative("strength", strength))


def train_penalized(
    ensemble: Ensemble,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    lr: float,
    steps: int,
    penalty: str = "l2",
    strength: float = 0.0,
    constraint: Constraint | None = None,
) -> PenaltyRun:
    r"""Full-batch SGD on :math:`\mathcal L + \Omega` for every member; record the data-loss ratio.

    Step :math:`t` of member :math:`k`: cross-entropy :math:`\mathcal L_k`, backward,
    :math:`g_\ell = \lVert\partial\mathcal L_k/\partial W_\ell\rVert_F` recorded, then
    :math:`\nabla\Omega` added (:math:`\lambda W` for ``"l2"``, i.e.
    :math:`\Omega = \tfrac\lambda2\lVert w\rVert_2^2`; :math:`\lambda\operatorname{sign}(W)`
    for ``"l1"``; weights only, biases unpenalized), and

    .. math::

        \theta \leftarrow \theta - \eta\,\big(\nabla\mathcal L_k + \nabla\Omega\big),
        \qquad W_\ell \leftarrow \operatorname{constraint}(W_\ell).

    Args:
        ensemble: the stacked models (one per seed), classifiers with logits output.
        data: ``(x, y)`` on the ensemble's device, ``y`` integer class labels.
        lr: the learning rate :math:`\eta > 0`.
        steps: number of SGD steps, ``>= 1``.
        penalty: ``"l2"`` or ``"l1"``.
        strength: :math:`\lambda \ge 0` (0: no penalty).
        constraint: called with :func:`member_weights` at initialization and after every
            step, e.g. ``lambda ws: max_norm_(ws, 1.0)``; it must act in place.

    Returns:
        A :class:`PenaltyRun` on the CPU (one host synchronisation at the end).
    """
    lr, steps, penalty, strength = _check(ensemble, data, lr, steps, penalty, strength, constraint)
    x, y = data
    weights = [w for _, w in ensemble.weights()]
    optimizer = torch.optim.SGD(ensemble.parameters(), lr=lr)
    ratios, losses, accuracies = [], [], []
    ensemble.train()
    for step in range(steps + 1):
        if constraint is not None:
            with torch.no_grad():
                constraint(member_weights(ensemble))
        logits = ensemble(x)
        accuracies.append((logits.detach().argmax(-1) == y).float().mean(1))
        if step == steps:
            break
        loss = torch.vmap(nn.functional.cross_entropy, in_dims=(0, None))(logits, y)
        optimizer.zero_grad()
        loss.sum().backward()  # members share no parameter: each gets its own gradient
        norms = torch.stack([w.grad.flatten(1).norm(dim=1) for w in weights])   # (layers, K)
        ratios.append(norms[0] / norms[-1])
        losses.append(loss.detach())
        if strength > 0:
            _PENALTIES[penalty](weights, strength).backward()   # adds its gradient to .grad
        optimizer.step()
    return PenaltyRun(*(torch.stack(v).cpu() for v in (ratios, losses, accuracies)))
