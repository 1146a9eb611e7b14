"""Inverted dropout from scratch, and the old test-time-scaling variant it replaced.

Dropout (Srivastava et al., 2014) multiplies each unit by an independent Bernoulli
mask during training. *Inverted* dropout (what ``torch.nn.Dropout`` does) keeps
a unit with probability ``1 - p`` and divides the kept units by ``1 - p``, so

.. math::

    \\tilde h = \\frac{m \\odot h}{1 - p},\\qquad m_i \\sim \\mathrm{Bernoulli}(1 - p),
    \\qquad \\mathbb{E}[\\tilde h] = h,

and evaluation uses the network unchanged (``model.eval()`` makes dropout the
identity). The original paper instead left training outputs unscaled and
multiplied the weights by the keep rate ``1 - p`` at *test* time; both give the
same expected activation at train and test time. Scaling by the keep rate
*during training* (and doing nothing at test time) gives neither: training
activations are then ``(1 - p)^2 h`` on average while evaluation sees ``h``.
:func:`keep_rate_scaled_dropout` implements that mistake so the chapter can
measure it.

See the chapter "Dropout, done right".
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._checks import check_probability

__all__ = [
    "InvertedDropout",
    "KeepRateScaledDropout",
    "bernoulli_keep_mask",
    "inverted_dropout",
    "keep_rate_scaled_dropout",
    "replace_dropout",
]


def _check_p(p: float) -> float:
    return check_probability("p", p, inclusive_high=False)


def bernoulli_keep_mask(
    x: torch.Tensor, p: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Return a 0/1 mask shaped like ``x``: each entry is 1 with probability ``1 - p``.

    The mask is drawn exactly as ``torch.nn.functional.dropout`` draws it on the
    CPU (``empty_like(x).bernoulli_(1 - p)``), so with the same seed both use the
    same random numbers.

    Args:
        x: any floating-point tensor (only its shape, dtype and device are used).
        p: drop probability in ``[0, 1)``.
        generator: optional ``torch.Generator`` for reproducible masks.

    Returns:
        A tensor of zeros and ones with ``x``'s shape, dtype and device.
    """
    p = _check_p(p)
    if not torch.is_floating_point(x):
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    return torch.empty_like(x).bernoulli_(1.0 - p, generator=generator)


def inverted_dropout(
    x: torch.Tensor,
    p: float,
    *,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Inverted dropout: zero each entry with probability ``p``, scale survivors by ``1/(1-p)``.

    .. math::

        y = \\frac{m \\odot x}{1 - p}, \\quad m_i \\sim \\mathrm{Bernoulli}(1 - p)
        \\quad\\Rightarrow\\quad \\mathbb{E}[y] = x,\\quad
        \\mathrm{Var}[y_i] = \\frac{p}{1 - p} x_i^2 .

    At evaluation (``training=False``) or with ``p == 0`` it returns ``x`` itself.

    Args:
        x: floating-point input tensor.
        p: drop probability in ``[0, 1)`` (``p = 1`` would drop everything and
            divide by zero, so it is rejected).
        training: apply dropout (True) or act as the identity (False).
        generator: optional ``torch.Generator`` for the mask.

    Returns:
        A tensor shaped like ``x`` on its device. Gradients flow through the kept
        entries (scaled by ``1/(1-p)``).

    See the chapter "Dropout, done right".
    """
    p = _check_p(p)
    if not training or p == 0.0:
        return x
    # Same order of operations as ATen's CPU dropout (mask.div_(1-p), then x * mask),
    # so that with the same seed the outputs match torch's bit for bit.
    noise = bernoulli_keep_mask(x, p, generator=generator).div_(1.0 - p)
    return x * noise


def keep_rate_scaled_dropout(
    x: torch.Tensor,
    p: float,
    *,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The *wrong* variant: drop with probability ``p`` and multiply by the keep rate ``1 - p`` while training.

    .. math::

        y = (1 - p)\\, m \\odot x \\quad\\Rightarrow\\quad \\mathbb{E}[y] = (1 - p)^2 x
        \\ne x = y_{\\text{eval}} .

    Provided only to measure the mismatch between training and evaluation that
    this recipe creates; use :func:`inverted_dropout` or ``torch.nn.Dropout``.

    Args:
        x: floating-point input tensor.
        p: drop probability in ``[0, 1)``.
        training: apply it (True) or act as the identity (False).
        generator: optional ``torch.Generator`` for the mask.

    Returns:
        A tensor shaped like ``x``.
    """
    p = _check_p(p)
    if not training:
        return x
    return x * bernoulli_keep_mask(x, p, generator=generator).mul_(1.0 - p)


class InvertedDropout(nn.Module):
    """``nn.Module`` wrapper of :func:`inverted_dropout`; follows ``model.train()``/``model.eval()``.

    A drop-in replacement for ``torch.nn.Dropout(p)`` written from scratch: in
    training mode each forward pass draws a fresh Bernoulli(``1 - p``) keep mask
    and scales by ``1/(1-p)``; in eval mode it is the identity.

    Args:
        p: drop probability in ``[0, 1)``.
        generator: optional ``torch.Generator`` used for every mask (default: torch's
            global generator, like ``nn.Dropout``).

    See the chapter "Dropout, done right".
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return inverted_dropout(x, self.p, training=self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class KeepRateScaledDropout(nn.Module):
    """Module form of :func:`keep_rate_scaled_dropout`: the *wrong* recipe, kept for the measurement.

    Training mode: drop with probability ``p`` and multiply by the keep rate
    ``1 - p``; eval mode: identity. Expected training activation ``(1-p)^2 h``
    versus ``h`` at evaluation.

    Args:
        p: drop probability in ``[0, 1)``.
        generator: optional ``torch.Generator``.
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return keep_rate_scaled_dropout(x, self.p, training=self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def replace_dropout(model: nn.Module, make: Callable[[float], nn.Module]) -> int:
    """Replace every ``nn.Dropout`` inside ``model`` (in place) by ``make(p)``; return how many were replaced.

    Lets a chapter swap torch's layer for :class:`InvertedDropout` (or the wrong
    :class:`KeepRateScaledDropout`) in any model, e.g.
    ``replace_dropout(model, InvertedDropout)``. A module registered under
    several names is replaced by one shared new module.

    Args:
        model: any ``nn.Module``.
        make: called with each layer's drop probability ``p``; returns the new module.

    Returns:
        The number of distinct ``nn.Dropout`` modules replaced.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not callable(make):
        raise TypeError("make must be callable: p -> nn.Module")
    replacements: dict[int, nn.Module] = {}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Dropout):
                if id(child) not in replacements:
                    new = make(child.p)
                    if not isinstance(new, nn.Module):
                        raise TypeError(f"make must return an nn.Module, got {type(new).__name__}")
                    new.train(child.training)
                    replacements[id(child)] = new
                setattr(parent, name, replacements[id(child)])
    return len(replacements)
