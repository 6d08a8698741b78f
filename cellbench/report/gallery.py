"""The report's figures, made from what the stages left under the results root.

Each function makes one kind of figure for the experiment and returns the PNG paths it wrote
(a PDF is written beside each). A figure whose inputs are missing (a task failed, a model
type without embeddings) is skipped, never an error: the report lists missing tasks anyway.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.errors import ConfigError
from cellbench.paths import ResultsPaths
from cellbench.report.figures import (
    class_curves_figure,
    confusion_figure,
    gradcam_stats_figure,
    plate_heatmaps_figure,
    save_figure,
    training_curves_figure,
)

log = logging.getLogger(__name__)

MONTAGE_CELLS = 2000  # crops read for the montage, at most
UMAP_CELLS = 3000  # cells embedded by UMAP, at most
ZSCORE_KEY = "report.embeddings.zscore_by"


def _png(written: list[Path]) -> Path:
    return next(p for p in written if p.suffix == ".png")


def confusion_figures(records: list[dict], paths: ResultsPaths) -> list[Path]:
    """One confusion matrix per model, summed over seeds (test cells)."""
    figures = []
    for model in sorted({r["model"] for r in records if "confusion" in r}):
        runs = [r for r in records if r["model"] == model and "confusion" in r]
        confusion = np.sum([r["confusion"] for r in runs], axis=0)
        title = f"{model} ({len(runs)} seed(s), test cells)"
        figures.append(
            _png(
                save_figure(
                    confusion_figure(confusion, runs[0]["classes"], title),
                    paths.report_figure(f"confusion_{model}"),
                )
            )
        )
    return figures


def class_curve_figures(paths: ResultsPaths, models: list, seed: int) -> list[Path]:
    """ROC and precision-recall curves of each classifier with probabilities (first seed)."""
    figures = []
    for model in models:
        path = paths.curves(model.name, seed)
        if path.exists():
            curves = json.loads(path.read_text())
            if curves:
                title = f"{model.name} (seed {seed}, test cells, one class vs the rest)"
                written = save_figure(
                    class_curves_figure(curves, title), paths.report_figure(f"curves_{model.name}")
                )
                figures.append(_png(written))
    return figures


def training_curve_figures(paths: ResultsPaths, models: list, seed: int) -> list[Path]:
    """Training and validation loss per epoch of each PyTorch model (first seed)."""
    figures = []
    for model in models:
        history = paths.history(model.name, seed)
        if history.exists():
            figure = training_curves_figure(json.loads(history.read_text()), title=model.name)
            stem = paths.report_figure(f"training_{model.name}")
            figures.append(_png(save_figure(figure, stem)))
    return figures


def embedding_figures(
    paths: ResultsPaths, models: list, seed: int, label: str, *, zscore_by: list[str] | None = None
) -> list[Path]:
    """UMAP of each representation model's embeddings of the test cells, coloured by class.

    Z-scored first within each group of `zscore_by` (``report.embeddings``) when given.
    """
    from cellbench.report.figures_embedding import embedding_figure, umap_embedding
    from cellbench.report.zscore import titled

    figures = []
    for model in models:
        table = _test_embeddings(paths, model.name, seed, zscore_by)
        if table is None:
            continue
        if len(table) > UMAP_CELLS:
            table = table.sample(UMAP_CELLS, random_state=seed)
        coords = umap_embedding(table[_embedding_columns(table)].to_numpy(), seed=seed)
        title = titled(f"{model.name}: UMAP of test-cell embeddings", zscore_by)
        figure = embedding_figure(coords, _classes(table, label), title=title)
        figures.append(_png(save_figure(figure, paths.report_figure(f"umap_{model.name}"))))
    return figures


def gradcam_figures(paths: ResultsPaths, models: list, seed: int) -> list[Path]:
    """Grad-CAM: each model's panel and the plots of its per-cell statistics.

    The panel is the one the evaluate stage drew, copied next to the report; beside it,
    histograms and per-class box plots of mean activation and coverage.
    """
    figures = []
    for model in models:
        panel = paths.gradcam_panel(model.name, seed)
        if panel.exists():
            target = paths.report_file(f"gradcam_{model.name}.png")
            target.write_bytes(panel.read_bytes())
            figures.append(target)
        figures += _gradcam_stats_figure(paths, model.name, seed)
    return figures


def _gradcam_stats_figure(paths: ResultsPaths, model: str, seed: int) -> list[Path]:
    """Histograms and box plots of the per-cell statistics in gradcam.npz, where it has them."""
    path = paths.gradcam_maps(model, seed)
    if not path.exists():
        return []
    with np.load(path) as saved:
        if not {"mean_activation", "coverage", "label"} <= set(saved.files):
            return []  # written before the statistics were saved per cell
        mean, coverage, labels = saved["mean_activation"], saved["coverage"], saved["label"]
    title = f"{model} (seed {seed}): Grad-CAM of {len(labels)} test cells"
    figure = gradcam_stats_figure(mean, coverage, labels, title=title)
    return [_png(save_figure(figure, paths.report_figure(f"gradcam_stats_{model}")))]


def montage_figure(store: Path, kind: str, label_column: str, paths: ResultsPaths) -> list[Path]:
    """Crops of one kind, a row per class, from one plate's crop store."""
    from cellbench.crops.store import read_cells, read_crops
    from cellbench.report.figures_images import crop_montage_figure

    cells = read_cells(store)
    if label_column not in cells.columns:
        return []
    rows = np.arange(min(len(cells), MONTAGE_CELLS))
    crops, _ = read_crops(store, kind, slice(0, len(rows)))
    labels = cells[label_column].astype(str).to_numpy()[rows]
    figure = crop_montage_figure(crops, labels, title=f"{kind} crops of {store.stem}")
    return [_png(save_figure(figure, paths.report_figure(f"montage_{kind}")))]


def segmentation_figure(config, plate: str, n_fields: int = 3) -> list[Path]:
    """Outlines of the segmented cells on the first fields of a plate."""
    from cellbench.data.plates import open_plate, read_field
    from cellbench.report.figures_images import segmentation_overlay_figure
    from cellbench.segment.store import read_labels, stored_fields

    paths = ResultsPaths(config.results_root)
    store = paths.label_store(plate)
    if not store.exists():
        return []
    opened = open_plate(config, plate)
    by_name = {f.name: f for f in opened.fields}
    names = [n for n in stored_fields(store) if n in by_name][:n_fields]
    channels = [config.segmentation.nucleus_channel, *(config.segmentation.cell_channels or [])]
    images = [read_field(opened, by_name[n], channels, config.data.nonfinite) for n in names]
    labels = [read_labels(store, n)[0] for n in names]
    figure = segmentation_overlay_figure(images, labels, titles=names)
    return [_png(save_figure(figure, paths.report_figure(f"segmentation_{plate}")))]


PLATES_PER_HEATMAP = 24  # panels in one cells-per-well figure


def plate_heatmap_figures(feature_tables: list[Path], paths: ResultsPaths) -> list[Path]:
    """Cells per well of every plate (from its feature table), 24 plates to a figure.

    ``cells_per_well.png`` when one figure holds them all, else ``cells_per_well_1.png``...
    """
    counts = {}
    for table_path in feature_tables:
        wells = pd.read_parquet(table_path, columns=["Metadata_Well"])["Metadata_Well"]
        if len(wells):
            counts[table_path.stem] = wells.astype(str).value_counts().to_dict()
    plates = sorted(counts)
    chunks = [plates[i : i + PLATES_PER_HEATMAP] for i in range(0, len(plates), PLATES_PER_HEATMAP)]
    figures = []
    for k, chunk in enumerate(chunks, start=1):
        suffix = "" if len(chunks) == 1 else f"_{k}"
        title = "cells per well" + ("" if len(chunks) == 1 else f" ({k} of {len(chunks)})")
        figure = plate_heatmaps_figure({p: counts[p] for p in chunk}, title=title)
        figures.append(_png(save_figure(figure, paths.report_figure(f"cells_per_well{suffix}"))))
    return figures


LATENT_USED_KL = 0.01  # nats: "used" threshold of grids written without ``used_kl_nats``


def latent_figures(paths: ResultsPaths, models: list, seed: int) -> list[Path]:
    """Each VAE's latent analyses (first seed): usage, sensitivity, traversal, interpolation.

    Also its reconstruction grid; drawn from ``latent_usage.csv`` and ``latent_grids.npz``.
    """
    from cellbench.report import figures_latent as draw

    figures = []
    for model in models:
        usage_path = paths.latent_usage(model.name, seed)
        grids_path = paths.latent_grids(model.name, seed)
        if not (usage_path.exists() and grids_path.exists()):
            continue
        kl = pd.read_csv(usage_path).sort_values("dimension")["kl"].to_numpy()
        with np.load(grids_path) as loaded:
            grids = {key: loaded[key] for key in loaded.files}
        labels = grids["labels"]
        ends = [labels[0], labels[min(1, len(labels) - 1)]]
        threshold = float(grids.get("used_kl_nats", LATENT_USED_KL))
        used = int((kl > threshold).sum())
        name = f"{model.name} (seed {seed}, test cells)"
        made = {
            "latent_usage": draw.latent_usage_figure(
                kl, threshold, title=f"{name}: {used} of {len(kl)} latent dimensions used"
            ),
            "latent_sensitivity": draw.sensitivity_figure(
                grids["sensitivity"], title=f"{name}: decoder sensitivity per dimension"
            ),
            "latent_traversal": draw.traversal_figure(
                grids["traversal"],
                grids["traversal_dims"],
                grids["traversal_offsets"],
                title=f"{name}: traversal of the most used dimensions",
            ),
            "latent_interpolation": draw.interpolation_figure(
                grids["interpolation"], ends, title=f"{name}: interpolation"
            ),
            "reconstructions": draw.reconstruction_figure(
                grids["originals"], grids["reconstructions"], labels, title=f"{name}"
            ),
        }
        for stem, figure in made.items():
            figures.append(_png(save_figure(figure, paths.report_figure(f"{stem}_{model.name}"))))
    return figures


def _test_embeddings(
    paths: ResultsPaths, model: str, seed: int, zscore_by: list[str] | None = None
) -> pd.DataFrame | None:
    """The test cells' rows of a model's embeddings.parquet, or None when it is missing.

    With `zscore_by`, each embedding dimension z-scored within each group of those columns;
    None (logged) when the table lacks one of them.
    """
    from cellbench.report.zscore import zscore_within

    path = paths.embeddings(model, seed)
    if not path.exists():
        return None
    table = pd.read_parquet(path)
    table = table[table["split"] == "test"].reset_index(drop=True)
    if not zscore_by or table.empty:
        return table
    try:
        return zscore_within(table, _embedding_columns(table), zscore_by, key=ZSCORE_KEY)
    except ConfigError as exc:
        log.warning("report: no figure of %s's embeddings (%s)", model, exc)
        return None


def _classes(table: pd.DataFrame, label: str) -> np.ndarray:
    """Each cell's class as the model was scored against it, as text.

    The predictions' ``class`` column (with the co-culture split, the markers' class of a
    co-culture cell, not its well's culture); the label column for results made before it.
    """
    from cellbench.models.train import CLASS_COLUMN

    column = CLASS_COLUMN if CLASS_COLUMN in table.columns else label
    return table[column].astype(str).to_numpy()


def _embedding_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith("embedding_")]


def projection_figures(
    paths: ResultsPaths, models: list, seed: int, label: str, *, zscore_by: list[str] | None = None
) -> list[Path]:
    """PCA (explained variance on the axes) and t-SNE of each model's test-cell embeddings.

    At most `UMAP_CELLS` cells, drawn as for the UMAP, so the three pictures show the same
    cells; z-scored per group of `zscore_by` as for the UMAP.
    """
    from cellbench.report.figures_embedding import embedding_figure
    from cellbench.report.figures_representation import (
        pca_axis_labels,
        pca_coordinates,
        tsne_coordinates,
    )
    from cellbench.report.zscore import titled

    figures = []
    for model in models:
        table = _test_embeddings(paths, model.name, seed, zscore_by)
        if table is None or len(table) < 3:
            continue
        if len(table) > UMAP_CELLS:
            table = table.sample(UMAP_CELLS, random_state=seed)
        x = table[_embedding_columns(table)].to_numpy()
        labels = _classes(table, label)
        coords, explained = pca_coordinates(x)
        title = titled(f"{model.name}: PCA of test-cell embeddings", zscore_by)
        pca = embedding_figure(coords, labels, title=title, axis_labels=pca_axis_labels(explained))
        figures.append(_png(save_figure(pca, paths.report_figure(f"pca_{model.name}"))))
        title = titled(f"{model.name}: t-SNE of test-cell embeddings", zscore_by)
        tsne = embedding_figure(
            tsne_coordinates(x, seed=seed), labels, title=title, axis_labels=("t-SNE 1", "t-SNE 2")
        )
        figures.append(_png(save_figure(tsne, paths.report_figure(f"tsne_{model.name}"))))
    return figures


def clustermap_figures(
    paths: ResultsPaths, models: list, seed: int, label: str, *, zscore_by: list[str] | None = None
) -> list[Path]:
    """Clustered heatmap of each model's per-well mean test embeddings, wells by label.

    The cells are z-scored per group of `zscore_by` (as for the UMAP) before the means.
    """
    from cellbench.report.figures_representation import clustermap_figure, well_means
    from cellbench.report.zscore import titled

    figures = []
    for model in models:
        table = _test_embeddings(paths, model.name, seed, zscore_by)
        if table is None:
            continue
        keys = [c for c in ("Metadata_Plate", "Metadata_Well") if c in table.columns]
        means = well_means(table, _embedding_columns(table), [*keys, label])
        if len(means) < 2:
            continue
        names = [" ".join(map(str, row)) for row in means[[label, *keys]].to_numpy()]
        title = titled(f"{model.name}: per-well mean test embeddings", zscore_by)
        figure = clustermap_figure(means[_embedding_columns(table)].to_numpy(), names, title=title)
        figures.append(_png(save_figure(figure, paths.report_figure(f"clustermap_{model.name}"))))
    return figures


def nsc_confusion_figures(paths: ResultsPaths, models: list, seed: int) -> list[Path]:
    """MOA x MOA confusion of each model's NSC assignments (nsc.csv of its evaluate task)."""
    from cellbench.report.figures_representation import nsc_confusion, nsc_confusion_figure

    figures = []
    for model in models:
        path = paths.nsc_table(model.name, seed)
        if not path.exists():
            continue
        counts = nsc_confusion(pd.read_csv(path))
        title = f"{model.name} (seed {seed}): NSC assignments of test treatments"
        figure = nsc_confusion_figure(counts, title=title)
        figures.append(_png(save_figure(figure, paths.report_figure(f"nsc_{model.name}"))))
    return figures


def _read_crops_by_id(stores: list[Path], kind: str, cell_ids: np.ndarray) -> np.ndarray:
    """(N, C, S, S) crops of the cells `cell_ids`, in that order, from the crop stores."""
    from cellbench.crops.store import read_cells, read_crops

    crops: dict = {}
    for store in stores:
        ids = read_cells(store)["cell_id"].to_numpy()
        rows = {cid: r for r, cid in enumerate(ids)}
        wanted = [c for c in dict.fromkeys(cell_ids) if c in rows and c not in crops]
        if wanted:
            images, _ = read_crops(store, kind, np.array([rows[c] for c in wanted]))
            crops.update(zip(wanted, images, strict=True))
    missing = [c for c in cell_ids if c not in crops]
    if missing:
        raise KeyError(f"cells {missing[:3]} are in no crop store of kind {kind!r}")
    return np.stack([crops[c] for c in cell_ids])


def neighbour_mosaics(
    paths: ResultsPaths, models: list, seed: int, label: str, stores: list[Path], k: int = 6
) -> list[Path]:
    """For one test cell per class, its crop and its `k` cosine-nearest test cells' crops."""
    from cellbench.features.measure import metadata_column
    from cellbench.report.figures_representation import (
        choose_queries,
        nearest_neighbours,
        neighbour_mosaic_figure,
    )

    figures = []
    for model in models:
        table = _test_embeddings(paths, model.name, seed)
        kind = getattr(model, "crop_kind", None)
        if table is None or kind is None or len(table) < 2 or not stores:
            continue
        if len(table) > UMAP_CELLS:
            table = table.sample(UMAP_CELLS, random_state=seed).reset_index(drop=True)
        labels = _classes(table, label)
        queries = choose_queries(labels, seed=seed)
        neighbours = nearest_neighbours(table[_embedding_columns(table)].to_numpy(), queries, k)
        shown = np.concatenate([queries[:, None], neighbours], axis=1)
        cell_ids = table[metadata_column("cell_id")].to_numpy()[shown.ravel()]
        crops = _read_crops_by_id(stores, kind, cell_ids)
        local = np.arange(shown.size).reshape(shown.shape)
        figure = neighbour_mosaic_figure(
            crops,
            labels[shown.ravel()],
            local[:, 0],
            local[:, 1:],
            title=f"{model.name}: nearest test cells (cosine) of one query per class",
        )
        figures.append(_png(save_figure(figure, paths.report_figure(f"neighbours_{model.name}"))))
    return figures
