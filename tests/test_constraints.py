"""companion.constraints against torch.linalg norms, numpy SVD and the formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from companion.constraints import (
    add_spectral_norm,
    max_norm_,
    power_iteration,
    spectral_norm_,
    spectral_norms,
)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))


def test_max_norm_rows_and_untouched_rows_and_biases():
    torch.manual_seed(0)
    lin = nn.Linear(10, 5)
    with torch.no_grad():
        lin.weight.mul_(torch.tensor([0.1, 10.0, 0.1, 10.0, 1.0])[:, None])
        lin.bias.fill_(100.0)
    before = lin.weight.detach().clone()
    c = 1.5
    assert max_norm_(lin, c) is None
    norms_before = before.norm(dim=1)
    norms_after = lin.weight.detach().norm(dim=1)
    for i in range(5):
        if norms_before[i] <= c:
            assert torch.equal(lin.weight[i].detach(), before[i])  # inside the ball: exactly unchanged
        else:
            assert norms_after[i].item() == pytest.approx(c, rel=1e-6)
            # direction preserved
            torch.testing.assert_close(lin.weight[i].detach() / c, before[i] / norms_before[i])
    assert (lin.bias == 100.0).all()  # biases are not constrained through a module


def test_max_norm_matches_torch_renorm_up_to_its_epsilon():
    torch.manual_seed(1)
    w = torch.randn(7, 3, 3, 3, dtype=torch.float64) * 3
    ref = torch.renorm(w, p=2, dim=0, maxnorm=2.0)
    ours = w.clone()
    max_norm_(ours, 2.0, dim=0)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=0)


def test_max_norm_dim1_columns_and_zero_rows():
    w = torch.tensor([[3.0, 0.0], [4.0, 0.0]])
    max_norm_(w, 1.0, dim=1)  # column norms: 5 and 0
    torch.testing.assert_close(w, torch.tensor([[0.6, 0.0], [0.8, 0.0]]))


def test_spectral_norms_match_numpy_svd():
    model = _model()
    got = spectral_norms(model)
    ref = [np.linalg.svd(m.weight.detach().numpy(), compute_uv=False)[0] for m in model if isinstance(m, nn.Linear)]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5)


def test_spectral_norms_conv_flattened():
    conv = nn.Conv2d(3, 4, 3)
    got = spectral_norms(conv)
    ref = torch.linalg.matrix_norm(conv.weight.detach().reshape(4, -1), ord=2)
    torch.testing.assert_close(got, ref.reshape(1))


def test_power_iteration_matches_matrix_norm():
    torch.manual_seed(2)
    w = torch.randn(30, 20, dtype=torch.float64)
    sigma, u, v = power_iteration(w, n_iter=500)
    ref = torch.linalg.matrix_norm(w, ord=2)
    assert sigma.item() == pytest.approx(ref.item(), rel=1e-8)
    torch.testing.assert_close(w @ v, sigma * u, atol=1e-6, rtol=0)
    # Deterministic and does not touch the global RNG.
    state = torch.get_rng_state()
    s2, _, _ = power_iteration(w, n_iter=500)
    assert torch.equal(state, torch.get_rng_state()) and s2.item() == sigma.item()


def test_spectral_norm_projection_bounds_sigma():
    model = _model(3)
    with torch.no_grad():
        model[0].weight.mul_(10)
        model[2].weight.mul_(0.01)
    small_before = model[2].weight.detach().clone()
    spectral_norm_(model, 1.0)
    sig = spectral_norms(model)
    assert sig[0].item() == pytest.approx(1.0, rel=1e-5)
    assert (sig <= 1.0 + 1e-5).all()
    assert torch.equal(model[2].weight.detach(), small_before)  # already below: untouched


def test_add_spectral_norm_makes_sigma_one():
    model = add_spectral_norm(_model(4), n_power_iterations=1)
    x = torch.randn(16, 6)
    model.train()
    for _ in range(200):  # each training-mode forward refines the power iteration
        model(x)
    model.eval()
    np.testing.assert_allclose(spectral_norms(model).numpy(), 1.0, rtol=1e-3)
    # Idempotent: applying it twice does not stack parametrizations.
    add_spectral_norm(model)
    assert len(model[0].parametrizations.weight) == 1


def test_bad_inputs():
    model = _model()
    with pytest.raises(ValueError, match=r"max_norm must be > 0, got -1.0"):
        max_norm_(model, -1.0)
    with pytest.raises(ValueError, match=r"dim must be in"):
        max_norm_(torch.ones(2, 2), 1.0, dim=2)
    with pytest.raises(ValueError, match=r"max_sigma must be > 0"):
        spectral_norm_(model, 0.0)
    with pytest.raises(ValueError, match=r"has no Linear/Conv/RNN weights"):
        max_norm_(nn.ReLU(), 1.0)
    with pytest.raises(ValueError, match=r"ndim >= 2"):
        spectral_norm_(torch.ones(3), 1.0)
    with pytest.raises(ValueError, match=r"n_iter must be >= 1"):
        power_iteration(torch.ones(2, 2), n_iter=0)
    with pytest.raises(TypeError, match=r"model must be an nn.Module"):
        spectral_norms([torch.ones(2, 2)])
    with pytest.raises(ValueError, match=r"no nn.Linear"):
        add_spectral_norm(nn.ReLU())
