"""companion.hooks: hooks that always come off, and per-tensor norms against torch.linalg."""

import pytest
import torch
from torch import nn

from companion import diagnostics, hooks, initialization
from companion.models import mlp


def _hooked(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in module.modules())


def test_capture_outputs_sees_every_call_and_removes_its_hooks():
    torch.manual_seed(0)
    model = mlp(3, 2, depth=3, width=4, activation="tanh")
    x = torch.randn(5, 3)
    with hooks.capture_outputs(list(model.taps) + [model.phi]) as outputs:
        out = model(x)
    assert _hooked(model) == 0
    assert [len(o) for o in outputs] == [1, 1, 1, 3]  # the one activation module runs once per layer
    h = x
    for l in range(3):
        h = torch.tanh(model.linears[l](h))
        torch.testing.assert_close(outputs[l][0], h, rtol=0, atol=0)
    assert outputs[0][0].requires_grad and out.requires_grad  # still in the graph


def test_hooks_come_off_when_the_block_raises():
    model = mlp(3, 2, depth=2, width=4)
    with pytest.raises(ZeroDivisionError):
        with hooks.capture_outputs(model.taps, detach=True) as outputs:
            model(torch.randn(2, 3))
            1 / 0
    assert _hooked(model) == 0 and not outputs[0][0].requires_grad


def test_forward_hooks_removes_what_it_registered_when_a_registration_fails():
    model = mlp(3, 2, depth=3, width=4)

    def make_hook(i):
        if i == 2:
            raise RuntimeError("bad hook")
        return lambda *args: None

    with pytest.raises(RuntimeError, match="bad hook"):
        hooks.forward_hooks(model.taps, make_hook)
    assert _hooked(model) == 0
    stack = hooks.forward_hooks(model.taps, lambda i: (lambda *args: None))
    assert _hooked(model) == 3
    stack.close()
    stack.close()  # safe twice
    assert _hooked(model) == 0


def test_diagnostics_leave_no_hook_behind():
    model = mlp(3, 2, depth=3, width=4)
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 0, 1])
    diagnostics.activation_stats(model, x)
    diagnostics.activation_grad_norms(model, x, y)
    initialization.variance_profile(model, x)
    initialization.dead_unit_fraction(model, x)
    with diagnostics.GradientMonitor(model, activations=True):
        assert _hooked(model) == 3
    assert _hooked(model) == 0
    with pytest.raises(ValueError):
        diagnostics.activation_grad_norms(model, x, y, loss_fn=lambda out, t: out)  # not a scalar
    assert _hooked(model) == 0


@pytest.mark.parametrize("ord", [1.0, 2.0])
def test_grad_norms_match_torch_linalg(ord):
    gen = torch.Generator().manual_seed(0)
    tensors = [torch.randn(4, 5, generator=gen), torch.randn(7, generator=gen), torch.randn(2, 3, 3, generator=gen)]
    expected = torch.stack([torch.linalg.vector_norm(t, ord) for t in tensors])
    torch.testing.assert_close(hooks.grad_norms(tensors, ord), expected)
    mixed = [tensors[0].double(), tensors[1]]  # no fused kernel: promoted, on the first device
    got = hooks.grad_norms(mixed, ord)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected[:2].double())


def test_grad_norms_errors():
    with pytest.raises(ValueError, match="at least one tensor"):
        hooks.grad_norms([])
    with pytest.raises(TypeError, match=r"tensors\[1\] must be a tensor, got NoneType \(call backward\(\) first\?\)"):
        hooks.grad_norms([torch.ones(2), None])
    with pytest.raises(TypeError, match=r"modules\[0\] must be a module \(nn.Module\), got int"):
        hooks.forward_hooks([3], lambda i: None)
    with pytest.raises(ValueError, match=r"modules must contain at least one module"):
        with hooks.capture_outputs([]):
            pass
