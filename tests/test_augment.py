"""Tests for companion.augment: exact shift/rotation oracles, statistics of the noise, the loop."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from companion.augment import (
    add_gaussian_noise,
    augment_batch,
    random_rotation,
    random_shift,
    rotate_images,
    shift_images,
)


def _images(n=16, c=None, h=8, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (n, h, w) if c is None else (n, c, h, w)
    return torch.rand(shape, generator=g)


def _roll_oracle(img, dy, dx):
    """Shift one [H, W] image by rolling and zeroing the wrapped border (independent of shift_images)."""
    out = torch.roll(img, shifts=(dy, dx), dims=(0, 1))
    if dy > 0:
        out[:dy, :] = 0
    elif dy < 0:
        out[dy:, :] = 0
    if dx > 0:
        out[:, :dx] = 0
    elif dx < 0:
        out[:, dx:] = 0
    return out


def test_shift_matches_roll_oracle():
    x = _images(n=25)
    shifts = torch.tensor([[dy, dx] for dy in range(-2, 3) for dx in range(-2, 3)])
    y = shift_images(x, shifts)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        torch.testing.assert_close(y[i], _roll_oracle(x[i], dy, dx), rtol=0, atol=0)


def test_shift_moves_single_pixel():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 4] = 1.0
    y = shift_images(x, torch.tensor([[2, -3]]))
    assert y[0, 0, 5, 1] == 1.0 and y.sum() == 1.0


def test_shift_moves_centre_of_mass_when_nothing_is_cut():
    # Mass inside the central 4x4 block: a shift by <= 2 loses nothing and moves the centre of mass exactly.
    x = torch.zeros(9, 8, 8)
    x[:, 2:6, 2:6] = torch.rand(9, 4, 4, generator=torch.Generator().manual_seed(1))
    shifts = torch.tensor([[dy, dx] for dy in (-2, 0, 2) for dx in (-1, 0, 1)])
    y = shift_images(x, shifts)
    grid = torch.arange(8.0)

    def com(t):
        m = t.sum(dim=(1, 2))
        return torch.stack([(t.sum(2) * grid).sum(1) / m, (t.sum(1) * grid).sum(1) / m], 1)

    torch.testing.assert_close(y.sum(dim=(1, 2)), x.sum(dim=(1, 2)))
    torch.testing.assert_close(com(y) - com(x), shifts.float(), atol=1e-5, rtol=0)


def test_shift_by_zero_is_identity_and_copy():
    x = _images(c=1)
    y = shift_images(x, torch.zeros(len(x), 2, dtype=torch.long))
    assert torch.equal(y, x) and y is not x
    assert torch.equal(random_shift(x, 0, generator=torch.Generator().manual_seed(0)), x)


def test_shift_channels_move_together():
    x = _images(n=4, c=3)
    shifts = torch.tensor([[1, 1], [-1, 0], [0, 2], [2, -2]])
    y = shift_images(x, shifts)
    for c in range(3):
        torch.testing.assert_close(y[:, c], shift_images(x[:, c], shifts))


@pytest.mark.parametrize("c", [None, 1, 3])
def test_random_shift_shapes_and_range(c):
    x = _images(n=200, c=c)
    y = random_shift(x, 1, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    # Every output is one of the 9 possible shifts of its input.
    flat = x if c is None else x[:, 0]
    out = y if c is None else y[:, 0]
    for i in range(len(x)):
        assert any(
            torch.equal(out[i], _roll_oracle(flat[i], dy, dx)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        )


def test_random_shift_is_deterministic_with_seeded_generator():
    x = _images(n=50)
    a = random_shift(x, 2, generator=torch.Generator().manual_seed(3))
    b = random_shift(x, 2, generator=torch.Generator().manual_seed(3))
    c = random_shift(x, 2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_noise_statistics_and_determinism():
    x = torch.zeros(200_000, dtype=torch.float64)
    y = add_gaussian_noise(x, 0.3, generator=torch.Generator().manual_seed(0))
    # sample mean has sd 0.3/sqrt(n) ~ 6.7e-4; sample sd within 1% of 0.3 (its sd is ~0.16%)
    assert abs(y.mean().item()) < 5 * 0.3 / math.sqrt(len(x))
    assert y.std().item() == pytest.approx(0.3, rel=0.01)
    z = add_gaussian_noise(x, 0.3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, z)
    assert torch.equal(add_gaussian_noise(x, 0.0), x)


def test_rotation_by_multiples_of_90_matches_rot90():
    x = _images(n=3, c=2)
    for k in (1, 2, 3):
        y = rotate_images(x, torch.full((3,), 90.0 * k))
        torch.testing.assert_close(y, torch.rot90(x, k, dims=(2, 3)), atol=1e-5, rtol=0)


def test_rotation_by_zero_is_identity_and_random_rotation_bounded():
    x = _images(n=5)
    torch.testing.assert_close(rotate_images(x, torch.zeros(5)), x, atol=1e-6, rtol=0)
    torch.testing.assert_close(random_rotation(x, 0.0), x, atol=1e-6, rtol=0)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(random_rotation(x, 15.0, generator=g1), random_rotation(x, 15.0, generator=g2))
    # A small rotation changes the image but keeps most of it: correlation with the input stays high.
    y = random_rotation(x, 10.0, generator=torch.Generator().manual_seed(1))
    corr = torch.corrcoef(torch.stack([x.flatten(), y.flatten()]))[0, 1]
    assert 0.5 < corr < 1.0


def test_augment_batch_flat_and_image_inputs():
    x = _images(n=32).reshape(32, 64)
    g = torch.Generator().manual_seed(0)
    y = augment_batch(x, max_shift=1, noise_std=0.1, max_degrees=10, image_shape=(8, 8), generator=g)
    assert y.shape == x.shape
    assert not torch.equal(y, x)
    same = augment_batch(x, image_shape=(8, 8))
    assert torch.equal(same, x) and same is not x
    # With only a shift, the flat result equals shifting the images with the same generator state.
    a = augment_batch(x, max_shift=2, image_shape=(1, 8, 8), generator=torch.Generator().manual_seed(5))
    b = random_shift(x.reshape(32, 1, 8, 8), 2, generator=torch.Generator().manual_seed(5)).reshape(32, 64)
    assert torch.equal(a, b)


def test_fit_augment_hook_sees_fresh_transforms_and_original_labels():
    # companion.training.fit(augment=...) is the loop; check our transform works inside it.
    from companion.training import fit

    torch.manual_seed(0)
    x = _images(n=60).reshape(60, 64)
    y = torch.arange(60) % 3
    gen = torch.Generator().manual_seed(0)
    batches = []

    def augment(xb):
        out = augment_batch(xb, max_shift=1, image_shape=(8, 8), generator=gen)
        batches.append(out)
        return out

    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    hist = fit(model, (x, y), loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=30, augment=augment)
    assert len(batches) == 30 and batches[0].shape == (60, 64)
    assert not torch.equal(batches[0], batches[1])  # a fresh draw every step
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert torch.equal(y, torch.arange(60) % 3)  # labels untouched


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: random_shift(_images(), -1), "max_shift must be >= 0"),
        (lambda: random_shift(torch.rand(8, 8), 1), r"images must have shape \[n, H, W\]"),
        (lambda: shift_images(_images(n=2), torch.zeros(3, 2, dtype=torch.long)), r"shape \(2, 2\)"),
        (lambda: add_gaussian_noise(torch.zeros(3), -0.5), "std must be >= 0"),
        (lambda: random_rotation(_images(), 200.0), r"max_degrees must be in \[0, 180\]"),
        (lambda: augment_batch(torch.zeros(4, 64), max_shift=1, image_shape=(7, 7)), "image_shape must be"),
    ],
)
def test_bad_inputs_raise_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types_raise_type_errors():
    with pytest.raises(TypeError, match="shifts must be an integer tensor"):
        shift_images(_images(n=2), torch.zeros(2, 2))
    with pytest.raises(TypeError, match="images must be a floating-point tensor"):
        random_shift(torch.zeros(2, 8, 8, dtype=torch.long), 1)
