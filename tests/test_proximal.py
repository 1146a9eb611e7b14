"""companion.proximal against the formula, the prox definition, and subgradient descent."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.penalties import l1_penalty
from companion.proximal import proximal_l1_step_, soft_threshold


def test_soft_threshold_matches_formula_elementwise():
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    for tau in (0.0, 0.5, 1.0, 4.0):
        expected = torch.tensor(
            [(1 if v > 0 else -1 if v < 0 else 0) * max(abs(v) - tau, 0.0) for v in x.tolist()],
            dtype=torch.float64,
        )
        torch.testing.assert_close(soft_threshold(x, tau), expected, rtol=0, atol=1e-15)


def test_soft_threshold_gives_exact_zeros():
    x = torch.tensor([-1.0, -0.3, 0.0, 0.29, 0.31, 2.0])
    out = soft_threshold(x, 0.3)
    assert (out[1:4] == 0).all()
    assert out[4].item() == pytest.approx(0.01, abs=1e-6)
    assert out[0].item() == pytest.approx(-0.7)


def test_soft_threshold_is_the_prox_of_tau_abs():
    # prox(v) = argmin_w 0.5 (w-v)^2 + tau |w|, checked by brute force on a fine grid.
    grid = torch.linspace(-5, 5, 200001, dtype=torch.float64)
    tau = 0.7
    for v in (-3.2, -0.7, -0.2, 0.0, 0.5, 0.71, 2.4):
        objective = 0.5 * (grid - v) ** 2 + tau * grid.abs()
        w_star = grid[objective.argmin()].item()
        got = soft_threshold(torch.tensor(v, dtype=torch.float64), tau).item()
        assert got == pytest.approx(w_star, abs=1e-4)


def test_soft_threshold_tensor_threshold():
    x = torch.tensor([1.0, 1.0, -1.0])
    tau = torch.tensor([0.5, 2.0, 0.25])
    torch.testing.assert_close(soft_threshold(x, tau), torch.tensor([0.5, 0.0, -0.75]))


def test_proximal_step_in_place_matches_soft_threshold_and_returns_none():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2))
    before = [p.detach().clone() for p in model.parameters()]
    assert proximal_l1_step_(model.parameters(), 0.2) is None
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p.detach(), soft_threshold(b, 0.2))
        assert p.requires_grad  # still a trainable parameter


def test_proximal_step_mixed_dtypes_and_zero_threshold():
    a = torch.tensor([0.5, -2.0])
    b = torch.tensor([0.1], dtype=torch.float64)
    proximal_l1_step_([a, b], 0.0)
    assert a.tolist() == [0.5, -2.0]
    proximal_l1_step_([a, b], 0.2)
    assert a.tolist() == pytest.approx([0.3, -1.8]) and b.tolist() == [0.0]


def _sparse_problem():
    # 50 features, only 5 matter: the L1 solution is sparse.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 50, generator=g)
    w_true = torch.zeros(50)
    w_true[:5] = torch.tensor([2.0, -1.5, 1.0, 0.8, -0.6])
    y = x @ w_true + 0.1 * torch.randn(200, generator=g)
    return x, y


def test_subgradient_gives_no_exact_zeros_but_prox_gives_many():
    x, y = _sparse_problem()
    lam, lr, steps = 0.1, 0.05, 500
    w_sub = torch.zeros(50, requires_grad=True)
    w_prox = torch.zeros(50, requires_grad=True)
    for _ in range(steps):
        loss = 0.5 * ((x @ w_sub - y) ** 2).mean() + l1_penalty(w_sub, lam)
        (g,) = torch.autograd.grad(loss, w_sub)
        with torch.no_grad():
            w_sub -= lr * g
        loss = 0.5 * ((x @ w_prox - y) ** 2).mean()
        (g,) = torch.autograd.grad(loss, w_prox)
        with torch.no_grad():
            w_prox -= lr * g
        proximal_l1_step_(w_prox, lr * lam)
    zeros_sub = int((w_sub == 0).sum())
    zeros_prox = int((w_prox == 0).sum())
    assert zeros_sub <= 2, zeros_sub
    assert zeros_prox >= 40, zeros_prox
    # The informative coordinates survive in both.
    assert (w_prox[:5] != 0).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"threshold must be >= 0, got -0.1"):
        soft_threshold(torch.ones(2), -0.1)
    with pytest.raises(ValueError, match=r"threshold must be >= 0 everywhere"):
        soft_threshold(torch.ones(2), torch.tensor([0.1, -0.1]))
    with pytest.raises(TypeError, match=r"x must be a tensor"):
        soft_threshold([1.0], 0.1)
    with pytest.raises(ValueError, match=r"threshold must be >= 0"):
        proximal_l1_step_(torch.ones(2), -1.0)
    with pytest.raises(ValueError, match=r"params must contain at least one tensor"):
        proximal_l1_step_([], 0.1)
