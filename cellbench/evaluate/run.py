"""Evaluate one trained model for one seed on the cells its training never saw.

Classifiers (random forest, SVM, logistic regression, MLP, ResNet) are scored on the test
cells; representation models are scored through their embeddings: a logistic-regression
probe fitted on the training cells' embeddings (VAE), silhouette and mAP of the test cells'
embeddings (ResNet, VAE). Generators (VAE, CP2Image) also get reconstruction MSE and SSIM.
Every cell's prediction is kept with its split, so later analyses can see what training saw.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.config import CLASSICAL_TYPES, ModelConfig
from cellbench.evaluate.metrics import classification_metrics
from cellbench.evaluate.splits import TEST, TRAIN
from cellbench.io.atomic import atomic_path, write_json
from cellbench.models.inputs import CELL_ID, ModelData, load_model_data
from cellbench.models.persist import load_sklearn
from cellbench.models.train import SPLIT_COLUMN, classical_inputs
from cellbench.paths import ResultsPaths

log = logging.getLogger(__name__)

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
) -> dict:
    """Predict every cell, score the test cells, write metrics.json and predictions.parquet.

    With ``input: embeddings``, `source` is the embedding model; the classifier is fitted here
    first (`cellbench.evaluate.probe`).

    Returns
    -------
    dict
        The headline numbers, for the task's status.
    """
    if params.input == "embeddings":
        from cellbench.evaluate.probe import embedding_data, fit_on_embeddings

        data = embedding_data(source, label_column, seed, paths, crop_stores)
        fit_on_embeddings(params, source, data, seed, paths)
    else:
        data = load_model_data(params, label_column, feature_tables, crop_stores)
    info = json.loads(paths.model_info(params.name, seed).read_text())
    split_table = pd.read_parquet(paths.split_file(params.name, seed))
    split = data.cells[CELL_ID].map(split_table.set_index("cell_id")[SPLIT_COLUMN]).to_numpy()
    test, train = split == TEST, split == TRAIN
    result: dict = {"model": params.name, "type": params.type, "input": _input_name(params)}
    result["seed"] = seed
    predictions = data.cells.copy()
    predictions[SPLIT_COLUMN] = split

    predicted, probabilities, embeddings = _predict(params, info, data, paths, seed, train)
    if predicted is not None:
        predictions["predicted"] = predicted
        result.update(
            classification_metrics(
                data.labels[test], predicted[test], info["classes"], info["majority_class"]
            )
        )
    if probabilities is not None:
        for k, name in enumerate(info["classes"]):
            predictions[f"probability_{name}"] = probabilities[:, k]
    if embeddings is not None:
        _write_embeddings(predictions, embeddings, paths.embeddings(params.name, seed))
        result.update(_embedding_metrics(embeddings[test], data.labels[test], seed))
        result.update(_nsc(data.cells[test], embeddings[test]))
    if params.type in ("vae", "cp2image"):
        result.update(_reconstruction(params, data, paths, seed, test, channels))
    if params.type == "resnet" and params.gradcam_cells > 0:
        result["gradcam"] = _gradcam(params, data, paths, seed, test, info["classes"])

    with atomic_path(paths.predictions(params.name, seed)) as tmp:
        predictions.to_parquet(tmp, index=False)
    write_json(paths.metrics(params.name, seed), result)
    headline = ("accuracy", "majority_rate", "silhouette", "map", "nsc", "reconstruction_mse")
    return {k: result[k] for k in headline if k in result}


def _input_name(params) -> str:
    """What the model read, for tables: ``features``, ``crops:<kind>`` or ``fusion:<kind>``."""
    if params.input == "embeddings":
        return f"embeddings:{params.embedding_model}"
    kind = getattr(params, "crop_kind", None)
    return params.input if kind is None else f"{params.input}:{kind}"


def _predict(params, info: dict, data: ModelData, paths: ResultsPaths, seed: int, train):
    """(predicted class names, class probabilities, embeddings); None where not defined."""
    name = params.name
    if params.type in CLASSICAL_TYPES:
        model = load_sklearn(paths.model_file(name, seed))  # skops: builds trusted types only
        inputs = classical_inputs(params, data)
        probabilities = model.predict_proba(inputs) if hasattr(model, "predict_proba") else None
        return model.predict(inputs), probabilities, None
    if params.type == "mlp":
        from cellbench.models.mlp import predict_mlp

        return predict_mlp(paths.torch_model_file(name, seed), data.features), None, None
    if params.type == "cp2image":
        return None, None, None
    from cellbench.models.images import embed_images, load_image_model, predict_images

    model, _ = load_image_model(paths.torch_model_file(name, seed))
    embeddings = embed_images(model, data.crops)
    if params.type == "resnet":
        probabilities = predict_images(model, data.crops)
        predicted = np.asarray(info["classes"])[probabilities.argmax(axis=1)]
        return predicted, probabilities, embeddings
    # VAE: a linear probe on the latent means of the training cells
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(embeddings[train], data.labels[train])
    return probe.predict(embeddings), None, embeddings


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
    return {**_embedding_metrics(embeddings, labels, seed), **_nsc(cells, embeddings)}


def _embedding_metrics(embeddings: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """Silhouette and mean mAP (copairs' definition) of the test cells' embeddings."""
    from cellbench.evaluate.retrieval import retrieval_map, silhouette

    if len(set(labels)) < 2 or len(labels) < 3:
        return {}
    rng = np.random.default_rng(seed)
    if len(labels) > EMBEDDING_METRIC_CELLS:
        keep = np.sort(rng.choice(len(labels), EMBEDDING_METRIC_CELLS, replace=False))
        embeddings, labels = embeddings[keep], labels[keep]
    _, classes = retrieval_map(embeddings, labels, null_size=MAP_NULL_SIZE, seed=seed)
    return {
        "silhouette": silhouette(embeddings, labels, seed=seed),
        "map": float(classes["mean_average_precision"].mean()),
        "map_per_class": dict(
            zip(classes["label"].astype(str), classes["mean_average_precision"], strict=True)
        ),
        "map_significant_classes": int(classes["below_corrected_p"].sum()),
    }


NSC_COLUMNS = ("Metadata_Compound", "Metadata_Concentration", "Metadata_Moa")


def _nsc(cells: pd.DataFrame, embeddings: np.ndarray) -> dict:
    """NSC accuracy of the test cells' embeddings when cells carry compound and MOA.

    Profiles are well means, then treatment medians (`cellbench.evaluate.nsc`).
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
    return {"nsc": result.accuracy, "nsc_treatments": result.n_treatments}


def _reconstruction(params, data: ModelData, paths, seed: int, test, channels) -> dict:
    """MSE and SSIM of reconstructed (VAE) or generated (CP2Image) test crops."""
    from cellbench.evaluate.reconstruction import reconstruction_mse, reconstruction_ssim

    model_path = paths.torch_model_file(params.name, seed)
    crops = data.crops[test]
    if params.type == "vae":
        import torch

        from cellbench.models.images import load_image_model
        from cellbench.models.training import predict_batches

        model, _ = load_image_model(model_path)
        made = predict_batches(model, torch.from_numpy(crops), 256, fn=model.reconstruct).numpy()
    else:
        from cellbench.models.generator import generate

        made = generate(model_path, data.features[test])
    result = {
        "reconstruction_mse": float(reconstruction_mse(crops, made).mean()),
        "ssim": float(reconstruction_ssim(crops, made.clip(0, 1), data_range=1.0).mean()),
    }
    if params.type == "cp2image":
        result.update(_generated_feature_correlation(data, made, test, channels))
    return result


def _generated_feature_correlation(
    data: ModelData, made: np.ndarray, test, channels: list[str]
) -> dict:
    """Correlation between intensity features of generated crops and those that made them.

    Generated crops are measured like pre-cut crops (their centre cell segmented), the
    input features come from the fields; Pearson's r per feature is scale-free, so the two
    measurement contexts compare.
    """
    from cellbench.evaluate.reconstruction import feature_correlation_summary
    from cellbench.features.crops import measure_crops

    measured = measure_crops(
        made, channels, ["Cell"], None, nucleus_channel=channels[0], cell_channels=channels[1:]
    )
    names = [
        c for c in measured.columns if c.startswith("Cell_Intensity_") and c in data.feature_names
    ]
    target = pd.DataFrame(data.features[test], columns=data.feature_names)[names]
    summary = feature_correlation_summary(measured[names].reset_index(drop=True), target)
    return {f"generated_features_{k}": v for k, v in summary.items() if not isinstance(v, dict)}


def _gradcam(params, data: ModelData, paths, seed: int, test, classes: list[str]) -> dict:
    """Grad-CAM of the true class on a few test cells: maps, a figure panel and statistics."""
    from cellbench.models.gradcam import gradcam, gradcam_stats, plot_gradcam_panel, save_gradcam
    from cellbench.models.images import load_image_model

    model, _ = load_image_model(paths.torch_model_file(params.name, seed))
    rows = np.flatnonzero(test)[: params.gradcam_cells]
    if len(rows) == 0:
        return {}
    images = data.crops[rows]
    layer = model.layer4 if params.size_px >= 64 else model.layer3  # keep a map of >= 2 x 2
    targets = np.array([classes.index(c) for c in data.labels[rows]])
    maps = gradcam(model, layer, images, targets)
    stats = gradcam_stats(maps)
    folder = paths.model_dir(params.name, seed)
    cell_ids = data.cells[CELL_ID].to_numpy()[rows].astype(str)
    save_gradcam(maps, folder / "gradcam.npz", cell_id=cell_ids, target=targets)
    plot_gradcam_panel(images, maps, folder / "gradcam.png", titles=list(data.labels[rows]))
    return {k: float(np.nanmean(v)) for k, v in stats.items()}
