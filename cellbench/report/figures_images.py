"""Figures of images: crop montages per class, segmentation overlays, Grad-CAM panels.

Multichannel images are shown as an RGB composite: each channel is scaled between two
percentiles (computed over every image of the figure, so panels compare) and given a colour,
and the coloured channels are added. Write a returned Figure with
`cellbench.report.figures.save_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

# Colour of channel k in a composite: DNA (channel 0 by convention) blue, then green, red, ...
CHANNEL_COLOURS = (
    (0.0, 0.4, 1.0),
    (0.0, 1.0, 0.0),
    (1.0, 0.0, 0.0),
    (1.0, 0.0, 1.0),
    (0.0, 1.0, 1.0),
    (1.0, 1.0, 0.0),
)


def channel_limits(
    images: np.ndarray, *, pmin: float = 1.0, pmax: float = 99.8
) -> tuple[np.ndarray, np.ndarray]:
    """Low and high percentile of each channel over a stack of (N, C, H, W) images."""
    images = np.asarray(images, dtype=float)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W); got shape {images.shape}")
    low = np.percentile(images, pmin, axis=(0, 2, 3))
    high = np.percentile(images, pmax, axis=(0, 2, 3))
    return low, np.where(high > low, high, low + 1.0)


def rgb_composite(
    image: np.ndarray,
    low: Sequence[float],
    high: Sequence[float],
    colours: Sequence[tuple[float, float, float]] = CHANNEL_COLOURS,
) -> np.ndarray:
    """(H, W, 3) floats in [0, 1] from a (C, H, W) image: grey for one channel, else colours.

    Parameters
    ----------
    image : (C, H, W) ndarray
    low, high : sequence of float
        Per-channel values mapped to 0 and 1 (see `channel_limits`).
    colours : sequence of RGB triples
        Colour of each channel; needs at least C entries when C > 1.
    """
    image = np.asarray(image, dtype=float)
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W); got shape {image.shape}")
    n_channels = image.shape[0]
    scaled = (image - np.asarray(low)[:, None, None]) / (
        np.asarray(high)[:, None, None] - np.asarray(low)[:, None, None]
    )
    scaled = np.clip(scaled, 0.0, 1.0)
    if n_channels == 1:
        return np.repeat(scaled[0][..., None], 3, axis=-1)
    if n_channels > len(colours):
        raise ValueError(f"{n_channels} channels but only {len(colours)} colours; pass colours=")
    rgb = np.einsum("chw,ck->hwk", scaled, np.asarray(colours[:n_channels], dtype=float))
    return np.clip(rgb, 0.0, 1.0)


def crop_montage_figure(
    crops: np.ndarray,
    labels: Sequence,
    *,
    per_class: int = 8,
    seed: int = 0,
    title: str = "",
) -> Figure:
    """A grid of crops: one row per class, up to `per_class` crops drawn at random (seeded).

    Parameters
    ----------
    crops : (N, C, H, W) ndarray
    labels : (N,) sequence
        Class of each crop; rows are sorted by class name.
    per_class : int
        Crops per row; a class with fewer shows them all.
    seed : int
        Seed of the choice of crops.
    title : str
    """
    crops = np.asarray(crops)
    labels = np.asarray(labels)
    if crops.ndim != 4 or len(labels) != len(crops):
        raise ValueError(
            f"crops must be (N, C, H, W) with one label each; got {crops.shape} and "
            f"{len(labels)} labels"
        )
    low, high = channel_limits(crops)
    rng = np.random.default_rng(seed)
    classes = sorted(set(labels.tolist()), key=str)
    fig, axes = plt.subplots(
        len(classes),
        per_class,
        figsize=(1.1 * per_class + 1.2, 1.1 * len(classes) + 0.4),
        squeeze=False,
    )
    for row, name in enumerate(classes):
        members = np.flatnonzero(labels == name)
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(chosen):
                ax.imshow(rgb_composite(crops[chosen[col]], low, high))
        axes[row, 0].set_ylabel(f"{name}\n(n={len(members)})", rotation=0, ha="right", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def segmentation_overlay_figure(
    images: Sequence[np.ndarray], labels: Sequence[np.ndarray], *, titles: Sequence[str] = ()
) -> Figure:
    """Fields with the outlines of their segmented objects, one panel per field.

    Parameters
    ----------
    images : sequence of (Y, X) or (C, Y, X) ndarray
    labels : sequence of (Y, X) ndarray of int
        Label image of each field (0 = background).
    titles : sequence of str
    """
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"need as many label images as images; got {len(images)}, {len(labels)}")
    fig, axes = plt.subplots(1, len(images), figsize=(4.2 * len(images), 4.4), squeeze=False)
    for k, (image, label) in enumerate(zip(images, labels, strict=True)):
        stack = np.asarray(image, dtype=float)
        stack = stack[None] if stack.ndim == 2 else stack
        if stack.shape[1:] != np.shape(label):
            raise ValueError(f"image {k} is {stack.shape[1:]} but its labels {np.shape(label)}")
        low, high = channel_limits(stack[None])
        rgb = rgb_composite(stack, low, high)
        rgb[find_boundaries(np.asarray(label), mode="inner")] = (1.0, 0.85, 0.0)
        ax = axes[0, k]
        ax.imshow(rgb)
        ax.set_axis_off()
        n_objects = len(np.unique(label)) - int((np.asarray(label) == 0).any())
        ax.set_title(titles[k] if k < len(titles) else f"{n_objects} objects")
    fig.tight_layout()
    return fig


def gradcam_figure(
    crops: np.ndarray,
    heatmaps: np.ndarray,
    *,
    titles: Sequence[str] = (),
    alpha: float = 0.45,
) -> Figure:
    """Grad-CAM panels: each crop above the same crop overlaid with its class-activation map.

    Parameters
    ----------
    crops : (N, C, H, W) ndarray
    heatmaps : (N, H, W) ndarray of float
        Activation maps at crop resolution, any scale (each is scaled to [0, 1]).
    titles : sequence of str
        One per crop, e.g. "true / predicted".
    alpha : float
        Opacity of the heatmap.
    """
    crops = np.asarray(crops)
    heatmaps = np.asarray(heatmaps, dtype=float)
    if crops.ndim != 4 or heatmaps.shape != (crops.shape[0], *crops.shape[2:]):
        raise ValueError(
            f"need crops (N, C, H, W) and heatmaps (N, H, W); got {crops.shape}, {heatmaps.shape}"
        )
    low, high = channel_limits(crops)
    n = len(crops)
    fig, axes = plt.subplots(2, n, figsize=(1.8 * n + 0.4, 4.0), squeeze=False)
    for k in range(n):
        rgb = rgb_composite(crops[k], low, high)
        heat = heatmaps[k] - heatmaps[k].min()
        heat = heat / heat.max() if heat.max() > 0 else heat
        axes[0, k].imshow(rgb)
        axes[1, k].imshow(rgb)
        axes[1, k].imshow(heat, cmap="jet", alpha=alpha, vmin=0, vmax=1)
        axes[0, k].set_title(titles[k] if k < len(titles) else "", fontsize=8)
        for ax in axes[:, k]:
            ax.set_axis_off()
    fig.tight_layout()
    return fig
