"""Multilayer perceptrons whose depth, width, activation and initialization are explicit.

Every experiment on exploding and vanishing gradients varies the same few knobs:
how deep the network is, which nonlinearity it uses and how its weights are drawn.
:func:`mlp` builds such a network in one call with the book's notation: ``depth``
is the number of hidden layers :math:`L`, so the model has :math:`L+1` weight
matrices :math:`W_1, \\dots, W_{L+1}` stored, input to output, in ``model.linears``.

See the chapter "Exploding and vanishing gradients" for the first use.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_choice, check_int, check_positive, check_probability, check_real

__all__ = ["ACTIVATIONS", "INITS", "NORMS", "MLP", "activation_gain", "init_linear_", "mlp"]

#: Activation names accepted by :func:`mlp`.
ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "gelu", "selu")
#: Initialization names accepted by :func:`mlp`.
INITS = (
    "default",
    "normal",
    "xavier",
    "xavier_uniform",
    "kaiming",
    "kaiming_uniform",
    "orthogonal",
    "constant",
)
#: Normalization names accepted by :func:`mlp` (``None`` means no normalization).
NORMS = ("batch", "layer")

_LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default negative slope

# The name torch.nn.init.calculate_gain knows for each activation. GELU has no entry
# there; it behaves like ReLU for large |a|, so it borrows ReLU's gain sqrt(2). For SELU,
# torch's documentation recommends the "linear" gain 1 (LeCun init, variance 1/fan_in):
# that is what makes SELU networks self-normalizing; calculate_gain("selu") = 3/4 is a
# different compromise that we do not use.
_GAIN_NAME = {
    "identity": "linear",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "gelu": "relu",
    "selu": "linear",
}


def _make_activation(name: str) -> nn.Module:
    return {
        "identity": nn.Identity,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(_LEAKY_SLOPE),
        "gelu": nn.GELU,
        "selu": nn.SELU,
    }[name]()


def activation_gain(activation: str) -> float:
    """Return the initialization gain :math:`\\gamma` used for ``activation``.

    The gain is the factor by which He (Kaiming) and Glorot (Xavier) initialization
    scale the weight standard deviation so that the activation does not shrink or
    grow the signal on average. It is ``torch.nn.init.calculate_gain`` of the
    activation: :math:`\\sqrt 2` for ReLU, :math:`\\sqrt{2/(1+0.01^2)}` for leaky ReLU
    (slope 0.01), :math:`5/3` for tanh, :math:`1` for sigmoid and identity. Two
    exceptions, because torch has no better entry: GELU uses ReLU's :math:`\\sqrt 2`,
    SELU uses :math:`1` (LeCun initialization, as torch recommends for SELU).

    Args:
        activation: one of :data:`ACTIVATIONS`.

    Returns:
        The gain as a float.

    Raises:
        ValueError: if ``activation`` is not a known name.
    """
    activation = check_choice("activation", activation, ACTIVATIONS)
    name = _GAIN_NAME[activation]
    if name == "leaky_relu":
        return nn.init.calculate_gain(name, _LEAKY_SLOPE)
    return nn.init.calculate_gain(name)


def init_linear_(
    layer: nn.Linear, init: str, *, gain: float = 1.0, std: float | None = None
) -> None:
    """Initialize one ``nn.Linear`` in place; its bias (if any) is set to 0.

    With :math:`n_\\text{in}`, :math:`n_\\text{out}` the layer's fan-in and fan-out and
    :math:`\\gamma` = ``gain``, the weight entries are drawn as

    .. math::

        \\text{normal}: \\mathcal N(0, \\sigma^2), \\quad
        \\text{constant}: w_{ij} = \\sigma, \\quad
        \\text{kaiming}: \\mathcal N\\!\\left(0, \\tfrac{\\gamma^2}{n_\\text{in}}\\right), \\quad
        \\text{kaiming\\_uniform}: \\mathcal U\\!\\left(\\pm\\gamma\\sqrt{3/n_\\text{in}}\\right),

    .. math::

        \\text{xavier}: \\mathcal N\\!\\left(0, \\tfrac{2\\gamma^2}{n_\\text{in}+n_\\text{out}}\\right), \\quad
        \\text{xavier\\_uniform}: \\mathcal U\\!\\left(\\pm\\gamma\\sqrt{6/(n_\\text{in}+n_\\text{out})}\\right), \\quad
        \\text{orthogonal}: W = \\gamma Q,\\ Q^\\top Q = I \\text{ (or } QQ^\\top = I).

    where :math:`\\sigma` = ``std``. ``"default"`` leaves torch's own initialization
    (weights and bias :math:`\\mathcal U(\\pm 1/\\sqrt{n_\\text{in}})`) untouched.

    Args:
        layer: the ``nn.Linear`` to initialize.
        init: one of :data:`INITS`.
        gain: :math:`\\gamma`, used by the kaiming, xavier and orthogonal schemes.
        std: :math:`\\sigma`, required by ``"normal"`` (standard deviation) and
            ``"constant"`` (the constant value).

    Raises:
        ValueError: on an unknown ``init`` or a missing/invalid ``std``.
    """
    init = check_choice("init", init, INITS)
    gain = check_positive("gain", gain)
    if init in ("normal", "constant"):
        if std is None:
            raise ValueError(f"std is required when init={init!r}, got None")
        std = check_real("std", std)
        if init == "normal" and std < 0:
            raise ValueError(f"std must be >= 0 for init='normal', got {std}")
    if init == "default":
        return
    w = layer.weight
    fan_in = w.shape[1]  # nn.Linear stores [out, in]; xavier reads both fans from the tensor
    with torch.no_grad():
        if init == "normal":
            nn.init.normal_(w, 0.0, std)
        elif init == "constant":
            nn.init.constant_(w, std)
        elif init == "kaiming":
            nn.init.normal_(w, 0.0, gain / math.sqrt(fan_in))
        elif init == "kaiming_uniform":
            bound = gain * math.sqrt(3.0 / fan_in)
            nn.init.uniform_(w, -bound, bound)
        elif init == "xavier":
            nn.init.xavier_normal_(w, gain=gain)
        elif init == "xavier_uniform":
            nn.init.xavier_uniform_(w, gain=gain)
        else:  # orthogonal
            nn.init.orthogonal_(w, gain=gain)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


class MLP(nn.Module):
    """A multilayer perceptron with :math:`L` hidden layers of width :math:`n`.

    Without residual connections, hidden layer :math:`\\ell = 1, \\dots, L` computes

    .. math::

        a_\\ell = W_\\ell h_{\\ell-1} + b_\\ell, \\qquad
        h_\\ell = \\operatorname{drop}\\big(\\phi(\\operatorname{norm}(a_\\ell))\\big),

    with :math:`h_0 = x`, and the output is :math:`W_{L+1} h_L + b_{L+1}` (no activation).
    With ``residual=True`` the hidden layers :math:`\\ell \\ge 2` compute
    :math:`h_\\ell = h_{\\ell-1} + \\operatorname{drop}(\\phi(\\operatorname{norm}(a_\\ell)))`
    (layer 1 maps the input to the width, so it has no skip connection).

    Build it with :func:`mlp`. Attributes:

    - ``linears``: ``nn.ModuleList`` of the :math:`L+1` ``nn.Linear`` layers,
      input to output (``linears[l-1]`` holds :math:`W_\\ell, b_\\ell`).
    - ``norms``: ``nn.ModuleList`` of :math:`L` normalization layers
      (``nn.Identity`` when ``norm=None``).
    - ``taps``: ``nn.ModuleList`` of :math:`L` ``nn.Identity`` modules through which each
      :math:`h_\\ell` passes; :mod:`companion.diagnostics` hooks them to read activations.
    - ``depth`` (:math:`L`), ``width`` (:math:`n`), ``activation``, ``residual``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        depth: int,
        width: int,
        activation: str = "relu",
        norm: str | None = None,
        residual: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        in_features = check_int("in_features", in_features, minimum=1)
        out_features = check_int("out_features", out_features, minimum=1)
        self.depth = check_int("depth", depth, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        if norm is not None:
            norm = check_choice("norm", norm, NORMS)
        self.norm = norm
        if not isinstance(residual, bool):
            raise TypeError(f"residual must be a bool, got {type(residual).__name__}")
        self.residual = residual
        self.dropout = check_probability("dropout", dropout, inclusive_high=False)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")

        sizes = [in_features] + [self.width] * self.depth + [out_features]
        self.linears = nn.ModuleList(
            nn.Linear(sizes[i], sizes[i + 1], bias=bias) for i in range(self.depth + 1)
        )
        self.norms = nn.ModuleList(self._make_norm() for _ in range(self.depth))
        self.taps = nn.ModuleList(nn.Identity() for _ in range(self.depth))
        self.phi = _make_activation(self.activation)
        self.drop = nn.Dropout(self.dropout) if self.dropout > 0 else nn.Identity()

    def _make_norm(self) -> nn.Module:
        if self.norm == "batch":
            return nn.BatchNorm1d(self.width)
        if self.norm == "layer":
            return nn.LayerNorm(self.width)
        return nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` of shape ``[batch, in_features]`` to ``[batch, out_features]``."""
        h = x
        for l in range(self.depth):
            f = self.drop(self.phi(self.norms[l](self.linears[l](h))))
            h = h + f if (self.residual and l > 0) else f
            h = self.taps[l](h)
        return self.linears[-1](h)

    def extra_repr(self) -> str:
        return (
            f"depth={self.depth}, width={self.width}, activation={self.activation!r}, "
            f"norm={self.norm!r}, residual={self.residual}, dropout={self.dropout}"
        )


def mlp(
    in_features: int,
    out_features: int,
    *,
    depth: int,
    width: int,
    activation: str = "relu",
    init: str = "kaiming",
    std: float | None = None,
    norm: str | None = None,
    residual: bool = False,
    dropout: float = 0.0,
    bias: bool = True,
) -> MLP:
    """Build an :class:`MLP` and initialize all its :math:`L+1` weight matrices.

    Every ``nn.Linear`` (the output layer too) is initialized with the same scheme
    (see :func:`init_linear_` for the formulas); biases are set to 0 except with
    ``init="default"``, which keeps torch's initialization of weights and biases.
    The kaiming and xavier schemes (normal and uniform) and orthogonal use the gain
    :math:`\\gamma` of the activation (:func:`activation_gain`): He's
    :math:`\\operatorname{Var}(w) = \\gamma^2/n_\\text{in}` keeps the second moment of
    the pre-activations constant from layer to layer for ReLU (:math:`\\gamma^2 = 2`);
    Glorot's :math:`\\operatorname{Var}(w) = 2\\gamma^2/(n_\\text{in}+n_\\text{out})`
    compromises between the forward and backward pass.

    Args:
        in_features: input dimension.
        out_features: output dimension.
        depth: number of hidden layers :math:`L \\ge 1`.
        width: hidden width :math:`n \\ge 1`.
        activation: one of :data:`ACTIVATIONS`.
        init: one of :data:`INITS`.
        std: :math:`\\sigma` for ``init="normal"`` (weights :math:`\\mathcal N(0,\\sigma^2)`)
            or the constant for ``init="constant"``; required by those two, ignored by
            the others. For a width-independent scale pass ``std=c / math.sqrt(width)``.
        norm: ``None``, ``"batch"`` or ``"layer"``: placed after each hidden Linear,
            before the activation.
        residual: if True, hidden layers 2..L compute :math:`h + f(h)`.
        dropout: probability :math:`p \\in [0, 1)` of ``nn.Dropout`` after each hidden
            activation (0 means no dropout layer).
        bias: whether the Linear layers have biases.

    Returns:
        The initialized :class:`MLP` (on the CPU, in training mode).

    Raises:
        ValueError: on an unknown ``activation``/``init``/``norm``, ``depth < 1``,
            ``width < 1``, a missing ``std`` for ``"normal"``/``"constant"``, or
            ``dropout`` outside ``[0, 1)``.
        TypeError: on arguments of the wrong type.

    Example:
        >>> model = mlp(2, 1, depth=30, width=64, activation="tanh", init="xavier")
        >>> len(model.linears)
        31

    See the chapter "Exploding and vanishing gradients" for its use.
    """
    init = check_choice("init", init, INITS)
    if init in ("normal", "constant") and std is None:
        raise ValueError(f"std is required when init={init!r} (std=None given)")
    model = MLP(
        in_features,
        out_features,
        depth=depth,
        width=width,
        activation=activation,
        norm=norm,
        residual=residual,
        dropout=dropout,
        bias=bias,
    )
    gain = activation_gain(model.activation)
    for layer in model.linears:
        init_linear_(layer, init, gain=gain, std=std)
    return model
