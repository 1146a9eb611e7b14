"""Measure gradients and activations layer by layer, without slowing training down.

Exploding and vanishing gradients are statements about how the gradient norm
:math:`g_\\ell = \\lVert \\partial\\mathcal L / \\partial W_\\ell \\rVert_F` changes with the
layer index :math:`\\ell`. This module measures :math:`g_\\ell` (once, or at every step
with :class:`GradientMonitor`), the activations :math:`h_\\ell`, and the singular values
of a network's input-output Jacobian.

Two names, two quantities: :func:`weight_grad_norms` returns :math:`g_\\ell`, one norm per
weight matrix (the book's per-layer gradient norm); :func:`parameter_grad_norms` returns one
norm per *parameter*, biases and normalization scales included, by name.

The per-step tools never copy a number to the host: norms are stacked on the device
and transferred once, when read (a ``.item()`` per layer would stall a GPU pipeline
once per layer and step).

"Tracked weights" below are the parameters with at least two dimensions that require
a gradient (weight matrices and convolution kernels; not biases, not normalization
scales), in ``named_parameters()`` order. For an :class:`~companion.models.MLP` they are
:math:`W_1, \\dots, W_{L+1}`.

See the chapter "Exploding and vanishing gradients" for the first use.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import torch
from torch import nn

from .hooks import capture_outputs, forward_hooks, grad_norms
from .models import ACTIVATION_TABLE

__all__ = [
    "GradientMonitor",
    "activation_grad_norms",
    "activation_stats",
    "jacobian_singular_values",
    "parameter_grad_norms",
    "weight_grad_norms",
]

_NO_GRAD = "call backward() first"

# Leaf modules whose output is an activation h_l, for models that are not a companion MLP:
# those of the activation table (but the identity) and a few more torch ones.
_ACTIVATION_TYPES = tuple(
    type(row.module()) for name, row in ACTIVATION_TABLE.items() if name != "identity"
) + (nn.ELU, nn.SiLU, nn.Softplus)


def _check_module(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def _tracked_weights(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    weights = [(n, p) for n, p in model.named_parameters() if p.dim() >= 2 and p.requires_grad]
    if not weights:
        raise ValueError("model has no weight matrices (parameters with >= 2 dimensions) to track")
    return weights


def _grads_of(weights: list[tuple[str, nn.Parameter]]) -> list[torch.Tensor]:
    grads = []
    for name, p in weights:
        if p.grad is None:
            raise RuntimeError(f"parameter {name!r} has no gradient: {_NO_GRAD}")
        grads.append(p.grad.detach())
    return grads


def _activation_taps(model: nn.Module) -> list[tuple[str, nn.Module]]:
    taps = getattr(model, "taps", None)
    if isinstance(taps, nn.ModuleList) and len(taps) > 0:  # a companion MLP: h_1 .. h_L
        return [(f"h{l + 1}", m) for l, m in enumerate(taps)]
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, _ACTIVATION_TYPES)]
    if not found:
        raise ValueError(
            "model has no activation modules to hook (expected a companion MLP or "
            f"modules of type {[t.__name__ for t in _ACTIVATION_TYPES]})"
        )
    return found


def parameter_grad_norms(model: nn.Module) -> dict[str, float]:
    """Return the 2-norm of every parameter's gradient (biases too), by parameter name.

    One entry per parameter, not per layer: for the per-layer :math:`g_\\ell` of the
    book's notation use :func:`weight_grad_norms`.

    .. math::

        g_p = \\lVert \\partial\\mathcal L / \\partial p \\rVert_2
        \\quad(\\text{the Frobenius norm for a matrix } p)

    Parameters without a gradient (frozen, or unused by the loss) are left out. The
    norms are computed on the device and copied to the host once.

    Args:
        model: a module on which ``loss.backward()`` has been called.

    Returns:
        ``{name: norm}`` in ``named_parameters()`` order, as Python floats.

    Raises:
        RuntimeError: if no parameter has a gradient ("call backward() first").
        TypeError: if ``model`` is not an ``nn.Module``.

    See the chapter "Exploding and vanishing gradients".
    """
    model = _check_module(model)
    named = [(n, p.grad.detach()) for n, p in model.named_parameters() if p.grad is not None]
    if not named:
        raise RuntimeError(f"model has no gradients: {_NO_GRAD}")
    values = grad_norms([g for _, g in named])
    return dict(zip([n for n, _ in named], values.tolist()))  # the one host sync



def weight_grad_norms(model: nn.Module) -> torch.Tensor:
    """Return :math:`g_\\ell = \\lVert \\partial\\mathcal L/\\partial W_\\ell \\rVert_F` for each tracked weight.

    For an :class:`~companion.models.MLP` the result has :math:`L+1` entries,
    :math:`\\ell = 1` (input side) first. No host synchronization: the tensor stays on
    the parameters' device, ready to be stacked step after step.

    Args:
        model: a module on which ``loss.backward()`` has been called.

    Returns:
        A 1-D float tensor of length "number of tracked weights".

    Raises:
        RuntimeError: if a tracked weight has no gradient ("call backward() first").
        ValueError: if the model has no weight matrices.
        TypeError: if ``model`` is not an ``nn.Module``.
    """
    model = _check_module(model)
    return grad_norms(_grads_of(_tracked_weights(model)))


class GradientMonitor:
    """Record :math:`g_\\ell` for every tracked weight at chosen training steps.

    Call :meth:`record` after ``loss.backward()`` (before or after ``optimizer.step()``,
    before the next ``zero_grad``). Each record is one fused norm computation written
    into a preallocated device buffer: no host synchronization. :meth:`norms` copies
    everything to the host once.

    With ``activations=True`` forward hooks also keep, for the latest forward pass, the
    mean and standard deviation of each hidden activation :math:`h_\\ell` (and the
    fraction of exact zeros); :meth:`record` stores them beside the gradient norms.

    Args:
        model: the module being trained.
        activations: also record activation statistics via forward hooks.

    Example:
        >>> monitor = GradientMonitor(model)          # doctest: +SKIP
        >>> for step in range(100):                   # doctest: +SKIP
        ...     loss = loss_fn(model(x), y); opt.zero_grad(); loss.backward()
        ...     monitor.record(step); opt.step()
        >>> monitor.norms().shape                     # doctest: +SKIP
        torch.Size([100, 21])
    """

    def __init__(self, model: nn.Module, *, activations: bool = False) -> None:
        self.model = _check_module(model)
        if not isinstance(activations, bool):
            raise TypeError(f"activations must be a bool, got {type(activations).__name__}")
        self._weights = _tracked_weights(model)
        self._params = [p for _, p in self._weights]
        #: Names of the tracked weights, the columns of :meth:`norms`.
        self.layer_names: list[str] = [n for n, _ in self._weights]
        #: The ``step`` passed to each :meth:`record` call, the rows of :meth:`norms`.
        self.steps: list[int] = []
        device = self._weights[0][1].device
        dtype = torch.float64 if any(p.dtype == torch.float64 for _, p in self._weights) else torch.float32
        self._buffer = torch.empty(64, len(self._weights), device=device, dtype=dtype)
        self._hooks = ExitStack()  # the forward hooks' handles; close() removes them
        self._latest: dict[int, torch.Tensor] = {}
        self._act_rows: list[torch.Tensor] = []
        #: Names of the hooked activations (``"h1"``... for an MLP), the columns of
        #: :meth:`activation_stats`; empty when ``activations=False``.
        self.activation_names: list[str] = []
        if activations:
            taps = _activation_taps(model)
            self.activation_names = [n for n, _ in taps]
            self._hooks = forward_hooks([m for _, m in taps], self._make_hook)

    def _make_hook(self, index: int) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            h = output.detach()
            # mean, std, fraction of zeros as one small device tensor; no sync.
            self._latest[index] = torch.stack(
                [h.mean(), h.std(), (h == 0).float().mean()]
            )

        return hook

    def record(self, step: int) -> None:
        """Store the current gradient norms (and activation stats) under ``step``.

        Raises:
            RuntimeError: if a tracked weight has no gradient ("call backward() first").
        """
        # Hot path, called every step: no per-parameter Python work beyond reading .grad
        # (the None check happens only when the fused norm fails).
        grads = [p.grad for p in self._params]
        try:
            norms = grad_norms(grads)
        except (TypeError, RuntimeError):
            _grads_of(self._weights)  # raises "parameter ... has no gradient: call backward() first"
            raise
        n = len(self.steps)
        if n == self._buffer.shape[0]:  # grow geometrically: amortized O(1), rare
            self._buffer = torch.cat([self._buffer, torch.empty_like(self._buffer)])
        # detach: gradients from backward(create_graph=True) carry a graph
        self._buffer[n].copy_(norms.detach())
        if self.activation_names:
            if len(self._latest) != len(self.activation_names):
                raise RuntimeError("no forward pass seen since the monitor was created")
            self._act_rows.append(torch.stack([self._latest[i] for i in range(len(self.activation_names))]))
        self.steps.append(int(step))

    def norms(self) -> torch.Tensor:
        """Return the recorded norms as a CPU tensor ``[records, layers]`` (one host sync)."""
        return self._buffer[: len(self.steps)].cpu()

    def activation_stats(self) -> dict[str, torch.Tensor]:
        """Return ``{"mean", "std", "zero_fraction"}``, each a CPU tensor ``[records, layers]``.

        Row ``r`` belongs to ``steps[r]`` and describes the last forward pass before that
        :meth:`record`; columns follow ``activation_names``. One host sync.

        Raises:
            RuntimeError: if the monitor was created with ``activations=False``.
        """
        if not self.activation_names:
            raise RuntimeError("activation statistics need GradientMonitor(model, activations=True)")
        if not self._act_rows:
            empty = torch.empty(0, len(self.activation_names))
            return {"mean": empty, "std": empty.clone(), "zero_fraction": empty.clone()}
        rows = torch.stack(self._act_rows).cpu()  # [records, layers, 3]
        return {"mean": rows[..., 0], "std": rows[..., 1], "zero_fraction": rows[..., 2]}

    def close(self) -> None:
        """Remove the forward hooks (safe to call twice)."""
        self._hooks.close()

    def __enter__(self) -> GradientMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def activation_stats(model: nn.Module, x: torch.Tensor) -> dict[str, dict[str, float]]:
    """Mean, standard deviation and fraction of zeros of each hidden activation for input ``x``.

    For a companion :class:`~companion.models.MLP` the layers are :math:`h_1, \\dots, h_L`
    (keys ``"h1"``...); for other models, the outputs of their activation modules
    (ReLU, Tanh, ...), by module name. One forward pass under ``torch.no_grad()``; the
    hooks are removed afterwards, even on error; one host sync.

    .. math::

        \\text{mean}_\\ell = \\overline{h_\\ell}, \\quad
        \\text{std}_\\ell = \\sqrt{\\tfrac{1}{N-1}\\textstyle\\sum (h_\\ell - \\overline{h_\\ell})^2}, \\quad
        \\text{zero\\_fraction}_\\ell = \\tfrac{1}{N}\\#\\{h_\\ell = 0\\}

    over all :math:`N` entries (batch and units) of :math:`h_\\ell`.

    Args:
        model: the network.
        x: a batch of inputs on the model's device.

    Returns:
        ``{layer: {"mean": float, "std": float, "zero_fraction": float}}``.
    """
    model = _check_module(model)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    taps = _activation_taps(model)
    with capture_outputs([m for _, m in taps], detach=True) as outputs, torch.no_grad():
        model(x)
    seen = sum(len(o) for o in outputs)
    if any(len(o) != 1 for o in outputs):
        raise RuntimeError(f"expected {len(taps)} activations, saw {seen} (a module reused?)")
    stats = [torch.stack([h.mean(), h.std(), (h == 0).float().mean()]) for (h,) in outputs]
    values = torch.stack(stats).tolist()  # the one host sync
    return {
        name: {"mean": v[0], "std": v[1], "zero_fraction": v[2]}
        for (name, _), v in zip(taps, values)
    }


def activation_grad_norms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
) -> torch.Tensor:
    """Backpropagate one batch and return :math:`\\lVert \\partial\\mathcal L/\\partial h_\\ell \\rVert_F` per hidden layer.

    This is the back-propagated signal itself, the product of layer Jacobians

    .. math::

        \\frac{\\partial \\mathcal L}{\\partial h_\\ell}
        = J_{\\ell+1}^\\top \\cdots J_L^\\top \\frac{\\partial \\mathcal L}{\\partial h_L},
        \\qquad J_k = \\frac{\\partial h_k}{\\partial h_{k-1}}
        = \\operatorname{diag}\\big(\\phi'(a_k)\\big) W_k,

    (for a plain MLP), with the norm taken over the whole ``[batch, width]`` tensor. The
    weight gradient :math:`\\partial\\mathcal L/\\partial W_\\ell` is this signal (times
    :math:`\\phi'`) multiplied by the forward activation :math:`h_{\\ell-1}`, so the two can
    behave differently: see the chapter.

    The layers are those :func:`activation_stats` uses (``model.taps`` for a companion
    MLP). One forward and one backward pass; the total derivative is read by tensor hooks
    during that backward pass. Side effect: the parameters' ``.grad`` are reset and then
    hold this batch's gradient, so :func:`weight_grad_norms` can be called next. No host sync.

    Args:
        model: the network.
        x: a batch of inputs on the model's device.
        y: the targets, as ``loss_fn`` expects them.
        loss_fn: ``loss_fn(model(x), y)`` must be a scalar (default: cross-entropy).

    Returns:
        A 1-D tensor with one norm per hidden layer, :math:`\\ell = 1` first.
    """
    model = _check_module(model)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    taps = _activation_taps(model)
    model.zero_grad(set_to_none=True)
    with capture_outputs([m for _, m in taps]) as outputs:
        loss = loss_fn(model(x), y)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError("loss_fn(model(x), y) must return a scalar tensor")
    if any(len(o) != 1 for o in outputs):
        raise RuntimeError(f"expected {len(taps)} activations, saw {sum(len(o) for o in outputs)} (a module reused?)")
    grads: dict[int, torch.Tensor] = {}
    for i, (h,) in enumerate(outputs):  # read dL/dh_l during the one backward that fills .grad
        if h.requires_grad:
            h.register_hook(lambda g, i=i: grads.__setitem__(i, g))
    loss.backward()
    if len(grads) != len(taps):
        raise RuntimeError(f"expected {len(taps)} activation gradients, got {len(grads)}")
    return grad_norms([grads[i] for i in range(len(taps))])


def jacobian_singular_values(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """Singular values of the Jacobian :math:`J = \\partial f(x)/\\partial x` at one example.

    .. math::

        J_{ij} = \\frac{\\partial f(x)_i}{\\partial x_j}, \\qquad
        \\sigma_1 \\ge \\sigma_2 \\ge \\dots \\ge \\sigma_{\\min(m, d)} \\ge 0

    with ``x`` flattened to :math:`d` entries and :math:`f(x)` to :math:`m`. For a chain
    :math:`f = f_{L} \\circ \\dots \\circ f_1` the Jacobian is the product of the layers'
    Jacobians, so :math:`\\sigma_1` bounds how much a perturbation (forward) or a gradient
    (backward, :math:`J^\\top`) can grow through the whole chain.

    Computed with ``torch.func.jacrev`` (reverse mode, one vector-Jacobian product per
    output, vectorized) and ``torch.linalg.svdvals``. Put a model with dropout or batch
    normalization in ``eval()`` mode first.

    Args:
        fn: a function or module mapping one example (no batch dimension, unless ``fn``
            adds one itself) to a tensor.
        x: the example at which to differentiate.

    Returns:
        A 1-D tensor of :math:`\\min(m, d)` singular values, descending, on ``x``'s device.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    x = x.detach()
    out_numel = fn(x).numel()
    jac = torch.func.jacrev(fn)(x)
    # A diagnostic, not part of a training graph: detach from the parameters.
    return torch.linalg.svdvals(jac.detach().reshape(out_numel, x.numel()))
