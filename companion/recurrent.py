"""Recurrent networks whose hidden states stay visible, for measuring backprop through time.

``torch.nn.RNN`` and ``torch.nn.LSTM`` run the time loop in C++ and hand back only the
stacked outputs, so the gradient of the loss with respect to each intermediate hidden
state :math:`h_t` is hard to reach. The two models here unroll the loop in Python and
return the list of hidden states, so that :func:`hidden_grad_norms` can measure

.. math::

    \\left\\lVert \\frac{\\partial \\mathcal{L}}{\\partial h_t} \\right\\rVert,
    \\qquad
    \\frac{\\partial \\mathcal{L}}{\\partial h_t}
      = \\Bigl(\\prod_{k=t+1}^{T} W_{hh}^\\top \\operatorname{diag}\\bigl(\\phi'(a_k)\\bigr)\\Bigr)
        \\frac{\\partial \\mathcal{L}}{\\partial h_T}

for an Elman network :math:`h_t = \\phi(a_t)`, :math:`a_t = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}`.
Parameter names and shapes follow ``torch.nn.RNN``/``torch.nn.LSTM``, so weights can be
copied between them (the tests do so).

See the chapter "Gradient clipping and recurrent networks".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._checks import check_choice, check_int, check_items, check_positive, check_real
from .hooks import grad_norms
from .models import ACTIVATION_TABLE

__all__ = ["ElmanRNN", "UnrolledLSTM", "OutputOnly", "hidden_grad_norms"]

_NONLINEARITIES = ("tanh", "relu", "identity")


def _check_input(x: torch.Tensor, input_size: int) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] != input_size:
        raise ValueError(
            f"x must have shape [batch, time, {input_size}] (batch first), got {tuple(x.shape)}"
        )
    if x.shape[1] < 1:
        raise ValueError("x must have at least one time step, got 0")


class ElmanRNN(nn.Module):
    """A one-layer Elman RNN with a linear read-out of the last hidden state.

    .. math::

        h_t = \\phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \\quad h_0 = 0, \\qquad
        \\hat y = W_{\\text{out}} h_T + b_{\\text{out}}

    Args:
        input_size: features per time step.
        hidden_size: size :math:`n` of :math:`h_t`.
        output_size: size of the read-out :math:`\\hat y`.
        nonlinearity: ``"tanh"`` (torch's default), ``"relu"`` or ``"identity"`` (a linear RNN).
        recurrent_scale: ``None`` keeps torch's initialization (every weight and bias
            uniform on :math:`\\pm 1/\\sqrt{n}`, as ``nn.RNN``). A number :math:`s > 0` sets
            :math:`W_{hh} = s\\,Q` with :math:`Q` a random orthogonal matrix, so every singular
            value of :math:`W_{hh}` equals :math:`s`, and zeroes the recurrent biases:
            :math:`s < 1` makes the linearised backward map shrink, :math:`s > 1` grow.

    ``forward(x)`` takes ``x`` of shape ``[batch, time, input_size]`` and returns
    ``(y_hat, hidden_states)``: ``y_hat`` of shape ``[batch, output_size]`` and the list of
    the :math:`T` hidden states ``[batch, hidden_size]``, each part of the autograd graph.
    Wrap the model in :class:`OutputOnly` to train it with a loop that expects a tensor.

    See the chapter "Gradient clipping and recurrent networks".
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        nonlinearity: str = "tanh",
        recurrent_scale: float | None = None,
    ) -> None:
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.output_size = check_int("output_size", output_size, minimum=1)
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, _NONLINEARITIES)
        if recurrent_scale is not None:
            recurrent_scale = check_positive("recurrent_scale", recurrent_scale)
        self.recurrent_scale = recurrent_scale
        n = self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(n, self.input_size))
        self.weight_hh = nn.Parameter(torch.empty(n, n))
        self.bias_ih = nn.Parameter(torch.empty(n))
        self.bias_hh = nn.Parameter(torch.empty(n))
        self.readout = nn.Linear(n, self.output_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the weights as described in the class docstring."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            nn.init.uniform_(p, -bound, bound)
        if self.recurrent_scale is not None:
            with torch.no_grad():
                nn.init.orthogonal_(self.weight_hh)
                self.weight_hh.mul_(self.recurrent_scale)
                self.bias_ih.zero_()
                self.bias_hh.zero_()
        self.readout.reset_parameters()

    def _phi(self, a: torch.Tensor) -> torch.Tensor:
        return ACTIVATION_TABLE[self.nonlinearity].function(a)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        _check_input(x, self.input_size)
        # Input projections for every step at once: one matmul instead of T.
        inputs = x @ self.weight_ih.T + self.bias_ih
        h = x.new_zeros(x.shape[0], self.hidden_size)
        states: list[torch.Tensor] = []
        for t in range(x.shape[1]):
            h = self._phi(inputs[:, t] + h @ self.weight_hh.T + self.bias_hh)
            states.append(h)
        return self.readout(h), states


class UnrolledLSTM(nn.Module):
    """A one-layer LSTM unrolled with ``nn.LSTMCell``, same interface as :class:`ElmanRNN`.

    .. math::

        c_t = f_t \\odot c_{t-1} + i_t \\odot g_t, \\qquad h_t = o_t \\odot \\tanh(c_t),
        \\qquad \\hat y = W_{\\text{out}} h_T + b_{\\text{out}}

    The additive cell path :math:`c_{t-1} \\to c_t` is scaled only by the forget gate
    :math:`f_t`, which is what lets gradients survive many steps when :math:`f_t \\approx 1`.

    Args:
        input_size: features per time step.
        hidden_size: size of :math:`h_t` and :math:`c_t`.
        output_size: size of the read-out.
        forget_bias: ``None`` keeps torch's initialization; a number is added to the
            forget-gate part of ``bias_ih`` (a common choice is 1.0, so that
            :math:`f_t \\approx \\sigma(1)` at the start).

    ``forward(x)`` returns ``(y_hat, hidden_states)`` exactly like :class:`ElmanRNN`.
    The cell parameters are those of ``nn.LSTMCell`` (``cell.weight_ih`` etc.), in the same
    layout as ``nn.LSTM``'s ``weight_ih_l0``.

    See the chapter "Gradient clipping and recurrent networks".
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.output_size = check_int("output_size", output_size, minimum=1)
        if forget_bias is not None:
            forget_bias = check_real("forget_bias", forget_bias)
        self.cell = nn.LSTMCell(self.input_size, self.hidden_size)
        self.readout = nn.Linear(self.hidden_size, self.output_size)
        if forget_bias is not None:
            n = self.hidden_size
            with torch.no_grad():  # gate order in torch: input, forget, cell, output
                self.cell.bias_ih[n : 2 * n].add_(forget_bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        _check_input(x, self.input_size)
        h = x.new_zeros(x.shape[0], self.hidden_size)
        c = x.new_zeros(x.shape[0], self.hidden_size)
        states: list[torch.Tensor] = []
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
            states.append(h)
        return self.readout(h), states


class OutputOnly(nn.Module):
    """Wrap a model that returns ``(y_hat, hidden_states)`` so that it returns ``y_hat`` only.

    Shares the wrapped model's parameters (``OutputOnly(rnn).parameters()`` are ``rnn``'s),
    so a generic training loop such as ``companion.training.fit`` can train it.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[0]


def hidden_grad_norms(
    loss: torch.Tensor,
    hidden_states: Sequence[torch.Tensor],
    *,
    retain_graph: bool = False,
) -> torch.Tensor:
    """Return :math:`\\lVert \\partial\\mathcal{L}/\\partial h_t \\rVert_F` for :math:`t = 1..T`.

    The gradient is the *total* derivative: it includes every path from :math:`h_t` to the
    loss through the later time steps (for an Elman network, the product of Jacobians
    :math:`W_{hh}^\\top \\operatorname{diag}(\\phi'(a_k))` in the module docstring). The norm
    is taken over the whole ``[batch, hidden]`` tensor.

    Args:
        loss: a scalar tensor.
        hidden_states: the list returned by the model's ``forward``, oldest first.
        retain_graph: keep the graph so that ``loss.backward()`` can still be called
            (for the parameter gradients) afterwards.

    Returns:
        A 1-D tensor of length :math:`T` on the loss's device (no host sync). Its ratio
        first/last tells whether gradients vanish (:math:`\\ll 1`) or explode (:math:`\\gg 1`)
        backwards in time.

    See the chapter "Gradient clipping and recurrent networks".
    """
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError("loss must be a scalar tensor")
    if not loss.requires_grad:
        raise ValueError("loss does not require grad: compute it from the model's outputs")
    states = check_items("hidden_states", hidden_states, torch.Tensor, "tensor")
    grads = torch.autograd.grad(loss, states, retain_graph=retain_graph, allow_unused=True)
    # A state the loss does not depend on has gradient exactly zero.
    return grad_norms([g if g is not None else torch.zeros_like(h) for g, h in zip(grads, states)])
