"""A clustermap of cells x handcrafted features, z-scored per well (the nucleocentric study).

`feature_clustermap_matrix` computes what is drawn: every labelled cell's features z-scored
within its group (``report.feature_clustermap.zscore_by``, plate and well by default: the
per-well z-score of the study's random forest), then at most ``max_cells`` cells, each class
in proportion to its size and every class shown (`stratified_sample`), then the features
undefined or constant among those cells left out. `feature_clustermap_figures` reads the
feature tables and writes ``feature_clustermap.png``, rows coloured by class.

Examples
--------
>>> labels = np.array(["a"] * 90 + ["b"] * 9 + ["c"])
>>> np.unique(labels[stratified_sample(labels, 20)], return_counts=True)[1].tolist()
[17, 2, 1]
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.models.feature_prep import zscore_per_group
from cellbench.paths import ResultsPaths
from cellbench.report.figures import save_figure
from cellbench.report.zscore import group_keys, zscore_title

log = logging.getLogger(__name__)

ZSCORE_KEY = "report.feature_clustermap.zscore_by"
Z_LIMIT = 3.0  # the colour scale's ends, in SDs: larger |z| take the end colours


def stratified_sample(labels: np.ndarray, max_cells: int, *, seed: int = 0) -> np.ndarray:
    """Sorted positions of at most `max_cells` cells, each class in proportion to its size.

    Every class gets one cell first (when `max_cells` is below the number of classes, the
    largest classes one each); the other draws are shared in proportion to each class's
    remaining cells, by largest remainder. Without replacement, seeded; every cell when
    there are no more than `max_cells`.

    Parameters
    ----------
    labels : (N,) array-like
        Class of each cell.
    max_cells : int
        At least 1.
    seed : int

    Returns
    -------
    (min(N, max_cells),) ndarray of int
    """
    if max_cells < 1:
        raise ValueError(f"max_cells must be >= 1; got {max_cells!r}")
    labels = np.asarray(labels).astype(str)
    if len(labels) <= max_cells:
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.zeros(len(classes), dtype=np.int64)
    if len(classes) >= max_cells:
        quota[np.argsort(-counts, kind="stable")[:max_cells]] = 1
    else:
        share = (max_cells - len(classes)) * (counts - 1) / (counts - 1).sum()
        quota = 1 + np.floor(share).astype(np.int64)
        left = max_cells - int(quota.sum())
        quota[np.argsort(-(share - np.floor(share)), kind="stable")[:left]] += 1
    quota = np.minimum(quota, counts)
    rng = np.random.default_rng(seed)
    taken = [
        rng.choice(np.flatnonzero(labels == name), n, replace=False)
        for name, n in zip(classes, quota, strict=True)
        if n
    ]
    return np.sort(np.concatenate(taken)).astype(np.int64)


def feature_clustermap_matrix(
    cells: pd.DataFrame,
    features: np.ndarray,
    names: list[str],
    labels: np.ndarray,
    *,
    zscore_by: list[str] | None,
    max_cells: int,
    seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The cells x features values of the clustermap, and the class of each of its rows.

    Parameters
    ----------
    cells : DataFrame
        The metadata of each cell (``Metadata_`` columns), a row per row of `features`.
    features : (N, F) ndarray
        NaN where undefined.
    names : list of str
        The F feature names.
    labels : (N,) array-like
        Class of each cell.
    zscore_by : list of str or None
        Metadata columns whose groups are each z-scored, over all of the group's cells
        before any is drawn (plate and well: per well); None: over every cell.
    max_cells : int
        Cells drawn, at most (`stratified_sample`).
    seed : int

    Returns
    -------
    values : DataFrame
        One row per drawn cell (its index: the cell's position in `cells`), one column per
        feature finite and not constant over the drawn cells.
    classes : (R,) ndarray of str

    Raises
    ------
    ConfigError
        `cells` lack a column of `zscore_by` (the message names the config key).
    ValueError
        Fewer than 2 cells or 2 features left to cluster.
    """
    if zscore_by:
        groups = group_keys(cells, zscore_by, key=ZSCORE_KEY)
    else:
        groups = np.zeros(len(cells), dtype=np.int64)
    z = zscore_per_group(features, groups)
    rows = stratified_sample(labels, max_cells, seed=seed)
    drawn = z[rows]
    finite = np.isfinite(drawn)
    spread = np.ptp(np.where(finite, drawn, 0.0), axis=0) if len(rows) else np.zeros(z.shape[1])
    usable = finite.all(axis=0) & (spread > 0)
    if len(rows) < 2 or usable.sum() < 2:
        raise ValueError(
            f"a feature clustermap needs 2 cells and 2 features that vary among them; got "
            f"{len(rows)} cell(s), {int(usable.sum())} feature(s) of {len(names)}"
        )
    kept = [name for name, keep in zip(names, usable, strict=True) if keep]
    values = pd.DataFrame(drawn[:, usable], index=rows, columns=kept)
    return values, np.asarray(labels).astype(str)[rows]


def feature_clustermap_figures(
    feature_tables: list[Path], label_column: str, settings, paths: ResultsPaths, *, split=None
) -> list[Path]:
    """``feature_clustermap.png``: drawn cells x handcrafted features, rows coloured by class.

    Parameters
    ----------
    feature_tables : list of Path
        The experiment's feature tables (those that exist).
    label_column : str
        ``data.label_column``.
    settings : FeatureClustermap or None
        ``report.feature_clustermap``; None: no figure.
    paths : ResultsPaths
    split : SplitConfig, optional
        The experiment's split, for the classes of a co-culture split (as the models read).

    Returns
    -------
    list of Path
        The PNG, or nothing without settings or feature tables.
    """
    from cellbench.config import RandomForestModel
    from cellbench.models.inputs import load_model_data
    from cellbench.report.figures_representation import clustermap_figure

    if settings is None or not feature_tables:
        return []
    every_feature = RandomForestModel(name="handcrafted")  # reads every feature column
    data = load_model_data(every_feature, label_column, feature_tables, [], split=split)
    values, classes = feature_clustermap_matrix(
        data.cells,
        data.features,
        data.feature_names,
        data.labels,
        zscore_by=settings.zscore_by,
        max_cells=settings.max_cells,
        seed=settings.seed,
    )
    how = zscore_title(settings.zscore_by) or "z-scored over every cell"
    title = f"{len(values)} cells x {values.shape[1]} handcrafted features, {how}"
    figure = clustermap_figure(
        values.to_numpy(),
        None,
        title=title,
        row_classes=classes,
        zscore=False,
        column_name="features",
        value_limit=Z_LIMIT,
    )
    log.info("report: feature clustermap of %d cells x %d features", *values.shape)
    written = save_figure(figure, paths.report_figure("feature_clustermap"))
    return [p for p in written if p.suffix == ".png"]
