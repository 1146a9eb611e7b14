"""companion.linear against scikit-learn on the (offline) diabetes data, float64.

Tolerances: ridge coefficients atol 1e-8 (closed form vs scikit-learn's cholesky
solver); lasso coefficients atol 1e-5 with tight tolerances on both sides, and
an identical support (set of non-zero coefficients).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

sklearn = pytest.importorskip("sklearn")
from sklearn.linear_model import Lasso, Ridge  # noqa: E402
from sklearn.linear_model import lasso_path as sk_lasso_path  # noqa: E402

from companion.linear import lasso, lasso_alpha_max, lasso_path, ridge, ridge_path  # noqa: E402


@pytest.fixture(scope="module")
def diabetes():
    try:
        from companion.data import diabetes as load

        X, y = load(dtype=torch.float64)
    except ImportError:  # pragma: no cover - companion.data not there yet
        from sklearn.datasets import load_diabetes

        b = load_diabetes(scaled=False)
        X = torch.tensor(b.data)
        X = (X - X.mean(0)) / X.std(0)
        y = torch.tensor(b.target)
        y = y - y.mean()
    return X, y


def _sk_lasso(X, y, alpha):
    est = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=200_000)
    return est.fit(X.numpy(), y.numpy()).coef_


@pytest.mark.parametrize("alpha", [0.0, 0.1, 1.0, 10.0, 1000.0])
def test_ridge_matches_sklearn(diabetes, alpha):
    X, y = diabetes
    sk = Ridge(alpha=alpha, fit_intercept=False, solver="cholesky").fit(X.numpy(), y.numpy()).coef_
    np.testing.assert_allclose(ridge(X, y, alpha).numpy(), sk, atol=1e-8, rtol=0)


def test_ridge_normal_equations_and_multi_target(diabetes):
    X, y = diabetes
    alpha = 3.0
    w = ridge(X, y, alpha)
    # Gradient of ||y-Xw||^2 + alpha||w||^2 vanishes: X^T(Xw - y) + alpha w = 0.
    resid = X.T @ (X @ w - y) + alpha * w
    assert resid.abs().max().item() < 1e-8
    Y = torch.stack([y, 2 * y], dim=1)
    W = ridge(X, Y, alpha)
    torch.testing.assert_close(W[:, 0], w)
    torch.testing.assert_close(W[:, 1], 2 * w)


def test_ridge_path_matches_ridge(diabetes):
    X, y = diabetes
    alphas = [100.0, 0.01, 1.0, 0.0]
    path = ridge_path(X, y, alphas)
    assert path.shape == (4, X.shape[1])
    for row, a in zip(path, alphas):
        torch.testing.assert_close(row, ridge(X, y, a), atol=1e-8, rtol=0)


@pytest.mark.parametrize(
    ("alpha", "method"),
    [(0.05, "fista"), (0.5, "fista"), (2.0, "fista"), (8.0, "fista"), (30.0, "fista"),
     (0.5, "ista"), (8.0, "ista")],
)
def test_lasso_matches_sklearn(diabetes, alpha, method):
    X, y = diabetes
    sk = _sk_lasso(X, y, alpha)
    w = lasso(X, y, alpha, method=method, tol=1e-12, max_iter=200_000)
    np.testing.assert_allclose(w.numpy(), sk, atol=1e-5, rtol=0)
    assert set(np.flatnonzero(w.numpy())) == set(np.flatnonzero(sk))


def test_lasso_above_alpha_max_is_zero_and_below_is_not(diabetes):
    X, y = diabetes
    a_max = lasso_alpha_max(X, y)
    assert a_max == pytest.approx(float((X.T @ y).abs().max()) / X.shape[0])
    assert (lasso(X, y, 1.001 * a_max) == 0).all()
    assert (lasso(X, y, 0.99 * a_max) != 0).sum() == 1


def test_fista_with_restart_needs_far_fewer_iterations_than_ista(diabetes):
    X, y = diabetes
    kw = dict(alpha=0.05, tol=1e-10, max_iter=100_000, return_n_iter=True)
    w_f, it_f = lasso(X, y, method="fista", **kw)
    w_i, it_i = lasso(X, y, method="ista", **kw)
    assert 5 * it_f < it_i, (it_f, it_i)
    torch.testing.assert_close(w_f, w_i, atol=1e-4, rtol=0)


def test_fista_without_restart_matches_sklearn(diabetes):
    X, y = diabetes
    w = lasso(X, y, 2.0, method="fista", restart=False, tol=1e-12, max_iter=100_000)
    np.testing.assert_allclose(w.numpy(), _sk_lasso(X, y, 2.0), atol=1e-5, rtol=0)


def test_lasso_kkt_conditions(diabetes):
    # Optimality: |X^T(y - Xw)|/n <= alpha, with equality and matching sign on the support.
    X, y = diabetes
    alpha = 1.0
    w = lasso(X, y, alpha, tol=1e-12, max_iter=100_000)
    corr = X.T @ (y - X @ w) / X.shape[0]
    support = w != 0
    assert (corr.abs() <= alpha + 1e-6).all()
    torch.testing.assert_close(corr[support], alpha * torch.sign(w[support]), atol=1e-6, rtol=0)


def test_lasso_path_matches_sklearn_and_warm_start_order(diabetes):
    X, y = diabetes
    alphas = np.array([0.1, 30.0, 3.0, 1.0])  # deliberately unsorted
    ours = lasso_path(X, y, alphas, tol=1e-12, max_iter=200_000)
    _, sk, _ = sk_lasso_path(X.numpy(), y.numpy(), alphas=np.sort(alphas)[::-1], tol=1e-12, max_iter=200_000)
    sk = sk.T[np.argsort(np.argsort(-alphas))]  # back to the given order
    np.testing.assert_allclose(ours.numpy(), sk, atol=1e-5, rtol=0)


def test_accepts_numpy_and_keeps_dtype(diabetes):
    X, y = diabetes
    w = ridge(X.numpy(), y.numpy(), 1.0)
    assert isinstance(w, torch.Tensor) and w.dtype == torch.float64
    w32 = lasso(X.float(), y.float(), 1.0, tol=1e-6)
    assert w32.dtype == torch.float32


def test_bad_inputs(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match=r"alpha must be >= 0, got -1.0"):
        ridge(X, y, -1.0)
    with pytest.raises(ValueError, match=r"alpha must be >= 0"):
        lasso(X, y, -0.5)
    with pytest.raises(ValueError, match=r"method must be one of \['fista', 'ista'\]"):
        lasso(X, y, 1.0, method="cd")
    with pytest.raises(ValueError, match=r"tol must be > 0"):
        lasso(X, y, 1.0, tol=0.0)
    with pytest.raises(ValueError, match=r"max_iter must be >= 1"):
        lasso(X, y, 1.0, max_iter=0)
    with pytest.raises(ValueError, match=r"y must have shape"):
        ridge(X, y[:-1], 1.0)
    with pytest.raises(ValueError, match=r"X must be a 2-D tensor"):
        ridge(X[:, 0], y, 1.0)
    with pytest.raises(ValueError, match=r"y must have shape \[n_samples\]"):
        lasso(X, torch.stack([y, y], 1), 1.0)
    with pytest.raises(ValueError, match=r"alphas must be finite and >= 0"):
        lasso_path(X, y, [1.0, -1.0])
    with pytest.raises(ValueError, match=r"alphas must contain at least one value"):
        ridge_path(X, y, [])
    with pytest.raises(ValueError, match=r"w0 must have shape"):
        lasso(X, y, 1.0, w0=torch.zeros(3))
