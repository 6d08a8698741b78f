"""Train one model for one seed: load its inputs, split the cells by group, fit, save.

Every model type goes through `train_model`; what differs is how its inputs become a
training set (`load_model_data`) and the module that fits it (`cellbench.models.registry`).
The split of every cell is saved beside the model, so evaluation scores exactly the cells
training never saw.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.config import ModelConfig, SplitConfig
from cellbench.features.measure import metadata_column
from cellbench.io.atomic import atomic_path, write_json
from cellbench.models.inputs import CELL_ID, ModelData, load_model_data
from cellbench.models.registry import implementation
from cellbench.paths import ResultsPaths
from cellbench.splits import (
    LEAKY_SPLIT_WARNING,
    TRAIN,
    VAL,
    balance_classes,
    split_by_group,
    split_cell_folds,
    split_coculture,
    split_groups,
    split_wells_by_compound,
    training_positions,
)

log = logging.getLogger(__name__)

SPLIT_COLUMN = "split"
CLASS_COLUMN = "class"  # predictions: the class each cell was trained or scored against


def split_cells(data: ModelData, split: SplitConfig, seed: int) -> pd.Series:
    """``train`` / ``val`` / ``test`` (or ``unused``, after balancing) per cell."""
    if split.by == "cell":
        warnings.warn(LEAKY_SPLIT_WARNING, UserWarning, stacklevel=2)
        log.warning(LEAKY_SPLIT_WARNING)
    labels = pd.Series(data.labels)
    if split.folds is not None:  # seed k tests on fold k (the config checks seeds < folds)
        assignment = split_cell_folds(
            labels,
            folds=split.folds,
            fold=seed,
            fold_seed=split.fold_seed,
            val_fraction=split.val_fraction,
            seed=seed,
        )
        return balance_classes(assignment, labels, split.sample, seed)
    if split.by == "coculture":
        culture = data.cells[metadata_column(split.culture_column)].astype(str)
        mixed = (culture == split.coculture_value).reset_index(drop=True)
        wells = split_groups(data.cells, "well").reset_index(drop=True)
        assignment = split_coculture(
            wells, labels, mixed, val_fraction=split.val_fraction, seed=seed
        )
        return balance_classes(assignment, labels, split.sample, seed)
    fractions = {"test_fraction": split.test_fraction, "val_fraction": split.val_fraction}
    groups = split_groups(data.cells, split.by)
    if split.by == "compound_wells":
        compounds = split_groups(data.cells, "compound")
        assignment = split_wells_by_compound(groups, compounds, **fractions, seed=seed)
    else:
        assignment = split_by_group(groups, labels, **fractions, seed=seed)
    return balance_classes(assignment, labels, split.sample, seed)


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
    data = load_model_data(params, label_column, feature_tables, crop_stores, split=split)
    assignment = split_cells(data, split, seed)
    classes = sorted(set(data.labels))
    sides = {s: (assignment == s).to_numpy() for s in (TRAIN, VAL)}
    train = sides[TRAIN]
    sides[TRAIN] = training_positions(
        train, data.labels, split.sample, split.oversample_per_class, seed
    )
    details = implementation(params.type).train(
        params, data, sides, classes, seed=seed, settings_hash=settings_hash, paths=paths
    )

    split_table = pd.DataFrame({"cell_id": data.cells[CELL_ID], SPLIT_COLUMN: assignment})
    if sides[TRAIN].dtype != bool:  # oversampled: how often each cell was drawn
        split_table["train_draws"] = np.bincount(sides[TRAIN], minlength=len(split_table))
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
        "split_fold": seed if split.folds is not None else None,
        "cells_per_split": counts,
        "unlabelled_cells_dropped": data.unlabelled_dropped,
        "undefined_cells_dropped": data.undefined_dropped,
    }
    write_json(paths.model_info(params.name, seed), info)
    log.info("train %s seed %d: %s", params.name, seed, json.dumps(counts))
    return {
        "cells_per_split": counts,
        "classes": classes,
        "unlabelled_cells_dropped": data.unlabelled_dropped,
        "undefined_cells_dropped": data.undefined_dropped,
        **details,
    }
