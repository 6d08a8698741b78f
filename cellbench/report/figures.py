"""Figures of the report, drawn with matplotlib's non-interactive backend.

Each ``*_figure`` function returns a matplotlib Figure and writes nothing; `save_figure` writes
it as PNG and PDF, atomically, and closes it. Figures of images (crop montages, segmentation
overlays, Grad-CAM panels) are in `cellbench.report.figures_images`, the UMAP embedding in
`cellbench.report.figures_embedding`.

Examples
--------
>>> fig = kl_histogram_figure(kl_per_protein, unit="protein")  # doctest: +SKIP
>>> save_figure(fig, report_dir / "kl_histogram")  # doctest: +SKIP
[PosixPath('.../kl_histogram.png'), PosixPath('.../kl_histogram.pdf')]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cellbench.io.atomic import atomic_path  # noqa: E402

FIGURE_FORMATS = ("png", "pdf")
QUARTILES = (25, 50, 75)
_WELL = re.compile(r"^([A-Pa-p])(\d{1,2})$")


def save_figure(
    fig: Figure, stem: str | Path, *, formats: Sequence[str] = FIGURE_FORMATS, dpi: int = 150
) -> list[Path]:
    """Write `fig` as ``<stem>.png`` and ``<stem>.pdf`` (atomically), then close it.

    Parameters
    ----------
    fig : Figure
    stem : str or Path
        Output path without suffix; any dots in its name are kept (``confusion_rf.seed0``).
    formats : sequence of str
        File formats, each a matplotlib format name and the file's suffix.
    dpi : int
        Resolution of the raster formats.

    Returns
    -------
    list of Path
        The files written, in the order of `formats`.
    """
    stem = Path(stem)
    written = []
    try:
        for fmt in formats:
            path = stem.with_name(f"{stem.name}.{fmt}")
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
            written.append(path)
    finally:
        plt.close(fig)
    return written


def class_curves_figure(curves: Mapping[str, Mapping], title: str) -> Figure:
    """One-vs-rest ROC (left) and precision-recall (right) curves, one line per class.

    `curves` is `cellbench.evaluate.metrics.class_curves`'s output; the legend gives each
    class's AUC and average precision. The dotted lines are chance: the diagonal, and each
    class's share of the test cells.
    """
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(10, 4.4))
    total = sum(c["positives"] for c in curves.values()) or 1
    for name, curve in curves.items():
        (line,) = roc.plot(curve["fpr"], curve["tpr"], label=f"{name} ({curve['roc_auc']:.2f})")
        pr.plot(
            curve["recall"],
            curve["precision"],
            color=line.get_color(),
            label=f"{name} ({curve['average_precision']:.2f})",
        )
        pr.axhline(curve["positives"] / total, color=line.get_color(), lw=0.6, ls=":")
    roc.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (AUC)")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall (AP)")
    for axis in (roc, pr):
        axis.set(xlim=(0, 1), ylim=(0, 1.02))
        axis.legend(fontsize=7, loc="lower right" if axis is roc else "lower left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_figure(confusion: np.ndarray, classes: Sequence[str], title: str) -> Figure:
    """A row-normalised confusion matrix (rows = true class), annotated with the counts."""
    confusion = np.asarray(confusion)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = confusion / confusion.sum(axis=1, keepdims=True)
    size = 1.2 + 0.9 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(np.nan_to_num(fractions), vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), count in np.ndenumerate(confusion):
        colour = "white" if fractions[i, j] > 0.5 else "black"
        ax.text(j, i, f"{count}", ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    fig.tight_layout()
    return fig


def kl_histogram_figure(
    kl: Sequence[float] | np.ndarray, *, unit: str = "protein", bins: int = 50, title: str = ""
) -> Figure:
    """Histogram of KL divergences with dashed lines at the 25th, 50th and 75th percentiles.

    The KL study's Figure 3A: KL(original-crop model || masked-crop model) of the predicted
    class probabilities, one value per protein (or per cell).

    Parameters
    ----------
    kl : (N,) array of float
        Finite, non-negative divergences in nats.
    unit : str
        What one value is ("protein", "cell"), for the axis label.
    bins : int
    title : str

    Returns
    -------
    Figure
        One axes; its vertical lines are the quartiles, in order 25, 50, 75.
    """
    values = np.asarray(kl, dtype=float).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"kl must be a non-empty array of finite values; got {values.size} values")
    quartiles = np.percentile(values, QUARTILES)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.hist(values, bins=bins, color="#5a7fa8", edgecolor="white", linewidth=0.4)
    for q, x, style in zip(QUARTILES, quartiles, (":", "--", ":"), strict=True):
        ax.axvline(x, color="black", linestyle=style, linewidth=1.2, label=f"{q}th: {x:.3f}")
    ax.set_xlabel("KL divergence, original vs masked crops (nats)")
    ax.set_ylabel(f"{unit}s")
    ax.set_title(title or f"{values.size} {unit}s, mean {values.mean():.3f}")
    ax.legend(title="percentile", frameon=False)
    fig.tight_layout()
    return fig


GRADCAM_BOX_CLASSES = 10  # classes with a box plot, at most (the perturbation study's 0-9)


def gradcam_stats_figure(
    mean_activation: np.ndarray,
    coverage: np.ndarray,
    labels: Sequence[str],
    *,
    max_classes: int = GRADCAM_BOX_CLASSES,
    title: str = "",
) -> Figure:
    """Histograms of Grad-CAM mean activation and coverage, and box plots of both per class.

    The perturbation study's Grad-CAM figures: one value per explained cell, of the raw
    min-max-scaled map (`cellbench.models.gradcam.gradcam_stats`).

    Parameters
    ----------
    mean_activation, coverage : (N,) arrays of float in [0, 1]
        NaN values (an empty mask) are left out.
    labels : (N,) sequence of str
        The cells' true classes; box plots for the first `max_classes` of them in sorted
        order (the axis title says how many there are).
    max_classes : int
    title : str

    Returns
    -------
    Figure
        Four axes: histogram and box plot of mean activation (top), then of coverage.
    """
    labels = np.asarray(labels, dtype=str)
    classes = sorted(set(labels))
    shown = classes[:max_classes]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), squeeze=False)
    for row, (name, values) in enumerate(
        [("mean activation", mean_activation), ("coverage (fraction > 0.5)", coverage)]
    ):
        values = np.asarray(values, dtype=float)
        finite = np.isfinite(values)
        axes[row, 0].hist(values[finite], bins=20, range=(0, 1), color="#5a7fa8", edgecolor="white")
        axes[row, 0].set_xlabel(name)
        axes[row, 0].set_ylabel("cells")
        groups = [values[(labels == c) & finite] for c in shown]
        axes[row, 1].boxplot(groups, tick_labels=shown)
        axes[row, 1].set_ylabel(name)
        axes[row, 1].tick_params(axis="x", labelrotation=45)
        axes[row, 1].set_title(f"per class: the first {len(shown)} of {len(classes)} (sorted)")
    fig.suptitle(title or f"Grad-CAM statistics of {len(labels)} cells")
    fig.tight_layout()
    return fig


def training_curves_figure(history: Mapping, *, title: str = "") -> Figure:
    """Training and validation loss per epoch, from a training history.

    Parameters
    ----------
    history : mapping
        ``{"epochs": [{"epoch": 1, "train_loss": 0.9, "val_loss": 1.0}, ...]}`` as written by
        `cellbench.models.training`; ``val_loss`` may be None or absent, ``best_epoch``
        (optional) is marked.
    title : str
    """
    epochs = list(history.get("epochs", []))
    if not epochs:
        raise ValueError("history['epochs'] is empty: the model has no finished epoch to plot")
    x = [e["epoch"] for e in epochs]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, [e["train_loss"] for e in epochs], marker="o", ms=3, label="train")
    val = [e.get("val_loss") for e in epochs]
    if any(v is not None for v in val):
        ax.plot(x, [np.nan if v is None else v for v in val], marker="o", ms=3, label="validation")
    if history.get("best_epoch"):
        ax.axvline(history["best_epoch"], color="grey", linestyle="--", label="best epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def parse_well(well: str) -> tuple[int, int]:
    """Row and column indices, from 0, of a well name such as ``"B03"`` or ``"p24"``."""
    match = _WELL.match(str(well).strip())
    if match is None or not 1 <= int(match.group(2)) <= 24:
        raise ValueError(
            f"well {well!r} is not a plate well: expected a row letter A-P and a column 1-24, "
            "e.g. 'B03'"
        )
    return ord(match.group(1).upper()) - ord("A"), int(match.group(2)) - 1


def _plate_grid(counts: Mapping[str, float]) -> np.ndarray:
    """(rows, columns) values on the plate grid from row A and column 1; NaN where absent."""
    if len(counts) == 0:
        raise ValueError("counts is empty: no well to draw")
    cells = {parse_well(well): float(value) for well, value in counts.items()}
    grid = np.full((max(r for r, _ in cells) + 1, max(c for _, c in cells) + 1), np.nan)
    for (r, c), value in cells.items():
        grid[r, c] = value
    return grid


def _draw_plate(ax, grid: np.ndarray, vmax: float, *, annotate: bool, fontsize: float = 7):
    """One plate grid on `ax`, coloured on [0, vmax]; returns the image for a colour bar."""
    n_rows, n_cols = grid.shape
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=vmax)
    ax.set_xticks(range(n_cols), [str(c + 1) for c in range(n_cols)])
    ax.set_yticks(range(n_rows), [chr(ord("A") + r) for r in range(n_rows)])
    ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False)
    if annotate:
        for r, c in zip(*np.nonzero(np.isfinite(grid)), strict=True):
            colour = "black" if grid[r, c] > 0.6 * vmax else "white"
            ax.text(
                c, r, f"{grid[r, c]:g}", ha="center", va="center", color=colour, fontsize=fontsize
            )
    return image


def plate_heatmap_figure(counts: Mapping[str, float], *, title: str = "cells per well") -> Figure:
    """Heatmap of a value per well (e.g. cells per well) on the plate grid.

    The grid runs from row A and column 1 to the last row and column present (at most P and
    24, a 384-well plate); wells without a value are blank.

    Parameters
    ----------
    counts : mapping of str to number
        Well name (``"B03"``) to value; a pandas Series indexed by well works.
    title : str
    """
    grid = _plate_grid(counts)
    n_rows, n_cols = grid.shape
    fig, ax = plt.subplots(figsize=(1.5 + 0.55 * n_cols, 1.0 + 0.5 * n_rows))
    image = _draw_plate(ax, grid, np.nanmax(grid), annotate=n_rows * n_cols <= 96)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plate_heatmaps_figure(
    counts_by_plate: Mapping[str, Mapping[str, float]],
    *,
    title: str = "cells per well",
    columns: int = 4,
) -> Figure:
    """Heatmaps of a value per well for several plates, one panel each, on one colour scale.

    One figure for many plates: drawing and saving one figure per plate took over a minute
    for BBBC021's 55 plates. Every panel spans the rows and columns present on any plate.

    Parameters
    ----------
    counts_by_plate : mapping of str to mapping of str to number
        Plate name to its ``{well: value}``.
    title : str
    columns : int
        Panels per row.
    """
    if len(counts_by_plate) == 0:
        raise ValueError("counts_by_plate is empty: no plate to draw")
    grids = {plate: _plate_grid(counts) for plate, counts in counts_by_plate.items()}
    n_rows = max(g.shape[0] for g in grids.values())
    n_cols = max(g.shape[1] for g in grids.values())
    vmax = max(np.nanmax(g) for g in grids.values())
    columns = min(columns, len(grids))
    rows = -(-len(grids) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(1 + columns * (0.3 + 0.22 * n_cols), 0.6 + rows * (0.4 + 0.22 * n_rows)),
        squeeze=False,
        layout="constrained",
    )
    image = None
    for ax, (plate, grid) in zip(axes.flat, grids.items(), strict=False):
        padded = np.full((n_rows, n_cols), np.nan)
        padded[: grid.shape[0], : grid.shape[1]] = grid
        image = _draw_plate(ax, padded, vmax, annotate=n_rows * n_cols <= 24, fontsize=5)
        ax.tick_params(labelsize=5)
        ax.set_title(plate, fontsize=7)
    for ax in axes.flat[len(grids) :]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.6)
    fig.suptitle(title)
    return fig


def mmd_heatmap_figure(
    table, *, value: str = "mmd2_mean", title: str = "", annotate_up_to: int = 12
) -> Figure:
    """Heatmap of MMD^2 between groups: groups x groups, the diagonal within each group.

    Parameters
    ----------
    table : DataFrame
        ``group_a``, ``group_b`` and `value`, one row per pair of groups in either order
        (``cellbench.report.mmd.mmd_across_seeds``); a row with ``group_a == group_b`` is the
        group's within-group baseline (two halves). Pairs without a row are blank.
    value : str
        The column drawn.
    title : str
    annotate_up_to : int
        With at most this many groups, each cell shows its value.
    """
    if len(table) == 0:
        raise ValueError("table is empty: no pair of groups to draw")
    groups = sorted(set(table["group_a"].astype(str)) | set(table["group_b"].astype(str)))
    index = {g: k for k, g in enumerate(groups)}
    grid = np.full((len(groups), len(groups)), np.nan)
    for a, b, v in zip(table["group_a"], table["group_b"], table[value], strict=True):
        grid[index[str(a)], index[str(b)]] = grid[index[str(b)], index[str(a)]] = float(v)
    size = min(2.0 + 0.55 * len(groups), 16.0)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="magma_r")
    ticks = range(len(groups))
    fontsize = 8 if len(groups) <= 30 else 5
    ax.set_xticks(ticks, groups, rotation=45, ha="right", fontsize=fontsize)
    ax.set_yticks(ticks, groups, fontsize=fontsize)
    if len(groups) <= annotate_up_to:
        high = np.nanmax(grid)
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                colour = "white" if v > 0.6 * high else "black"
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", color=colour, fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8, label="MMD$^2$ (diagonal: within group)")
    ax.set_title(title)
    fig.tight_layout()
    return fig
