r"""Reference solvers for ridge and lasso linear regression (no intercept).

Conventions are scikit-learn's, so results can be checked against it:

* ``ridge(X, y, alpha)`` minimises :math:`\lVert y - Xw\rVert_2^2 + \alpha\lVert w\rVert_2^2`
  (``sklearn.linear_model.Ridge(alpha, fit_intercept=False)``); closed form
  :math:`w = (X^\top X + \alpha I)^{-1} X^\top y`, computed with a linear solve.
* ``lasso(X, y, alpha)`` minimises
  :math:`\frac{1}{2n}\lVert y - Xw\rVert_2^2 + \alpha\lVert w\rVert_1`
  (``sklearn.linear_model.Lasso(alpha, fit_intercept=False)``) by proximal
  gradient descent: ISTA or its accelerated version FISTA (Beck and Teboulle 2009),
  step :math:`1/L` with :math:`L = \sigma_{\max}(X)^2 / n`.

Centre ``X`` and ``y`` yourself if you want an intercept (``companion.data.diabetes``
returns centred, standardized features).

See the chapter "Ridge and lasso on real data" (``book/part2/02_linear_regression.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ._checks import check_choice, check_int, check_nonnegative, check_positive
from .proximal import soft_threshold

__all__ = ["lasso", "lasso_alpha_max", "lasso_path", "ridge", "ridge_path"]


def _as_xy(X: Any, y: Any, *, y_2d_ok: bool) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.as_tensor(X)
    if not X.is_floating_point():
        X = X.double()
    y = torch.as_tensor(y, dtype=X.dtype, device=X.device)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D tensor [n_samples, n_features], got shape {tuple(X.shape)}")
    allowed = (1, 2) if y_2d_ok else (1,)
    if y.ndim not in allowed or y.shape[0] != X.shape[0]:
        want = "[n_samples] or [n_samples, n_targets]" if y_2d_ok else "[n_samples]"
        raise ValueError(
            f"y must have shape {want} with n_samples={X.shape[0]}, got {tuple(y.shape)}"
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must have at least one sample and one feature, got {tuple(X.shape)}")
    return X, y


def ridge(X: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    r"""Ridge regression in closed form (scikit-learn ``Ridge(fit_intercept=False)``).

    .. math::

        \hat w = \arg\min_w \lVert y - Xw\rVert_2^2 + \alpha\lVert w\rVert_2^2
               = (X^\top X + \alpha I)^{-1} X^\top y

    computed with ``torch.linalg.solve`` (never an explicit inverse). Note the
    scaling: this is :math:`n` times the mean-squared loss plus
    ``l2_penalty(w, 2*alpha)``; in the mean-loss convention of the book,
    ``alpha = n * λ / 2``.

    Args:
        X: ``[n, p]`` design matrix (float; integer input is cast to float64).
        y: ``[n]`` or ``[n, k]`` targets.
        alpha: :math:`\alpha \ge 0` (``alpha = 0`` needs :math:`X^\top X` invertible).

    Returns:
        ``[p]`` (or ``[p, k]``) coefficients on ``X``'s device.

    See the chapter "Ridge and lasso on real data".
    """
    alpha = check_nonnegative("alpha", alpha)
    X, y = _as_xy(X, y, y_2d_ok=True)
    gram = X.T @ X
    gram.diagonal().add_(alpha)
    return torch.linalg.solve(gram, X.T @ y)


def ridge_path(X: torch.Tensor, y: torch.Tensor, alphas: Sequence[float] | torch.Tensor) -> torch.Tensor:
    r"""Ridge coefficients for many ``alphas`` from one SVD.

    With :math:`X = U\,\mathrm{diag}(s)\,V^\top`,
    :math:`\hat w(\alpha) = V\,\mathrm{diag}\big(s/(s^2+\alpha)\big)\,U^\top y`.

    Args:
        X: ``[n, p]`` design matrix.
        y: ``[n]`` targets.
        alphas: non-negative penalties, any order.

    Returns:
        ``[len(alphas), p]`` coefficients, row ``i`` for ``alphas[i]``.

    See the chapter "Ridge and lasso on real data".
    """
    X, y = _as_xy(X, y, y_2d_ok=False)
    a = _alphas(alphas, X)
    U, s, Vh = torch.linalg.svd(X, full_matrices=False)
    uty = U.T @ y                                   # [r]
    shrink = s / (s.square() + a[:, None])          # [m, r]
    return (shrink * uty) @ Vh                      # [m, p]


def _alphas(alphas: Any, X: torch.Tensor) -> torch.Tensor:
    a = torch.as_tensor(alphas, dtype=X.dtype, device=X.device).reshape(-1)
    if a.numel() == 0:
        raise ValueError("alphas must contain at least one value, got an empty sequence")
    if bool((a < 0).any()) or not bool(torch.isfinite(a).all()):
        raise ValueError(f"alphas must be finite and >= 0, got {a.tolist()}")
    return a


def lasso_alpha_max(X: torch.Tensor, y: torch.Tensor) -> float:
    r"""The smallest ``alpha`` for which the lasso solution is all zeros.

    .. math:: \alpha_{\max} = \lVert X^\top y\rVert_\infty / n

    Args:
        X: ``[n, p]`` design matrix.
        y: ``[n]`` targets.

    Returns:
        :math:`\alpha_{\max}` as a float.
    """
    X, y = _as_xy(X, y, y_2d_ok=False)
    return float((X.T @ y).abs().max() / X.shape[0])


def _duality_gap(X, y, w, alpha, n):
    # Primal (1/2n)||r||^2 + alpha||w||_1; dual point u = r scaled into
    # {||X^T u||_inf <= n alpha}, dual value (||y||^2 - ||y-u||^2)/(2n).
    r = y - X @ w
    xtr = (X.T @ r).abs().max()
    scale = torch.clamp(n * alpha / xtr, max=1.0) if alpha > 0 else torch.ones((), dtype=X.dtype)
    u = r * scale
    primal = 0.5 * r.square().sum() / n + alpha * w.abs().sum()
    dual = 0.5 * (y.square().sum() - (y - u).square().sum()) / n
    return float(primal - dual)


def _lasso(X, y, alpha, w0, max_iter, tol, method, lipschitz, restart, check_every=10):
    n = X.shape[0]
    step = 1.0 / lipschitz
    tau = step * alpha
    gap_tol = tol * float(y.square().sum()) / (2 * n)
    xty = X.T @ y / n
    gram = X.T @ X / n if X.shape[1] <= X.shape[0] else None
    w = w0.clone()
    z, t = w.clone(), 1.0
    for it in range(1, max_iter + 1):
        point = z if method == "fista" else w
        grad = (gram @ point if gram is not None else X.T @ (X @ point) / n) - xty
        w_new = soft_threshold(point - step * grad, tau)
        if method == "fista":
            if restart and float(torch.dot(point - w_new, w_new - w)) > 0:
                # Momentum points uphill: restart it (O'Donoghue and Candes 2015).
                t = 1.0
            t_new = 0.5 * (1.0 + (1.0 + 4.0 * t * t) ** 0.5)
            z = w_new + ((t - 1.0) / t_new) * (w_new - w)
            t = t_new
        w = w_new
        if it % check_every == 0 and _duality_gap(X, y, w, alpha, n) <= gap_tol:
            return w, it
    return w, max_iter


def lasso(
    X: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    *,
    max_iter: int = 10_000,
    tol: float = 1e-10,
    method: str = "fista",
    restart: bool = True,
    w0: torch.Tensor | None = None,
    return_n_iter: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, int]:
    r"""Lasso by proximal gradient descent (scikit-learn ``Lasso(fit_intercept=False)``).

    .. math::

        \hat w = \arg\min_w \frac{1}{2n}\lVert y - Xw\rVert_2^2 + \alpha\lVert w\rVert_1

    ISTA repeats :math:`w \leftarrow S_{\alpha/L}\big(w - \tfrac1L\nabla f(w)\big)`
    with :math:`f(w) = \frac{1}{2n}\lVert y-Xw\rVert^2`, :math:`L = \sigma_{\max}(X)^2/n`
    and :math:`S` the soft threshold; FISTA takes the same step from an
    extrapolated point (momentum :math:`(t_k-1)/t_{k+1}`), which improves the
    rate from :math:`O(1/k)` to :math:`O(1/k^2)` (Beck and Teboulle 2009).
    With ``restart`` (default) the momentum is reset whenever it points uphill
    (gradient-based adaptive restart, O'Donoghue and Candes 2015), which keeps
    FISTA's rate and removes its oscillations on well-conditioned problems.
    Iteration stops when the duality gap is at most
    ``tol * ||y||² / (2n)`` (checked every 10 iterations) or after ``max_iter``.

    Args:
        X: ``[n, p]`` design matrix.
        y: ``[n]`` targets.
        alpha: :math:`\alpha \ge 0`.
        max_iter: iteration cap, ``>= 1``.
        tol: relative duality-gap tolerance, ``> 0``.
        method: ``"fista"`` or ``"ista"``.
        restart: adaptive momentum restart for FISTA (ignored by ISTA).
        w0: optional ``[p]`` warm start (default zeros).
        return_n_iter: also return the number of iterations used.

    Returns:
        ``[p]`` coefficients on ``X``'s device (and the iteration count if asked).

    See the chapter "Ridge and lasso on real data".
    """
    alpha = check_nonnegative("alpha", alpha)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    tol = check_positive("tol", tol)
    method = check_choice("method", method, ("fista", "ista"))
    X, y = _as_xy(X, y, y_2d_ok=False)
    p = X.shape[1]
    if w0 is None:
        w0 = torch.zeros(p, dtype=X.dtype, device=X.device)
    else:
        w0 = torch.as_tensor(w0, dtype=X.dtype, device=X.device)
        if w0.shape != (p,):
            raise ValueError(f"w0 must have shape ({p},), got {tuple(w0.shape)}")
    lipschitz = float(torch.linalg.matrix_norm(X, ord=2)) ** 2 / X.shape[0]
    if lipschitz == 0.0:
        w, n_iter = torch.zeros_like(w0), 0
    else:
        w, n_iter = _lasso(X, y, alpha, w0, max_iter, tol, method, lipschitz, restart)
    return (w, n_iter) if return_n_iter else w


def lasso_path(
    X: torch.Tensor,
    y: torch.Tensor,
    alphas: Sequence[float] | torch.Tensor,
    *,
    max_iter: int = 10_000,
    tol: float = 1e-10,
    method: str = "fista",
) -> torch.Tensor:
    """Lasso coefficients for many ``alphas``, solved from large to small with warm starts.

    Each solve starts from the solution for the next larger ``alpha`` (a sparse
    point close to the new solution), which is how scikit-learn's
    ``lasso_path`` and glmnet (Friedman et al. 2010) make a path cheap.

    Args:
        X: ``[n, p]`` design matrix.
        y: ``[n]`` targets.
        alphas: non-negative penalties, any order.
        max_iter, tol, method: as in :func:`lasso`.

    Returns:
        ``[len(alphas), p]`` coefficients, row ``i`` for ``alphas[i]``.

    See the chapter "Ridge and lasso on real data".
    """
    X, y = _as_xy(X, y, y_2d_ok=False)
    a = _alphas(alphas, X)
    out = torch.empty(a.numel(), X.shape[1], dtype=X.dtype, device=X.device)
    w = None
    for i in torch.argsort(a, descending=True).tolist():
        w = lasso(X, y, float(a[i]), max_iter=max_iter, tol=tol, method=method, w0=w)
        out[i] = w
    return out
