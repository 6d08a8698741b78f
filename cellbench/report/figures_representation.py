"""Representation figures beyond the UMAP: PCA, t-SNE, clustermap, NSC confusion, neighbours.

The drug-perturbation and BBBC021 VAE studies' figures of a representation.

Each computation (`pca_coordinates`, `tsne_coordinates`, `cluster_order`, `nsc_confusion`,
`nearest_neighbours`) is separate from its drawing, so tests check the numbers directly. Write a
returned Figure with `cellbench.report.figures.save_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy.cluster import hierarchy  # noqa: E402

from cellbench.report.figures_images import channel_limits, rgb_composite  # noqa: E402

TSNE_PERPLEXITY = 30.0  # sklearn's default; capped below the number of cells


def _check_features(features: np.ndarray, minimum: int = 2) -> np.ndarray:
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or len(x) < minimum or not np.isfinite(x).all():
        raise ValueError(f"features must be a finite (N, D) array, N >= {minimum}; got {x.shape}")
    return x


def pca_coordinates(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components of (N, D) features and their explained variance ratio.

    Returns
    -------
    coords : (N, 2) ndarray
        Zero-padded when D or N - 1 is below 2.
    explained : (2,) ndarray
        Share of the variance each component explains, in [0, 1].
    """
    from sklearn.decomposition import PCA

    x = _check_features(features)
    n = min(2, x.shape[1], len(x) - 1)
    pca = PCA(n_components=n).fit(x)
    coords = np.pad(pca.transform(x), ((0, 0), (0, 2 - n)))
    return coords, np.pad(pca.explained_variance_ratio_, (0, 2 - n))


def pca_axis_labels(explained: np.ndarray) -> tuple[str, str]:
    """``("PC1 (41.2%)", "PC2 (13.0%)")`` from the explained variance ratios."""
    return tuple(f"PC{k + 1} ({100 * float(v):.1f}%)" for k, v in enumerate(explained[:2]))


def tsne_coordinates(
    features: np.ndarray, *, seed: int = 0, perplexity: float = TSNE_PERPLEXITY
) -> np.ndarray:
    """2-D t-SNE coordinates of (N, D) features, seeded (PCA initialisation).

    The perplexity is capped at (N - 1) / 3 (and at least 1), below the number of cells as
    scikit-learn requires, so small test sets still draw.
    """
    from sklearn.manifold import TSNE

    x = _check_features(features, minimum=3)
    capped = float(max(1.0, min(perplexity, (len(x) - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=capped, init="pca", random_state=seed)
    return np.asarray(tsne.fit_transform(x), dtype=float)


def well_means(table: pd.DataFrame, columns: list[str], keys: list[str]) -> pd.DataFrame:
    """Mean of the `columns` of the cells of each group of `keys` (e.g. plate, well, label)."""
    return table.groupby(keys, sort=True, dropna=False)[columns].mean().reset_index()


def zscore_columns(values: np.ndarray) -> np.ndarray:
    """Each column minus its mean over its standard deviation (a constant column becomes 0)."""
    x = np.asarray(values, dtype=float)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def cluster_order(values: np.ndarray, *, method: str = "average") -> tuple[np.ndarray, np.ndarray]:
    """Linkages of the rows and of the columns of (R, D) values (Euclidean, `method`)."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or min(x.shape) < 2:
        raise ValueError(f"need at least 2 rows and 2 columns to cluster; got {x.shape}")
    return hierarchy.linkage(x, method=method), hierarchy.linkage(x.T, method=method)


def clustermap_figure(
    values: np.ndarray,
    row_labels: Sequence[str] | None,
    *,
    title: str = "",
    row_classes: Sequence | None = None,
    zscore: bool = True,
    column_name: str = "embedding dimensions",
    value_limit: float | None = None,
) -> Figure:
    """Heatmap of (R, D) values (rows = wells or cells, columns = dimensions), both clustered.

    Rows and columns are reordered by the leaves of their average linkages (`cluster_order`),
    with dendrograms above and to the left. The heatmap is the figure's ``fig.heatmap_axes``;
    its rows follow ``fig.row_order``.

    Parameters
    ----------
    values : (R, D) ndarray
        Finite.
    row_labels : (R,) sequence of str or None
        Tick labels of the rows; None: no tick labels (too many rows to read).
    title : str
    row_classes : (R,) sequence, optional
        Class of each row, drawn as a strip of colours left of the heatmap (the UMAP's
        colours: classes sorted, tab10) with a legend; ``fig.row_class_axes``.
    zscore : bool
        Z-score each column over the rows first (`zscore_columns`); False: `values` are drawn
        as given (already standardised, e.g. per well).
    column_name : str
        What the columns are, for the x axis.
    value_limit : float, optional
        The colour scale's ends, -limit to +limit (larger values take the end colours);
        None: the largest absolute value.
    """
    z = zscore_columns(values) if zscore else np.asarray(values, dtype=float)
    if row_labels is not None and len(row_labels) != len(z):
        raise ValueError(f"need one label per row; got {len(row_labels)} for {len(z)} rows")
    rows, cols = cluster_order(z)
    height = min(2.0 + 0.18 * len(z), 14.0)
    fig = plt.figure(figsize=(9, height))
    left = fig.add_axes([0.02, 0.08, 0.13, 0.72])
    top = fig.add_axes([0.28, 0.81, 0.55, 0.12])
    heat = fig.add_axes([0.28, 0.08, 0.55, 0.72])
    bar = fig.add_axes([0.86, 0.08, 0.02, 0.72])
    row_tree = hierarchy.dendrogram(rows, orientation="left", ax=left, no_labels=True)
    col_tree = hierarchy.dendrogram(cols, ax=top, no_labels=True)
    for ax in (left, top):
        ax.set_axis_off()
    # dendrogram leaves run bottom to top on the left; the heatmap's row 0 is drawn at the top
    row_order = np.asarray(row_tree["leaves"])
    col_order = np.asarray(col_tree["leaves"])
    limit = value_limit or float(np.abs(z).max()) or 1.0
    image = heat.imshow(
        z[row_order[::-1]][:, col_order],
        aspect="auto",
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
    )
    heat.set_yticks([] if row_labels is None else np.arange(len(z)))
    if row_labels is not None:
        heat.set_yticklabels([str(row_labels[i]) for i in row_order[::-1]], fontsize=6)
        heat.yaxis.tick_right()
    heat.set_xticks([])
    heat.set_xlabel(f"{column_name} ({z.shape[1]}, clustered)")
    fig.colorbar(image, cax=bar, label="z-score")
    if row_classes is not None:
        fig.row_class_axes = _class_strip(fig, row_classes, row_order[::-1])
    fig.suptitle(title)
    fig.heatmap_axes = heat
    fig.row_order = row_order
    return fig


def _class_strip(fig: Figure, classes: Sequence, shown_order: np.ndarray):
    """A column of class colours beside the heatmap (top row first) and its legend."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    classes = np.asarray(classes).astype(str)
    if len(classes) != len(shown_order):
        raise ValueError(f"need one class per row; got {len(classes)} for {len(shown_order)}")
    names = sorted(set(classes.tolist()))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    colours = [cmap(k % cmap.N) for k in range(len(names))]
    code = {name: k for k, name in enumerate(names)}
    codes = np.array([code[c] for c in classes[shown_order]])
    strip = fig.add_axes([0.245, 0.08, 0.025, 0.72])
    strip.imshow(
        codes[:, None],
        aspect="auto",
        cmap=ListedColormap(colours),
        vmin=-0.5,
        vmax=len(names) - 0.5,
        interpolation="nearest",
    )
    strip.set_axis_off()
    handles = [Patch(color=c, label=n) for n, c in zip(names, colours, strict=True)]
    fig.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(0.01, 0.94), fontsize=7, frameon=False
    )
    return strip


def nsc_confusion(neighbours: pd.DataFrame) -> pd.DataFrame:
    """MOA x MOA counts of treatments: rows their MOA, columns the MOA NSC assigned them.

    `neighbours` is `NSCResult.neighbours` (columns ``moa`` and ``neighbour_moa``); the MOAs
    of both columns label both axes, sorted.
    """
    missing = [c for c in ("moa", "neighbour_moa") if c not in neighbours.columns]
    if missing:
        raise ValueError(f"NSC table lacks column(s) {missing}; got {list(neighbours.columns)}")
    true, assigned = neighbours["moa"].astype(str), neighbours["neighbour_moa"].astype(str)
    moas = sorted(set(true) | set(assigned))
    counts = pd.crosstab(true, assigned).reindex(index=moas, columns=moas, fill_value=0)
    counts.index.name, counts.columns.name = "moa", "nsc_moa"
    return counts.astype(int)


def nsc_confusion_figure(counts: pd.DataFrame, *, title: str = "") -> Figure:
    """Heatmap of `nsc_confusion` counts, each cell annotated with its count."""
    values = counts.to_numpy()
    size = 2.5 + 0.45 * len(counts)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(values, cmap="Blues", vmin=0)
    ax.set_xticks(np.arange(len(counts.columns)))
    ax.set_xticklabels(counts.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(np.arange(len(counts.index)))
    ax.set_yticklabels(counts.index, fontsize=7)
    ax.set_xlabel("MOA of the nearest treatment of another compound")
    ax.set_ylabel("true MOA")
    high = values.max() if values.size else 0
    for (i, j), n in np.ndenumerate(values):
        if n:
            colour = "white" if n > high / 2 else "black"
            ax.text(j, i, str(n), ha="center", va="center", color=colour, fontsize=7)
    fig.colorbar(image, ax=ax, label="treatments")
    accuracy = np.trace(values) / values.sum() if values.sum() else float("nan")
    ax.set_title(f"{title}\nNSC accuracy {accuracy:.3f} ({values.sum()} treatments)")
    fig.tight_layout()
    return fig


def choose_queries(labels: Sequence, *, seed: int = 0) -> np.ndarray:
    """One random index per class (classes sorted by name), seeded."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes = sorted(set(labels.tolist()), key=str)
    return np.array([rng.choice(np.flatnonzero(labels == c)) for c in classes], dtype=int)


def nearest_neighbours(embeddings: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) indices of the k most cosine-similar other rows of each query, nearest first.

    Ties go to the lower index (stable sort).
    """
    from cellbench.evaluate.retrieval import unit_rows

    unit = unit_rows(embeddings)
    k = min(k, len(unit) - 1)
    sims = unit[queries] @ unit.T
    sims[np.arange(len(queries)), queries] = -np.inf  # never the query itself
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def neighbour_mosaic_figure(
    crops: np.ndarray, labels: Sequence, queries: np.ndarray, neighbours: np.ndarray, *, title=""
) -> Figure:
    """One row per query: its crop, then its neighbours' crops, each titled with its label.

    Parameters
    ----------
    crops : (N, C, H, W) ndarray
        Crops of every cell the indices refer to.
    labels : (N,) sequence
    queries : (Q,) ndarray of int
    neighbours : (Q, k) ndarray of int
        From `nearest_neighbours`.
    """
    crops, labels = np.asarray(crops), np.asarray(labels).astype(str)
    if crops.ndim != 4 or len(crops) != len(labels):
        raise ValueError(f"need (N, C, H, W) crops with N labels; got {crops.shape}, {len(labels)}")
    low, high = channel_limits(crops)
    n_rows, n_cols = len(queries), 1 + neighbours.shape[1]
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(1.3 * n_cols, 1.45 * n_rows + 0.5), squeeze=False
    )
    for row, query in enumerate(queries):
        shown = [query, *neighbours[row]]
        for col, (ax, index) in enumerate(zip(axes[row], shown, strict=True)):
            ax.imshow(rgb_composite(crops[index], low, high))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(("query: " if col == 0 else "") + labels[index], fontsize=6)
        for spine in axes[row, 0].spines.values():
            spine.set_edgecolor("orange")
            spine.set_linewidth(2)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
