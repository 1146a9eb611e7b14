"""Tests for companion.initialization against closed forms, torch's initializers and
large-sample variances. Seeded; tolerances stated per test."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from companion import initialization as ini
from companion import models


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- fan-in / fan-out ------------------------------------------------------------------


def test_fan_in_fan_out_matches_torch():
    for shape in [(7, 3), (5, 4, 3), (6, 2, 3, 3)]:
        w = torch.empty(shape)
        assert ini.fan_in_fan_out(w) == nn.init._calculate_fan_in_and_fan_out(w)


def test_fan_in_fan_out_errors():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        ini.fan_in_fan_out(torch.zeros(3))
    with pytest.raises(TypeError, match="weight must be a tensor"):
        ini.fan_in_fan_out([[1.0]])


# --- standard deviations vs torch's initializers on large samples -----------------------


def test_xavier_std_closed_form_and_torch():
    assert ini.xavier_std(100, 300) == pytest.approx(math.sqrt(2 / 400))
    assert ini.xavier_std(100, 300, gain=2.0) == pytest.approx(2 * math.sqrt(2 / 400))
    w = torch.empty(600, 400)  # fan_in 400, fan_out 600; 240k samples: std within 1 %
    nn.init.xavier_normal_(w)
    assert w.std().item() == pytest.approx(ini.xavier_std(400, 600), rel=0.01)


def test_he_std_closed_form_and_torch():
    assert ini.he_std(50) == pytest.approx(math.sqrt(2 / 50))
    assert ini.he_std(50, gain=1.0) == pytest.approx(math.sqrt(1 / 50))
    w = torch.empty(600, 400)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert w.std().item() == pytest.approx(ini.he_std(400), rel=0.01)


def test_uniform_bound_gives_the_std():
    # torch's default Linear init is U[-1/sqrt(n), 1/sqrt(n)]: variance 1/(3n) (Glorot's "standard")
    layer = nn.Linear(300, 500)
    n = 300
    assert layer.weight.abs().max().item() <= 1 / math.sqrt(n)
    assert layer.weight.var().item() == pytest.approx(1 / (3 * n), rel=0.02)
    assert ini.uniform_bound(1 / math.sqrt(3 * n)) == pytest.approx(1 / math.sqrt(n))
    assert ini.uniform_bound(0.0) == 0.0


def test_std_errors():
    with pytest.raises(ValueError, match="fan_in must be >= 1"):
        ini.xavier_std(0, 3)
    with pytest.raises(TypeError, match="fan_out must be an int"):
        ini.xavier_std(3, 2.5)
    with pytest.raises(ValueError, match="gain must be > 0"):
        ini.he_std(3, gain=0.0)
    with pytest.raises(ValueError, match="std must be >= 0"):
        ini.uniform_bound(-1.0)


# --- Gaussian moments ------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.3, 1.0, 4.0])
def test_gaussian_moments_closed_forms(q):
    assert ini.gaussian_moments("identity", q) == pytest.approx((q, 1.0), rel=1e-10)
    assert ini.gaussian_moments("relu", q) == pytest.approx((q / 2, 0.5), rel=1e-10)
    slope = 0.01
    m, d = ini.gaussian_moments("leaky_relu", q)
    assert m == pytest.approx(q * (1 + slope**2) / 2, rel=1e-10)
    assert d == pytest.approx((1 + slope**2) / 2, rel=1e-10)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "gelu", "selu"])
def test_gaussian_moments_vs_monte_carlo(activation):
    # 1e6 samples: Monte Carlo relative error about 0.2 %, tolerance 1 %
    q = 1.7
    z = (torch.randn(1_000_000, dtype=torch.float64) * math.sqrt(q)).requires_grad_()
    phi = models.activation_function(activation)(z)
    (dphi,) = torch.autograd.grad(phi.sum(), z)
    m, d = ini.gaussian_moments(activation, q)
    assert m == pytest.approx((phi.detach() ** 2).mean().item(), rel=0.01)
    assert d == pytest.approx((dphi**2).mean().item(), rel=0.01)


def test_gaussian_moments_small_variance_tanh_is_linear():
    m, d = ini.gaussian_moments("tanh", 1e-6)
    assert m == pytest.approx(1e-6, rel=1e-4)
    assert d == pytest.approx(1.0, rel=1e-4)


def test_sigmoid_derivative_moment_below_one_sixteenth():
    # sigma' <= 1/4 everywhere, so E[sigma'(z)^2] <= 1/16 for every q
    for q in [1e-3, 1.0, 10.0]:
        assert ini.gaussian_moments("sigmoid", q)[1] <= 1 / 16 + 1e-12


def test_gaussian_moments_errors():
    with pytest.raises(ValueError, match="activation must be one of"):
        ini.gaussian_moments("swish", 1.0)
    with pytest.raises(ValueError, match="variance must be > 0"):
        ini.gaussian_moments("relu", 0.0)
    with pytest.raises(ValueError, match="points must be even"):
        ini.gaussian_moments("relu", 1.0, points=51)


# --- variance profile ------------------------------------------------------------------


def test_variance_profile_deep_linear_network_closed_form():
    # identity activation, N(0, c^2/n) weights: Var[s_l] = c^(2l) Var[x] forward and the
    # backward variance is multiplied by c^2 per layer. Width 512, batch 512: within 25 %.
    n, depth, c = 256, 6, 1.2
    model = models.mlp(n, n, depth=depth, width=n, activation="identity", init="normal", std=c / math.sqrt(n))
    x = torch.randn(512, n)
    prof = ini.variance_profile(model, x)
    f, b = prof["forward"], prof["backward"]
    assert f.shape == (depth + 1,) and b.shape == (depth + 1,)
    for l in range(depth + 1):
        assert f[l].item() == pytest.approx(c ** (2 * (l + 1)), rel=0.25)
        assert b[l].item() == pytest.approx(c ** (2 * (depth - l)), rel=0.25)


def test_variance_profile_matches_manual_autograd():
    model = models.mlp(5, 3, depth=2, width=8, activation="tanh", init="xavier")
    x = torch.randn(16, 5)
    r = torch.randn(16, 3)
    prof = ini.variance_profile(model, x, grad_output=r)
    a1 = model.linears[0](x)
    a1.retain_grad()
    h1 = torch.tanh(a1)
    a2 = model.linears[1](h1)
    a2.retain_grad()
    out = model.linears[2](torch.tanh(a2))
    out.backward(r)
    assert prof["forward"][0].item() == pytest.approx(a1.var(unbiased=False).item(), rel=1e-6)
    assert prof["backward"][0].item() == pytest.approx(a1.grad.var(unbiased=False).item(), rel=1e-6)
    assert prof["backward"][1].item() == pytest.approx(a2.grad.var(unbiased=False).item(), rel=1e-6)
    assert prof["backward"][2].item() == pytest.approx(r.var(unbiased=False).item(), rel=1e-6)


def test_variance_profile_leaves_no_hooks_or_grads():
    model = models.mlp(4, 2, depth=2, width=6)
    ini.variance_profile(model, torch.randn(8, 4))
    assert all(p.grad is None for p in model.parameters())
    assert all(not layer._forward_hooks for layer in model.linears)


def test_variance_profile_works_on_plain_sequential_and_errors():
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    prof = ini.variance_profile(seq, torch.randn(10, 3), seed=1)
    assert prof["forward"].shape == (2,)
    with pytest.raises(ValueError, match="at least one nn.Linear"):
        ini.variance_profile(nn.Sequential(nn.ReLU()), torch.randn(2, 3))
    with pytest.raises(ValueError, match="grad_output must have"):
        ini.variance_profile(seq, torch.randn(10, 3), grad_output=torch.randn(10, 3))
    with pytest.raises(TypeError, match="x must be a tensor"):
        ini.variance_profile(seq, [[1.0, 2.0, 3.0]])


# --- dead units ------------------------------------------------------------------------


def test_dead_unit_fraction_counts_all_zero_columns():
    model = models.mlp(3, 1, depth=2, width=10, activation="relu")
    with torch.no_grad():
        model.linears[0].weight[:4] = 0.0
        model.linears[0].bias[:4] = -1.0  # 4 of 10 units of layer 1 are dead for every input
        model.linears[1].bias[:] = 100.0  # none of layer 2 is dead
    x = torch.randn(50, 3)
    assert ini.dead_unit_fraction(model, x) == pytest.approx(4 / 20)
    with pytest.raises(ValueError, match="no ReLU modules"):
        ini.dead_unit_fraction(nn.Sequential(nn.Linear(3, 2)), x)


def test_dead_unit_fraction_fresh_he_net_is_about_zero():
    model = models.mlp(8, 2, depth=3, width=64)
    assert ini.dead_unit_fraction(model, torch.randn(256, 8)) < 0.02


# --- gradient ratios at initialization -------------------------------------------------


def test_init_grad_norms_match_autograd_definition():
    norms = ini.init_grad_norms(activation="tanh", init="xavier", depth=3, width=16, seed=3)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(128, 16, generator=gen)
    y = torch.randint(0, 10, (128,), generator=gen)
    torch.manual_seed(3)
    model = models.mlp(16, 10, depth=3, width=16, activation="tanh", init="xavier")
    nn.functional.cross_entropy(model(x), y).backward()
    expected = torch.stack([layer.weight.grad.norm() for layer in model.linears])
    torch.testing.assert_close(norms, expected)


def test_init_grad_ratio_is_deterministic_and_shows_known_regimes():
    a = ini.init_grad_ratio(activation="sigmoid", init="xavier", gain=1.0, depth=20)
    assert a == ini.init_grad_ratio(activation="sigmoid", init="xavier", gain=1.0, depth=20)
    # sigmoid: E[sigma'^2] < 1/16, so 20 layers shrink the gradient by orders of magnitude
    assert a < 1e-6
    # BatchNorm without skips explodes at init (Yang et al. 2019); He-init ReLU does not
    assert ini.init_grad_ratio(norm="batch", depth=30) > 20
    assert 0.02 < ini.init_grad_ratio(depth=30) < 5


def test_init_grad_ratio_gain_override_changes_init():
    base = ini.init_grad_norms(activation="relu", init="xavier", depth=10, width=32)
    gain1 = ini.init_grad_norms(activation="relu", init="xavier", gain=1.0, depth=10, width=32)
    # with gain 1 the ReLU signal halves in second moment per layer: the last layer's
    # gradient (proportional to |h_L|) is far smaller
    assert gain1[-1] < 0.2 * base[-1]
    with pytest.raises(ValueError, match="gain must be > 0"):
        ini.init_grad_norms(gain=-1.0)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        ini.init_grad_ratio(depth=0)


# --- residual MLP and followed modules ------------------------------------------------


def test_variance_profile_on_taps_follows_hidden_states():
    model = models.mlp(6, 2, depth=3, width=16, activation="tanh", init="xavier")
    x = torch.randn(32, 6)
    prof = ini.variance_profile(model, x, modules=model.taps)
    h = x
    for l in range(3):
        h = torch.tanh(model.linears[l](h))
        assert prof["forward"][l].item() == pytest.approx(h.var(unbiased=False).item(), rel=1e-6)
    with pytest.raises(ValueError, match="non-empty sequence"):
        ini.variance_profile(model, x, modules=[])
