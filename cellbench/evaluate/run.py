"""Evaluate a trained classical model on its held-out cells."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pandas as pd

from cellbench.evaluate.metrics import classification_metrics
from cellbench.evaluate.splits import TEST
from cellbench.features.measure import METADATA_PREFIX, metadata_column
from cellbench.io.atomic import atomic_path, write_json
from cellbench.models.train import SPLIT_COLUMN


def evaluate_classical(
    table: pd.DataFrame,
    label_column: str,
    model_path: Path,
    split_path: Path,
    info_path: Path,
    metrics_path: Path,
    predictions_path: Path,
) -> dict:
    """Predict every cell, score the test cells, write metrics.json and predictions.parquet.

    The predictions keep every cell with its split, so any later analysis can check what
    the model saw in training.
    """
    info = json.loads(info_path.read_text())
    model = joblib.load(model_path)  # our own file, written by train_classical
    split = pd.read_parquet(split_path).set_index("cell_id")[SPLIT_COLUMN]
    cell_ids = table[metadata_column("cell_id")]
    predicted = model.predict(table[info["feature_columns"]].to_numpy())

    predictions = table[[c for c in table.columns if c.startswith(METADATA_PREFIX)]].copy()
    predictions[SPLIT_COLUMN] = cell_ids.map(split).to_numpy()
    predictions["predicted"] = predicted
    with atomic_path(predictions_path) as tmp:
        predictions.to_parquet(tmp, index=False)

    test = (predictions[SPLIT_COLUMN] == TEST).to_numpy()
    truth = table[metadata_column(label_column)].astype(str).to_numpy()
    result = {
        "model": info["model"],
        "input": info["input"],
        "seed": info["seed"],
        **classification_metrics(
            truth[test], predicted[test], info["classes"], info["majority_class"]
        ),
    }
    write_json(metrics_path, result)
    return {"accuracy": result["accuracy"], "majority_rate": result["majority_rate"]}
