"""Figures of a VAE's latent analyses, drawn from the arrays its evaluate task wrote.

Latent usage (KL per dimension, sorted, with the "used" threshold), sensitivity per dimension,
and image grids: traversal (a row per dimension, a column per offset), interpolation (one row)
and reconstructions (originals above their reconstructions). Images arrive in [0, 1]
(``latent_grids.npz``); multi-channel crops are drawn as colour composites
(`cellbench.report.figures_images.rgb_composite`). No torch here: the report reads files.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cellbench.report.figures_images import channel_limits, rgb_composite  # noqa: E402


def latent_usage_figure(kl: np.ndarray, threshold: float, *, title: str = "") -> Figure:
    """Bars of the (D,) mean KL per latent dimension (nats), largest first, and the threshold.

    Each bar is labelled with its dimension; a dashed line marks `threshold`, above which a
    dimension counts as used.
    """
    kl = np.asarray(kl, dtype=float)
    order = np.argsort(-kl, kind="stable")
    fig, ax = plt.subplots(figsize=(max(4.0, 0.18 * len(kl) + 2), 3.2))
    ax.bar(np.arange(len(kl)), kl[order], color="tab:blue")
    ax.axhline(threshold, color="tab:red", linestyle="--", label=f"used: KL > {threshold:g}")
    if len(kl) <= 40:
        ax.set_xticks(np.arange(len(kl)), [str(d) for d in order], fontsize=7)
    ax.set_xlabel("latent dimension (sorted by KL)")
    ax.set_ylabel("mean KL (nats)")
    ax.legend(loc="upper right")
    ax.set_title(title or f"latent usage: {int((kl > threshold).sum())} of {len(kl)} used")
    fig.tight_layout()
    return fig


def sensitivity_figure(sensitivity: np.ndarray, *, title: str = "") -> Figure:
    """Bars of the (D,) mean absolute image change per unit of each latent dimension."""
    sensitivity = np.asarray(sensitivity, dtype=float)
    order = np.argsort(-sensitivity, kind="stable")
    fig, ax = plt.subplots(figsize=(max(4.0, 0.18 * len(sensitivity) + 2), 3.2))
    ax.bar(np.arange(len(sensitivity)), sensitivity[order], color="tab:green")
    if len(sensitivity) <= 40:
        ax.set_xticks(np.arange(len(sensitivity)), [str(d) for d in order], fontsize=7)
    ax.set_xlabel("latent dimension (sorted by sensitivity)")
    ax.set_ylabel("mean |image change| per latent unit")
    ax.set_title(title or "decoder sensitivity per latent dimension")
    fig.tight_layout()
    return fig


def image_grid_figure(
    images: np.ndarray,
    row_labels: Sequence[str],
    column_labels: Sequence[str] | None = None,
    *,
    title: str = "",
) -> Figure:
    """A grid of (R, K, C, H, W) images: R rows of K panels, one colour scale for all.

    Parameters
    ----------
    images : (R, K, C, H, W) ndarray
        Intensities in [0, 1]; the channels' display limits are their percentiles over the grid.
    row_labels : sequence of str
        One per row, beside its first panel.
    column_labels : sequence of str, optional
        One per column, above the first row.
    title : str
    """
    images = np.asarray(images, dtype=float)
    if images.ndim != 5 or len(row_labels) != images.shape[0]:
        raise ValueError(
            f"images must be (R, K, C, H, W) with one label per row; got {images.shape} and "
            f"{len(row_labels)} labels"
        )
    rows, columns = images.shape[:2]
    low, high = channel_limits(images.reshape(-1, *images.shape[2:]))
    fig, axes = plt.subplots(
        rows, columns, figsize=(1.0 * columns + 1.4, 1.0 * rows + 0.6), squeeze=False
    )
    for r in range(rows):
        for k in range(columns):
            ax = axes[r, k]
            ax.imshow(rgb_composite(images[r, k], low, high))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and column_labels is not None:
                ax.set_title(str(column_labels[k]), fontsize=7)
        axes[r, 0].set_ylabel(str(row_labels[r]), rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def traversal_figure(
    traversal: np.ndarray, dims: Sequence[int], offsets: Sequence[float], *, title: str = ""
) -> Figure:
    """(dims, offsets, C, H, W) traversal: a row per latent dimension, a column per offset."""
    return image_grid_figure(
        traversal,
        [f"z{int(d)}" for d in dims],
        [f"{o:+.2f}" for o in offsets],
        title=title or "latent traversal around one test cell",
    )


def interpolation_figure(strip: np.ndarray, ends: Sequence[str], *, title: str = "") -> Figure:
    """(steps, C, H, W) decodings between two cells' mean latents, in one row."""
    steps = len(strip)
    labels = [f"{t:.2f}" for t in np.linspace(0, 1, steps)]
    return image_grid_figure(
        np.asarray(strip)[None],
        [f"{ends[0]} -> {ends[1]}"],
        labels,
        title=title or "interpolation between two test cells",
    )


def reconstruction_figure(
    originals: np.ndarray, reconstructions: np.ndarray, labels: Sequence[str], *, title: str = ""
) -> Figure:
    """(n, C, H, W) originals in the top row, their reconstructions below, labelled by class."""
    return image_grid_figure(
        np.stack([originals, reconstructions]),
        ["original", "reconstruction"],
        [str(label) for label in labels],
        title=title or "test cells and their reconstructions",
    )
