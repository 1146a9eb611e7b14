"""Hooks that always come off, and the norms of many tensors in one call.

Reading what a network computes inside (an activation :math:`h_\\ell`, a gradient
:math:`\\partial\\mathcal L/\\partial h_\\ell`) takes forward hooks; a hook left behind
by an exception keeps running in every later forward pass. Every place in the
companion that hooks a module goes through :func:`forward_hooks` (the handles live
in a ``contextlib.ExitStack``, so they are removed when the ``with`` block ends,
error or not) or :func:`capture_outputs` built on it; every place that takes one norm
per tensor goes through :func:`grad_norms`::

    with hooks.capture_outputs(model.taps) as outputs:
        loss = loss_fn(model(x), y)
    # the hooks are gone here; outputs[l][0] is h_{l+1}, still in the graph
    norms = hooks.grad_norms(torch.autograd.grad(loss, [o[0] for o in outputs]))

See :mod:`companion.diagnostics` and :mod:`companion.initialization` for uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from ._checks import check_items

__all__ = ["capture_outputs", "forward_hooks", "grad_norms"]

Hook = Callable[[nn.Module, tuple, Any], None]


def _check_modules(modules: Sequence[nn.Module]) -> list[nn.Module]:
    if isinstance(modules, nn.Module) and not isinstance(modules, nn.ModuleList):
        modules = [modules]
    return check_items("modules", modules, nn.Module, "module (nn.Module)")


def forward_hooks(modules: Sequence[nn.Module], make_hook: Callable[[int], Hook]) -> ExitStack:
    """Register ``make_hook(i)`` as a forward hook on ``modules[i]``; return the handles' stack.

    The returned ``contextlib.ExitStack`` removes every hook when closed: use it as
    ``with forward_hooks(...):``, or keep it and call ``.close()`` (safe twice). If a
    registration fails, the hooks registered so far are removed before the error
    propagates.

    Args:
        modules: the modules to hook (a single module is accepted too).
        make_hook: ``make_hook(i)`` returns the hook for ``modules[i]``, called by torch
            as ``hook(module, inputs, output)``.

    Returns:
        An ``ExitStack`` holding the ``RemovableHandle`` of each hook.
    """
    modules = _check_modules(modules)
    if not callable(make_hook):
        raise TypeError(f"make_hook must be callable (index -> hook), got {type(make_hook).__name__}")
    stack = ExitStack()
    try:
        for i, module in enumerate(modules):
            stack.enter_context(module.register_forward_hook(make_hook(i)))
    except BaseException:
        stack.close()
        raise
    return stack


@contextmanager
def capture_outputs(modules: Sequence[nn.Module], *, detach: bool = False) -> Iterator[list[list[torch.Tensor]]]:
    """Collect the outputs of ``modules`` during a ``with`` block; the hooks are removed at its end.

    ``outputs[i]`` is the list of the tensors ``modules[i]`` returned, one per call, in
    call order (a module used twice, such as the single activation module of an
    :class:`~companion.models.MLP`, appears once per use).

    Args:
        modules: the modules to watch.
        detach: store ``output.detach()`` (statistics) instead of the output itself
            (which keeps it in the autograd graph, for gradients with respect to it).

    Yields:
        The list of lists, filled while the block runs.
    """
    if not isinstance(detach, bool):
        raise TypeError(f"detach must be a bool, got {type(detach).__name__}")
    modules = _check_modules(modules)
    outputs: list[list[torch.Tensor]] = [[] for _ in modules]

    def make_hook(index: int) -> Hook:
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            outputs[index].append(output.detach() if detach else output)

        return hook

    with forward_hooks(modules, make_hook):
        yield outputs


def grad_norms(tensors: Sequence[torch.Tensor], ord: float = 2.0) -> torch.Tensor:
    """The ``ord``-norm of each tensor (default 2: Frobenius for a matrix), stacked into a 1-D tensor.

    .. math:: \\big(\\lVert t_1 \\rVert_p, \\dots, \\lVert t_k \\rVert_p\\big),
              \\qquad \\lVert t \\rVert_p = \\big(\\textstyle\\sum_i \\lvert t_i\\rvert^p\\big)^{1/p}

    One fused ``torch._foreach_norm`` kernel when all tensors share a device and dtype
    (as ``clip_grad_norm_`` does), else one norm each, moved to the first tensor's
    device and promoted to a common dtype. No host synchronization.

    Args:
        tensors: a non-empty sequence of tensors (e.g. ``[p.grad for p in weights]``).
        ord: :math:`p`, as in ``torch.linalg.vector_norm`` (1 for the L1 penalty).

    Returns:
        A 1-D tensor of ``len(tensors)`` norms on the first tensor's device.
    """
    tensors = check_items("tensors", tensors, torch.Tensor, "tensor", hint=" (call backward() first?)")
    first = tensors[0]
    if not first.is_sparse and all(t.device == first.device and t.dtype == first.dtype for t in tensors):
        return torch.stack(torch._foreach_norm(tensors, ord))
    dtype = first.dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return torch.stack([torch.linalg.vector_norm(t.to(dtype), ord).to(first.device) for t in tensors])
