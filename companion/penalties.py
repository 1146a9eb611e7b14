"""L1, L2 and elastic-net penalties, and which parameters they should touch.

Conventions (the book uses these everywhere):

* ``l1_penalty(params, λ)``  = λ·Σ|w|
* ``l2_penalty(params, λ)``  = (λ/2)·Σw², so its gradient λw is exactly the term
  that ``torch.optim.SGD(..., weight_decay=λ)`` adds to the gradient.
* ``elastic_net_penalty(params, λ, ρ)`` = λ·(ρ·‖w‖₁ + (1-ρ)/2·‖w‖₂²), the
  scikit-learn ``ElasticNet(alpha=λ, l1_ratio=ρ)`` penalty.

Every function accepts one tensor or an iterable of tensors (a generator is
turned into a list once) and returns a differentiable scalar tensor on the
parameters' device. All norms are computed by one fused ``torch._foreach_norm``
call and a reduction over the stacked per-tensor norms instead of a Python loop
that launches one reduction kernel per parameter (see
``benchmarks/bench_penalties.py`` for the speed-up).

See the chapter "L1 and L2 penalties, exactly" (``book/part2/01_penalties.md``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ._checks import as_tensor_list, check_nonnegative, check_probability
from .hooks import grad_norms

__all__ = [
    "decay_param_groups",
    "elastic_net_penalty",
    "l1_penalty",
    "l2_penalty",
    "penalized_parameters",
]

Params = torch.Tensor | Iterable[torch.Tensor]

# Module types whose ``weight*`` parameters are penalized. Embeddings, biases and
# the affine parameters of normalization layers are left alone: a norm layer's
# scale is re-learned after any shrinkage of the weights feeding it, biases carry
# no complexity in the sense of the penalty, and an embedding row only receives a
# gradient when its token occurs, so a decay applied to every row each step
# punishes rare tokens (the convention of e.g. minGPT and most transformer recipes).
_WEIGHTED = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.RNNBase, nn.RNNCellBase)


def _norms(tensors: list[torch.Tensor], ord: float) -> torch.Tensor:
    """1-D tensor of the per-tensor ``ord``-norms, on the first tensor's device (one fused kernel)."""
    return grad_norms(tensors, ord)


def l1_penalty(params: Params, strength: float) -> torch.Tensor:
    r"""The L1 penalty :math:`\lambda\,\lVert w\rVert_1` summed over all tensors.

    .. math::

        \Omega_1(w) = \lambda \sum_i \lvert w_i \rvert, \qquad
        \partial \Omega_1 / \partial w_i = \lambda\,\operatorname{sign}(w_i)

    autograd returns the subgradient :math:`\lambda\operatorname{sign}(w_i)`,
    which is 0 at :math:`w_i = 0`. Plain (sub)gradient descent on this penalty
    almost never lands on an exact zero; use
    :func:`companion.proximal.proximal_l1_step_` for sparse weights.

    Args:
        params: a tensor or an iterable of tensors (e.g. ``model.parameters()``
            or :func:`penalized_parameters`).
        strength: :math:`\lambda \ge 0`.

    Returns:
        A differentiable scalar tensor on the parameters' device.

    See the chapter "L1 and L2 penalties, exactly".
    """
    strength = check_nonnegative("strength", strength)
    tensors = as_tensor_list("params", params)
    return strength * _norms(tensors, 1.0).sum()


def l2_penalty(params: Params, strength: float) -> torch.Tensor:
    r"""The L2 penalty :math:`\tfrac{\lambda}{2}\lVert w\rVert_2^2` summed over all tensors.

    .. math::

        \Omega_2(w) = \frac{\lambda}{2} \sum_i w_i^2, \qquad
        \nabla \Omega_2(w) = \lambda w

    The gradient :math:`\lambda w` is exactly the term ``torch.optim.SGD`` adds
    with ``weight_decay=λ``, so one SGD step on ``loss + l2_penalty(w, λ)`` equals
    one step of ``SGD(weight_decay=λ)`` on ``loss``:
    :math:`w \leftarrow (1-\eta\lambda)w - \eta\nabla\mathcal{L}`. With Adam this
    is *coupled* L2 (``Adam(weight_decay=λ)``), not AdamW's decoupled decay.
    Keras' ``l2(λ)`` is :math:`\lambda\sum w^2` (no 1/2): it equals
    ``l2_penalty(w, 2λ)``.

    Args:
        params: a tensor or an iterable of tensors.
        strength: :math:`\lambda \ge 0`.

    Returns:
        A differentiable scalar tensor on the parameters' device.

    See the chapter "L1 and L2 penalties, exactly".
    """
    strength = check_nonnegative("strength", strength)
    tensors = as_tensor_list("params", params)
    # Sum of squared per-tensor 2-norms: one fused norm kernel, one small reduction.
    return 0.5 * strength * _norms(tensors, 2.0).square().sum()


def elastic_net_penalty(params: Params, strength: float, l1_ratio: float) -> torch.Tensor:
    r"""The elastic-net penalty, in scikit-learn's ``ElasticNet`` convention.

    .. math::

        \Omega(w) = \lambda\Big(\rho\,\lVert w\rVert_1
                    + \frac{1-\rho}{2}\,\lVert w\rVert_2^2\Big)

    so ``l1_ratio=1`` is :func:`l1_penalty` and ``l1_ratio=0`` is
    :func:`l2_penalty`, both with the same ``strength``.

    Args:
        params: a tensor or an iterable of tensors.
        strength: :math:`\lambda \ge 0`.
        l1_ratio: :math:`\rho \in [0, 1]`.

    Returns:
        A differentiable scalar tensor on the parameters' device.

    See the chapter "L1 and L2 penalties, exactly".
    """
    strength = check_nonnegative("strength", strength)
    l1_ratio = check_probability("l1_ratio", l1_ratio)
    tensors = as_tensor_list("params", params)
    l1 = _norms(tensors, 1.0).sum()
    l2 = _norms(tensors, 2.0).square().sum()
    return strength * (l1_ratio * l1 + 0.5 * (1.0 - l1_ratio) * l2)


def penalized_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters a weight penalty should touch: the weights of weight layers.

    Included: ``weight`` of ``nn.Linear``, ``nn.Bilinear`` and every
    ``nn.Conv*``/``nn.ConvTranspose*``; every ``weight_*`` parameter of
    ``nn.RNN``/``nn.LSTM``/``nn.GRU`` and their ``*Cell`` versions (input-hidden,
    hidden-hidden and projection weights). For a weight under a parametrization
    (e.g. ``torch.nn.utils.parametrizations.spectral_norm``) the stored original
    tensor is returned.

    Excluded: every bias, the affine parameters of normalization layers
    (BatchNorm, LayerNorm, GroupNorm, ...), embeddings, and any parameter of a
    module type not listed above. A parameter shared by several layers appears
    once. Order: the order of ``model.modules()``.

    Args:
        model: any ``nn.Module``.

    Returns:
        A list of parameters (possibly empty).

    See the chapter "L1 and L2 penalties, exactly".
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    from torch.nn.utils import parametrize

    seen: set[int] = set()
    out: list[nn.Parameter] = []
    for module in model.modules():
        if not isinstance(module, _WEIGHTED):
            continue
        candidates: list[torch.Tensor] = [
            p for name, p in module.named_parameters(recurse=False) if name.startswith("weight")
        ]
        if parametrize.is_parametrized(module):
            for name, plist in module.parametrizations.items():
                if name.startswith("weight"):
                    candidates.append(plist.original)
        for p in candidates:
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def decay_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two optimizer parameter groups: weights decayed, everything else not.

    Returns ``[{"params": decayed, "weight_decay": weight_decay},
    {"params": rest, "weight_decay": 0.0}]`` where ``decayed`` is
    :func:`penalized_parameters` and ``rest`` every other parameter of
    ``model`` (biases, norm-layer scales/shifts, embeddings). Every parameter
    of the model appears in exactly one group. Pass it to any torch optimizer::

        opt = torch.optim.AdamW(decay_param_groups(model, 1e-2), lr=1e-3)

    Args:
        model: any ``nn.Module``.
        weight_decay: the decay for the first group, ``>= 0`` (torch's
            ``weight_decay``: SGD adds ``weight_decay * w`` to the gradient).

    Returns:
        A list of two dicts (a group may have an empty ``params`` list, which
        torch's optimizers accept).

    See the chapter "L1 and L2 penalties, exactly".
    """
    weight_decay = check_nonnegative("weight_decay", weight_decay)
    decayed = penalized_parameters(model)
    ids = {id(p) for p in decayed}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
