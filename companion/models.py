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
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_choice, check_int, check_nonnegative, check_positive, check_probability, check_real

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_TABLE",
    "INITS",
    "NORMS",
    "MLP",
    "Activation",
    "ResidualMLP",
    "activation_function",
    "activation_gain",
    "canonical_init",
    "init_linear_",
    "mlp",
]

_LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default negative slope


@dataclass(frozen=True)
class Activation:
    """One row of :data:`ACTIVATION_TABLE`: a nonlinearity as a module, a function and a gain.

    Attributes:
        module: a factory of the ``nn.Module`` (``nn.Tanh``...), used by :class:`MLP`.
        function: the elementwise function, used where no module is needed.
        gain: the initialization gain :math:`\\gamma` (see :func:`activation_gain`).
    """

    module: Callable[[], nn.Module]
    function: Callable[[torch.Tensor], torch.Tensor]
    gain: float


def _identity(z: torch.Tensor) -> torch.Tensor:
    return z


def _leaky_relu(z: torch.Tensor) -> torch.Tensor:
    return nn.functional.leaky_relu(z, _LEAKY_SLOPE)


# The gain is torch.nn.init.calculate_gain of the activation. GELU has no entry there; it
# behaves like ReLU for large |a|, so it borrows ReLU's gain sqrt(2). For SELU, torch's
# documentation recommends the "linear" gain 1 (LeCun init, variance 1/fan_in): that is
# what makes SELU networks self-normalizing; calculate_gain("selu") = 3/4 is a different
# compromise that we do not use.
#: The one map from an activation name to its module, function and gain; every module of
#: the companion that takes an ``activation=`` name reads it here.
ACTIVATION_TABLE: dict[str, Activation] = {
    "identity": Activation(nn.Identity, _identity, nn.init.calculate_gain("linear")),
    "sigmoid": Activation(nn.Sigmoid, torch.sigmoid, nn.init.calculate_gain("sigmoid")),
    "tanh": Activation(nn.Tanh, torch.tanh, nn.init.calculate_gain("tanh")),
    "relu": Activation(nn.ReLU, torch.relu, nn.init.calculate_gain("relu")),
    "leaky_relu": Activation(
        lambda: nn.LeakyReLU(_LEAKY_SLOPE), _leaky_relu, nn.init.calculate_gain("leaky_relu", _LEAKY_SLOPE)
    ),
    "gelu": Activation(nn.GELU, nn.functional.gelu, nn.init.calculate_gain("relu")),
    "selu": Activation(nn.SELU, torch.selu, nn.init.calculate_gain("linear")),
}
#: Activation names accepted by :func:`mlp`.
ACTIVATIONS = tuple(ACTIVATION_TABLE)
# He and Glorot are the names the book (and Keras) use for Kaiming and Xavier.
_INIT_ALIASES = {"he": "kaiming", "he_uniform": "kaiming_uniform", "glorot": "xavier", "glorot_uniform": "xavier_uniform"}
#: Initialization names accepted by :func:`mlp` and :func:`init_linear_` ("he" = "kaiming",
#: "glorot" = "xavier", and their "_uniform" variants).
INITS = (
    "default",
    "normal",
    "xavier",
    "xavier_uniform",
    "kaiming",
    "kaiming_uniform",
    "orthogonal",
    "constant",
    *_INIT_ALIASES,
)
#: Normalization names accepted by :func:`mlp` (``None`` means no normalization).
NORMS = ("batch", "layer")


def _activation(name: str) -> Activation:
    return ACTIVATION_TABLE[check_choice("activation", name, ACTIVATIONS)]


def activation_function(activation: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the elementwise function named ``activation`` (one of :data:`ACTIVATIONS`).

    ``leaky_relu`` uses torch's default negative slope 0.01.
    """
    return _activation(activation).function


def canonical_init(init: str) -> str:
    """Check an initialization name and return its canonical form.

    ``"he"``/``"he_uniform"`` become ``"kaiming"``/``"kaiming_uniform"`` and
    ``"glorot"``/``"glorot_uniform"`` become ``"xavier"``/``"xavier_uniform"``
    (the same schemes under their authors' names); other names are returned lower-cased.

    Raises:
        ValueError: if ``init`` is not one of :data:`INITS`.
    """
    init = check_choice("init", init, INITS)
    return _INIT_ALIASES.get(init, init)


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
    return _activation(activation).gain


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
    init = canonical_init(init)
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


def _make_norm(norm: str | None, width: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


class _Stack(nn.Module):
    """What :class:`MLP` and :class:`ResidualMLP` share: checked sizes, names, input checks."""

    def __init__(
        self, in_features: int, out_features: int, *, depth: int, width: int, activation: str, norm: str | None
    ) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features, minimum=1)
        self.out_features = check_int("out_features", out_features, minimum=1)
        self.depth = check_int("depth", depth, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.norm = None if norm is None else check_choice("norm", norm, NORMS)

    def _check_input(self, x: torch.Tensor) -> None:
        """Say what was expected and what came, before torch's shape or dtype error would.

        ``[batch, in_features]`` is the rule; one example without a batch axis,
        ``[in_features]``, is accepted as ``nn.Linear`` accepts it (not with BatchNorm).
        """
        n = self.in_features
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a tensor of shape [batch, {n}], got {type(x).__name__}")
        one_example = x.ndim == 1 and x.shape[0] == n and self.norm != "batch"
        if x.ndim < 2 and not one_example:
            hint = f"x.reshape(-1, 1) makes a column of {x.numel()} one-feature examples" if n == 1 else (
                f"x.reshape(1, {n}) makes one example" if x.numel() == n else f"each example needs {n} features"
            )
            raise ValueError(f"x must have shape [batch, {n}], got shape {tuple(x.shape)}: {hint}")
        if x.shape[-1] != n:
            raise ValueError(f"x must have shape [batch, {n}] (in_features={n}), got shape {tuple(x.shape)}")
        dtype = self.linears[0].weight.dtype
        if x.dtype != dtype:
            raise TypeError(
                f"x has dtype {x.dtype} but the model's weights are {dtype}: use x.to({dtype}) (or model.to({x.dtype}))"
            )


class MLP(_Stack):
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
    - ``depth`` (:math:`L`), ``width`` (:math:`n`), ``in_features``, ``out_features``,
      ``activation``, ``norm``, ``residual``.
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
        super().__init__(
            in_features, out_features, depth=depth, width=width, activation=activation, norm=norm
        )
        if not isinstance(residual, bool):
            raise TypeError(f"residual must be a bool, got {type(residual).__name__}")
        self.residual = residual
        self.dropout = check_probability("dropout", dropout, inclusive_high=False)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")

        sizes = [self.in_features] + [self.width] * self.depth + [self.out_features]
        self.linears = nn.ModuleList(
            nn.Linear(sizes[i], sizes[i + 1], bias=bias) for i in range(self.depth + 1)
        )
        self.norms = nn.ModuleList(_make_norm(self.norm, self.width) for _ in range(self.depth))
        self.taps = nn.ModuleList(nn.Identity() for _ in range(self.depth))
        self.phi = ACTIVATION_TABLE[self.activation].module()
        self.drop = nn.Dropout(self.dropout) if self.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` of shape ``[batch, in_features]`` to ``[batch, out_features]``.

        Raises:
            ValueError, TypeError: on a 1-D ``x``, the wrong number of features, or a
                dtype other than the weights' (the message says what to do).
        """
        self._check_input(x)
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
        init: one of :data:`INITS` (``"he"`` is ``"kaiming"``, ``"glorot"`` is ``"xavier"``).
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
    init = canonical_init(init)
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


class ResidualMLP(_Stack):
    """A residual MLP with zero-mean branches, optional pre-normalization and a branch scale.

    Numbered like :class:`MLP` (layer 1 maps the input to the width and has no skip):

    .. math::

        h_1 = W_1 x, \\qquad
        h_\\ell = h_{\\ell-1} + \\alpha\\, W_{\\ell,2}\\,
            \\phi\\big(W_{\\ell,1}\\, \\operatorname{norm}(h_{\\ell-1})\\big), \\quad \\ell = 2..L+1, \\qquad
        y = W_\\text{out} h_{L+1},

    :math:`L` residual blocks, the "pre-norm" block of pre-activation ResNets and
    Transformers, for MLPs. Initialization (biases 0): :math:`W_{\\ell,1}` He/Kaiming with
    the activation's gain (:func:`activation_gain`), :math:`W_1`, :math:`W_{\\ell,2}` and
    :math:`W_\\text{out}` with variance :math:`1/\\text{fan\\_in}`. Then each branch adds
    :math:`\\alpha^2\\,\\mathbb E[\\text{norm}(h)^2]`, about, to the second moment of the
    stream: without normalization it grows like :math:`(1+\\alpha^2)^L` over the blocks,
    with it like :math:`1 + \\alpha^2 L`.

    The branch ends in a Linear layer, so it has mean 0; the block of :func:`mlp` with
    ``residual=True`` (:math:`h + \\phi(\\ldots)`) does not, and its ReLU outputs'
    positive means add up along the stream.

    Attributes: ``linears`` (``nn.ModuleList`` of every Linear layer in forward order:
    :math:`W_1`, then :math:`W_{\\ell,1}, W_{\\ell,2}` per block, then :math:`W_\\text{out}`);
    ``input_layer``, ``branch_in``, ``branch_out``, ``output_layer`` (views of those
    layers by role); ``taps`` (``nn.Identity`` after the input layer and after each block,
    :math:`h_1..h_{L+1}`, for :func:`companion.initialization.variance_profile` and
    :mod:`companion.diagnostics`); ``norms``; ``depth`` (:math:`L`, the number of blocks),
    ``width``, ``branch_scale``.

    Args:
        in_features, out_features: input and output dimensions.
        depth: number of residual blocks :math:`L \\ge 1`.
        width: stream width :math:`n` (the branch's hidden width too).
        activation: one of :data:`ACTIVATIONS`.
        norm: ``None``, ``"layer"`` or ``"batch"``, applied to :math:`h_{\\ell-1}` at the
            start of each branch.
        branch_scale: :math:`\\alpha \\ge 0` (e.g. :math:`1/\\sqrt L`).

    See the chapter "Residual connections".
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
        branch_scale: float = 1.0,
    ) -> None:
        super().__init__(in_features, out_features, depth=depth, width=width, activation=activation, norm=norm)
        self.branch_scale = check_nonnegative("branch_scale", branch_scale)
        self.phi = ACTIVATION_TABLE[self.activation].function
        n, blocks = self.width, range(self.depth)
        # Created and initialized in this order (input, branch_in, branch_out, output) so that
        # a seed gives the same weights as ever; stored in forward order.
        first = nn.Linear(self.in_features, n)
        branch_in = [nn.Linear(n, n) for _ in blocks]
        branch_out = [nn.Linear(n, n) for _ in blocks]
        last = nn.Linear(n, self.out_features)
        for layer in [first, *branch_out, last]:
            init_linear_(layer, "kaiming", gain=1.0)
        for layer in branch_in:
            init_linear_(layer, "kaiming", gain=activation_gain(self.activation))
        self.linears = nn.ModuleList([first, *[m for pair in zip(branch_in, branch_out) for m in pair], last])
        self.norms = nn.ModuleList(_make_norm(self.norm, n) for _ in blocks)
        self.taps = nn.ModuleList(nn.Identity() for _ in range(self.depth + 1))

    @property
    def input_layer(self) -> nn.Linear:
        """:math:`W_1`, the layer from the input to the stream."""
        return self.linears[0]

    @property
    def branch_in(self) -> list[nn.Linear]:
        """:math:`W_{\\ell,1}` of every block, the branch's first layer (before :math:`\\phi`)."""
        return list(self.linears[1:-1:2])

    @property
    def branch_out(self) -> list[nn.Linear]:
        """:math:`W_{\\ell,2}` of every block, the branch's last layer."""
        return list(self.linears[2:-1:2])

    @property
    def output_layer(self) -> nn.Linear:
        """:math:`W_\\text{out}`."""
        return self.linears[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[batch, in_features]`` to ``[batch, out_features]`` (input checked as in :class:`MLP`)."""
        self._check_input(x)
        h = self.taps[0](self.input_layer(x))
        for l, (inner, outer) in enumerate(zip(self.branch_in, self.branch_out)):
            branch = outer(self.phi(inner(self.norms[l](h))))
            h = self.taps[l + 1](h + self.branch_scale * branch)
        return self.output_layer(h)

    def extra_repr(self) -> str:
        return (
            f"depth={self.depth}, width={self.width}, activation={self.activation!r}, "
            f"norm={self.norm!r}, branch_scale={self.branch_scale}"
        )
