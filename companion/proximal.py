r"""Proximal L1: soft thresholding, the step that produces exact zeros.

Adding ``l1_penalty`` to the loss and taking (sub)gradient steps moves each
weight by ``±lr·λ`` per step: a weight near zero jumps back and forth across it
and almost never lands on 0.0 exactly. The proximal step instead solves

.. math::

    \operatorname{prox}_{t\lambda\lvert\cdot\rvert}(v)
      = \arg\min_w \tfrac12 (w - v)^2 + t\lambda\lvert w\rvert
      = \operatorname{sign}(v)\max(\lvert v\rvert - t\lambda, 0)

after each ordinary gradient step on the data loss (ISTA; Beck and Teboulle 2009),
which sets every weight with ``|v| <= t·λ`` to exactly zero.

See the chapter "L1 and L2 penalties, exactly" and "Ridge and lasso on real data".
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ._checks import as_tensor_list, check_nonnegative

__all__ = ["proximal_l1_step_", "soft_threshold"]


def soft_threshold(x: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    r"""Elementwise soft thresholding, the proximal operator of :math:`\tau\lvert\cdot\rvert`.

    .. math::

        S_\tau(x) = \operatorname{sign}(x)\,\max(\lvert x\rvert - \tau,\ 0)

    Entries with :math:`\lvert x\rvert \le \tau` become exactly ``0.0``; the
    others move towards zero by :math:`\tau`.

    Args:
        x: any real tensor.
        threshold: :math:`\tau \ge 0`, a float or a tensor broadcastable to ``x``
            (e.g. one threshold per coordinate; every entry must be ``>= 0``).

    Returns:
        A new tensor like ``x`` (differentiable where :math:`\lvert x\rvert \ne \tau`).

    See the chapter "L1 and L2 penalties, exactly".
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    if isinstance(threshold, torch.Tensor) and threshold.numel() > 1:
        if bool((threshold < 0).any()):  # one sync, only for tensor thresholds
            raise ValueError("threshold must be >= 0 everywhere, got a negative entry")
        tau = threshold.to(device=x.device, dtype=x.dtype)
    else:
        tau = check_nonnegative("threshold", threshold)
    return torch.sign(x) * torch.clamp(x.abs() - tau, min=0)


@torch.no_grad()
def proximal_l1_step_(
    params: torch.Tensor | Iterable[torch.Tensor], threshold: float
) -> None:
    r"""Soft-threshold every parameter in place: :math:`w \leftarrow S_\tau(w)`.

    Call it right after ``optimizer.step()`` with ``threshold = lr * strength``:
    the pair is one proximal-gradient (ISTA) step on
    :math:`\mathcal{L}(w) + \lambda\lVert w\rVert_1` for plain SGD. Uses fused
    multi-tensor ops when all parameters share a device and dtype, through the
    identity :math:`S_\tau(w) = w - \operatorname{clamp}(w, -\tau, \tau)`.

    Args:
        params: a tensor or an iterable of tensors (e.g.
            :func:`companion.penalties.penalized_parameters`).
        threshold: :math:`\tau = \eta\lambda \ge 0`.

    Returns:
        None (the parameters are modified in place).

    See the chapter "L1 and L2 penalties, exactly".
    """
    tau = check_nonnegative("threshold", threshold)
    tensors = as_tensor_list("params", params)
    if tau == 0.0:
        return None
    first = tensors[0]
    if all(t.device == first.device and t.dtype == first.dtype for t in tensors):
        # sign(w) * max(|w| - tau, 0) == w - clamp(w, -tau, tau), exactly in floating
        # point (entries with |w| <= tau become w - w = 0.0): one temporary, three fused kernels.
        clipped = torch._foreach_clamp_max(tensors, tau)
        torch._foreach_clamp_min_(clipped, -tau)
        torch._foreach_sub_(tensors, clipped)
    else:
        for t in tensors:
            t.copy_(soft_threshold(t, tau))
    return None
