"""Train a model on the per-cell feature tables, split by group, and save it."""

from __future__ import annotations

import json
import logging

import joblib
import numpy as np
import pandas as pd

from cellbench.config import ModelConfig, SplitConfig
from cellbench.evaluate.splits import TRAIN, VAL, split_by_group
from cellbench.features.measure import METADATA_PREFIX, metadata_column
from cellbench.io.atomic import atomic_path, write_json
from cellbench.models.classical import build_random_forest
from cellbench.paths import ResultsPaths

log = logging.getLogger(__name__)

SPLIT_COLUMN = "split"


def load_feature_tables(paths: list, label_column: str) -> pd.DataFrame:
    """Concatenate feature tables and keep the cells that have a label."""
    table = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    label = metadata_column(label_column)
    if label not in table.columns:
        raise KeyError(f"feature tables have no {label!r} column (data.label_column)")
    from cellbench.features.ground_truth import UNDEFINED

    keep = table[label].notna() & (table[label].astype(str) != UNDEFINED)
    return table[keep].reset_index(drop=True)


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The feature columns of a table: every column that is not `Metadata_`."""
    return [c for c in table.columns if not c.startswith(METADATA_PREFIX)]


def split_groups(table: pd.DataFrame, by: str) -> pd.Series:
    """The group of every cell for a split by plate, well or field (unique across plates)."""
    plate = table[metadata_column("plate")].astype(str)
    if by == "plate":
        return plate
    return plate + "/" + table[metadata_column(by)].astype(str)


def train_model(
    table: pd.DataFrame,
    params: ModelConfig,
    split: SplitConfig,
    label_column: str,
    seed: int,
    paths: ResultsPaths,
    settings_hash: str,
) -> dict:
    """Split the cells by group, fit the model on the training cells, save model and split.

    Returns
    -------
    dict
        Cell counts per split and the classes, for the task's status.
    """
    labels = table[metadata_column(label_column)].astype(str)
    assignment = split_by_group(
        split_groups(table, split.by),
        labels,
        test_fraction=split.test_fraction,
        val_fraction=split.val_fraction,
        seed=seed,
    )
    columns = feature_columns(table)
    classes = sorted(labels.unique())
    train = (assignment == TRAIN).to_numpy()
    details: dict = {}
    if params.type == "random_forest":
        model = build_random_forest(params, seed)
        model.fit(table.loc[train, columns].to_numpy(), labels[train].to_numpy())
        with atomic_path(paths.model_file(params.name, seed)) as tmp:
            joblib.dump(model, tmp)
    else:
        from cellbench.models.mlp import train_mlp

        by_split = {s: (assignment == s).to_numpy() for s in (TRAIN, VAL)}
        history = train_mlp(
            params,
            {s: table.loc[m, columns].to_numpy(dtype=np.float32) for s, m in by_split.items()},
            {s: labels[m].to_numpy() for s, m in by_split.items()},
            classes,
            seed,
            settings_hash,
            paths.torch_model_file(params.name, seed),
            paths.checkpoint(params.name, seed),
        )
        write_json(paths.history(params.name, seed), history)
        details = {"epochs": len(history["epochs"]), "resumed_from": history["resumed_from"]}

    split_table = pd.DataFrame(
        {"cell_id": table[metadata_column("cell_id")], SPLIT_COLUMN: assignment}
    )
    with atomic_path(paths.split_file(params.name, seed)) as tmp:
        split_table.to_parquet(tmp, index=False)
    info = {
        "model": params.name,
        "type": params.type,
        "input": params.input,
        "seed": seed,
        "feature_columns": columns,
        "classes": classes,
        "majority_class": labels[train].value_counts().index[0],
        "split_by": split.by,
        "cells_per_split": {k: int(v) for k, v in assignment.value_counts().items()},
    }
    write_json(paths.model_info(params.name, seed), info)
    log.info("train %s seed %d: %s", params.name, seed, json.dumps(info["cells_per_split"]))
    return {"cells_per_split": info["cells_per_split"], "classes": classes, **details}
