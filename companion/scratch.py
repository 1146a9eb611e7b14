"""A two-layer MLP with a hand-written forward and backward pass (no autograd).

The network maps a batch ``x`` of shape ``[B, d]`` (``B`` examples, ``d``
features) through one hidden layer of width ``n`` to ``K`` logits (the book's
notation: ``n`` is the hidden width, ``B`` the batch size):

.. math::

    Z_1 = X W_1 + b_1 \\in \\mathbb{R}^{B\\times n},\\quad
    H = \\phi(Z_1),\\quad
    Z_2 = H W_2 + b_2 \\in \\mathbb{R}^{B\\times K}.

Weights are stored as ``[in, out]`` matrices (``W_1: [d, n]``, ``W_2: [n, K]``),
so every product reads left to right like the formulas; ``nn.Linear`` stores
the transpose (``[out, in]``). Two losses are supported, both averaged over the
batch:

* ``"cross_entropy"`` (``K >= 2`` classes, integer labels ``y`` in ``0..K-1``):
  :math:`\\mathcal{L} = \\frac1B\\sum_i \\big(\\log\\sum_j e^{Z_{2,ij}} - Z_{2,i y_i}\\big)`,
  whose gradient is :math:`\\partial\\mathcal{L}/\\partial Z_2 = (\\mathrm{softmax}(Z_2) - Y)/B`
  with :math:`Y` the one-hot labels.
* ``"binary_cross_entropy"`` (one logit, ``K = 1``, labels in ``{0, 1}``):
  :math:`\\mathcal{L} = \\frac1B\\sum_i \\big(\\log(1+e^{z_i}) - y_i z_i\\big)`, evaluated
  as :math:`\\max(z,0) - yz + \\log(1+e^{-|z|})` so that no exponential overflows;
  its gradient is :math:`(\\sigma(z) - y)/B`.

The backward pass is the chain rule, written with shapes in :func:`backward`.
Tests compare it with autograd (float64, ``atol=1e-10``) and with finite
differences through ``torch.autograd.gradcheck``.

See the chapter "Backpropagation by hand" for the derivation and a training run.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_choice, check_int, check_positive
from .models import ACTIVATION_TABLE
from .reproducibility import generator as _generator

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "accuracy",
    "backward",
    "forward",
    "init_params",
    "loss_and_grad_logits",
    "loss_and_grads",
    "manual_loss_function",
    "predict",
    "sgd_step",
    "train",
]

ACTIVATIONS = ("sigmoid", "tanh", "relu")
LOSSES = ("cross_entropy", "binary_cross_entropy")
_PARAM_NAMES = ("W1", "b1", "W2", "b2")

Params = dict[str, torch.Tensor]


# --------------------------------------------------------------------------- checks


def _check_params(params: Params) -> tuple[int, int, int]:
    """Check the four parameters and their shapes; return ``(d, m, k)``."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict with keys {list(_PARAM_NAMES)}, got {type(params).__name__}")
    missing = [name for name in _PARAM_NAMES if name not in params]
    if missing:
        raise KeyError(f"params is missing {missing}; expected keys {list(_PARAM_NAMES)}")
    for name in _PARAM_NAMES:
        if not isinstance(params[name], torch.Tensor):
            raise TypeError(f"params[{name!r}] must be a tensor, got {type(params[name]).__name__}")
    W1, b1, W2, b2 = (params[name] for name in _PARAM_NAMES)
    if W1.dim() != 2 or W2.dim() != 2:
        raise ValueError(
            f"params['W1'] and params['W2'] must be 2-D [in, out], got shapes "
            f"{tuple(W1.shape)} and {tuple(W2.shape)}"
        )
    d, m = W1.shape
    if tuple(b1.shape) != (m,):
        raise ValueError(f"params['b1'] must have shape ({m},) to match W1 {tuple(W1.shape)}, got {tuple(b1.shape)}")
    if W2.shape[0] != m:
        raise ValueError(
            f"params['W2'] must have {m} rows (the hidden width of W1 {tuple(W1.shape)}), got {tuple(W2.shape)}"
        )
    k = W2.shape[1]
    if tuple(b2.shape) != (k,):
        raise ValueError(f"params['b2'] must have shape ({k},) to match W2 {tuple(W2.shape)}, got {tuple(b2.shape)}")
    return d, m, k


def _check_x(x: torch.Tensor, d: int) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D [B, d], got shape {tuple(x.shape)}")
    if x.shape[1] != d:
        raise ValueError(f"x must have {d} columns (params['W1'] has {d} rows), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")


def _check_targets(logits: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Check ``y`` against ``logits`` for ``loss``; return ``y`` shaped for the loss."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a tensor, got {type(y).__name__}")
    n, k = logits.shape
    if loss == "cross_entropy":
        if k < 2:
            raise ValueError(f"loss='cross_entropy' needs at least 2 logits per example, got {k}")
        if y.dim() != 1 or y.shape[0] != n:
            raise ValueError(f"y must have shape ({n},) (one class index per row of x), got {tuple(y.shape)}")
        if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise TypeError(f"y must hold integer class indices for loss='cross_entropy', got {y.dtype}")
        if n and (int(y.min()) < 0 or int(y.max()) >= k):
            raise ValueError(f"y must hold class indices in 0..{k - 1}, got values in {int(y.min())}..{int(y.max())}")
        return y.long()
    if k != 1:
        raise ValueError(f"loss='binary_cross_entropy' needs exactly 1 logit per example, got {k}")
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) or ({n}, 1), got {tuple(y.shape)}")
    if n and (bool((y < 0).any()) or bool((y > 1).any())):
        raise ValueError("y must hold labels in [0, 1] for loss='binary_cross_entropy' (0/1, not -1/+1)")
    return y.to(logits.dtype)


# --------------------------------------------------------------------------- activations


def _activate(z: torch.Tensor, activation: str) -> torch.Tensor:
    # phi itself from the companion's one activation table; phi' is written out below.
    return ACTIVATION_TABLE[activation].function(z)


def _activation_derivative(z: torch.Tensor, h: torch.Tensor, activation: str) -> torch.Tensor:
    """phi'(Z1), elementwise, computed from Z1 and H = phi(Z1) (same shape [B, n])."""
    if activation == "sigmoid":
        return h * (1 - h)  # sigma' = sigma (1 - sigma)
    if activation == "tanh":
        return 1 - h * h  # tanh' = 1 - tanh^2
    return (z > 0).to(z.dtype)  # relu' = 1 for z > 0, 0 otherwise (0 at the kink, like torch)


# --------------------------------------------------------------------------- the model


def init_params(
    in_features: int,
    width: int,
    out_features: int,
    *,
    activation: str = "tanh",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Params:
    """Initial parameters ``{"W1", "b1", "W2", "b2"}`` of a two-layer MLP.

    Weights are drawn from :math:`\\mathcal N(0, \\mathrm{gain}^2/\\mathrm{fan\\_in})`
    (He for ReLU with gain :math:`\\sqrt2`, Glorot-like gain 1 for tanh and the
    output layer, gain 4 for sigmoid, whose slope at 0 is 1/4); biases are 0.

    Args:
        in_features: ``d``, the number of input features (>= 1).
        width: ``n``, the hidden width (>= 1).
        out_features: ``K``, the number of logits (>= 1; 1 for a binary task).
        activation: one of ``"sigmoid"``, ``"tanh"``, ``"relu"``.
        dtype: floating-point dtype of the parameters.
        device: device of the parameters.
        generator: optional ``torch.Generator`` for reproducible draws.

    Returns:
        dict with ``W1 [d, n]``, ``b1 [n]``, ``W2 [n, K]``, ``b2 [K]``.
    """
    d = check_int("in_features", in_features, minimum=1)
    m = check_int("width", width, minimum=1)
    k = check_int("out_features", out_features, minimum=1)
    activation = check_choice("activation", activation, ACTIVATIONS)
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    # This module's own textbook gains (not models.ACTIVATION_TABLE's torch gains): see the docstring.
    gain = {"sigmoid": 4.0, "tanh": 1.0, "relu": math.sqrt(2.0)}[activation]
    kw = {"dtype": dtype, "device": device}
    return {
        "W1": torch.randn(d, m, generator=generator, **kw) * (gain / math.sqrt(d)),
        "b1": torch.zeros(m, **kw),
        "W2": torch.randn(m, k, generator=generator, **kw) * (1.0 / math.sqrt(m)),
        "b2": torch.zeros(k, **kw),
    }


def forward(
    params: Params, x: torch.Tensor, *, activation: str = "tanh"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Forward pass; returns the logits ``Z2 [B, K]`` and the cache backward needs.

    .. math::

        Z_1 = X W_1 + b_1\\ [B, n],\\qquad H = \\phi(Z_1)\\ [B, n],\\qquad Z_2 = H W_2 + b_2\\ [B, K].

    Args:
        params: ``{"W1": [d, n], "b1": [n], "W2": [n, K], "b2": [K]}``.
        x: inputs ``[B, d]``.
        activation: the hidden nonlinearity ``phi``: ``"sigmoid"``, ``"tanh"`` or ``"relu"``.

    Returns:
        ``(logits, cache)`` with ``cache = {"x": X, "Z1": Z1, "H": H}``.
    """
    d, _, _ = _check_params(params)
    _check_x(x, d)
    activation = check_choice("activation", activation, ACTIVATIONS)
    z1 = x @ params["W1"] + params["b1"]  # [B, d] @ [d, n] + [n] -> [B, n]
    h = _activate(z1, activation)  # [B, n]
    z2 = h @ params["W2"] + params["b2"]  # [B, n] @ [n, K] + [K] -> [B, K]
    return z2, {"x": x, "Z1": z1, "H": h}


def loss_and_grad_logits(
    logits: torch.Tensor, y: torch.Tensor, *, loss: str = "cross_entropy"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss over the batch and its gradient with respect to the logits.

    .. math::

        \\text{cross entropy:}\\quad \\frac{\\partial\\mathcal L}{\\partial Z_2}
            = \\frac{\\mathrm{softmax}(Z_2) - Y}{B}\\ [B, K];\\qquad
        \\text{binary:}\\quad \\frac{\\partial\\mathcal L}{\\partial z}
            = \\frac{\\sigma(z) - y}{B}\\ [B, 1].

    Both are computed stably: the softmax through ``log_softmax`` (the largest
    logit is subtracted first), the binary loss as
    :math:`\\max(z,0) - yz + \\log(1+e^{-|z|})`.

    Args:
        logits: ``[B, K]`` (``K = 1`` for ``"binary_cross_entropy"``).
        y: class indices ``[B]`` (``int64``, ``0..K-1``) for ``"cross_entropy"``;
            labels in ``{0, 1}`` of shape ``[B]`` or ``[B, 1]`` for ``"binary_cross_entropy"``.
        loss: ``"cross_entropy"`` or ``"binary_cross_entropy"``.

    Returns:
        ``(loss, dlogits)``: a 0-d tensor and a tensor shaped like ``logits``.
    """
    loss = check_choice("loss", loss, LOSSES)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a 2-D tensor [B, K], got {shape}")
    y = _check_targets(logits, y, loss)
    n = logits.shape[0]
    if n == 0:
        raise ValueError("logits must hold at least one example, got an empty batch")
    if loss == "cross_entropy":
        log_p = torch.log_softmax(logits, dim=1)  # [B, K], stable
        value = -log_p.gather(1, y[:, None]).mean()
        onehot = torch.nn.functional.one_hot(y, logits.shape[1]).to(logits.dtype)  # [B, K]
        return value, (log_p.exp() - onehot) / n  # (softmax - onehot) / n
    z = logits[:, 0]  # [B]
    value = (z.clamp(min=0) - y * z + torch.log1p(torch.exp(-z.abs()))).mean()
    dlogits = (torch.sigmoid(z) - y) / n  # [B]
    return value, dlogits[:, None]


def backward(
    params: Params, cache: dict[str, torch.Tensor], dlogits: torch.Tensor, *, activation: str = "tanh"
) -> Params:
    """Backward pass: the chain rule from ``dL/dZ2`` to every parameter.

    With :math:`G_2 = \\partial\\mathcal L/\\partial Z_2` of shape ``[B, K]``:

    .. math::

        \\frac{\\partial\\mathcal L}{\\partial W_2} = H^\\top G_2\\ [n, K],\\quad
        \\frac{\\partial\\mathcal L}{\\partial b_2} = \\mathbf 1^\\top G_2\\ [K],\\quad
        \\frac{\\partial\\mathcal L}{\\partial H} = G_2 W_2^\\top\\ [B, n],

        G_1 = \\frac{\\partial\\mathcal L}{\\partial Z_1} = \\frac{\\partial\\mathcal L}{\\partial H}
            \\odot \\phi'(Z_1)\\ [B, n],\\quad
        \\frac{\\partial\\mathcal L}{\\partial W_1} = X^\\top G_1\\ [d, n],\\quad
        \\frac{\\partial\\mathcal L}{\\partial b_1} = \\mathbf 1^\\top G_1\\ [n].

    The ``1/B`` of the mean loss is already inside ``dlogits``
    (see :func:`loss_and_grad_logits`), so no sum here is divided again.

    Args:
        params: the parameters used in :func:`forward`.
        cache: the cache returned by :func:`forward`.
        dlogits: ``dL/dZ2``, shape ``[B, K]``.
        activation: the same activation as in :func:`forward`.

    Returns:
        dict of gradients with the keys and shapes of ``params``.
    """
    d, m, k = _check_params(params)
    activation = check_choice("activation", activation, ACTIVATIONS)
    if not isinstance(cache, dict) or any(key not in cache for key in ("x", "Z1", "H")):
        raise KeyError("cache must be the dict returned by forward(), with keys ['x', 'Z1', 'H']")
    x, z1, h = cache["x"], cache["Z1"], cache["H"]
    n = x.shape[0]
    if not isinstance(dlogits, torch.Tensor) or tuple(dlogits.shape) != (n, k):
        shape = tuple(dlogits.shape) if isinstance(dlogits, torch.Tensor) else type(dlogits).__name__
        raise ValueError(f"dlogits must have shape ({n}, {k}) like the logits, got {shape}")
    g2 = dlogits  # dL/dZ2 [B, K]
    grad_W2 = h.T @ g2  # [n, B] @ [B, K] -> [n, K]
    grad_b2 = g2.sum(dim=0)  # [K]: b2 is broadcast over the B rows, so its gradient sums them
    dh = g2 @ params["W2"].T  # [B, K] @ [K, n] -> [B, n]
    g1 = dh * _activation_derivative(z1, h, activation)  # dL/dZ1 [B, n], elementwise
    grad_W1 = x.T @ g1  # [d, B] @ [B, n] -> [d, n]
    grad_b1 = g1.sum(dim=0)  # [n]
    return {"W1": grad_W1, "b1": grad_b1, "W2": grad_W2, "b2": grad_b2}


def loss_and_grads(
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    activation: str = "tanh",
    loss: str = "cross_entropy",
) -> tuple[torch.Tensor, Params]:
    """Forward, loss and backward in one call: ``(loss, grads)``.

    Args:
        params: ``{"W1", "b1", "W2", "b2"}`` (see :func:`init_params`).
        x: inputs ``[B, d]``.
        y: targets (see :func:`loss_and_grad_logits`).
        activation: hidden nonlinearity.
        loss: ``"cross_entropy"`` or ``"binary_cross_entropy"``.

    Returns:
        the mean loss (0-d tensor) and the gradient dict.
    """
    logits, cache = forward(params, x, activation=activation)
    value, dlogits = loss_and_grad_logits(logits, y, loss=loss)
    return value, backward(params, cache, dlogits, activation=activation)


def sgd_step(params: Params, grads: Params, *, lr: float) -> Params:
    """One plain gradient-descent step, :math:`\\theta \\leftarrow \\theta - \\eta\\,\\nabla_\\theta\\mathcal L`.

    Returns new tensors (the inputs are not modified). The minus sign is the
    whole point: adding the gradient instead climbs the loss.

    Args:
        params: current parameters.
        grads: gradients with the same keys and shapes (from :func:`backward`).
        lr: learning rate ``eta > 0``.
    """
    _check_params(params)
    lr = check_positive("lr", lr)
    if not isinstance(grads, dict) or set(grads) != set(params):
        got = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
        raise KeyError(f"grads must have the keys of params {sorted(params)}, got {got}")
    for name in params:
        if grads[name].shape != params[name].shape:
            raise ValueError(
                f"grads[{name!r}] must have the shape of params[{name!r}] "
                f"{tuple(params[name].shape)}, got {tuple(grads[name].shape)}"
            )
    return {name: params[name] - lr * grads[name] for name in params}


def predict(params: Params, x: torch.Tensor, *, activation: str = "tanh") -> torch.Tensor:
    """Predicted labels ``[B]``: argmax of the logits, or ``logit > 0`` for one logit."""
    logits, _ = forward(params, x, activation=activation)
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def accuracy(params: Params, x: torch.Tensor, y: torch.Tensor, *, activation: str = "tanh") -> float:
    """Fraction of correctly predicted labels, a number in ``[0, 1]``.

    The denominator is the number of examples ``B``: ``mean(prediction == y)``.
    """
    pred = predict(params, x, activation=activation)
    y = y.reshape(-1)
    if y.shape[0] != pred.shape[0]:
        raise ValueError(f"y must have {pred.shape[0]} labels (one per row of x), got shape {tuple(y.shape)}")
    return (pred == y.long()).to(torch.float64).mean().item()


def train(
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    activation: str = "tanh",
    loss: str = "cross_entropy",
    lr: float = 0.1,
    epochs: int = 10,
    batch_size: int | None = None,
    seed: int = 0,
) -> tuple[Params, list[float]]:
    """Mini-batch gradient descent with the hand-written gradients.

    Each step: forward, loss, :func:`backward`, :func:`sgd_step`. The batches
    of an epoch are a fresh permutation drawn from a generator seeded with
    ``seed``. One host sync per epoch (the epoch's mean loss).

    Args:
        params: initial parameters (not modified).
        x: inputs ``[B, d]``.
        y: targets (see :func:`loss_and_grad_logits`).
        activation: hidden nonlinearity.
        loss: ``"cross_entropy"`` or ``"binary_cross_entropy"``.
        lr: learning rate (> 0).
        epochs: number of passes over the data (>= 1).
        batch_size: examples per step; ``None`` means the full batch.
        seed: seed of the shuffling generator.

    Returns:
        ``(params, losses)``: the trained parameters and the mean training loss of each epoch
        (averaged over the epoch's batches, measured before each step).
    """
    d, _, _ = _check_params(params)
    _check_x(x, d)
    epochs = check_int("epochs", epochs, minimum=1)
    check_positive("lr", lr)
    n = x.shape[0]
    batch_size = n if batch_size is None else check_int("batch_size", batch_size, minimum=1)
    generator = _generator(seed)
    epoch_losses = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(x.device)
        total = torch.zeros((), dtype=x.dtype, device=x.device)
        steps = 0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            value, grads = loss_and_grads(params, x[idx], y[idx], activation=activation, loss=loss)
            params = sgd_step(params, grads, lr=lr)
            total = total + value.detach()
            steps += 1
        epoch_losses.append(total / steps)
    return params, torch.stack(epoch_losses).tolist()


# --------------------------------------------------------------------------- gradcheck bridge


class _ManualMLPLoss(torch.autograd.Function):
    """Autograd wrapper whose backward is the hand-written :func:`backward`."""

    @staticmethod
    def forward(ctx, x, W1, b1, W2, b2, y, activation, loss):  # noqa: D102
        params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
        logits, cache = forward(params, x, activation=activation)
        value, dlogits = loss_and_grad_logits(logits, y, loss=loss)
        grads = backward(params, cache, dlogits, activation=activation)
        ctx.save_for_backward(grads["W1"], grads["b1"], grads["W2"], grads["b2"])
        return value

    @staticmethod
    def backward(ctx, grad_output):  # noqa: D102
        gW1, gb1, gW2, gb2 = ctx.saved_tensors
        # The loss is a scalar, so the chain rule only rescales by dOut/dLoss.
        return None, grad_output * gW1, grad_output * gb1, grad_output * gW2, grad_output * gb2, None, None, None


def manual_loss_function(
    x: torch.Tensor, y: torch.Tensor, *, activation: str = "tanh", loss: str = "cross_entropy"
):
    """A function ``f(W1, b1, W2, b2) -> loss`` whose gradient is the hand-written one.

    Autograd never differentiates the forward pass here: ``f`` is a
    ``torch.autograd.Function`` whose backward returns :func:`backward`'s
    result. ``torch.autograd.gradcheck`` on ``f`` therefore compares the
    hand-derived gradients with finite differences of the loss.

    Args:
        x: inputs ``[B, d]`` (float64 for ``gradcheck``).
        y: targets.
        activation: hidden nonlinearity.
        loss: ``"cross_entropy"`` or ``"binary_cross_entropy"``.

    Returns:
        a callable of the four parameter tensors.
    """
    activation = check_choice("activation", activation, ACTIVATIONS)
    loss = check_choice("loss", loss, LOSSES)

    def f(W1: torch.Tensor, b1: torch.Tensor, W2: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
        return _ManualMLPLoss.apply(x, W1, b1, W2, b2, y, activation, loss)

    return f
