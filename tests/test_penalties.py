"""companion.penalties against closed forms, autograd/gradcheck and torch's own optimizers.

Tolerances: float64 closed forms at 1e-12 (relative); optimizer trajectories in
float32 at atol 1e-6 (torch's optimizer is the oracle).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.penalties import (
    decay_param_groups,
    elastic_net_penalty,
    l1_penalty,
    l2_penalty,
    penalized_parameters,
)


def _tensors(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(5, 3), (7,), (2, 3, 4), (1,)]
    return [torch.randn(s, generator=g, dtype=dtype, requires_grad=True) for s in shapes]


def _flat(ts):
    return torch.cat([t.detach().flatten() for t in ts])


# ---------------------------------------------------------------- values and gradients
def test_values_match_closed_forms():
    ts = _tensors()
    w = _flat(ts)
    lam = 0.37
    torch.testing.assert_close(l1_penalty(ts, lam), lam * w.abs().sum(), rtol=1e-12, atol=0)
    torch.testing.assert_close(l2_penalty(ts, lam), lam / 2 * (w**2).sum(), rtol=1e-12, atol=0)
    rho = 0.3
    expected = lam * (rho * w.abs().sum() + (1 - rho) / 2 * (w**2).sum())
    torch.testing.assert_close(elastic_net_penalty(ts, lam, rho), expected, rtol=1e-12, atol=0)


def test_elastic_net_endpoints_are_l1_and_l2():
    ts = _tensors()
    torch.testing.assert_close(elastic_net_penalty(ts, 0.2, 1.0), l1_penalty(ts, 0.2))
    torch.testing.assert_close(elastic_net_penalty(ts, 0.2, 0.0), l2_penalty(ts, 0.2))


def test_gradients_match_closed_forms():
    ts = _tensors()
    lam = 0.8
    g2 = torch.autograd.grad(l2_penalty(ts, lam), ts)
    g1 = torch.autograd.grad(l1_penalty(ts, lam), ts)
    for t, a, b in zip(ts, g2, g1):
        torch.testing.assert_close(a, lam * t.detach(), rtol=1e-12, atol=0)
        torch.testing.assert_close(b, lam * t.detach().sign(), rtol=1e-12, atol=0)


def test_l1_subgradient_is_zero_at_zero():
    w = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(l1_penalty(w, 1.5), w)
    assert g.tolist() == [0.0, 1.5, -1.5]


def test_l2_gradient_at_zero_is_zero_not_nan():
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(l2_penalty(w, 1.0), w)
    assert torch.equal(g, torch.zeros(4, dtype=torch.float64))


@pytest.mark.parametrize("fn", ["l1", "l2", "enet"])
def test_gradcheck_float64(fn):
    # Away from 0 for L1 (non-differentiable there).
    ts = [t.detach().abs().add(0.1).mul(torch.sign(torch.randn_like(t))).requires_grad_() for t in _tensors()]
    f = {
        "l1": lambda *a: l1_penalty(list(a), 0.3),
        "l2": lambda *a: l2_penalty(list(a), 0.3),
        "enet": lambda *a: elastic_net_penalty(list(a), 0.3, 0.4),
    }[fn]
    assert torch.autograd.gradcheck(f, tuple(ts), eps=1e-6, atol=1e-8)


def test_accepts_tensor_generator_and_returns_scalar_on_device():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    gen_value = l2_penalty((p for p in model.parameters()), 0.1)
    list_value = l2_penalty(list(model.parameters()), 0.1)
    assert gen_value.shape == () and gen_value.requires_grad
    torch.testing.assert_close(gen_value, list_value)
    single = l1_penalty(model[0].weight, 1.0)
    torch.testing.assert_close(single, model[0].weight.abs().sum())
    assert single.device == model[0].weight.device


def test_mixed_dtypes_fall_back_to_loop():
    a = torch.ones(3, dtype=torch.float32)
    b = torch.ones(2, dtype=torch.float64)
    assert l2_penalty([a, b], 2.0).item() == pytest.approx(5.0)
    assert l1_penalty([a, b], 1.0).item() == pytest.approx(5.0)


# ---------------------------------------------------------------- torch optimizers as oracles
def _problem(seed=0):
    torch.manual_seed(seed)
    x = torch.randn(32, 6)
    y = torch.randn(32, 1)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
    return model, x, y


def _clone(model):
    import copy

    return copy.deepcopy(model)


def _train(model, opt, x, y, steps, strength=0.0):
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        if strength:
            loss = loss + l2_penalty(model.parameters(), strength)
        loss.backward()
        opt.step()


def test_sgd_plus_l2_penalty_equals_sgd_weight_decay_step_by_step():
    lam, lr = 0.05, 0.1
    a, x, y = _problem()
    b = _clone(a)
    opt_a = torch.optim.SGD(a.parameters(), lr=lr)
    opt_b = torch.optim.SGD(b.parameters(), lr=lr, weight_decay=lam)
    for _ in range(20):
        _train(a, opt_a, x, y, 1, strength=lam)
        _train(b, opt_b, x, y, 1)
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p, q, atol=1e-6, rtol=0)


def test_one_sgd_step_is_the_closed_form_update():
    # w <- (1 - lr*lam) w - lr * grad(loss)
    lam, lr = 0.2, 0.05
    model, x, y = _problem(1)
    w0 = [p.detach().clone() for p in model.parameters()]
    grads = torch.autograd.grad(nn.functional.mse_loss(model(x), y), list(model.parameters()))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    _train(model, opt, x, y, 1, strength=lam)
    for p, w, g in zip(model.parameters(), w0, grads):
        torch.testing.assert_close(p.detach(), (1 - lr * lam) * w - lr * g, atol=1e-6, rtol=0)


def test_adam_plus_l2_equals_coupled_adam_not_adamw():
    lam, lr, steps = 0.1, 0.01, 30
    a, x, y = _problem(2)
    b, c = _clone(a), _clone(a)
    _train(a, torch.optim.Adam(a.parameters(), lr=lr), x, y, steps, strength=lam)
    _train(b, torch.optim.Adam(b.parameters(), lr=lr, weight_decay=lam), x, y, steps)
    _train(c, torch.optim.AdamW(c.parameters(), lr=lr, weight_decay=lam), x, y, steps)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)
    # Decoupled decay is a different algorithm: the trajectories separate measurably.
    diff = max((p - r).abs().max().item() for p, r in zip(a.parameters(), c.parameters()))
    assert diff > 1e-3, diff


# ---------------------------------------------------------------- parameter selection
class _Zoo(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.conv = nn.Conv1d(4, 4, 3)
        self.bn = nn.BatchNorm1d(4)
        self.lstm = nn.LSTM(4, 5, num_layers=2)
        self.gru_cell = nn.GRUCell(5, 5)
        self.ln = nn.LayerNorm(5)
        self.fc = nn.Linear(5, 3)
        self.head = nn.Linear(3, 10, bias=False)
        self.scale = nn.Parameter(torch.ones(1))


def test_penalized_parameters_selects_weights_only():
    z = _Zoo()
    got = {id(p) for p in penalized_parameters(z)}
    names = {n for n, p in z.named_parameters() if id(p) in got}
    assert names == {
        "conv.weight",
        "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.weight_ih_l1", "lstm.weight_hh_l1",
        "gru_cell.weight_ih", "gru_cell.weight_hh",
        "fc.weight", "head.weight",
    }


def test_tied_weights_appear_once():
    a = nn.Linear(4, 4)
    b = nn.Linear(4, 4)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    assert len(penalized_parameters(model)) == 1


def test_parametrized_weight_uses_original():
    from torch.nn.utils.parametrizations import spectral_norm

    lin = spectral_norm(nn.Linear(4, 3))
    (p,) = penalized_parameters(lin)
    assert p is lin.parametrizations.weight.original


def test_decay_param_groups_cover_every_parameter_once():
    z = _Zoo()
    groups = decay_param_groups(z, 0.01)
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in z.parameters()}
    torch.optim.AdamW(groups, lr=1e-3)  # accepted by torch


def test_decay_param_groups_with_sgd_matches_penalty_on_weights_only():
    lam, lr = 0.1, 0.1
    a, x, y = _problem(3)
    b = _clone(a)
    opt_a = torch.optim.SGD(a.parameters(), lr=lr)
    opt_b = torch.optim.SGD(decay_param_groups(b, lam), lr=lr)
    for _ in range(10):
        opt_a.zero_grad()
        loss = nn.functional.mse_loss(a(x), y) + l2_penalty(penalized_parameters(a), lam)
        loss.backward()
        opt_a.step()
        _train(b, opt_b, x, y, 1)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)


# ---------------------------------------------------------------- bad inputs
def test_bad_inputs_raise_teaching_errors():
    w = torch.ones(3)
    with pytest.raises(ValueError, match=r"strength must be >= 0, got -0.1"):
        l2_penalty(w, -0.1)
    with pytest.raises(ValueError, match=r"strength must be >= 0"):
        l1_penalty(w, -1)
    with pytest.raises(ValueError, match=r"l1_ratio must be in \[0, 1\], got 1.5"):
        elastic_net_penalty(w, 0.1, 1.5)
    with pytest.raises(ValueError, match=r"params must contain at least one tensor"):
        l2_penalty([], 0.1)
    with pytest.raises(TypeError, match=r"params\[1\] must be a tensor"):
        l1_penalty([w, 3.0], 0.1)
    with pytest.raises(ValueError, match=r"weight_decay must be >= 0"):
        decay_param_groups(nn.Linear(2, 2), -1.0)
    with pytest.raises(TypeError, match=r"model must be an nn.Module"):
        penalized_parameters([w])
    with pytest.raises(ValueError, match=r"strength must be finite"):
        l2_penalty(w, float("nan"))
