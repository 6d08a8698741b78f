"""Train one model for one seed: load its inputs, split the cells by group, fit, save.

Every model type goes through `train_model`; what differs is how its inputs become a
training set (`load_model_data`) and which fitting function it calls. The split of every
cell is saved beside the model, so evaluation scores exactly the cells training never saw.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.config import CLASSICAL_TYPES, ModelConfig, SplitConfig
from cellbench.evaluate.splits import (
    LEAKY_SPLIT_WARNING,
    TRAIN,
    VAL,
    balance_classes,
    split_by_group,
    split_groups,
)
from cellbench.io.atomic import atomic_path, write_json
from cellbench.models.inputs import CELL_ID, ModelData, load_model_data
from cellbench.models.persist import save_sklearn
from cellbench.paths import ResultsPaths

log = logging.getLogger(__name__)

SPLIT_COLUMN = "split"


def split_cells(data: ModelData, split: SplitConfig, seed: int) -> pd.Series:
    """``train`` / ``val`` / ``test`` (or ``unused``, after balancing) per cell."""
    if split.by == "cell":
        warnings.warn(LEAKY_SPLIT_WARNING, UserWarning, stacklevel=2)
        log.warning(LEAKY_SPLIT_WARNING)
    labels = pd.Series(data.labels)
    assignment = split_by_group(
        split_groups(data.cells, split.by),
        labels,
        test_fraction=split.test_fraction,
        val_fraction=split.val_fraction,
        seed=seed,
    )
    return balance_classes(assignment, labels, split.sample, seed)


def classical_inputs(params, data: ModelData) -> np.ndarray:
    """The (N, F) matrix a scikit-learn model reads: features, flattened crops, or both."""
    from cellbench.models.classical import flatten_crops

    if params.input in ("features", "embeddings"):
        return data.features
    crops = flatten_crops(data.crops, params.size_px)
    if params.input == "crops":
        return crops
    return np.hstack([data.features, crops])


def build_classical(params, data: ModelData, seed: int):
    """The scikit-learn pipeline of a classical model config."""
    from cellbench.models.classical import build_classifier, build_fusion_classifier

    options = {
        "pca_components": params.pca_components,
        "class_weight": params.class_weight,
    }
    if params.type == "random_forest":
        options.update(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            min_samples_leaf=params.min_samples_leaf,
        )
    else:
        options["C"] = params.C
    if params.input == "fusion":
        blocks = [data.features.shape[1], data.crops.shape[1] * params.size_px**2]
        return build_fusion_classifier(params.type, blocks, seed, **options)
    return build_classifier(params.type, seed, **options)


def train_model(
    params: ModelConfig,
    split: SplitConfig,
    label_column: str,
    seed: int,
    paths: ResultsPaths,
    *,
    feature_tables: list[Path],
    crop_stores: list[Path],
    settings_hash: str,
) -> dict:
    """Split the cells by group, fit the model on the training cells, save model and split.

    Returns
    -------
    dict
        Cell counts per split, the classes, ``unlabelled_cells_dropped`` (cells with no class,
        e.g. of wells the layout does not list) and training details, for the task's status.
    """
    data = load_model_data(params, label_column, feature_tables, crop_stores)
    assignment = split_cells(data, split, seed)
    classes = sorted(set(data.labels))
    sides = {s: (assignment == s).to_numpy() for s in (TRAIN, VAL)}
    train = sides[TRAIN]
    details: dict = {}
    if params.type in CLASSICAL_TYPES:
        model = build_classical(params, data, seed)
        model.fit(classical_inputs(params, data)[train], data.labels[train])
        save_sklearn(model, paths.model_file(params.name, seed))
    else:
        history = _train_torch(params, data, sides, classes, seed, settings_hash, paths)
        write_json(paths.history(params.name, seed), history)
        details = {"epochs": len(history["epochs"]), "resumed_from": history["resumed_from"]}

    split_table = pd.DataFrame({"cell_id": data.cells[CELL_ID], SPLIT_COLUMN: assignment})
    with atomic_path(paths.split_file(params.name, seed)) as tmp:
        split_table.to_parquet(tmp, index=False)
    counts = {k: int(v) for k, v in assignment.value_counts().items()}
    info = {
        "model": params.name,
        "type": params.type,
        "input": params.input,
        "crop_kind": getattr(params, "crop_kind", None),
        "seed": seed,
        "feature_columns": data.feature_names or [],
        "classes": classes,
        "majority_class": pd.Series(data.labels[train]).value_counts().index[0],
        "split_by": split.by,
        "cells_per_split": counts,
        "unlabelled_cells_dropped": data.unlabelled_dropped,
    }
    write_json(paths.model_info(params.name, seed), info)
    log.info("train %s seed %d: %s", params.name, seed, json.dumps(counts))
    return {
        "cells_per_split": counts,
        "classes": classes,
        "unlabelled_cells_dropped": data.unlabelled_dropped,
        **details,
    }


def _train_torch(params, data: ModelData, sides: dict, classes, seed, settings_hash, paths):
    """Fit a PyTorch model (MLP, ResNet, VAE or CP2Image) with the shared training loop."""
    model_path = paths.torch_model_file(params.name, seed)
    checkpoint = paths.checkpoint(params.name, seed)
    if params.type == "mlp":
        from cellbench.models.mlp import train_mlp

        return train_mlp(
            params,
            {s: data.features[m] for s, m in sides.items()},
            {s: data.labels[m] for s, m in sides.items()},
            classes,
            seed,
            settings_hash,
            model_path,
            checkpoint,
        )
    from cellbench.models.images import ImageTraining, train_image_classifier, train_vae

    training = ImageTraining(
        epochs=params.epochs,
        batch_size=params.batch_size,
        learning_rate=params.learning_rate,
        weight_decay=params.weight_decay,
        optimizer=params.optimizer,
        patience=params.patience,
        scheduler=params.scheduler,
        augment=getattr(params, "augment", False),
    )
    common = {
        "training": training,
        "seed": seed,
        "settings_hash": settings_hash,
        "model_path": model_path,
        "checkpoint_path": checkpoint,
    }
    images = {s: data.crops[m] for s, m in sides.items()}
    if params.type == "resnet":
        labels = {s: data.labels[m] for s, m in sides.items()}
        return train_image_classifier(
            images,
            labels,
            classes,
            depth=params.depth,
            width=params.width,
            balanced=params.class_weight == "balanced",
            **common,
        )
    if params.type == "vae":
        return train_vae(
            images,
            latent_dim=params.latent_size,
            depth=params.depth,
            beta=params.beta,
            decoder=params.decoder,
            **common,
        )
    from cellbench.models.generator import train_generator

    return train_generator(
        params, {s: data.features[m] for s, m in sides.items()}, images, **common
    )
