"""Tests for companion.diagnostics against independent computations.

Oracles: ``p.grad.norm()`` per parameter, ``torch.autograd.functional.jacobian`` + NumPy's
SVD, and linear maps whose singular values are known by construction.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from companion.diagnostics import (
    GradientMonitor,
    activation_stats,
    jacobian_singular_values,
    parameter_grad_norms,
    weight_grad_norms,
)
from companion.models import mlp

TOL = dict(rtol=1e-5, atol=1e-7)  # float32 norms computed by two different kernels


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _model_with_grads(depth=4, width=16, activation="tanh"):
    model = mlp(3, 2, depth=depth, width=width, activation=activation, init="xavier")
    x, y = torch.randn(32, 3), torch.randn(32, 2)
    nn.functional.mse_loss(model(x), y).backward()
    return model


def test_parameter_grad_norms_match_direct_norms():
    model = _model_with_grads()
    got = parameter_grad_norms(model)
    expected = {n: p.grad.norm().item() for n, p in model.named_parameters()}
    assert list(got) == list(expected)  # every parameter, in named_parameters() order
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=1e-5)


def test_parameter_grad_norms_skips_parameters_without_grad():
    model = _model_with_grads()
    model.linears[0].bias.grad = None
    assert "linears.0.bias" not in parameter_grad_norms(model)


def test_parameter_grad_norms_requires_backward():
    with pytest.raises(RuntimeError, match=r"call backward\(\) first"):
        parameter_grad_norms(mlp(3, 2, depth=2, width=4))


def test_weight_grad_norms_order_and_values():
    model = _model_with_grads(depth=5)
    got = weight_grad_norms(model)
    assert got.shape == (6,) and got.device == model.linears[0].weight.device
    expected = torch.stack([l.weight.grad.norm() for l in model.linears])
    torch.testing.assert_close(got, expected, **TOL)


def test_weight_grad_norms_on_a_plain_rnn_model():
    rnn = nn.RNN(2, 5, batch_first=True)
    out, _ = rnn(torch.randn(3, 4, 2))
    out.sum().backward()
    got = weight_grad_norms(rnn)
    torch.testing.assert_close(got, torch.stack([rnn.weight_ih_l0.grad.norm(), rnn.weight_hh_l0.grad.norm()]))


def test_weight_grad_norms_errors():
    with pytest.raises(RuntimeError, match=r"call backward\(\) first"):
        weight_grad_norms(mlp(3, 2, depth=2, width=4))
    with pytest.raises(TypeError, match="model"):
        weight_grad_norms([torch.zeros(2, 2)])
    with pytest.raises(ValueError, match="weight matrices"):
        weight_grad_norms(nn.LayerNorm(3))


def test_monitor_equals_direct_computation_at_each_step():
    model = mlp(3, 2, depth=6, width=16, activation="relu")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(64, 3), torch.randn(64, 2)
    monitor = GradientMonitor(model)
    expected = []
    for step in range(100):  # more than the initial buffer of 64 rows: exercises growth
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        monitor.record(step)
        expected.append([l.weight.grad.norm().item() for l in model.linears])
        opt.step()
    norms = monitor.norms()
    assert norms.shape == (100, 7) and norms.device.type == "cpu"
    assert monitor.steps == list(range(100))
    assert monitor.layer_names == [f"linears.{i}.weight" for i in range(7)]
    torch.testing.assert_close(norms, torch.tensor(expected), **TOL)
    monitor.close()


def test_monitor_activation_stats_match_manual_forward():
    model = mlp(3, 2, depth=3, width=8, activation="relu")
    x = torch.randn(20, 3)
    with GradientMonitor(model, activations=True) as monitor:
        assert monitor.activation_names == ["h1", "h2", "h3"]
        model(x).sum().backward()
        monitor.record(7)
        stats = monitor.activation_stats()
    h1 = torch.relu(model.linears[0](x)).detach()
    assert stats["mean"].shape == (1, 3)
    torch.testing.assert_close(stats["mean"][0, 0], h1.mean())
    torch.testing.assert_close(stats["std"][0, 0], h1.std())
    torch.testing.assert_close(stats["zero_fraction"][0, 0], (h1 == 0).float().mean())
    # close() removed the hooks: forward passes no longer touch the monitor
    monitor._latest.clear()
    model(x)
    assert monitor._latest == {}


def test_monitor_errors():
    model = mlp(3, 2, depth=2, width=4)
    monitor = GradientMonitor(model)
    with pytest.raises(RuntimeError, match=r"call backward\(\) first"):
        monitor.record(0)
    with pytest.raises(RuntimeError, match="activations=True"):
        monitor.activation_stats()
    with pytest.raises(TypeError, match="activations"):
        GradientMonitor(model, activations="yes")
    with pytest.raises(TypeError, match="model"):
        GradientMonitor(object())


def test_activation_stats_mlp_and_generic_model():
    model = mlp(3, 2, depth=2, width=8, activation="tanh", init="xavier")
    x = torch.randn(50, 3)
    stats = activation_stats(model, x)
    h1 = torch.tanh(model.linears[0](x))
    h2 = torch.tanh(model.linears[1](h1))
    assert list(stats) == ["h1", "h2"]
    assert stats["h2"]["mean"] == pytest.approx(h2.mean().item(), rel=1e-5, abs=1e-7)
    assert stats["h2"]["std"] == pytest.approx(h2.std().item(), rel=1e-5)
    assert stats["h1"]["zero_fraction"] == 0.0
    seq = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    s = activation_stats(seq, x)
    h = torch.relu(seq[0](x))
    assert list(s) == ["1"]
    assert s["1"]["zero_fraction"] == pytest.approx((h == 0).float().mean().item())
    # hooks are removed afterwards
    assert not seq[1]._forward_hooks
    with pytest.raises(ValueError, match="activation modules"):
        activation_stats(nn.Linear(3, 2), x)


def test_jacobian_singular_values_known_linear_map():
    # W = U diag(s) V^T with chosen s: the Jacobian of x -> W x is W, its singular values s.
    g = torch.Generator().manual_seed(1)
    u, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    s = torch.tensor([5.0, 2.0, 0.5, 1e-3], dtype=torch.float64)
    w = u[:, :4] @ torch.diag(s) @ v.T
    got = jacobian_singular_values(lambda x: w @ x, torch.randn(4, dtype=torch.float64))
    torch.testing.assert_close(got, s)


def test_jacobian_singular_values_vs_autograd_and_numpy():
    model = mlp(5, 3, depth=3, width=10, activation="tanh", init="xavier").double()
    x = torch.randn(5, dtype=torch.float64)
    got = jacobian_singular_values(model, x)
    jac = torch.autograd.functional.jacobian(model, x).numpy()
    expected = np.linalg.svd(jac, compute_uv=False)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert torch.all(got[:-1] >= got[1:])  # descending


def test_jacobian_singular_values_errors():
    with pytest.raises(TypeError, match="fn"):
        jacobian_singular_values(3, torch.zeros(2))
    with pytest.raises(TypeError, match="x"):
        jacobian_singular_values(torch.sin, [1.0])
    with pytest.raises(TypeError, match="floating"):
        jacobian_singular_values(torch.sin, torch.zeros(2, dtype=torch.long))


def test_activation_grad_norms_vs_autograd_grad():
    from companion.diagnostics import activation_grad_norms

    model = mlp(3, 4, depth=4, width=8, activation="tanh", init="xavier", residual=True)
    x, y = torch.randn(16, 3), torch.randint(0, 4, (16,))
    got = activation_grad_norms(model, x, y)
    # Oracle: recompute h_1..h_L by hand and differentiate the loss w.r.t. them with autograd.
    hs, h = [], x
    for l in range(4):
        f = torch.tanh(model.linears[l](h))
        h = h + f if l > 0 else f
        hs.append(h)
    loss = nn.functional.cross_entropy(model.linears[-1](h), y)
    grads = torch.autograd.grad(loss, hs, retain_graph=True)
    torch.testing.assert_close(got, torch.stack([g.norm() for g in grads]), **TOL)
    # ... and the parameters now hold this batch's gradient
    expected_w = torch.autograd.grad(loss, [l.weight for l in model.linears])
    torch.testing.assert_close(weight_grad_norms(model), torch.stack([g.norm() for g in expected_w]), **TOL)
    assert not any(t._forward_hooks for t in model.taps)  # hooks removed


def test_activation_grad_norms_custom_loss_and_errors():
    from companion.diagnostics import activation_grad_norms

    model = mlp(3, 1, depth=2, width=8)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    assert activation_grad_norms(model, x, y, loss_fn=nn.functional.mse_loss).shape == (2,)
    with pytest.raises(ValueError, match="scalar"):
        activation_grad_norms(model, x, y, loss_fn=lambda out, t: out - t)
    with pytest.raises(TypeError, match="loss_fn"):
        activation_grad_norms(model, x, y, loss_fn=3)


@pytest.mark.filterwarnings(r"ignore:Using backward\(\) with create_graph=True")
def test_monitor_with_create_graph_gradients():
    model = mlp(3, 2, depth=2, width=8, activation="tanh", init="xavier")
    loss = model(torch.randn(5, 3)).pow(2).mean()
    loss.backward(create_graph=True)  # .grad tensors now require grad themselves
    monitor = GradientMonitor(model)
    monitor.record(0)
    expected = torch.stack([l.weight.grad.detach().norm() for l in model.linears])
    torch.testing.assert_close(monitor.norms()[0], expected, **TOL)
    model.zero_grad(set_to_none=True)
