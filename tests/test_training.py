"""companion.training.fit against hand-written loops and torch's own optimizers and clipping."""

import math

import pytest
import torch
from torch import nn

from companion import training
from companion.training import DivergenceError, fit


def _regression(n=64, d=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen)
    w = torch.randn(d, 1, generator=gen)
    y = X @ w + 0.1 * torch.randn(n, 1, generator=gen)
    return X, y


def _net(seed=0, d=5):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, 1))


def test_full_batch_sgd_matches_a_hand_written_loop():
    X, y = _regression()
    model, reference = _net(), _net()
    history = fit(model, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=5)
    opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = nn.functional.mse_loss(reference(X), y)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert history.train_loss == pytest.approx(losses, rel=1e-6)
    assert history.stopped_epoch == 5 and len(history.grad_norm) == 5 and not history.diverged


def test_minibatches_cover_every_example_once_per_epoch():
    X, y = _regression(n=50)
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(5, 1)

        def forward(self, x):
            seen.append(x.shape[0])
            return self.lin(x)

    model = Spy()
    seen.clear()
    history = fit(model, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.0), epochs=2, batch_size=16)
    assert seen == [16, 16, 16, 2] * 2
    assert len(history.step_loss) == 8


def test_grad_norm_is_the_pre_clip_norm_and_clipping_matches_torch():
    X, y = _regression()
    model, reference = _net(1), _net(1)
    history = fit(model, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.05), epochs=1, clip_norm=0.01)
    reference_loss = nn.functional.mse_loss(reference(X), y)
    reference_loss.backward()
    direct = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in reference.parameters()]))
    assert history.grad_norm[0] == pytest.approx(direct.item(), rel=1e-6)
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.01)
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.05 * p.grad
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)


def test_value_clipping_matches_torch():
    X, y = _regression()
    model, reference = _net(2), _net(2)
    fit(model, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.05), epochs=1, clip_value=1e-3)
    nn.functional.mse_loss(reference(X), y).backward()
    torch.nn.utils.clip_grad_value_(reference.parameters(), 1e-3)
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.05 * p.grad
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)


def test_divergence_raises_with_the_step_and_does_not_apply_the_bad_update():
    X, y = _regression()
    model = nn.Linear(5, 1)
    with pytest.raises(DivergenceError) as info:
        fit(model, (X, 1e3 * y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=10.0), epochs=200)
    error = info.value
    assert error.step > 0
    assert not (math.isfinite(error.loss) and math.isfinite(error.grad_norm))
    assert f"step {error.step}" in str(error) and "weight" in error.parameter_norms
    # The step that produced the non-finite value was not applied... but earlier ones may be huge, never NaN.
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_divergence_recorded_when_asked():
    X, y = _regression()
    model = nn.Linear(5, 1)
    history = fit(model, (X, 1e3 * y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=10.0), epochs=200, on_divergence="record")
    assert history.diverged and history.diverged_step == len(history.step_loss) - 1
    assert not math.isfinite(history.step_loss[-1]) or not math.isfinite(history.grad_norm[-1])
    # a stable learning rate on the same problem does not diverge
    stable = fit(nn.Linear(5, 1), (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(nn.Linear(5, 1).parameters(), lr=0.01), epochs=20, on_divergence="record")
    assert not stable.diverged


def test_l2_in_fit_equals_sgd_weight_decay_on_the_weights_only():
    X, y = _regression()
    model, reference = _net(5), _net(5)
    fit(model, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=10, l2=0.3)
    weights = [m.weight for m in reference if isinstance(m, nn.Linear)]
    biases = [m.bias for m in reference if isinstance(m, nn.Linear)]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": 0.3}, {"params": biases, "weight_decay": 0.0}], lr=0.1)
    for _ in range(10):
        opt.zero_grad()
        nn.functional.mse_loss(reference(X), y).backward()
        opt.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_proximal_l1_gives_exact_zeros_and_l1_penalty_almost_none():
    X, y = _regression(n=100, d=5, seed=7)
    X = torch.cat([X, torch.randn(100, 20, generator=torch.Generator().manual_seed(8))], dim=1)  # 20 useless features
    prox, penal = nn.Linear(25, 1), nn.Linear(25, 1)
    penal.load_state_dict(prox.state_dict())
    fit(prox, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(prox.parameters(), lr=0.05), epochs=300, proximal_l1=0.1)
    fit(penal, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(penal.parameters(), lr=0.05), epochs=300, l1=0.1)
    prox_zeros = int((prox.weight == 0).sum())
    penal_zeros = int((penal.weight == 0).sum())
    assert prox_zeros >= 15 and penal_zeros <= 2, (prox_zeros, penal_zeros)
    assert prox.bias.item() != 0.0  # the bias is never thresholded


def test_augment_is_applied_to_every_training_batch_and_not_to_validation():
    X, y = _regression(n=40)
    seen = []

    def augment(xb):
        seen.append(len(xb))
        return xb + 1.0

    model, reference = _net(9), _net(9)
    fit(model, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=2,
        batch_size=20, val=(X, y), augment=augment)
    assert seen == [20, 20, 20, 20]
    shifted = fit(reference, (X + 1.0, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(reference.parameters(), lr=0.1),
                  epochs=2, batch_size=20)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)
    assert shifted.stopped_epoch == 2
    with pytest.raises(ValueError, match="one row per example"):
        fit(model, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=1,
            augment=lambda xb: xb[:3])


def test_accuracy_metric_and_function():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert training.accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    assert training.accuracy(torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 0.0, 0.0])) == pytest.approx(2 / 3)
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(80, 4, generator=gen)
    y = (X[:, 0] > 0).long()
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    history = fit(model, (X, y), loss_fn=nn.CrossEntropyLoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.5), epochs=30, metric="accuracy", val=(X, y))
    assert all(0 <= a <= 1 for a in history.train_metric + history.val_metric)
    assert history.val_metric[-1] > 0.9
    loss, acc = training.evaluate(model, (X, y), nn.CrossEntropyLoss(), metric="accuracy")
    assert acc == pytest.approx(training.accuracy(model(X), y))


def test_early_stopping_restores_the_best_epoch():
    X, y = _regression(n=30, seed=3)
    Xv, yv = _regression(n=30, seed=4)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 64), nn.ReLU(), nn.Linear(64, 1))
    history = fit(model, (X, y + torch.randn_like(y)), loss_fn=nn.MSELoss(), optimizer=torch.optim.Adam(model.parameters(), lr=0.05),
                  epochs=300, val=(Xv, yv), patience=5)
    assert history.stopped_epoch < 300
    assert history.stopped_epoch == history.best_epoch + 1 + 5
    final_val, _ = training.evaluate(model, (Xv, yv), nn.MSELoss())
    assert final_val == pytest.approx(min(history.val_loss), rel=1e-6)


def test_monitor_is_called_after_backward_at_every_step():
    X, y = _regression()
    model = _net()
    calls = []

    class Recorder:
        def record(self, step):
            calls.append((step, all(p.grad is not None for p in model.parameters())))

    fit(model, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, batch_size=32, monitor=Recorder())
    assert calls == [(i, True) for i in range(4)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"l2": -0.1}, "l2 must be >= 0, got -0.1"),
        ({"l1": float("nan")}, "l1 must be finite"),
        ({"clip_norm": 0.0}, "clip_norm must be > 0"),
        ({"on_divergence": "ignore"}, "on_divergence must be one of"),
        ({"metric": "f1"}, "metric must be one of"),
        ({"patience": 3}, "patience needs val"),
        ({"loss_fn": None}, "loss_fn must be callable, e.g. nn.CrossEntropyLoss\\(\\), got NoneType"),
        ({"monitor": object()}, "monitor must have a record\\(step\\) method"),
        ({"train": (torch.zeros(3, 5), torch.zeros(4, 1))}, "X and y must have the same length"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    model = nn.Linear(5, 1)
    args = {"train": _regression(), "loss_fn": nn.MSELoss(), "optimizer": torch.optim.SGD(model.parameters(), lr=0.1), "epochs": 1}
    args.update(kwargs)
    train = args.pop("train")
    with pytest.raises((ValueError, TypeError), match=message):
        fit(model, train, **args)


# ----------------------------------------------------------------- the parts of fit


def test_monitor_records_the_data_loss_gradient_not_the_penalty():
    # The defect fixed: with l2=10 the monitor used to record d(data + penalty)/dW.
    X, y = _regression()
    model, reference = _net(3), _net(3)
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]

    class Recorder:
        norms = []

        def record(self, step):
            self.norms.append([w.grad.norm().item() for w in weights])

    monitor = Recorder()
    fit(model, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.0), epochs=1, l2=10.0, monitor=monitor)
    data_loss = nn.functional.mse_loss(reference(X), y)
    ref_weights = [m.weight for m in reference if isinstance(m, nn.Linear)]
    oracle = [g.norm().item() for g in torch.autograd.grad(data_loss, ref_weights)]
    assert monitor.norms[0] == pytest.approx(oracle, rel=1e-6)
    with_penalty = [(g + 10.0 * w).norm().item() for g, w in zip(torch.autograd.grad(nn.functional.mse_loss(reference(X), y), ref_weights), ref_weights)]
    assert all(p > 2 * d for p, d in zip(with_penalty, oracle))  # so the test tells the two apart


@pytest.mark.parametrize("penalty", [{"l2": 0.3}, {"l1": 0.05}])
def test_penalized_minibatch_fit_matches_a_hand_written_loop(penalty):
    # The loop fit replaced: loss + penalty, one backward; same shuffling generator.
    from companion.penalties import l1_penalty, l2_penalty, penalized_parameters
    from companion.reproducibility import generator

    X, y = _regression(n=50)
    model, reference = _net(4), _net(4)
    history = fit(model, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                  epochs=3, batch_size=16, seed=2, **penalty)
    opt = torch.optim.SGD(reference.parameters(), lr=0.05)
    shuffler, losses = generator(2), []
    weights = penalized_parameters(reference)
    for _ in range(3):
        order = torch.randperm(50, generator=shuffler)
        for start in range(0, 50, 16):
            idx = order[start : start + 16]
            opt.zero_grad()
            data_loss = nn.functional.mse_loss(reference(X[idx]), y[idx])
            extra = l2_penalty(weights, penalty["l2"]) if "l2" in penalty else l1_penalty(weights, penalty["l1"])
            (data_loss + extra).backward()
            losses.append(data_loss.item())
            opt.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # bitwise: a + b == b + a
    assert history.step_loss == losses


def test_after_step_runs_a_constraint_after_every_optimizer_step():
    from companion.constraints import max_norm_

    X, y = _regression()
    model, reference = _net(6), _net(6)
    calls = []

    def constrain(m, step):
        calls.append(step)
        max_norm_(m, 0.5)

    fit(model, (X, y), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.5), epochs=2, batch_size=32, after_step=constrain)
    assert calls == [0, 1, 2, 3]
    assert all(m.weight.norm(dim=1).max() <= 0.5 + 1e-6 for m in model if isinstance(m, nn.Linear))
    opt = torch.optim.SGD(reference.parameters(), lr=0.5)
    from companion.reproducibility import generator

    shuffler = generator(0)
    for _ in range(2):
        order = torch.randperm(64, generator=shuffler)
        for start in (0, 32):
            idx = order[start : start + 32]
            opt.zero_grad()
            nn.functional.mse_loss(reference(X[idx]), y[idx]).backward()
            opt.step()
            max_norm_(reference, 0.5)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_after_step_must_be_callable():
    model = nn.Linear(5, 1)
    with pytest.raises(TypeError, match="after_step must be callable"):
        fit(model, _regression(), loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, after_step=3)


@pytest.mark.parametrize("patience, min_delta", [(1, 0.0), (3, 0.0), (2, 0.05)])
def test_early_stopping_stops_where_reduce_lr_on_plateau_first_reduces(patience, min_delta):
    # Oracle: torch's scheduler (threshold_mode="abs") lowers the lr once num_bad_epochs > its patience,
    # so EarlyStopping(patience=p) must stop exactly where ReduceLROnPlateau(patience=p-1) first reduces.
    gen = torch.Generator().manual_seed(patience)
    values = (torch.linspace(1, 0.5, 40) + 0.08 * torch.randn(40, generator=gen)).tolist()
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=patience - 1, threshold=min_delta, threshold_mode="abs")
    stopper = training.EarlyStopping("min", patience=patience, min_delta=min_delta)
    ours = theirs = None
    for i, v in enumerate(values):
        if stopper.step(v) and ours is None:
            ours = i
        scheduler.step(v)
        if opt.param_groups[0]["lr"] < 1.0 and theirs is None:
            theirs = i
    assert ours is not None and ours == theirs
    assert stopper.best == pytest.approx(scheduler.best)


def test_early_stopping_max_mode_and_nan():
    stopper = training.EarlyStopping("max", patience=2)
    assert [stopper.step(v) for v in (0.5, 0.7, float("nan"), 0.6)] == [False, False, False, True]
    assert stopper.best == 0.7 and stopper.best_epoch == 1
    never = training.EarlyStopping(patience=None)
    assert not any(never.step(1.0) for _ in range(100))
    with pytest.raises(ValueError, match="mode must be one of"):
        training.EarlyStopping("lowest")


# ----------------------------------------------------------------- errors a reader meets


def _fit_args(model, **kwargs):
    args = {"loss_fn": nn.MSELoss(), "optimizer": torch.optim.SGD(model.parameters(), lr=0.1), "epochs": 1}
    args.update(kwargs)
    return args


@pytest.mark.parametrize("where, tensor", [("train", 0), ("train", 1), ("val", 0), ("val", 1)])
def test_non_finite_data_is_reported_before_training_with_the_tensor_and_count(where, tensor):
    model = nn.Linear(5, 1)
    before = [p.detach().clone() for p in model.parameters()]
    broken = [t.clone() for t in _regression()]
    broken[tensor][3] = float("nan")
    broken[tensor][7, 0] = float("inf")
    count = 5 + 1 if tensor == 0 else 1 + 1  # x: a NaN row of 5 values and one Inf; y [64, 1]: one and one
    train, val = (tuple(broken), None) if where == "train" else (_regression(), tuple(broken))
    name = f"{where} {'xy'[tensor]}"
    with pytest.raises(ValueError, match=rf"{name} holds {count} non-finite values \(NaN or Inf\)"):
        fit(model, train, **_fit_args(model, val=val))
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))  # nothing trained


def test_wrong_feature_count_names_expected_and_received_shapes():
    model = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 1))
    with pytest.raises(ValueError, match=r"train x must have shape \[n, 5\] .* got shape \(64, 4\)"):
        fit(model, (torch.zeros(64, 4), torch.zeros(64, 1)), **_fit_args(model))
    with pytest.raises(ValueError, match=r"got shape \(64,\): add the feature axis with x.reshape\(-1, 5\)"):
        fit(model, (torch.zeros(64), torch.zeros(64, 1)), **_fit_args(model))


def test_float64_data_with_a_float32_model_says_how_to_convert():
    model = nn.Linear(5, 1)
    X, y = _regression()
    with pytest.raises(TypeError, match=r"train x has dtype torch.float64 but the model's parameters are torch.float32.*x.to\(torch.float32\)"):
        fit(model, (X.double(), y), **_fit_args(model))


def test_one_hot_targets_with_accuracy_are_refused():
    model = nn.Linear(5, 3)
    X = torch.randn(20, 5)
    one_hot = nn.functional.one_hot(torch.arange(20) % 3, 3).float()
    with pytest.raises(ValueError, match=r"train y must hold one class index .* got shape \(20, 3\).*y.argmax\(dim=1\)"):
        fit(model, (X, one_hot), **_fit_args(model, loss_fn=nn.CrossEntropyLoss(), metric="accuracy"))
    with pytest.raises(ValueError, match="one-hot"):
        training.accuracy(model(X), one_hot)
    with pytest.raises(ValueError, match="one-hot"):
        training.evaluate(model, (X, one_hot), nn.CrossEntropyLoss(), metric="accuracy")
    fit(model, (X, one_hot), **_fit_args(model, loss_fn=nn.CrossEntropyLoss()))  # soft targets without a metric: fine


def test_a_data_split_points_at_its_train_and_val_parts():
    from companion.data import digits

    split = digits(n_train=20)
    model = nn.Linear(64, 10)
    with pytest.raises(TypeError, match=r"got a DataSplit .* pass split.train \(and val=split.val\)"):
        fit(model, split, **_fit_args(model, loss_fn=nn.CrossEntropyLoss()))
    with pytest.raises(TypeError, match=r"got a DataSplit .* pass one part, e.g. split.test"):
        training.evaluate(model, split, nn.CrossEntropyLoss())
