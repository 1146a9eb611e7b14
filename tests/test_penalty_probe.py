"""train_penalized against an independent oracle: each member trained alone with torch's SGD."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import companion
from companion.constraints import max_norm_
from companion.diagnostics import weight_grad_norms
from companion.ensemble import build
from companion.penalties import l1_penalty, l2_penalty, penalized_parameters
from companion.penalty_probe import PenaltyRun, member_weights, train_penalized

SEEDS = [0, 1, 2]


def _data():
    gen = companion.generator(7)
    return torch.randn(32, 6, generator=gen), torch.randint(0, 3, (32,), generator=gen)


def _factory():
    return companion.models.mlp(6, 3, depth=3, width=8, activation="tanh", init="normal", std=0.9)


def _alone(seed, x, y, *, lr, steps, penalty, strength, constraint):
    """The oracle: one model, autograd on loss + penalty, torch.optim.SGD, ratio of the data loss."""
    companion.seed_everything(seed)
    model = _factory()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    ratios = []
    for _ in range(steps):
        if constraint:
            max_norm_(model, 1.0)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        g = weight_grad_norms(model)
        ratios.append((g[0] / g[-1]).item())
        if strength:
            pen = {"l1": l1_penalty, "l2": l2_penalty}[penalty](penalized_parameters(model), strength)
            pen.backward()
        opt.step()
    if constraint:
        max_norm_(model, 1.0)
    return torch.tensor(ratios), model


@pytest.mark.parametrize("penalty,strength,constraint", [("l2", 0.0, False), ("l2", 0.3, False),
                                                          ("l1", 0.05, False), ("l2", 0.0, True)])
def test_matches_members_trained_alone(penalty, strength, constraint):
    x, y = _data()
    ens = build(_factory, SEEDS)
    run = train_penalized(ens, (x, y), lr=0.1, steps=5, penalty=penalty, strength=strength,
                          constraint=(lambda ws: max_norm_(ws, 1.0)) if constraint else None)
    assert isinstance(run, PenaltyRun)
    assert run.ratios.shape == (5, 3) and run.losses.shape == (5, 3) and run.accuracies.shape == (6, 3)
    for k, (seed, member) in enumerate(zip(SEEDS, ens.unstack())):
        ratios, alone = _alone(seed, x, y, lr=0.1, steps=5, penalty=penalty, strength=strength,
                               constraint=constraint)
        torch.testing.assert_close(run.ratios[:, k], ratios, rtol=1e-4, atol=0)
        for p, q in zip(member.parameters(), alone.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
        acc = (alone(x).argmax(1) == y).float().mean()
        torch.testing.assert_close(run.accuracies[-1, k], acc)


def test_member_weights_are_views_of_each_member():
    ens = build(_factory, SEEDS)
    views = member_weights(ens)
    assert len(views) == 4 * len(SEEDS) and all(v.dim() == 2 for v in views)
    with torch.no_grad():
        views[0].zero_()
    assert ens.weights()[0][1][0].abs().sum() == 0 and ens.weights()[0][1][1].abs().sum() > 0


def test_bad_arguments_name_themselves():
    ens = build(_factory, SEEDS)
    data = _data()
    with pytest.raises(ValueError, match="lr"):
        train_penalized(ens, data, lr=-1.0, steps=1)
    with pytest.raises(ValueError, match="steps"):
        train_penalized(ens, data, lr=0.1, steps=0)
    with pytest.raises(ValueError, match="penalty"):
        train_penalized(ens, data, lr=0.1, steps=1, penalty="l3")
    with pytest.raises(ValueError, match="strength"):
        train_penalized(ens, data, lr=0.1, steps=1, strength=-0.1)
    with pytest.raises(TypeError, match="ensemble"):
        train_penalized(_factory(), data, lr=0.1, steps=1)
    with pytest.raises(TypeError, match="constraint"):
        train_penalized(ens, data, lr=0.1, steps=1, constraint=3)
