"""Train a classical model on the per-cell feature tables, split by group."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import joblib
import pandas as pd

from cellbench.config import RandomForestModel, SplitConfig
from cellbench.evaluate.splits import TRAIN, split_by_group
from cellbench.features.measure import METADATA_PREFIX, metadata_column
from cellbench.io.atomic import atomic_path, write_json
from cellbench.models.classical import build_random_forest

log = logging.getLogger(__name__)

SPLIT_COLUMN = "split"


def load_feature_tables(paths: list[Path], label_column: str) -> pd.DataFrame:
    """Concatenate feature tables and keep the cells that have a label."""
    table = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    label = metadata_column(label_column)
    if label not in table.columns:
        raise KeyError(f"feature tables have no {label!r} column (data.label_column)")
    return table[table[label].notna()].reset_index(drop=True)


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The feature columns of a table: every column that is not `Metadata_`."""
    return [c for c in table.columns if not c.startswith(METADATA_PREFIX)]


def split_groups(table: pd.DataFrame, by: str) -> pd.Series:
    """The group of every cell for a split by plate, well or field (unique across plates)."""
    plate = table[metadata_column("plate")].astype(str)
    if by == "plate":
        return plate
    return plate + "/" + table[metadata_column(by)].astype(str)


def train_classical(
    table: pd.DataFrame,
    params: RandomForestModel,
    split: SplitConfig,
    label_column: str,
    seed: int,
    model_path: Path,
    split_path: Path,
    info_path: Path,
) -> dict:
    """Split the cells, fit the model on the training cells and save model, split and info.

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
    train = (assignment == TRAIN).to_numpy()
    columns = feature_columns(table)
    model = build_random_forest(params, seed)
    model.fit(table.loc[train, columns].to_numpy(), labels[train].to_numpy())

    with atomic_path(model_path) as tmp:
        joblib.dump(model, tmp)
    split_table = pd.DataFrame(
        {"cell_id": table[metadata_column("cell_id")], SPLIT_COLUMN: assignment}
    )
    with atomic_path(split_path) as tmp:
        split_table.to_parquet(tmp, index=False)
    info = {
        "model": params.name,
        "type": params.type,
        "input": params.input,
        "seed": seed,
        "feature_columns": columns,
        "classes": sorted(labels.unique()),
        "majority_class": labels[train].value_counts().index[0],
        "split_by": split.by,
        "cells_per_split": {k: int(v) for k, v in assignment.value_counts().items()},
    }
    write_json(info_path, info)
    log.info("train %s seed %d: %s", params.name, seed, json.dumps(info["cells_per_split"]))
    return {"cells_per_split": info["cells_per_split"], "classes": info["classes"]}
