r"""Norm constraints on weights: max-norm and spectral normalization.

A penalty adds a term to the loss and only *pulls* weights towards zero; a
constraint *bounds* them after every step. Two common ones:

* **max-norm** (Srivastava et al. 2014): the incoming weight vector of every unit
  is projected back onto the ball :math:`\lVert w_i\rVert_2 \le c` after each update;
* **spectral norm** (Miyato et al. 2018): the largest singular value
  :math:`\sigma_{\max}(W)` of each weight matrix is kept at (or below) a bound, which
  bounds the layer's Lipschitz constant and therefore how much it can amplify a
  forward signal or a backward gradient.

All in-place functions run under ``torch.no_grad()``, return ``None`` and never
synchronise with the host.

See the chapters of Part II on constraints and Part III on what fixes gradients.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ._checks import as_tensor_list, check_int, check_positive
from .penalties import penalized_parameters
from .reproducibility import generator

__all__ = [
    "add_spectral_norm",
    "max_norm_",
    "power_iteration",
    "spectral_norm_",
    "spectral_norms",
]


def _weights(name: str, module_or_params: nn.Module | torch.Tensor | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(module_or_params, nn.Module):
        tensors = penalized_parameters(module_or_params)
        if not tensors:
            raise ValueError(f"{name} has no Linear/Conv/RNN weights to constrain")
        return tensors
    return as_tensor_list(name, module_or_params)


@torch.no_grad()
def max_norm_(
    module_or_params: nn.Module | torch.Tensor | Iterable[torch.Tensor],
    max_norm: float,
    *,
    dim: int = 0,
) -> None:
    r"""Project each unit's incoming weights onto the ball of radius ``max_norm``, in place.

    For a weight ``W`` and every index ``i`` along ``dim`` (a unit: a row of an
    ``nn.Linear`` weight ``[out, in]``, an output channel of a convolution),

    .. math::

        W_i \leftarrow W_i \cdot \min\Big(1, \frac{c}{\lVert W_i\rVert_2}\Big)

    so slices already inside the ball are left untouched (unlike
    ``torch.renorm``, which also rescales by a factor ``c/(‖W_i‖+1e-7)``).
    Call it after ``optimizer.step()``; Srivastava et al. (2014) use
    :math:`c` between 3 and 4 together with dropout.

    Args:
        module_or_params: a module (its :func:`~companion.penalties.penalized_parameters`
            are constrained, biases are not) or a tensor / iterable of tensors.
        max_norm: the radius :math:`c > 0`.
        dim: the dimension that indexes units (default 0: rows of ``[out, in]``).

    Returns:
        None.
    """
    c = check_positive("max_norm", max_norm)
    dim = check_int("dim", dim)
    for w in _weights("module_or_params", module_or_params):
        if not -w.ndim <= dim < max(w.ndim, 1):
            raise ValueError(f"dim must be in [{-w.ndim}, {w.ndim - 1}] for a tensor of shape {tuple(w.shape)}, got {dim}")
        if w.ndim <= 1:
            norms = w.abs()
        else:
            other = [d for d in range(w.ndim) if d != dim % w.ndim]
            norms = torch.linalg.vector_norm(w, 2, dim=other, keepdim=True)
        # c/0 = inf is clamped to 1: a zero row stays zero; no data-dependent branch.
        w.mul_(torch.clamp(c / norms, max=1.0))
    return None


def _matrix(w: torch.Tensor) -> torch.Tensor:
    # Conv weights [out, in, *k] are flattened to [out, in*prod(k)] (as torch's spectral_norm does).
    return w.reshape(w.shape[0], -1) if w.ndim > 2 else w


def spectral_norms(model: nn.Module) -> torch.Tensor:
    r"""Largest singular value :math:`\sigma_{\max}(W)` of every weight of ``model``.

    Takes the effective weight of each ``nn.Linear``/``nn.Conv*`` in
    ``model.modules()`` order (for a parametrized weight, e.g. under
    :func:`add_spectral_norm`, the normalized weight the layer actually uses).
    Convolution kernels are flattened to ``[out, in·k·k]``; that matrix's
    :math:`\sigma_{\max}` is the quantity torch's spectral normalization controls,
    not the operator norm of the convolution itself.

    Args:
        model: any ``nn.Module``.

    Returns:
        A 1-D tensor on the weights' device, one entry per layer (no host sync).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    out = [
        torch.linalg.matrix_norm(_matrix(m.weight.detach()), ord=2)
        for m in model.modules()
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
    ]
    if not out:
        raise ValueError("model has no nn.Linear or nn.Conv* layers")
    return torch.stack(out)


@torch.no_grad()
def power_iteration(
    weight: torch.Tensor, *, n_iter: int = 100, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Estimate :math:`\sigma_{\max}(W)` and its singular vectors by power iteration.

    .. math::

        v \leftarrow \frac{W^\top u}{\lVert W^\top u\rVert},\quad
        u \leftarrow \frac{W v}{\lVert W v\rVert},\quad
        \sigma \approx u^\top W v

    The method spectral normalization uses (one iteration per training step,
    reusing ``u``); the error shrinks like :math:`(\sigma_2/\sigma_1)^{2k}`.

    Args:
        weight: a 2-D tensor (or a conv kernel, flattened to ``[out, -1]``).
        n_iter: number of iterations, ``>= 1``.
        seed: seed of the random start vector (a private generator; the global
            RNG is untouched).

    Returns:
        ``(sigma, u, v)`` on ``weight``'s device.
    """
    n_iter = check_int("n_iter", n_iter, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    if not isinstance(weight, torch.Tensor) or weight.ndim < 2:
        raise ValueError("weight must be a tensor with at least 2 dimensions")
    w = _matrix(weight.detach())
    gen = generator(seed)
    u = torch.randn(w.shape[0], generator=gen, dtype=w.dtype).to(w.device)
    u = u / torch.linalg.vector_norm(u)
    for _ in range(n_iter):
        v = nn.functional.normalize(w.T @ u, dim=0)
        u = nn.functional.normalize(w @ v, dim=0)
    return u @ w @ v, u, v


@torch.no_grad()
def spectral_norm_(
    module_or_params: nn.Module | torch.Tensor | Iterable[torch.Tensor],
    max_sigma: float = 1.0,
) -> None:
    r"""Rescale each weight in place so that :math:`\sigma_{\max}(W) \le` ``max_sigma``.

    .. math::

        W \leftarrow W \cdot \min\Big(1, \frac{\sigma_0}{\sigma_{\max}(W)}\Big)

    with :math:`\sigma_{\max}` computed exactly (``torch.linalg.matrix_norm(ord=2)``).
    A projection applied after ``optimizer.step()``; for the reparametrization
    of Miyato et al. (2018) that divides by :math:`\sigma_{\max}` in every
    forward pass, use :func:`add_spectral_norm`.

    Args:
        module_or_params: a module (its Linear/Conv/RNN weights) or tensor(s) with ``ndim >= 2``.
        max_sigma: the bound :math:`\sigma_0 > 0`.

    Returns:
        None.
    """
    bound = check_positive("max_sigma", max_sigma)
    for w in _weights("module_or_params", module_or_params):
        if w.ndim < 2:
            raise ValueError(f"spectral_norm_ needs weights with ndim >= 2, got shape {tuple(w.shape)}")
        sigma = torch.linalg.matrix_norm(_matrix(w), ord=2)
        w.mul_(torch.clamp(bound / sigma, max=1.0))
    return None


def add_spectral_norm(model: nn.Module, *, n_power_iterations: int = 1) -> nn.Module:
    """Apply ``torch.nn.utils.parametrizations.spectral_norm`` to every ``nn.Linear``.

    Each layer then uses :math:`W/\\sigma_{\\max}(W)` in its forward pass, with
    :math:`\\sigma_{\\max}` estimated by ``n_power_iterations`` steps of power
    iteration per training-mode forward (Miyato et al. 2018). The model is
    modified in place and returned.

    Args:
        model: any ``nn.Module``.
        n_power_iterations: power-iteration steps per forward, ``>= 1``.

    Returns:
        ``model``.
    """
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import spectral_norm

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    n_power_iterations = check_int("n_power_iterations", n_power_iterations, minimum=1)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model has no nn.Linear layers")
    for m in linears:
        if not parametrize.is_parametrized(m, "weight"):
            spectral_norm(m, n_power_iterations=n_power_iterations)
    return model
