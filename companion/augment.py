"""Label-preserving data augmentation for small images, and a loop that uses it.

A digit shifted by a pixel, slightly rotated or with a little pixel noise is
still the same digit, so these transforms enlarge the training distribution
without touching the labels. They are drawn afresh for every batch (online
augmentation): the model never sees exactly the same image twice, which is what
limits memorisation. Nothing here flips images: a mirrored 2 or 7 is not a
digit, which is why "flip everything" recipes are not label-preserving in general.

Images are tensors ``[n, H, W]`` or ``[n, C, H, W]`` (a batch); flattened
batches ``[n, H*W]`` go through :func:`augment_batch` with ``image_shape``.
Training with fresh transforms per batch is ``companion.training.fit(...,
augment=lambda xb: augment_batch(xb, max_shift=1, image_shape=(8, 8)))``.

See the chapter "Data augmentation".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._checks import check_int, check_nonnegative

__all__ = [
    "add_gaussian_noise",
    "augment_batch",
    "random_rotation",
    "random_shift",
    "rotate_images",
    "shift_images",
]


def _as_nchw(images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """View ``[n, H, W]`` or ``[n, C, H, W]`` as ``[n, C, H, W]``; also return the original shape."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a tensor, got {type(images).__name__}")
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape [n, H, W] or [n, C, H, W], got {tuple(images.shape)}")
    if not torch.is_floating_point(images):
        raise TypeError(f"images must be a floating-point tensor, got dtype {images.dtype}")
    shape = tuple(images.shape)
    return (images.unsqueeze(1) if images.ndim == 3 else images), shape


def shift_images(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Translate each image by an integer number of pixels, filling with zeros.

    Image ``i`` moves down by ``shifts[i, 0]`` rows and right by ``shifts[i, 1]``
    columns; pixels pushed past the border are lost and the uncovered border is 0:

    .. math::

        y_i[r, c] = x_i[r - s_{i,0},\\ c - s_{i,1}] \\quad (\\text{0 outside the image}).

    Args:
        images: ``[n, H, W]`` or ``[n, C, H, W]`` floating-point tensor.
        shifts: integer tensor ``[n, 2]`` of (down, right) shifts; negative moves up/left.

    Returns:
        A tensor shaped like ``images`` on its device.
    """
    x, shape = _as_nchw(images)
    n, _, h, w = x.shape
    if not isinstance(shifts, torch.Tensor) or shifts.shape != (n, 2):
        got = tuple(shifts.shape) if isinstance(shifts, torch.Tensor) else type(shifts).__name__
        raise ValueError(f"shifts must be an integer tensor of shape ({n}, 2), got {got}")
    if torch.is_floating_point(shifts):
        raise TypeError(f"shifts must be an integer tensor, got dtype {shifts.dtype}")
    shifts = shifts.to(x.device)
    s = int(shifts.abs().max().item()) if n else 0  # pad width: one host sync per batch
    if s == 0:
        return images.clone()
    padded = F.pad(x, (s, s, s, s))
    # Output pixel (r, c) reads padded pixel (r + s - dy, c + s - dx).
    rows = torch.arange(h, device=x.device) + s - shifts[:, :1]  # [n, H]
    cols = torch.arange(w, device=x.device) + s - shifts[:, 1:]  # [n, W]
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # [n, H, W, C]
    return out.permute(0, 3, 1, 2).reshape(shape).contiguous()


def random_shift(
    images: torch.Tensor, max_shift: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image by independent integer offsets drawn uniformly from ``[-max_shift, max_shift]``.

    Args:
        images: ``[n, H, W]`` or ``[n, C, H, W]``.
        max_shift: largest shift in pixels along each axis (>= 0); 0 returns a copy.
        generator: optional CPU ``torch.Generator`` for reproducible shifts.

    Returns:
        Shifted images (zero padding), shaped like ``images``.

    See :func:`shift_images` for the exact convention.
    """
    max_shift = check_int("max_shift", max_shift, minimum=0)
    x, _ = _as_nchw(images)
    shifts = torch.randint(-max_shift, max_shift + 1, (x.shape[0], 2), generator=generator)
    return shift_images(images, shifts)


def add_gaussian_noise(
    x: torch.Tensor, std: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Return ``x + std * z`` with ``z ~ N(0, I)`` drawn independently per entry.

    Args:
        x: any floating-point tensor.
        std: noise standard deviation (>= 0); 0 returns a copy.
        generator: optional CPU ``torch.Generator``.

    Returns:
        A tensor shaped like ``x`` on its device.
    """
    std = check_nonnegative("std", std)
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        raise TypeError("x must be a floating-point tensor")
    if std == 0:
        return x.clone()
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x + std * noise.to(x.device)


def rotate_images(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate image ``i`` about its centre by ``degrees[i]`` (counter-clockwise as displayed, row 0 on top).

    Uses ``affine_grid``/``grid_sample`` with bilinear interpolation and zero
    padding; output pixel at normalised coordinates :math:`(u, v)` reads the
    input at

    .. math::

        \\begin{pmatrix} \\cos\\theta & -\\sin\\theta \\\\ \\sin\\theta & \\cos\\theta \\end{pmatrix}
        \\begin{pmatrix} u \\\\ v \\end{pmatrix}.

    Multiples of 90 degrees on square images are exact pixel permutations
    (``torch.rot90``); other angles resample bilinearly, which blurs an 8x8
    image a little.

    Args:
        images: ``[n, H, W]`` or ``[n, C, H, W]``.
        degrees: tensor ``[n]`` of angles in degrees.

    Returns:
        Rotated images shaped like ``images``.
    """
    x, shape = _as_nchw(images)
    n = x.shape[0]
    if not isinstance(degrees, torch.Tensor) or degrees.shape != (n,):
        raise ValueError(f"degrees must be a tensor of shape ({n},)")
    theta = torch.deg2rad(degrees.to(torch.float64)).to(device=x.device, dtype=x.dtype)
    cos, sin, zero = theta.cos(), theta.sin(), torch.zeros_like(theta)
    matrix = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(matrix, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(shape)


def random_rotation(
    images: torch.Tensor, max_degrees: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Rotate each image by an angle drawn uniformly from ``[-max_degrees, max_degrees]``.

    Args:
        images: ``[n, H, W]`` or ``[n, C, H, W]``.
        max_degrees: largest absolute angle in degrees, in ``[0, 180]``.
        generator: optional CPU ``torch.Generator``.

    Returns:
        Rotated images shaped like ``images`` (see :func:`rotate_images`).
    """
    max_degrees = check_nonnegative("max_degrees", max_degrees)
    if max_degrees > 180:
        raise ValueError(f"max_degrees must be in [0, 180], got {max_degrees}")
    x, _ = _as_nchw(images)
    u = torch.rand(x.shape[0], generator=generator, dtype=torch.float64) * 2 - 1
    return rotate_images(images, u * max_degrees)


def augment_batch(
    x: torch.Tensor,
    *,
    max_shift: int = 0,
    noise_std: float = 0.0,
    max_degrees: float = 0.0,
    image_shape: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply random rotation, then random shift, then Gaussian noise to a batch; labels are untouched.

    Args:
        x: images ``[n, H, W]``/``[n, C, H, W]``, or flattened ``[n, H*W]`` with ``image_shape``.
        max_shift: see :func:`random_shift` (0 = no shift).
        noise_std: see :func:`add_gaussian_noise` (0 = no noise).
        max_degrees: see :func:`random_rotation` (0 = no rotation).
        image_shape: ``(H, W)`` or ``(C, H, W)`` of one image when ``x`` is flattened.
        generator: optional CPU ``torch.Generator`` shared by the three transforms.

    Returns:
        The augmented batch, shaped like ``x``.

    Example:
        >>> aug = lambda xb: augment_batch(xb, max_shift=1, image_shape=(8, 8))
    """
    max_shift = check_int("max_shift", max_shift, minimum=0)
    noise_std = check_nonnegative("noise_std", noise_std)
    max_degrees = check_nonnegative("max_degrees", max_degrees)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    flat_shape = None
    if image_shape is not None:
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) not in (2, 3) or math.prod(image_shape) != math.prod(x.shape[1:]):
            raise ValueError(
                f"image_shape must be (H, W) or (C, H, W) with as many pixels as one example "
                f"({math.prod(x.shape[1:])}), got {image_shape}"
            )
        flat_shape = tuple(x.shape)
        x = x.reshape(x.shape[0], *image_shape)
    out = x
    if max_degrees > 0:
        out = random_rotation(out, max_degrees, generator=generator)
    if max_shift > 0:
        out = random_shift(out, max_shift, generator=generator)
    if noise_std > 0:
        out = add_gaussian_noise(out, noise_std, generator=generator)
    if out is x:
        out = x.clone()
    return out.reshape(flat_shape) if flat_shape is not None else out
