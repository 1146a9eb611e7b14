"""companion.ensemble against its oracle: the same models trained one at a time."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import companion
from companion import ensemble as E
from companion.diagnostics import weight_grad_norms

SEEDS = [0, 1, 2, 3]


def _data(n=64):
    return companion.data.two_spirals(n, seed=0)


def _factory(activation="tanh", dropout=0.0):
    return lambda: companion.models.mlp(2, 2, depth=4, width=16, activation=activation, dropout=dropout)


def _single_runs(factory, x, y, *, lr, steps, opt=torch.optim.SGD, clip_norm=None):
    """The oracle: each seed trained alone with a plain loop."""
    models, losses, norms = [], [], []
    for seed in SEEDS:
        companion.seed_everything(seed)
        model = factory()
        optimizer = opt(model.parameters(), lr=lr)
        run_losses, run_norms = [], []
        for _ in range(steps):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            run_losses.append(loss.item())
            run_norms.append(weight_grad_norms(model))
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            optimizer.step()
        models.append(model)
        losses.append(run_losses)
        norms.append(torch.stack(run_norms))
    return models, torch.tensor(losses).T, torch.stack(norms, dim=1)


@pytest.mark.parametrize("opt", [torch.optim.SGD, torch.optim.Adam])
@pytest.mark.parametrize("clip_norm", [None, 0.05])
def test_members_follow_their_single_run(opt, clip_norm):
    x, y = _data()
    lr = 0.1 if opt is torch.optim.SGD else 1e-2
    models, losses, norms = _single_runs(_factory(), x, y, lr=lr, steps=8, opt=opt, clip_norm=clip_norm)
    ens = E.build(_factory(), SEEDS)
    history = E.train(ens, (x, y), loss_fn=nn.CrossEntropyLoss(), optimizer=lambda p: opt(p, lr=lr),
                      epochs=8, clip_norm=clip_norm)
    torch.testing.assert_close(history.loss, losses, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(history.grad_norms, norms, rtol=1e-4, atol=1e-7)
    for member, alone in zip(ens.unstack(), models):
        for (name, a), b in zip(member.named_parameters(), alone.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)
    assert history.diverged_step == [None] * len(SEEDS)


def test_minibatches_follow_per_member_order():
    x, y = _data(40)
    ens = E.build(_factory(), SEEDS)
    history = E.train(ens, (x, y), loss_fn=nn.CrossEntropyLoss(),
                      optimizer=lambda p: torch.optim.SGD(p, lr=0.1), epochs=2, batch_size=16, seeds=SEEDS)
    assert history.loss.shape == (2 * 3, len(SEEDS))  # 40 examples: batches of 16, 16, 8
    for k, seed in enumerate(SEEDS):  # oracle: the same batch order by hand for member k
        companion.seed_everything(seed)
        model = _factory()()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        gen, expected = companion.generator(seed), []
        for _ in range(2):
            order = torch.randperm(40, generator=gen)
            for i in range(0, 40, 16):
                idx = order[i:i + 16]
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                loss.backward()
                optimizer.step()
                expected.append(loss.item())
        torch.testing.assert_close(history.loss[:, k], torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_a_diverging_member_is_reported_and_the_others_go_on():
    x, y = _data()
    ens = E.build(_factory("relu"), SEEDS)
    with torch.no_grad():  # member 2 only: weights so large that its loss overflows
        for _, w in ens.weights():
            w[2].mul_(1e12)
    history = E.train(ens, (x, y), loss_fn=nn.CrossEntropyLoss(),
                      optimizer=lambda p: torch.optim.SGD(p, lr=0.1), epochs=5)
    assert history.diverged_step[2] is not None and history.diverged_step[2] <= 1
    assert [s for k, s in enumerate(history.diverged_step) if k != 2] == [None] * 3
    assert history.diverged_count == 1
    assert torch.isfinite(history.loss[:, [0, 1, 3]]).all()
    assert torch.isnan(history.loss[history.diverged_step[2]:, 2]).all()


def test_dropout_draws_a_mask_per_member():
    x, _ = _data()
    models = [companion.models.mlp(2, 2, depth=2, width=32, dropout=0.5) for _ in range(3)]
    for m in models[1:]:
        m.load_state_dict(models[0].state_dict())
    ens = E.Ensemble(models)
    out = ens(x)
    assert not torch.equal(out[0], out[1])  # same weights, different masks
    ens.eval()
    out = ens(x)
    assert torch.equal(out[0], out[1])


def test_accuracy_and_loss_match_members():
    x, y = _data()
    ens = E.build(_factory(), SEEDS)
    members = ens.unstack()
    acc = E.accuracy(ens, x, y)
    loss = E.evaluate_loss(ens, x, y, nn.CrossEntropyLoss())
    for k, m in enumerate(members):
        m.eval()
        out = m(x)
        assert acc[k].item() == pytest.approx((out.argmax(1) == y).float().mean().item())
        assert loss[k].item() == pytest.approx(nn.functional.cross_entropy(out, y).item(), rel=1e-5)
    assert E.train  # history ratio
    history = E.train(ens, (x, y), loss_fn=nn.CrossEntropyLoss(), optimizer=lambda p: torch.optim.SGD(p, lr=0.1), epochs=2)
    torch.testing.assert_close(history.ratio(), history.grad_norms[..., 0] / history.grad_norms[..., -1])


def test_bad_inputs_say_what_is_wrong():
    x, y = _data()
    with pytest.raises(ValueError, match="seeds must be distinct"):
        E.build(_factory(), [0, 0])
    with pytest.raises(ValueError, match="at least 2"):
        E.Ensemble([nn.Linear(2, 2)])
    with pytest.raises(ValueError, match=r"models\[1\] differs"):
        E.Ensemble([nn.Linear(2, 2), nn.Linear(2, 3)])
    with pytest.raises(ValueError, match="BatchNorm running statistics"):
        E.Ensemble([nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)) for _ in range(2)])
    ens = E.build(_factory(), SEEDS)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        E.train(ens, (x, y), loss_fn=nn.CrossEntropyLoss(), optimizer=lambda p: torch.optim.SGD(p, lr=0.1), epochs=0)
    with pytest.raises(ValueError, match="same number"):
        E.train(ens, (x, y[:3]), loss_fn=nn.CrossEntropyLoss(), optimizer=lambda p: torch.optim.SGD(p, lr=0.1), epochs=1)
    with pytest.raises(ValueError, match="one seed per member"):
        E.train(ens, (x, y), loss_fn=nn.CrossEntropyLoss(), optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
                epochs=1, seeds=[0, 1])
    with pytest.raises(ValueError, match=r"per_model=True, x must have shape"):
        ens(x, per_model=True)


def test_member_grad_norms_and_clip_factors_match_clip_grad_norm():
    x, y = _data()
    ens = E.build(_factory(), SEEDS)
    nn.functional.cross_entropy(ens(x).flatten(0, 1), y.repeat(len(SEEDS)), reduction="sum").backward()
    norms = E.member_grad_norms(ens.parameters())
    factors = E.clip_factors(norms, 0.05)
    for k, seed in enumerate(SEEDS):  # oracle: each member alone, clipped by torch
        companion.seed_everything(seed)
        alone = _factory()()
        nn.functional.cross_entropy(alone(x), y, reduction="sum").backward()
        before = [p.grad.clone() for p in alone.parameters()]
        total = torch.nn.utils.clip_grad_norm_(alone.parameters(), 0.05)
        torch.testing.assert_close(norms[k], total, rtol=1e-5, atol=0)
        for p, g in zip(alone.parameters(), before):  # torch scaled every gradient by factors[k]
            torch.testing.assert_close(p.grad, g * factors[k], rtol=1e-5, atol=1e-8)


def test_a_factory_that_reseeds_is_refused():
    # A factory that seeds the generators itself makes every member the same network:
    # the "ensemble" would report one draw as if it were several.
    def reseeding():
        companion.seed_everything(0)
        return companion.models.mlp(2, 2, depth=2, width=8)

    with pytest.raises(ValueError, match="identical members for seeds 0 and 1"):
        E.build(reseeding, [0, 1, 2])
    assert E.build(lambda: companion.models.mlp(2, 2, depth=2, width=8), [0, 1, 2]).size == 3
