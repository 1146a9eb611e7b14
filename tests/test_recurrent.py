"""Tests for companion.recurrent against torch's own RNN/LSTM, a manual BPTT and gradcheck."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.recurrent import ElmanRNN, OutputOnly, UnrolledLSTM, hidden_grad_norms


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_elman_matches_torch_rnn(nonlinearity):
    model = ElmanRNN(3, 5, 2, nonlinearity=nonlinearity)
    ref = nn.RNN(3, 5, nonlinearity=nonlinearity, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(model.weight_ih)
        ref.weight_hh_l0.copy_(model.weight_hh)
        ref.bias_ih_l0.copy_(model.bias_ih)
        ref.bias_hh_l0.copy_(model.bias_hh)
    x = torch.randn(4, 7, 3)
    y_hat, states = model(x)
    out, h_n = ref(x)
    assert len(states) == 7
    torch.testing.assert_close(torch.stack(states, dim=1), out, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(y_hat, model.readout(h_n[0]), atol=1e-6, rtol=1e-5)


def test_lstm_matches_torch_lstm():
    model = UnrolledLSTM(3, 5, 1, forget_bias=1.0)
    ref = nn.LSTM(3, 5, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(model.cell.weight_ih)
        ref.weight_hh_l0.copy_(model.cell.weight_hh)
        ref.bias_ih_l0.copy_(model.cell.bias_ih)
        ref.bias_hh_l0.copy_(model.cell.bias_hh)
    x = torch.randn(4, 6, 3)
    _, states = model(x)
    out, _ = ref(x)
    torch.testing.assert_close(torch.stack(states, dim=1), out, atol=1e-6, rtol=1e-5)


def test_forget_bias_shifts_forget_gate_only():
    torch.manual_seed(1)
    base = UnrolledLSTM(2, 4, 1)
    torch.manual_seed(1)
    shifted = UnrolledLSTM(2, 4, 1, forget_bias=1.0)
    diff = shifted.cell.bias_ih - base.cell.bias_ih
    torch.testing.assert_close(diff, torch.tensor([0.0] * 4 + [1.0] * 4 + [0.0] * 8))


def test_recurrent_scale_sets_singular_values():
    model = ElmanRNN(2, 16, 1, recurrent_scale=0.7)
    s = torch.linalg.svdvals(model.weight_hh.detach())
    torch.testing.assert_close(s, torch.full((16,), 0.7), atol=1e-5, rtol=0)
    assert torch.all(model.bias_hh == 0) and torch.all(model.bias_ih == 0)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "identity"])
def test_hidden_grad_norms_match_manual_bptt(nonlinearity):
    """dL/dh_{t-1} = W_hh^T (phi'(a_t) * dL/dh_t), started from dL/dh_T = W_out^T dL/dy."""
    model = ElmanRNN(2, 6, 1, nonlinearity=nonlinearity, recurrent_scale=1.3).double()
    x = torch.randn(5, 9, 2, dtype=torch.float64)
    y = torch.randn(5, 1, dtype=torch.float64)
    y_hat, states = model(x)
    loss = ((y_hat - y) ** 2).mean()
    norms = hidden_grad_norms(loss, states)

    with torch.no_grad():  # independent oracle: the recursion written out by hand
        w_hh = model.weight_hh
        delta = (2 * (y_hat - y) / y.numel()) @ model.readout.weight
        manual = [delta.norm()]
        for t in range(len(states) - 1, 0, -1):
            a = x[:, t] @ model.weight_ih.T + model.bias_ih + states[t - 1] @ w_hh.T + model.bias_hh
            if nonlinearity == "tanh":
                d_phi = 1 - torch.tanh(a) ** 2
            elif nonlinearity == "relu":
                d_phi = (a > 0).double()
            else:
                d_phi = torch.ones_like(a)
            delta = (delta * d_phi) @ w_hh
            manual.append(delta.norm())
    torch.testing.assert_close(norms, torch.stack(manual[::-1]), atol=1e-12, rtol=1e-10)


def test_hidden_grad_norms_retain_graph_allows_backward():
    model = UnrolledLSTM(2, 4, 1)
    y_hat, states = model(torch.randn(3, 5, 2))
    loss = y_hat.square().mean()
    norms = hidden_grad_norms(loss, states, retain_graph=True)
    loss.backward()
    assert norms.shape == (5,)
    assert model.cell.weight_hh.grad is not None


def test_gradcheck_elman_and_lstm():
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    for model in (ElmanRNN(2, 3, 1).double(), UnrolledLSTM(2, 3, 1).double()):
        params = tuple(model.parameters())
        inputs = (x, *[q.detach().clone().requires_grad_(True) for q in params])
        # The model as a function of its input and every parameter (torch.func keeps the graph).
        names = [n for n, _ in model.named_parameters()]

        def g(x, *p, model=model, names=names):
            y_hat, states = torch.func.functional_call(model, dict(zip(names, p)), (x,))
            return y_hat, torch.stack(states, 1)

        assert torch.autograd.gradcheck(g, inputs, eps=1e-6, atol=1e-6)


def test_output_only_shares_parameters():
    rnn = ElmanRNN(2, 3, 1)
    wrapped = OutputOnly(rnn)
    x = torch.randn(2, 4, 2)
    torch.testing.assert_close(wrapped(x), rnn(x)[0])
    assert list(wrapped.parameters()) == list(rnn.parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        ElmanRNN(2, 3, 1, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="recurrent_scale must be > 0"):
        ElmanRNN(2, 3, 1, recurrent_scale=0.0)
    with pytest.raises(ValueError, match="hidden_size must be >= 1"):
        UnrolledLSTM(2, 0, 1)
    with pytest.raises(ValueError, match=r"shape \[batch, time, 2\]"):
        ElmanRNN(2, 3, 1)(torch.randn(4, 2))
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        OutputOnly("rnn")
    rnn = ElmanRNN(2, 3, 1)
    y_hat, states = rnn(torch.randn(2, 4, 2))
    with pytest.raises(ValueError, match="scalar"):
        hidden_grad_norms(y_hat, states)
    with pytest.raises(ValueError, match="at least one"):
        hidden_grad_norms(y_hat.sum(), [])
    with pytest.raises(ValueError, match="does not require grad"):
        hidden_grad_norms(torch.tensor(1.0), states)
