"""Tests for companion.distributed: real gloo DDP with 2 processes vs one process on the full batch.

One start of the 2 processes (module fixture) serves every test that needs them.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from companion.distributed import DataParallelJob, run_data_parallel, run_jobs

CLIP = 0.05


def _model(seed: int, out: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, out))


def _data(seed: int, classes: int | None):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(24, 5, generator=gen)
    if classes is None:
        # Different targets on the two halves: the two ranks' gradients point different ways.
        y = torch.cat([torch.ones(12, 1), -torch.ones(12, 1)]) + 0.1 * torch.randn(24, 1, generator=gen)
    else:
        y = torch.randint(0, classes, (24,), generator=gen)
    return X, y


def _loss(name, outputs, y):
    if name.startswith("mse"):
        return nn.functional.mse_loss(outputs, y)
    return nn.functional.cross_entropy(outputs, y)


CASES = {
    "mse": (_model(0, 1), *_data(1, None)),
    "cross_entropy": (_model(2, 3), *_data(3, 3)),
    "mse_float64": (_model(4, 1).double(), *[t.double() for t in _data(5, None)]),
}


@pytest.fixture(scope="module")
def results():
    jobs = [
        DataParallelJob(copy.deepcopy(m), X, y, loss_fn=name.split("_float")[0], steps=4, lr=0.1, clip_norm=CLIP)
        for name, (m, X, y) in CASES.items()
    ]
    return dict(zip(CASES, run_jobs(jobs, world_size=2)))


def _full_batch_grads(name):
    model, X, y = CASES[name]
    model = copy.deepcopy(model)
    _loss(name, model(X), y).backward()
    return model, {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", list(CASES))
def test_ddp_gradient_is_full_batch_gradient(results, name):
    res = results[name]
    _, full = _full_batch_grads(name)
    for n, g in full.items():
        torch.testing.assert_close(res.grads[n], g, atol=1e-6, rtol=0)
    norm = torch.nn.utils.get_total_norm(list(full.values())).item()
    assert res.grad_norm == pytest.approx(norm, rel=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_local_gradients_are_shard_gradients(results, name):
    model, X, y = CASES[name]
    res = results[name]
    norms = []
    for r in range(2):
        m = copy.deepcopy(model)
        _loss(name, m(X[12 * r : 12 * (r + 1)]), y[12 * r : 12 * (r + 1)]).backward()
        norms.append(torch.nn.utils.get_total_norm([p.grad for p in m.parameters()]).item())
        if r == 0:
            for n, p in m.named_parameters():
                torch.testing.assert_close(res.local_grads[n], p.grad, atol=1e-6, rtol=0)
    assert res.local_grad_norms == pytest.approx(norms, rel=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_clip_after_all_reduce_equals_single_process_clip(results, name):
    res = results[name]
    model, full = _full_batch_grads(name)
    assert res.grad_norm > CLIP  # the clip is active, or the test would prove nothing
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    for n, p in model.named_parameters():
        torch.testing.assert_close(res.clipped_after[n], p.grad, atol=1e-6, rtol=0)
    # The wrong order (each rank clips its own gradient) gives a different gradient.
    diff = max((res.clipped_before[n] - p.grad).abs().max().item() for n, p in model.named_parameters())
    assert diff > 1e-3, diff


@pytest.mark.parametrize("name", list(CASES))
def test_ddp_training_equals_full_batch_training(results, name):
    model, X, y = CASES[name]
    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = _loss(name, model(X), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        losses.append(loss.item())
        opt.step()
    res = results[name]
    assert res.losses == pytest.approx(losses, rel=1e-5)
    assert res.diverged_step is None
    for k, v in model.state_dict().items():
        torch.testing.assert_close(res.state_dict[k], v, atol=1e-6, rtol=0)


def test_caller_model_unchanged(results):
    model, _, _ = CASES["mse"]
    assert all(p.grad is None for p in model.parameters())


def test_bad_arguments():
    model, X, y = CASES["mse"]
    with pytest.raises(ValueError, match="multiple of world_size=2"):
        run_data_parallel(model, (X[:5], y[:5]))
    with pytest.raises(ValueError, match="loss_fn must be one of"):
        run_data_parallel(model, (X, y), loss_fn="hinge")
    with pytest.raises(ValueError, match="clip_norm must be > 0"):
        run_data_parallel(model, (X, y), clip_norm=0.0)
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        run_data_parallel(model, (X, y), world_size=0)
    with pytest.raises(TypeError, match="train must be a tuple"):
        run_data_parallel(model, X)
    with pytest.raises(ValueError, match="at least one"):
        run_jobs([])


@pytest.mark.parametrize("name", list(CASES))
def test_step_weight_grad_norms_before_clipping(results, name):
    model, X, y = CASES[name]
    model = copy.deepcopy(model)
    weights = [p for p in model.parameters() if p.dim() >= 2]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    expected = []
    for _ in range(4):
        opt.zero_grad()
        _loss(name, model(X), y).backward()
        expected.append([w.grad.norm().item() for w in weights])
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
    got = results[name].step_weight_grad_norms
    assert len(got) == 4 and len(got[0]) == len(weights)
    for row, ref in zip(got, expected):
        assert row == pytest.approx(ref, rel=1e-4)


def test_fork_start_method_gives_the_same_result(results):
    if torch.cuda.is_available():
        pytest.skip("autograd cannot run in a child forked after a backward pass on a GPU machine")
    model, X, y = CASES["cross_entropy"]
    res = run_data_parallel(copy.deepcopy(model), (X, y), loss_fn="cross_entropy", steps=4, lr=0.1,
                            clip_norm=CLIP, start_method="fork")
    ref = results["cross_entropy"]
    for n, g in ref.grads.items():
        torch.testing.assert_close(res.grads[n], g, atol=0, rtol=0)
    assert res.losses == ref.losses


def test_bad_start_method():
    model, X, y = CASES["mse"]
    with pytest.raises(ValueError, match="start_method must be one of"):
        run_data_parallel(model, (X, y), start_method="forkserver")
