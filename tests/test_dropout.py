"""Tests for companion.dropout against closed forms and torch.nn.Dropout (the oracle)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.dropout import (
    InvertedDropout,
    KeepRateScaledDropout,
    bernoulli_keep_mask,
    inverted_dropout,
    keep_rate_scaled_dropout,
    replace_dropout,
)

N = 400_000  # large sample: standard errors below are computed from it


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_expectation_equals_input(p):
    # Constant input 1.5: output is 1.5/(1-p) w.p. 1-p, else 0. Mean 1.5, sd 1.5*sqrt(p/(1-p)).
    g = torch.Generator().manual_seed(0)
    x = torch.full((N,), 1.5, dtype=torch.float64)
    y = inverted_dropout(x, p, generator=g)
    se = 1.5 * math.sqrt(p / (1 - p)) / math.sqrt(N)
    assert abs(y.mean().item() - 1.5) < 5 * se


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_variance_closed_form(p):
    g = torch.Generator().manual_seed(1)
    x = torch.full((N,), 2.0, dtype=torch.float64)
    y = inverted_dropout(x, p, generator=g)
    expected = p / (1 - p) * 4.0
    # relative tolerance 3%: far above the sampling error of a variance at N = 4e5
    assert y.var().item() == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.7])
def test_fraction_of_zeros_is_p(p):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(N, dtype=torch.float64) + 0.5  # strictly positive: zeros come from the mask only
    y = inverted_dropout(x, p, generator=g)
    frac = (y == 0).double().mean().item()
    se = math.sqrt(p * (1 - p) / N)
    assert abs(frac - p) < 5 * se


def test_survivors_scaled_by_inverse_keep_rate():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1000, dtype=torch.float64) + 0.5
    y = inverted_dropout(x, 0.25, generator=g)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)


def test_bitwise_equal_to_torch_dropout_with_same_seed():
    # On the CPU torch draws the mask as empty_like(x).bernoulli_(1-p): same RNG stream.
    x = torch.randn(257, 33)
    for p in (0.1, 0.5, 0.9):
        torch.manual_seed(7)
        expected = F.dropout(x, p, training=True)
        torch.manual_seed(7)
        got = inverted_dropout(x, p)
        assert torch.equal(got, expected)
        torch.manual_seed(7)
        module_out = InvertedDropout(p)(x)
        torch.manual_seed(7)
        assert torch.equal(module_out, nn.Dropout(p)(x))


def test_same_distribution_as_torch_dropout_statistically():
    # Independent seeds: compare mean and variance with torch's nn.Dropout.
    p = 0.4
    x = torch.full((N,), 3.0, dtype=torch.float64)
    torch.manual_seed(11)
    ref = nn.Dropout(p)(x)
    g = torch.Generator().manual_seed(12)
    ours = inverted_dropout(x, p, generator=g)
    sd = 3.0 * math.sqrt(p / (1 - p))
    assert abs(ours.mean().item() - ref.mean().item()) < 5 * sd * math.sqrt(2 / N)
    assert ours.var().item() == pytest.approx(ref.var().item(), rel=0.03)


def test_gradient_matches_torch_dropout():
    x = torch.randn(64, 16, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(5)
    inverted_dropout(x, 0.3).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    torch.manual_seed(5)
    F.dropout(x, 0.3, training=True).sum().backward()
    torch.testing.assert_close(ours, x.grad)


def test_eval_mode_is_identity():
    x = torch.randn(10, 5)
    assert inverted_dropout(x, 0.5, training=False) is x
    layer = InvertedDropout(0.5)
    layer.eval()
    assert torch.equal(layer(x), x)
    layer.train()
    torch.manual_seed(0)
    assert not torch.equal(layer(x), x)


def test_p_zero_is_identity():
    x = torch.randn(10, 5)
    assert torch.equal(inverted_dropout(x, 0.0), x)


def test_module_in_sequential_follows_train_eval():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), InvertedDropout(0.5), nn.Linear(8, 2))
    x = torch.randn(3, 4)
    model.eval()
    a, b = model(x), model(x)
    assert torch.equal(a, b)  # deterministic at evaluation
    assert "p=0.5" in repr(model)


def test_generator_makes_masks_reproducible():
    x = torch.ones(1000)
    a = inverted_dropout(x, 0.5, generator=torch.Generator().manual_seed(9))
    b = inverted_dropout(x, 0.5, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)


def test_keep_rate_scaled_variant_has_wrong_expectation():
    p = 0.5
    x = torch.full((N,), 1.0, dtype=torch.float64)
    y = keep_rate_scaled_dropout(x, p, generator=torch.Generator().manual_seed(4))
    # E = (1-p)^2 = 0.25, sd = (1-p)*sqrt(p(1-p)) = 0.25
    assert abs(y.mean().item() - (1 - p) ** 2) < 5 * 0.25 / math.sqrt(N)
    assert keep_rate_scaled_dropout(x, p, training=False) is x


def test_mask_values_and_shape():
    x = torch.randn(3, 4, 5)
    m = bernoulli_keep_mask(x, 0.3, generator=torch.Generator().manual_seed(0))
    assert m.shape == x.shape and m.dtype == x.dtype
    assert set(m.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_p_out_of_range_names_p_and_range(bad):
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got"):
        inverted_dropout(torch.ones(3), bad)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        InvertedDropout(bad)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        keep_rate_scaled_dropout(torch.ones(3), bad)


def test_p_wrong_type_and_integer_input():
    with pytest.raises(TypeError, match="p must be a real number"):
        inverted_dropout(torch.ones(3), "0.5")
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        inverted_dropout(torch.ones(3, dtype=torch.int64), 0.5)


def test_keep_rate_scaled_module_follows_mode():
    layer = KeepRateScaledDropout(0.5, generator=torch.Generator().manual_seed(0))
    x = torch.ones(100_000)
    assert abs(layer(x).mean().item() - 0.25) < 5 * 0.25 / math.sqrt(len(x))
    layer.eval()
    assert torch.equal(layer(x), x)
    assert "p=0.5" in repr(layer)


def test_replace_dropout_swaps_every_dropout_and_keeps_training_bitwise():
    def build():
        torch.manual_seed(0)
        shared = nn.Dropout(0.3)
        return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), shared, nn.Sequential(nn.Linear(8, 8), shared),
                             nn.Dropout(0.1), nn.Linear(8, 2))

    ref, ours = build(), build()
    assert replace_dropout(ours, InvertedDropout) == 2
    assert not any(isinstance(m, nn.Dropout) for m in ours.modules())
    assert ours[2] is ours[3][1] and ours[2].p == 0.3 and ours[4].p == 0.1
    x, y = torch.randn(32, 6), torch.randint(0, 2, (32,))
    for model in (ref, ours):
        torch.manual_seed(1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(5):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for a, b in zip(ref.parameters(), ours.parameters()):
        assert torch.equal(a, b)


def test_replace_dropout_keeps_eval_mode_and_validates():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).eval()
    replace_dropout(model, InvertedDropout)
    assert not model[1].training
    with pytest.raises(TypeError, match="make must return an nn.Module"):
        replace_dropout(nn.Sequential(nn.Dropout(0.5)), lambda p: p)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        replace_dropout("model", InvertedDropout)
