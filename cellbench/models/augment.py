"""Augmentation of image batches: flips, 90-degree turns, brightness and contrast jitter.

Every random draw comes from a CPU `torch.Generator`, so a batch is augmented the same way
for the same generator state whatever the device. Cells have no preferred orientation, so
flips and quarter turns are label-preserving; brightness and contrast jitter mimic
illumination and staining differences between wells.
"""

from __future__ import annotations

import functools

import torch

from cellbench.models.training import Augment


def augment_batch(
    images: torch.Tensor,
    generator: torch.Generator,
    *,
    flips: bool = True,
    rotations: bool = True,
    brightness: float = 0.1,
    contrast: float = 0.1,
) -> torch.Tensor:
    """Randomly flip, turn and jitter every image of a batch independently.

    Parameters
    ----------
    images : (N, C, H, W) float Tensor
        Any device; not modified.
    generator : torch.Generator
        A CPU generator; all random draws come from it.
    flips : bool
        Flip each image horizontally and vertically, each with probability 1/2.
    rotations : bool
        Turn each image by 0, 90, 180 or 270 degrees; needs square images (H == W).
    brightness : float
        Add a per-image, per-channel offset drawn uniformly from [-brightness, brightness].
    contrast : float
        Scale each image channel about its mean by a factor drawn uniformly from
        [1 - contrast, 1 + contrast].

    Returns
    -------
    (N, C, H, W) Tensor

    Examples
    --------
    >>> rng = torch.Generator().manual_seed(0)
    >>> augment_batch(torch.zeros(4, 2, 8, 8), rng).shape
    torch.Size([4, 2, 8, 8])
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    if rotations and h != w:
        raise ValueError(f"rotations need square images, got H={h}, W={w}; pass rotations=False")
    if flips:
        images = flip(images, _coin(n, generator), dim=-1)
        images = flip(images, _coin(n, generator), dim=-2)
    if rotations:
        turns = torch.randint(0, 4, (n,), generator=generator)
        images = rotate90(images, turns)
    if contrast > 0:
        factor = 1 + (torch.rand(n, c, generator=generator) * 2 - 1) * contrast
        mean = images.mean(dim=(-2, -1), keepdim=True)
        images = (images - mean) * factor.to(images)[:, :, None, None] + mean
    if brightness > 0:
        offset = (torch.rand(n, c, generator=generator) * 2 - 1) * brightness
        images = images + offset.to(images)[:, :, None, None]
    return images


def make_augment(**options) -> Augment:
    """`augment_batch` with fixed options, for ``FitSettings(augment=...)``.

    Examples
    --------
    >>> augment = make_augment(brightness=0.2, contrast=0.0)
    """
    return functools.partial(augment_batch, **options)


def flip(images: torch.Tensor, which: torch.Tensor, dim: int) -> torch.Tensor:
    """Flip the images selected by `which` ((N,) bool) along `dim`; keep the others."""
    which = which.to(images.device)[:, None, None, None]
    return torch.where(which, images.flip(dim), images)


def rotate90(images: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Turn image i of (N, C, H, H) `images` by ``90 * turns[i]`` degrees counter-clockwise.

    Examples
    --------
    >>> x = torch.arange(8.0).reshape(2, 1, 2, 2)
    >>> ones = torch.ones(2, dtype=torch.long)
    >>> y = rotate90(rotate90(rotate90(rotate90(x, ones), ones), ones), ones)
    >>> bool((y == x).all())
    True
    """
    turns = turns.to(images.device) % 4
    out = images.clone()
    for k in (1, 2, 3):
        chosen = turns == k
        if bool(chosen.any()):
            out[chosen] = torch.rot90(images[chosen], k, dims=(-2, -1))
    return out


def _coin(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) < 0.5
