"""UMAP of embeddings (features or a network's penultimate layer), coloured by class.

`umap_embedding` computes the 2-D coordinates (seeded, so a rerun draws the same picture);
`embedding_figure` draws them. Write the figure with `cellbench.report.figures.save_figure`.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cellbench.allocation import task_cpus  # noqa: E402

# Fewer points than this are laid out by PCA instead: UMAP needs a neighbourhood graph.
MIN_UMAP_POINTS = 4


def _import_umap():
    """Import umap-learn without its optional TensorFlow part (ParametricUMAP), unused here.

    ``import umap`` tries ``import tensorflow``, which takes seconds and probes for GPUs. When
    TensorFlow is not imported yet, it is hidden for the duration of the import (umap then
    skips ParametricUMAP with an ImportWarning, silenced here) and restored afterwards.
    """
    if "umap" in sys.modules:
        return sys.modules["umap"]
    hide = "tensorflow" not in sys.modules
    if hide:
        sys.modules["tensorflow"] = None  # makes `import tensorflow` raise ImportError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImportWarning)
            import umap
    finally:
        if hide:
            del sys.modules["tensorflow"]
    return umap


def umap_embedding(
    features: np.ndarray,
    *,
    seed: int | None = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_jobs: int | None = None,
) -> np.ndarray:
    """2-D UMAP coordinates of (N, D) features, seeded.

    Parameters
    ----------
    features : (N, D) ndarray of float
        One row per cell; finite.
    seed : int or None
        UMAP's random_state: with a seed UMAP runs single-threaded, so results repeat; None
        lets it run on `n_jobs` threads, drawing a different picture each time.
    n_neighbors : int
        Reduced to N - 1 when there are fewer points.
    min_dist : float
    n_jobs : int, optional
        UMAP's threads when `seed` is None (with a seed UMAP allows only 1). Default: the
        task's CPUs (`cellbench.allocation.task_cpus`).

    Returns
    -------
    (N, 2) ndarray of float
        With fewer than `MIN_UMAP_POINTS` points, the first two principal components instead.
    """
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or len(x) == 0 or not np.isfinite(x).all():
        raise ValueError(f"features must be a non-empty, finite (N, D) array; got {x.shape}")
    if len(x) < MIN_UMAP_POINTS:
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        coords = centred @ vt[:2].T
        return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    umap = _import_umap()
    reducer = umap.UMAP(
        n_neighbors=min(n_neighbors, len(x) - 1),
        min_dist=min_dist,
        random_state=seed,
        n_jobs=_umap_threads(seed, n_jobs),
    )
    return np.asarray(reducer.fit_transform(x), dtype=float)


def _umap_threads(seed: int | None, n_jobs: int | None) -> int:
    """UMAP's `n_jobs`: 1 when seeded (UMAP would override any other value with a warning)."""
    if seed is not None:
        return 1
    return task_cpus() if n_jobs is None else n_jobs


def embedding_figure(
    coords: np.ndarray,
    labels: Sequence,
    *,
    title: str = "",
    point_size: float = 6.0,
    axis_labels: tuple[str, str] = ("UMAP 1", "UMAP 2"),
) -> Figure:
    """Scatter of 2-D coordinates coloured by class, with a legend.

    Parameters
    ----------
    coords : (N, 2) ndarray
        From `umap_embedding`.
    labels : (N,) sequence
        Class of each point.
    title : str
    point_size : float
    axis_labels : (str, str)
        Names of the x and y axes (``"PC1 (23.0%)"`` for PCA, ``"t-SNE 1"``...).
    """
    coords = np.asarray(coords, dtype=float)
    labels = np.asarray(labels)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(labels) != len(coords):
        raise ValueError(f"need (N, 2) coords and N labels; got {coords.shape}, {len(labels)}")
    classes = sorted(set(labels.tolist()), key=str)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for k, name in enumerate(classes):
        member = labels == name
        ax.scatter(
            coords[member, 0],
            coords[member, 1],
            s=point_size,
            color=cmap(k % cmap.N),
            label=f"{name} ({member.sum()})",
            alpha=0.8,
            linewidths=0,
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, markerscale=2)
    fig.tight_layout()
    return fig
