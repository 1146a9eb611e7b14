"""Initialization: the variance formulas and the measurements behind them.

torch already implements the initializers (``nn.init.xavier_normal_``,
``nn.init.kaiming_normal_``); this module adds what a reader needs to *check*
them: the standard deviations they target, the Gaussian moments of an
activation that decide whether a layer preserves variance, a per-layer
variance profile of a forward and a backward pass, and cheap at-initialization
gradient ratios :math:`g_1/g_{L+1}` for any MLP configuration of
:func:`companion.models.mlp`.

For the activation statistics of a forward pass (mean, std, fraction of zeros)
use :func:`companion.diagnostics.activation_stats`; this module does not repeat it.

See the chapters "Initialization", "Activations", "Normalization layers" and
"Residual connections" (Part III).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from . import models as _models
from .hooks import capture_outputs, grad_norms
from ._checks import check_int, check_nonnegative, check_positive
from .reproducibility import generator, seed_everything

__all__ = [
    "ACTIVATIONS",
    "fan_in_fan_out",
    "xavier_std",
    "he_std",
    "uniform_bound",
    "gaussian_moments",
    "variance_profile",
    "dead_unit_fraction",
    "init_grad_norms",
    "init_grad_ratio",
]

#: Activation names, the same as :data:`companion.models.ACTIVATIONS`.
ACTIVATIONS = _models.ACTIVATIONS


def fan_in_fan_out(weight: torch.Tensor) -> tuple[int, int]:
    """Fan-in and fan-out of a weight tensor, with torch's convention.

    For a Linear weight of shape ``[out, in]`` this is ``(in, out)``; for a
    convolution ``[out, in, *kernel]`` both are multiplied by the kernel size
    :math:`k = \\prod \\mathrm{kernel}`:

    .. math:: \\mathrm{fan\\_in} = \\mathrm{in}\\cdot k, \\qquad
              \\mathrm{fan\\_out} = \\mathrm{out}\\cdot k.

    Args:
        weight: a tensor with at least 2 dimensions.

    Returns:
        ``(fan_in, fan_out)`` as Python ints (shape arithmetic, no host sync).
    """
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a tensor, got {type(weight).__name__}")
    if weight.dim() < 2:
        raise ValueError(f"weight must have at least 2 dimensions, got shape {tuple(weight.shape)}")
    receptive = math.prod(weight.shape[2:])
    return int(weight.shape[1]) * receptive, int(weight.shape[0]) * receptive


def xavier_std(fan_in: int, fan_out: int, *, gain: float = 1.0) -> float:
    """Standard deviation of Glorot/Xavier ("normalized") initialization.

    .. math:: \\sigma = \\mathrm{gain}\\,\\sqrt{\\frac{2}{\\mathrm{fan\\_in} + \\mathrm{fan\\_out}}}

    the compromise between the forward condition :math:`\\mathrm{fan\\_in}\\,\\sigma^2 = 1`
    and the backward condition :math:`\\mathrm{fan\\_out}\\,\\sigma^2 = 1`
    (Glorot & Bengio, 2010). Equals the std of ``nn.init.xavier_normal_``.
    """
    fan_in = check_int("fan_in", fan_in, minimum=1)
    fan_out = check_int("fan_out", fan_out, minimum=1)
    gain = check_positive("gain", gain)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def he_std(fan_in: int, *, gain: float = math.sqrt(2.0)) -> float:
    """Standard deviation of He/Kaiming initialization (fan-in mode).

    .. math:: \\sigma = \\frac{\\mathrm{gain}}{\\sqrt{\\mathrm{fan\\_in}}}

    With the default ``gain`` :math:`\\sqrt 2` (ReLU) this keeps
    :math:`\\mathbb{E}[h_\\ell^2]` constant through ReLU layers (He et al., 2015);
    it equals the std of ``nn.init.kaiming_normal_(w, nonlinearity="relu")``.
    """
    fan_in = check_int("fan_in", fan_in, minimum=1)
    gain = check_positive("gain", gain)
    return gain / math.sqrt(fan_in)


def uniform_bound(std: float) -> float:
    """Bound :math:`a` of :math:`U[-a, a]` whose standard deviation is ``std``: :math:`a = \\sqrt{3}\\,\\sigma`.

    Glorot & Bengio's "standard" initialization :math:`U[-1/\\sqrt n, 1/\\sqrt n]`
    therefore has variance :math:`1/(3n)`.
    """
    std = check_nonnegative("std", std)
    return math.sqrt(3.0) * std


def gaussian_moments(
    activation: str, variance: float, *, points: int = 20_000
) -> tuple[float, float]:
    """Second moments of an activation and of its derivative under a Gaussian input.

    For :math:`z \\sim \\mathcal N(0, q)` with :math:`q` = ``variance``:

    .. math:: m_\\phi(q) = \\mathbb E[\\phi(z)^2], \\qquad
              m_{\\phi'}(q) = \\mathbb E[\\phi'(z)^2].

    In a wide layer with weights of variance :math:`\\sigma_w^2` and fan-in
    :math:`n`, the pre-activation variance obeys
    :math:`q_{\\ell+1} = n\\sigma_w^2\\, m_\\phi(q_\\ell)` (for zero-mean
    :math:`\\phi`; in general :math:`\\mathbb E[\\phi^2]` is the second moment the
    next layer sees) and the back-propagated gradient's second moment is multiplied
    by :math:`\\chi = n\\sigma_w^2\\, m_{\\phi'}(q_\\ell)` per layer. Examples:
    identity :math:`(q, 1)`; ReLU :math:`(q/2, 1/2)`; sigmoid :math:`m_{\\phi'} \\le 1/16`.

    Computed in float64 by the midpoint rule on ``points`` cells of
    :math:`[-10\\sqrt q, 10\\sqrt q]`, with a cell edge at 0 so that kinks and jumps
    of :math:`\\phi'` at 0 (ReLU, SELU) cost no accuracy; derivatives by autograd.

    Args:
        activation: one of :data:`ACTIVATIONS`.
        variance: :math:`q > 0`.
        points: number of cells, an even int >= 2.

    Returns:
        ``(m_phi, m_dphi)`` as floats.
    """
    fn = _models.activation_function(activation)
    q = check_positive("variance", variance)
    points = check_int("points", points, minimum=2)
    if points % 2:
        raise ValueError(f"points must be even (a cell edge at 0), got {points}")
    width = 20.0 / points
    u = -10.0 + width * (torch.arange(points, dtype=torch.float64) + 0.5)
    weights = torch.exp(-0.5 * u**2) / math.sqrt(2.0 * math.pi) * width
    z = (u * math.sqrt(q)).requires_grad_()
    phi = fn(z)
    (dphi,) = torch.autograd.grad(phi.sum(), z)
    m_phi = (weights * phi.detach() ** 2).sum()
    m_dphi = (weights * dphi**2).sum()
    return float(m_phi), float(m_dphi)


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    linears = getattr(model, "linears", None)
    layers = list(linears) if linears is not None else [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError("model must contain at least one nn.Linear layer")
    return layers


def variance_profile(
    model: nn.Module,
    x: torch.Tensor,
    *,
    grad_output: torch.Tensor | None = None,
    seed: int = 0,
    modules: Sequence[nn.Module] | None = None,
) -> dict[str, torch.Tensor]:
    """Per-layer variance of the forward signal and of the back-propagated gradient.

    For each Linear layer :math:`\\ell = 1..L+1` (``model.linears`` if present,
    else every ``nn.Linear`` in registration order; or the given ``modules``,
    e.g. ``model.taps`` of a :class:`companion.models.MLP` or :class:`companion.models.ResidualMLP`
    to follow the hidden states :math:`h_\\ell` themselves) with output
    :math:`s_\\ell = W_\\ell h_{\\ell-1} + b_\\ell`, one forward and one backward
    pass give

    .. math:: \\text{forward}_\\ell = \\mathrm{Var}[s_\\ell], \\qquad
              \\text{backward}_\\ell = \\mathrm{Var}\\big[\\partial \\mathcal L / \\partial s_\\ell\\big],

    each variance taken over all units and examples of the batch (population
    variance). The loss is :math:`\\mathcal L = \\sum_{i} \\langle r_i, f(x_i)\\rangle`
    with a fixed cotangent :math:`r` (``grad_output``; by default standard normal
    drawn from ``seed``), so the output layer's gradient has unit variance and
    the profile shows only what the network does to it, as in Glorot & Bengio's
    (2010) back-propagated-gradient histograms. These are the quantities
    :func:`companion.diagnostics.activation_stats` does not give: gradients with
    respect to pre-activations. Hooks are removed afterwards; parameter
    ``.grad`` fields are left untouched.

    Args:
        model: an ``nn.Module`` containing Linear layers (e.g. :func:`companion.models.mlp`).
        x: an input batch on the model's device.
        grad_output: cotangent of the model output (same shape), or ``None``.
        seed: seed of the default standard-normal cotangent.
        modules: the modules whose outputs to follow (default: the Linear layers);
            each must be called exactly once per forward pass.

    Returns:
        ``{"forward": Tensor[k], "backward": Tensor[k]}`` on ``x``'s device, one entry
        per followed module (:math:`k = L+1` for the Linear layers of an MLP).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    seed = check_int("seed", seed, minimum=0)
    if modules is None:
        layers = _linear_layers(model)
    else:
        layers = list(modules)
        if not layers or not all(isinstance(m, nn.Module) for m in layers):
            raise ValueError("modules must be a non-empty sequence of nn.Module")
    with capture_outputs(layers) as outputs, torch.enable_grad():
        out = model(x)
    twice = [i + 1 for i, o in enumerate(outputs) if len(o) > 1]
    if twice:
        raise RuntimeError(f"modules {twice} were called more than once in one forward pass")
    missing = [i + 1 for i, o in enumerate(outputs) if not o]
    if missing:
        raise RuntimeError(f"modules {missing} were not called by the forward pass")
    if grad_output is None:
        gen = generator(seed)
        grad_output = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
    elif grad_output.shape != out.shape:
        raise ValueError(
            f"grad_output must have the output's shape {tuple(out.shape)}, got {tuple(grad_output.shape)}"
        )
    tensors = [o[0] for o in outputs]
    # autograd.grad leaves parameter .grad alone (no accumulation into the model)
    grads = torch.autograd.grad(out, tensors, grad_outputs=grad_output, allow_unused=True)
    forward = torch.stack([t.detach().float().var(unbiased=False) for t in tensors])
    backward = torch.stack(
        [
            (g.float().var(unbiased=False) if g is not None else torch.zeros((), device=forward.device))
            for g in grads
        ]
    )
    return {"forward": forward, "backward": backward}


def dead_unit_fraction(model: nn.Module, x: torch.Tensor, *, module_type: type[nn.Module] = nn.ReLU) -> float:
    """Fraction of hidden units that output zero for every example of ``x``.

    A unit is *dead* on ``x`` when its activation is exactly 0 on all rows:
    no example then passes a gradient through it, so its incoming weights never
    change. (:func:`companion.diagnostics.activation_stats` reports the fraction
    of zero *entries*, which is about one half for a healthy ReLU layer; a dead
    unit is a whole column of zeros.)

    Args:
        model: a module whose activations are ``module_type`` submodules (``nn.ReLU`` by default).
        x: a batch of inputs.
        module_type: the activation module class to inspect.

    Returns:
        dead units / all units of those modules, as a float (one host sync).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    modules = [m for m in model.modules() if isinstance(m, module_type)]
    if not modules:
        raise ValueError(f"model has no {module_type.__name__} modules")
    with capture_outputs(modules, detach=True) as outputs, torch.no_grad():
        model(x)
    flat = [h.reshape(h.shape[0], -1) for calls in outputs for h in calls]
    dead = torch.stack([(h == 0).all(dim=0).sum() for h in flat]).sum()
    return float(dead.item()) / sum(h.shape[1] for h in flat)


def init_grad_norms(
    *,
    activation: str = "relu",
    init: str = "kaiming",
    norm: str | None = None,
    residual: bool = False,
    depth: int = 20,
    width: int = 64,
    std: float | None = None,
    gain: float | None = None,
    in_features: int = 16,
    out_features: int = 10,
    batch_size: int = 128,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Per-layer gradient norms :math:`g_\\ell` of a freshly initialized MLP.

    Builds ``companion.models.mlp(in_features, out_features, depth=depth,
    width=width, activation=..., init=..., std=..., norm=..., residual=...)``
    after seeding torch with ``seed`` (with ``gain`` given, every Linear is then
    re-initialized by ``companion.models.init_linear_(layer, init, gain=gain)``,
    e.g. ``init="xavier", gain=1.0`` for Glorot's original variance
    :math:`2/(n_\text{in}+n_\text{out})` whatever the activation), feeds one batch of standard-normal inputs
    with uniformly random labels, and back-propagates the cross-entropy loss.
    The model is in training mode (BatchNorm uses batch statistics).

    .. math:: g_\\ell = \\lVert \\partial\\mathcal L / \\partial W_\\ell \\rVert_F, \\quad \\ell = 1..L+1.

    Args:
        activation, init, norm, residual, depth, width, std: as in :func:`companion.models.mlp`.
        gain: overrides the activation's gain (``None``: :func:`companion.models.activation_gain`).
        in_features, out_features: input dimension and number of classes.
        batch_size: examples in the batch (BatchNorm's statistics use them all).
        seed: seeds the weights, inputs and labels.
        device: where to run (default: CPU).

    Returns:
        A 1-D tensor of :math:`L+1` norms on ``device``.
    """
    from . import models

    depth = check_int("depth", depth, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=2)
    in_features = check_int("in_features", in_features, minimum=1)
    out_features = check_int("out_features", out_features, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    device = torch.device("cpu" if device is None else device)
    gen = generator(seed)
    x = torch.randn(batch_size, in_features, generator=gen)
    y = torch.randint(0, out_features, (batch_size,), generator=gen)
    seed_everything(seed)
    model = models.mlp(
        in_features, out_features, depth=depth, width=width, activation=activation,
        init=init, std=std, norm=norm, residual=residual,
    )
    if gain is not None:
        gain = check_positive("gain", gain)
        for layer in model.linears:
            models.init_linear_(layer, init, gain=gain, std=std)
    model.to(device).train()
    loss = nn.functional.cross_entropy(model(x.to(device)), y.to(device))
    loss.backward()
    # the definition of g_l (what diagnostics.weight_grad_norms returns), without a sync
    return grad_norms([layer.weight.grad for layer in model.linears])


def init_grad_ratio(**config) -> float:
    """First-to-last gradient ratio :math:`g_1/g_{L+1}` at initialization.

    :math:`\\gg 1`: gradients explode towards the input; :math:`\\ll 1`: they vanish.
    Keyword arguments are those of :func:`init_grad_norms` (one host sync).
    Cheap: a depth-20, width-64 net takes a few milliseconds on a CPU.

    Example::

        init_grad_ratio(activation="relu", init="xavier", depth=30)   # << 1
        init_grad_ratio(activation="relu", norm="batch", depth=30)    # >> 1
    """
    norms = init_grad_norms(**config)
    ratio = norms[0] / norms[-1]
    return float(ratio.item())
