"""Tests for companion.models: shapes, structure, initialization variances, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from companion.initialization import variance_profile
from companion.models import ACTIVATIONS, MLP, ResidualMLP, activation_gain, init_linear_, mlp


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_output_shape_and_layer_count(activation):
    model = mlp(5, 3, depth=4, width=16, activation=activation)
    assert isinstance(model, MLP)
    assert len(model.linears) == 5 and model.depth == 4 and model.width == 16
    assert [tuple(l.weight.shape) for l in model.linears] == [(16, 5)] + [(16, 16)] * 3 + [(3, 16)]
    assert model(torch.randn(7, 5)).shape == (7, 3)


def test_forward_matches_manual_composition():
    model = mlp(3, 2, depth=2, width=4, activation="tanh", init="xavier")
    x = torch.randn(6, 3)
    l1, l2, l3 = model.linears
    expected = l3(torch.tanh(l2(torch.tanh(l1(x)))))
    torch.testing.assert_close(model(x), expected)


def test_residual_forward_matches_manual_composition():
    model = mlp(3, 2, depth=3, width=4, activation="relu", residual=True)
    x = torch.randn(6, 3)
    h1 = torch.relu(model.linears[0](x))  # first layer changes the width: no skip
    h2 = h1 + torch.relu(model.linears[1](h1))
    h3 = h2 + torch.relu(model.linears[2](h2))
    torch.testing.assert_close(model(x), model.linears[3](h3))


@pytest.mark.parametrize("norm, cls", [("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm)])
def test_norm_variants(norm, cls):
    model = mlp(3, 2, depth=3, width=8, norm=norm)
    assert len(model.norms) == 3 and all(isinstance(m, cls) for m in model.norms)
    x = torch.randn(10, 3)
    # The normalization sits between Linear and activation: its output has zero mean per feature
    # (batch) or per example (layer) before ReLU.
    a = model.norms[0](model.linears[0](x))
    dim = 0 if norm == "batch" else 1
    torch.testing.assert_close(a.mean(dim), torch.zeros(a.shape[1 - dim]), atol=1e-5, rtol=0)
    assert model(x).shape == (10, 2)


def test_dropout_layer_and_eval_determinism():
    model = mlp(3, 2, depth=2, width=8, dropout=0.5)
    assert isinstance(model.drop, nn.Dropout) and model.drop.p == 0.5
    model.eval()
    x = torch.randn(4, 3)
    torch.testing.assert_close(model(x), model(x))
    assert isinstance(mlp(3, 2, depth=2, width=8).drop, nn.Identity)


def test_taps_see_hidden_activations():
    model = mlp(3, 2, depth=3, width=8, activation="relu")
    seen = []
    handles = [t.register_forward_hook(lambda m, i, o: seen.append(o)) for t in model.taps]
    x = torch.randn(5, 3)
    model(x)
    for h in handles:
        h.remove()
    assert len(seen) == 3
    torch.testing.assert_close(seen[0], torch.relu(model.linears[0](x)))


def test_no_bias_option():
    model = mlp(3, 2, depth=2, width=4, bias=False)
    assert all(l.bias is None for l in model.linears)


# Variance formulas on a large layer: 1024 x 1024 = 1M samples, so the relative standard
# error of the sample variance is about sqrt(2/1e6) = 0.14 %; we allow 3 %.
N = 1024
REL = 0.03


def _weight(init, activation="relu", std=None, shape=(N, N)):
    model = mlp(shape[1], shape[0], depth=1, width=N, activation=activation, init=init, std=std)
    return model.linears[0].weight.detach(), model.linears[0].bias.detach()


@pytest.mark.parametrize(
    "init, activation, expected_var",
    [
        ("kaiming", "relu", 2.0 / N),
        ("kaiming", "tanh", (5 / 3) ** 2 / N),
        ("kaiming", "identity", 1.0 / N),
        ("kaiming", "selu", 1.0 / N),
        ("kaiming", "gelu", 2.0 / N),
        ("kaiming", "leaky_relu", 2.0 / (1 + 0.01**2) / N),
        ("kaiming_uniform", "relu", 2.0 / N),
        ("xavier", "tanh", (5 / 3) ** 2 * 2.0 / (N + N)),
        ("xavier", "sigmoid", 2.0 / (N + N)),
        ("xavier_uniform", "relu", 2.0 * 2.0 / (N + N)),
        ("orthogonal", "relu", 2.0 / N),
    ],
)
def test_init_variance_matches_formula(init, activation, expected_var):
    w, b = _weight(init, activation)
    assert abs(w.mean().item()) < 5 * math.sqrt(expected_var / w.numel())
    assert w.var().item() == pytest.approx(expected_var, rel=REL)
    assert torch.count_nonzero(b) == 0


def test_xavier_uses_fan_in_plus_fan_out():
    # A rectangular layer separates Glorot (2/(in+out)) from He (1/in).
    model = mlp(256, 4, depth=1, width=2048, activation="identity", init="xavier")
    w = model.linears[0].weight.detach()  # shape (2048, 256)
    assert w.var().item() == pytest.approx(2.0 / (256 + 2048), rel=REL)


def test_uniform_inits_have_the_right_support():
    w, _ = _weight("kaiming_uniform", "relu")
    bound = math.sqrt(2.0) * math.sqrt(3.0 / N)
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.99 * bound


def test_orthogonal_is_scaled_orthogonal():
    model = mlp(64, 2, depth=1, width=64, activation="tanh", init="orthogonal")
    w = model.linears[0].weight.detach().double()
    # float32 weights: agreement to float32 precision.
    torch.testing.assert_close(w @ w.T, (5 / 3) ** 2 * torch.eye(64, dtype=torch.float64), atol=1e-5, rtol=0)


def test_normal_and_constant_use_std():
    w, _ = _weight("normal", std=0.05)
    assert w.std().item() == pytest.approx(0.05, rel=REL)
    model = mlp(3, 2, depth=2, width=4, init="constant", std=0.1)
    for layer in model.linears:
        assert torch.all(layer.weight == 0.1) and torch.all(layer.bias == 0)


def test_default_init_is_torchs():
    torch.manual_seed(1)
    model = mlp(N, 2, depth=1, width=N, init="default")
    w = model.linears[1].weight  # hidden->output, fan_in N: U(-1/sqrt(N), 1/sqrt(N))
    assert w.abs().max().item() <= 1 / math.sqrt(N)
    assert model.linears[0].weight.var().item() == pytest.approx(1 / (3 * N), rel=REL)
    assert torch.count_nonzero(model.linears[0].bias) > 0  # torch's biases are kept


def test_activation_gain_values():
    assert activation_gain("relu") == pytest.approx(math.sqrt(2))
    assert activation_gain("tanh") == pytest.approx(5 / 3)
    assert activation_gain("sigmoid") == 1.0
    assert activation_gain("selu") == 1.0


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"activation": "softmax"}, ValueError, ["activation", "relu", "softmax"]),
        ({"init": "lecun"}, ValueError, ["init", "kaiming", "he", "lecun"]),
        ({"norm": "group"}, ValueError, ["norm", "batch", "group"]),
        ({"depth": 0}, ValueError, ["depth", ">= 1", "0"]),
        ({"width": 0}, ValueError, ["width", ">= 1"]),
        ({"depth": 2.0}, TypeError, ["depth", "int"]),
        ({"init": "normal"}, ValueError, ["std", "normal"]),
        ({"init": "constant"}, ValueError, ["std", "constant"]),
        ({"init": "normal", "std": -1.0}, ValueError, ["std", ">= 0"]),
        ({"dropout": 1.0}, ValueError, ["dropout", "[0, 1)"]),
        ({"dropout": -0.1}, ValueError, ["dropout", "[0, 1)"]),
        ({"activation": 3}, TypeError, ["activation"]),
        ({"residual": "yes"}, TypeError, ["residual"]),
    ],
)
def test_bad_inputs_name_the_argument(kwargs, exc, words):
    args = {"depth": 2, "width": 4, **kwargs}
    with pytest.raises(exc) as info:
        mlp(3, 2, **args)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_init_linear_rejects_unknown_name():
    with pytest.raises(ValueError, match="init"):
        init_linear_(nn.Linear(2, 2), "zeros")


# ----------------------------------------------------------------- ResidualMLP


def test_residual_mlp_forward_matches_formula():
    model = ResidualMLP(5, 3, depth=2, width=8, activation="tanh", norm="layer", branch_scale=0.5)
    x = torch.randn(4, 5)
    h = model.input_layer(x)
    for l in range(2):
        h = h + 0.5 * model.branch_out[l](torch.tanh(model.branch_in[l](model.norms[l](h))))
    torch.testing.assert_close(model(x), model.output_layer(h))
    assert len(model.linears) == 2 + 2 * 2
    assert all(layer.bias.abs().max() == 0 for layer in model.linears)


def test_residual_mlp_stream_growth_closed_forms():
    # second moment of the stream: (1 + a^2)^L without norm, 1 + a^2 L * E[relu-branch^2] with
    # pre-LayerNorm. Width 256, batch 512, depth 8: within 30 %.
    n, L, a = 256, 8, 1.0
    x = torch.randn(512, n)
    plain = ResidualMLP(n, n, depth=L, width=n, branch_scale=a)
    f = variance_profile(plain, x, modules=plain.taps)["forward"]
    assert (f[L] / f[0]).item() == pytest.approx((1 + a**2) ** L, rel=0.3)
    normed = ResidualMLP(n, n, depth=L, width=n, norm="layer", branch_scale=a)
    f = variance_profile(normed, x, modules=normed.taps)["forward"]
    # each branch: W2 relu(W1 LN(h)), E[branch^2] = n * (1/n) * E[relu(N(0, 2))^2] = 1
    assert (f[L] - f[0]).item() == pytest.approx(L * a**2, rel=0.3)


def test_residual_mlp_errors():
    with pytest.raises(ValueError, match="branch_scale must be >= 0"):
        ResidualMLP(2, 2, depth=2, width=4, branch_scale=-1.0)
    with pytest.raises(ValueError, match="norm must be one of"):
        ResidualMLP(2, 2, depth=2, width=4, norm="group")


def test_residual_mlp_is_numbered_like_mlp():
    from companion import diagnostics, initialization

    model = ResidualMLP(5, 3, depth=3, width=8)
    assert isinstance(model.linears, nn.ModuleList)
    assert list(model.linears) == [model.input_layer, *[m for p in zip(model.branch_in, model.branch_out) for m in p], model.output_layer]
    assert len(model.taps) == 4  # h_1 (after the input layer) .. h_4 (after block 3), as MLP starts at h_1
    assert list(diagnostics.activation_stats(model, torch.randn(6, 5))) == ["h1", "h2", "h3", "h4"]
    assert not hasattr(initialization, "ResidualMLP")  # one home: companion.models
    assert model.in_features == 5 and model.out_features == 3


def test_residual_mlp_weights_follow_the_documented_variances():
    n = 512
    model = ResidualMLP(n, n, depth=2, width=n, activation="tanh")
    for layer in [model.input_layer, *model.branch_out, model.output_layer]:
        assert layer.weight.std().item() == pytest.approx(1 / math.sqrt(n), rel=0.02)
    for layer in model.branch_in:
        assert layer.weight.std().item() == pytest.approx(nn.init.calculate_gain("tanh") / math.sqrt(n), rel=0.02)


# ----------------------------------------------------------------- names and errors


@pytest.mark.parametrize("alias, name", [("he", "kaiming"), ("He", "kaiming"), ("glorot", "xavier"),
                                         ("he_uniform", "kaiming_uniform"), ("glorot_uniform", "xavier_uniform")])
def test_he_and_glorot_are_the_kaiming_and_xavier_schemes(alias, name):
    torch.manual_seed(1)
    a = mlp(6, 2, depth=2, width=8, activation="tanh", init=alias)
    torch.manual_seed(1)
    b = mlp(6, 2, depth=2, width=8, activation="tanh", init=name)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    layer = nn.Linear(4, 4)
    init_linear_(layer, alias, gain=2.0)


def test_activation_table_agrees_with_torch():
    from companion.models import ACTIVATION_TABLE, activation_function

    z = torch.linspace(-3, 3, 61)
    for name, row in ACTIVATION_TABLE.items():
        torch.testing.assert_close(row.module()(z), activation_function(name)(z), rtol=0, atol=0)
        assert row.gain == activation_gain(name)
    assert activation_gain("leaky_relu") == nn.init.calculate_gain("leaky_relu", 0.01)


def test_mlp_input_errors_say_what_was_expected_and_what_came():
    model = mlp(4, 2, depth=2, width=8)
    assert model(torch.randn(4)).shape == (2,)  # one example without a batch axis, as nn.Linear allows
    with pytest.raises(ValueError, match=r"x must have shape \[batch, 4\], got shape \(12,\): each example needs 4 features"):
        model(torch.randn(12))
    column = mlp(1, 1, depth=1, width=4)
    with pytest.raises(ValueError, match=r"got shape \(30,\): x.reshape\(-1, 1\) makes a column of 30"):
        column(torch.randn(30))
    with pytest.raises(ValueError, match=r"got shape \(4,\): x.reshape\(1, 4\) makes one example"):
        mlp(4, 2, depth=2, width=8, norm="batch")(torch.randn(4))
    with pytest.raises(ValueError, match=r"x must have shape \[batch, 4\] \(in_features=4\), got shape \(10, 3\)"):
        model(torch.randn(10, 3))
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but the model's weights are torch.float32: use x.to\(torch.float32\)"):
        model(torch.randn(10, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="in_features=5"):
        ResidualMLP(5, 2, depth=1, width=4)(torch.randn(3, 4))
