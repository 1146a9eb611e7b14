"""Tests for companion.scratch: hand-written backprop against autograd and finite differences."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from companion import scratch

ATOL = 1e-10  # float64: manual and autograd gradients agree to rounding


def _problem(loss: str, activation: str, *, n: int = 17, d: int = 5, m: int = 7, k: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    k = 1 if loss == "binary_cross_entropy" else k
    params = scratch.init_params(d, m, k, activation=activation, dtype=torch.float64, generator=g)
    # non-zero biases so that their gradients are exercised at a generic point
    params["b1"] = 0.1 * torch.randn(m, generator=g, dtype=torch.float64)
    params["b2"] = 0.1 * torch.randn(k, generator=g, dtype=torch.float64)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    if loss == "cross_entropy":
        y = torch.randint(0, k, (n,), generator=g)
    else:
        y = torch.randint(0, 2, (n,), generator=g).to(torch.float64)
    return params, x, y


def _autograd_reference(params, x, y, activation, loss):
    """Independent oracle: torch's own layers and losses, differentiated by autograd."""
    leaves = {name: t.detach().clone().requires_grad_(True) for name, t in params.items()}
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    h = act(F.linear(x, leaves["W1"].T, leaves["b1"]))
    logits = F.linear(h, leaves["W2"].T, leaves["b2"])
    if loss == "cross_entropy":
        value = F.cross_entropy(logits, y)
    else:
        value = F.binary_cross_entropy_with_logits(logits[:, 0], y)
    value.backward()
    return value.detach(), {name: t.grad for name, t in leaves.items()}


@pytest.mark.parametrize("activation", scratch.ACTIVATIONS)
@pytest.mark.parametrize("loss", scratch.LOSSES)
def test_manual_gradients_match_autograd(activation, loss):
    params, x, y = _problem(loss, activation)
    value, grads = scratch.loss_and_grads(params, x, y, activation=activation, loss=loss)
    ref_value, ref_grads = _autograd_reference(params, x, y, activation, loss)
    torch.testing.assert_close(value, ref_value, rtol=0, atol=ATOL)
    for name in params:
        assert grads[name].shape == params[name].shape
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=0, atol=ATOL, msg=name)


@pytest.mark.parametrize("activation", scratch.ACTIVATIONS)
@pytest.mark.parametrize("loss", scratch.LOSSES)
def test_gradcheck_on_manual_backward(activation, loss):
    """gradcheck compares the hand-written backward (inside an autograd.Function) with finite differences."""
    params, x, y = _problem(loss, activation, n=6, d=3, m=4, k=3)
    f = scratch.manual_loss_function(x, y, activation=activation, loss=loss)
    inputs = tuple(params[name].clone().requires_grad_(True) for name in ("W1", "b1", "W2", "b2"))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("activation", scratch.ACTIVATIONS)
@pytest.mark.parametrize("loss", scratch.LOSSES)
def test_manual_forward_under_gradcheck_and_matches(activation, loss):
    """Autograd through the manual forward passes gradcheck, and the manual backward equals it."""
    params, x, y = _problem(loss, activation, n=6, d=3, m=4, k=3, seed=1)
    names = ("W1", "b1", "W2", "b2")

    def f(*tensors):
        logits, _ = scratch.forward(dict(zip(names, tensors)), x, activation=activation)
        value, _ = scratch.loss_and_grad_logits(logits, y, loss=loss)
        return value

    inputs = tuple(params[name].clone().requires_grad_(True) for name in names)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)
    auto = torch.autograd.grad(f(*inputs), inputs)
    _, manual = scratch.loss_and_grads(params, x, y, activation=activation, loss=loss)
    for name, g in zip(names, auto):
        torch.testing.assert_close(manual[name], g, rtol=0, atol=ATOL, msg=name)


def test_binary_loss_is_stable_for_huge_logits():
    logits = torch.tensor([[800.0], [-800.0], [0.0]], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    value, dlogits = scratch.loss_and_grad_logits(logits, y, loss="binary_cross_entropy")
    ref = F.binary_cross_entropy_with_logits(logits[:, 0], y)
    assert torch.isfinite(value) and torch.isfinite(dlogits).all()
    torch.testing.assert_close(value, ref, rtol=1e-12, atol=0)
    expected = torch.tensor([[1.0], [-1.0], [-0.5]], dtype=torch.float64) / 3
    torch.testing.assert_close(dlogits, expected, rtol=0, atol=1e-15)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = torch.tensor([[1000.0, 0.0, -1000.0]], dtype=torch.float64)
    value, dlogits = scratch.loss_and_grad_logits(logits, torch.tensor([2]), loss="cross_entropy")
    assert torch.isfinite(value) and torch.isfinite(dlogits).all()
    torch.testing.assert_close(value, torch.tensor(2000.0, dtype=torch.float64))


def test_binary_labels_accept_column_shape():
    params, x, y = _problem("binary_cross_entropy", "tanh")
    a, ga = scratch.loss_and_grads(params, x, y, loss="binary_cross_entropy")
    b, gb = scratch.loss_and_grads(params, x, y[:, None], loss="binary_cross_entropy")
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ga["W1"], gb["W1"])


def test_sgd_step_moves_against_the_gradient_and_copies():
    params, x, y = _problem("cross_entropy", "tanh")
    before = {k: v.clone() for k, v in params.items()}
    value, grads = scratch.loss_and_grads(params, x, y)
    new = scratch.sgd_step(params, grads, lr=0.5)
    for name in params:
        torch.testing.assert_close(params[name], before[name])  # inputs untouched
        torch.testing.assert_close(new[name], before[name] - 0.5 * grads[name])
    # a small step along -grad lowers the loss; along +grad raises it
    small = scratch.sgd_step(params, grads, lr=1e-3)
    up = {k: params[k] + 1e-3 * grads[k] for k in params}
    assert scratch.loss_and_grads(small, x, y)[0] < value < scratch.loss_and_grads(up, x, y)[0]


@pytest.mark.parametrize("loss", scratch.LOSSES)
def test_training_reduces_loss_and_fits(loss):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    n, d = 200, 2
    x = torch.randn(n, d, generator=g)
    if loss == "cross_entropy":
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()  # 3 classes
        k = 3
    else:
        y = ((x[:, 0] * x[:, 1]) > 0).float()  # XOR-like: needs the hidden layer
        k = 1
    params = scratch.init_params(d, 32, k, activation="tanh", generator=g)
    trained, losses = scratch.train(params, x, y, loss=loss, lr=0.5, epochs=60, batch_size=20)
    assert len(losses) == 60
    assert losses[-1] < 0.5 * losses[0], losses
    acc = scratch.accuracy(trained, x, y)
    assert 0.9 < acc <= 1.0, acc


def test_train_is_deterministic():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    y = torch.randint(0, 2, (40,), generator=g)
    params = scratch.init_params(3, 5, 2, generator=g)
    a = scratch.train(params, x, y, epochs=3, batch_size=8, seed=4)
    b = scratch.train(params, x, y, epochs=3, batch_size=8, seed=4)
    assert a[1] == b[1]


def test_accuracy_is_a_fraction():
    params = {
        "W1": torch.eye(2),
        "b1": torch.zeros(2),
        "W2": torch.tensor([[1.0], [0.0]]),
        "b2": torch.zeros(1),
    }
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0], [-2.0, 0.0]])
    y = torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert scratch.accuracy(params, x, y, activation="relu") == 0.75
    torch.testing.assert_close(scratch.predict(params, x, activation="relu"), torch.tensor([1, 0, 1, 0]))


# ----------------------------------------------------------------------------- bad inputs


def test_unknown_activation_names_the_argument():
    with pytest.raises(ValueError, match="activation must be one of"):
        scratch.init_params(2, 3, 2, activation="swish")
    params, x, y = _problem("cross_entropy", "tanh")
    with pytest.raises(ValueError, match="activation must be one of .*'softplus'"):
        scratch.forward(params, x, activation="softplus")


def test_unknown_loss_names_the_argument():
    params, x, y = _problem("cross_entropy", "tanh")
    with pytest.raises(ValueError, match="loss must be one of"):
        scratch.loss_and_grads(params, x, y, loss="nll")


def test_shape_mismatches_name_the_argument():
    params, x, y = _problem("cross_entropy", "tanh", d=5)
    with pytest.raises(ValueError, match=r"x must have 5 columns"):
        scratch.forward(params, x[:, :4])
    with pytest.raises(ValueError, match=r"x must be 2-D"):
        scratch.forward(params, x[0])
    with pytest.raises(ValueError, match=r"y must have shape \(17,\)"):
        scratch.loss_and_grads(params, x, y[:-1])
    bad = dict(params, W2=params["W2"][:-1])
    with pytest.raises(ValueError, match=r"params\['W2'\] must have 7 rows"):
        scratch.forward(bad, x)
    bad = dict(params, b1=torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"params\['b1'\] must have shape"):
        scratch.forward(bad, x)
    with pytest.raises(KeyError, match="params is missing"):
        scratch.forward({"W1": params["W1"]}, x)
    logits, cache = scratch.forward(params, x)
    with pytest.raises(ValueError, match=r"dlogits must have shape \(17, 4\)"):
        scratch.backward(params, cache, torch.zeros(17, 3, dtype=torch.float64))
    grads = scratch.backward(params, cache, torch.zeros(17, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"grads\['W1'\] must have the shape"):
        scratch.sgd_step(params, dict(grads, W1=grads["W1"].T), lr=0.1)


def test_bad_labels_name_the_argument():
    params, x, y = _problem("cross_entropy", "tanh", k=4)
    with pytest.raises(ValueError, match=r"y must hold class indices in 0..3"):
        scratch.loss_and_grads(params, x, torch.full_like(y, 4))
    with pytest.raises(TypeError, match="y must hold integer class indices"):
        scratch.loss_and_grads(params, x, y.double())
    bparams, bx, by = _problem("binary_cross_entropy", "tanh")
    with pytest.raises(ValueError, match=r"0/1, not -1/\+1"):
        scratch.loss_and_grads(bparams, bx, 2 * by - 1, loss="binary_cross_entropy")
    with pytest.raises(ValueError, match="exactly 1 logit"):
        scratch.loss_and_grads(params, x, y.double(), loss="binary_cross_entropy")


def test_bad_hyperparameters_name_the_argument():
    params, x, y = _problem("cross_entropy", "tanh")
    _, grads = scratch.loss_and_grads(params, x, y)
    with pytest.raises(ValueError, match="lr must be > 0, got -0.1"):
        scratch.sgd_step(params, grads, lr=-0.1)
    with pytest.raises(ValueError, match="width must be >= 1"):
        scratch.init_params(3, 0, 2)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        scratch.train(params, x, y, epochs=0)
    with pytest.raises(TypeError, match="dtype must be a floating-point"):
        scratch.init_params(3, 4, 2, dtype=torch.int64)
