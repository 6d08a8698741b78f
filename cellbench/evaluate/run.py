"""Evaluate one trained model for one seed on the cells its training never saw.

Classifiers (random forest, SVM, logistic regression, gradient boosting, MLP, ResNet) are
scored on the test cells; representation models are scored through their embeddings: a
logistic-regression probe fitted on the training cells' embeddings (VAE), silhouette and mAP
of the test cells' embeddings (ResNet, VAE). Generators (VAE, CP2Image) also get
reconstruction MSE and SSIM, VAEs their latent analyses (`cellbench.evaluate.latent`:
``latent_usage.csv``, ``latent_grids.npz``), CP2Image its generation grids
(`cellbench.evaluate.generation`: ``generation_grids.npz``), and representation models MMD^2
between the groups of test cells (e.g. treatments) in their embeddings (``mmd.csv``). What a
model gives comes from its type's module in the registry (`cellbench.models.registry`) and
what its config class declares (``gives_crops``, ``gives_latent_analysis``, ...).
Every cell's prediction is kept with its split, so later analyses can see what training saw.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.config import MMDConfig, ModelConfig, SplitConfig
from cellbench.errors import CellbenchError
from cellbench.evaluate.metrics import class_curves, classification_metrics
from cellbench.features.crops import CHUNK_CROPS
from cellbench.io.atomic import atomic_path, write_json
from cellbench.models.inputs import CELL_ID, ModelData, load_model_data
from cellbench.models.registry import implementation
from cellbench.models.train import CLASS_COLUMN, SPLIT_COLUMN
from cellbench.paths import ResultsPaths
from cellbench.splits import TEST

log = logging.getLogger(__name__)

# Test cells scored per `reconstruct` call: the crops made and read are in memory one chunk at
# a time (a multiple of the crops `measure_crops` tiles per mosaic, so chunking never changes
# what the generated crops measure).
RECONSTRUCTION_CHUNK = 4 * CHUNK_CROPS
EMBEDDING_METRIC_CELLS = 2000  # silhouette and mAP on at most this many test cells
MAP_NULL_SIZE = 1000


def evaluate_model(
    params: ModelConfig,
    label_column: str,
    seed: int,
    paths: ResultsPaths,
    *,
    feature_tables: list[Path],
    crop_stores: list[Path],
    channels: list[str],
    source: ModelConfig | None = None,
    mmd: MMDConfig | None = None,
    kmeans_clusters: int | None = None,
    split: SplitConfig | None = None,
) -> dict:
    """Predict every cell, score the test cells, write metrics.json and predictions.parquet.

    With ``input: embeddings``, `source` is the embedding model; the classifier is fitted here
    first (`cellbench.evaluate.probe`). With `mmd` (``evaluate.mmd``), a model that gives
    embeddings also gets ``mmd.csv``: MMD^2 between the groups of its test cells.
    `kmeans_clusters` (``evaluate.kmeans_clusters``) is k of the KMeans silhouette (None: the
    number of test classes). With compound and MOA metadata, ``nsc.csv`` keeps every test
    treatment's NSC neighbour. `split` is the split the model was trained with (its classes
    depend on it with ``by: coculture``).

    Returns
    -------
    dict
        The headline numbers, for the task's status.
    """
    if params.reads_embeddings:
        from cellbench.evaluate.probe import embedding_data, fit_on_embeddings

        data = embedding_data(source, label_column, seed, paths, crop_stores, split=split)
        fit_on_embeddings(params, source, data, seed, paths)
    else:
        data = load_model_data(params, label_column, feature_tables, crop_stores, split=split)
    info = json.loads(paths.model_info(params.name, seed).read_text())
    split_table = pd.read_parquet(paths.split_file(params.name, seed))
    split = data.cells[CELL_ID].map(split_table.set_index("cell_id")[SPLIT_COLUMN]).to_numpy()
    test = split == TEST
    compare_groups = mmd is not None and params.gives_embeddings
    groups = _mmd_groups(data, mmd.groupings) if compare_groups else None  # bad keys fail now
    result: dict = {"model": params.name, "type": params.type, "input": _input_name(params)}
    result["seed"] = seed
    predictions = data.cells.copy()
    predictions[SPLIT_COLUMN] = split
    predictions[CLASS_COLUMN] = data.labels  # e.g. the markers' class of co-culture cells

    model = implementation(params.type)
    predicted, probabilities, embeddings = model.predict(
        params, data, split, seed=seed, paths=paths
    )
    if predicted is not None:
        predictions["predicted"] = predicted
        test_probabilities = None if probabilities is None else probabilities[test]
        result.update(
            classification_metrics(
                data.labels[test],
                predicted[test],
                info["classes"],
                info["majority_class"],
                test_probabilities,
            )
        )
        if test_probabilities is not None:
            curves = class_curves(data.labels[test], test_probabilities, info["classes"])
            write_json(paths.curves(params.name, seed), curves)
    if probabilities is not None:
        for k, name in enumerate(info["classes"]):
            predictions[f"probability_{name}"] = probabilities[:, k]
    if embeddings is not None:
        _write_embeddings(predictions, embeddings, paths.embeddings(params.name, seed))
        result.update(
            _embedding_metrics(embeddings[test], data.labels[test], seed, kmeans_clusters)
        )
        result.update(_nsc(data.cells[test], embeddings[test], paths.nsc_table(params.name, seed)))
        if compare_groups:
            path = paths.mmd_table(params.name, seed)
            test_groups = {name: values[test] for name, values in groups.items()}
            result.update(_group_mmd(embeddings[test], test_groups, mmd, seed, path))
    if params.gives_crops:
        make = partial(model.reconstruct, params, data, seed=seed, paths=paths)  # make(rows)
        result.update(_reconstruction(data, make, test, channels, params.reads_features))
    if params.gives_gradcam:
        result.update(model.explain(params, data, test, info["classes"], seed=seed, paths=paths))
    if params.gives_latent_analysis:
        from cellbench.evaluate.latent import latent_analysis

        result.update(latent_analysis(params, data, test, seed=seed, paths=paths))
    if params.gives_generation_grids:
        from cellbench.evaluate.generation import generation_analysis

        result.update(generation_analysis(params, data, test, seed=seed, paths=paths))

    with atomic_path(paths.predictions(params.name, seed)) as tmp:
        predictions.to_parquet(tmp, index=False)
    write_json(paths.metrics(params.name, seed), result)
    headline = ("accuracy", "majority_rate", "silhouette", "map", "nsc", "reconstruction_mse")
    return {k: result[k] for k in headline if k in result}


def _input_name(params) -> str:
    """What the model read, for tables: ``features``, ``crops:<kind>`` or ``fusion:<kind>``."""
    if params.reads_embeddings:
        return f"embeddings:{params.embedding_model}"
    kind = getattr(params, "crop_kind", None)
    return params.input if kind is None else f"{params.input}:{kind}"


def _write_embeddings(predictions: pd.DataFrame, embeddings: np.ndarray, path: Path) -> None:
    """Embeddings as Parquet, keyed by cell id with the cell's metadata and split."""
    columns = {f"embedding_{i:03d}": embeddings[:, i] for i in range(embeddings.shape[1])}
    table = pd.concat([predictions.reset_index(drop=True), pd.DataFrame(columns)], axis=1)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)


def representation_metrics(
    cells: pd.DataFrame, embeddings: np.ndarray, labels: np.ndarray, seed: int
) -> dict:
    """Silhouette, mAP and (with compound and MOA metadata) NSC of a representation."""
    return {**_embedding_metrics(embeddings, labels, seed), **_nsc(cells, embeddings, None)}


def _embedding_metrics(
    embeddings: np.ndarray, labels: np.ndarray, seed: int, kmeans_clusters: int | None = None
) -> dict:
    """Silhouette (true classes and KMeans clusters) and mean mAP of the test cells' embeddings.

    `kmeans_clusters` is k of ``silhouette_kmeans``; None: the number of classes.
    """
    from cellbench.evaluate.retrieval import retrieval_map, silhouette, silhouette_kmeans

    if len(set(labels)) < 2 or len(labels) < 3:
        return {}
    rng = np.random.default_rng(seed)
    if len(labels) > EMBEDDING_METRIC_CELLS:
        keep = np.sort(rng.choice(len(labels), EMBEDDING_METRIC_CELLS, replace=False))
        embeddings, labels = embeddings[keep], labels[keep]
    _, classes = retrieval_map(embeddings, labels, null_size=MAP_NULL_SIZE, seed=seed)
    k = len(set(labels)) if kmeans_clusters is None else kmeans_clusters
    kmeans = {}
    if k < len(labels):
        kmeans = {"silhouette_kmeans": silhouette_kmeans(embeddings, k, seed=seed)}
        kmeans["kmeans_clusters"] = k
    else:
        log.warning("no KMeans silhouette: k = %d clusters of %d test cells", k, len(labels))
    return {
        "silhouette": silhouette(embeddings, labels, seed=seed),
        **kmeans,
        "map": float(classes["mean_average_precision"].mean()),
        "map_per_class": dict(
            zip(classes["label"].astype(str), classes["mean_average_precision"], strict=True)
        ),
        "map_significant_classes": int(classes["below_corrected_p"].sum()),
    }


NSC_COLUMNS = ("Metadata_Compound", "Metadata_Concentration", "Metadata_Moa")


def _nsc(cells: pd.DataFrame, embeddings: np.ndarray, table_path: Path | None) -> dict:
    """NSC accuracy of the test cells' embeddings when cells carry compound and MOA.

    Profiles are well means, then treatment medians (`cellbench.evaluate.nsc`). With
    `table_path`, every treatment's nearest neighbour (`NSCResult.neighbours`: compound,
    concentration, moa, neighbour_*, similarity, correct) is written there as CSV.
    """
    from cellbench.errors import CellbenchError
    from cellbench.evaluate.nsc import nsc_accuracy

    if not all(c in cells.columns for c in NSC_COLUMNS):
        return {}
    keep = [c for c in (*NSC_COLUMNS, "Metadata_Plate", "Metadata_Well") if c in cells.columns]
    columns = {f"embedding_{i:03d}": embeddings[:, i] for i in range(embeddings.shape[1])}
    table = pd.concat([cells[keep].reset_index(drop=True), pd.DataFrame(columns)], axis=1)
    try:
        result = nsc_accuracy(table)
    except CellbenchError as exc:  # e.g. test cells of a single compound
        log.warning("no NSC: %s", exc)
        return {}
    if table_path is not None:
        with atomic_path(table_path) as tmp:
            result.neighbours.to_csv(tmp, index=False)
    return {"nsc": result.accuracy, "nsc_treatments": result.n_treatments}


def _mmd_groups(data: ModelData, groupings: list[str]) -> dict[str, np.ndarray]:
    """Each cell's group under each grouping (`MMDConfig.groupings`).

    ``label`` gives the label; a metadata column its values; columns joined by ``+`` their
    values joined by `` @ `` (compound @ concentration: the treatment). A cell missing any
    of the columns' values has no group (None).
    """
    groups = {}
    for grouping in groupings:
        if grouping == "label":
            groups[grouping] = np.asarray(data.labels, dtype=object)
            continue
        columns = grouping.split("+")
        missing = [c for c in columns if c not in data.cells.columns]
        if missing:
            metadata = sorted(c for c in data.cells.columns if c.startswith("Metadata_"))
            raise CellbenchError(
                f"evaluate.mmd.group_by: the cells have no column {missing[0]!r}; "
                f"columns: {metadata}"
            )
        values = data.cells[columns]
        joined = values.astype(str).agg(" @ ".join, axis=1).to_numpy(dtype=object)
        joined[values.isna().any(axis=1).to_numpy()] = None
        groups[grouping] = joined
    return groups


def _group_mmd(
    embeddings: np.ndarray,
    groups: dict[str, np.ndarray],
    settings: MMDConfig,
    seed: int,
    path: Path,
) -> dict:
    """MMD^2 between every two groups of test cells (and within each), written to `path`.

    One table per grouping, stacked with its name in the ``grouping`` column. Returns the
    summary for metrics.json (`cellbench.evaluate.distributions.mmd_summary`): the first
    grouping's under the plain keys (``mmd2_between`` ...), each other's with its
    `mmd_slug` appended (``mmd2_between_moa``).
    """
    from cellbench.evaluate.distributions import MMD_COLUMNS, group_mmd, mmd_slug, mmd_summary

    tables, summary = [], {}
    for k, (grouping, values) in enumerate(groups.items()):
        keep = pd.notna(values)
        try:
            table = group_mmd(
                embeddings[keep],
                values[keep],
                multipliers=settings.multipliers,
                n_bootstrap=settings.n_bootstrap,
                max_cells=settings.max_cells,
                seed=[settings.seed, seed],
            )
        except ValueError as exc:  # e.g. every embedding the same, or fewer than 2 test cells
            log.warning("no MMD by %s: %s", grouping, exc)
            table = pd.DataFrame(columns=MMD_COLUMNS)
        tables.append(table.assign(grouping=grouping)[["grouping", *MMD_COLUMNS]])
        suffix = "" if k == 0 else f"_{mmd_slug(grouping)}"
        summary.update({f"{key}{suffix}": v for key, v in mmd_summary(table).items()})
    with atomic_path(path) as tmp:
        pd.concat(tables, ignore_index=True).to_csv(tmp, index=False)
    summary["mmd_groupings"] = list(groups)
    return summary


def _reconstruction(
    data: ModelData,
    make: Callable[[np.ndarray], np.ndarray],
    test: np.ndarray,
    channels: list[str],
    from_features: bool,
) -> dict:
    """MSE and SSIM of the test crops a model made (reconstructed or generated).

    The test cells are scored `RECONSTRUCTION_CHUNK` at a time: ``make(rows)`` gives the
    (n, C, S, S) crops of the cells at positions `rows`, which are read beside them, so
    memory stays bounded however many test cells there are. Crops generated from features
    (`from_features`, CP2Image) are also measured and compared with the features that made
    them.
    """
    from cellbench.evaluate.reconstruction import reconstruction_mse, reconstruction_ssim

    rows = np.flatnonzero(test)
    mse, ssim, measured = [], [], []
    for start in range(0, len(rows), RECONSTRUCTION_CHUNK):
        chunk = rows[start : start + RECONSTRUCTION_CHUNK]
        made = make(chunk)
        crops = data.crops[chunk].to_array()
        mse.append(reconstruction_mse(crops, made))
        ssim.append(reconstruction_ssim(crops, made.clip(0, 1), data_range=1.0))
        if from_features:
            measured.append(_measure_generated(made, channels))
    if not mse:  # no test cell
        return {"reconstruction_mse": float("nan"), "ssim": float("nan")}
    result = {
        "reconstruction_mse": float(np.concatenate(mse).mean()),
        "ssim": float(np.concatenate(ssim).mean()),
    }
    if from_features:
        result.update(_generated_feature_correlation(data, measured, test))
    return result


def _measure_generated(made: np.ndarray, channels: list[str]) -> pd.DataFrame:
    """Whole-cell features of generated (n, C, S, S) crops, measured like pre-cut crops.

    Their centre cell is segmented (the first channel the nucleus, the others the cell).
    """
    from cellbench.config import FeaturesConfig
    from cellbench.features.crops import measure_crops

    features = FeaturesConfig(regions=["Cells"], texture=None)
    return measure_crops(
        made, channels, features, nucleus_channel=channels[0], cell_channels=channels[1:]
    )


def _generated_feature_correlation(
    data: ModelData, measured: list[pd.DataFrame], test: np.ndarray
) -> dict:
    """Correlation between intensity features of generated crops and those that made them.

    `measured` holds the features of the generated test crops, chunk by chunk; the input
    features come from the fields. Pearson's r per feature is scale-free, so the two
    measurement contexts compare.
    """
    from cellbench.evaluate.reconstruction import feature_correlation_summary
    from cellbench.features.select import select_columns

    measured = pd.concat(measured, ignore_index=True)
    intensities = select_columns(measured.columns, groups=["Intensity"], regions=["Cells"])
    names = [c for c in intensities if c in data.feature_names]
    target = pd.DataFrame(data.features[test], columns=data.feature_names)[names]
    summary = feature_correlation_summary(measured[names].reset_index(drop=True), target)
    return {f"generated_features_{k}": v for k, v in summary.items() if not isinstance(v, dict)}
