"""Evaluate a trained model on its held-out cells."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd

from cellbench.evaluate.metrics import classification_metrics
from cellbench.evaluate.splits import TEST
from cellbench.features.measure import METADATA_PREFIX, metadata_column
from cellbench.io.atomic import atomic_path, write_json
from cellbench.models.train import SPLIT_COLUMN
from cellbench.paths import ResultsPaths


def predict(info: dict, paths: ResultsPaths, features: np.ndarray) -> np.ndarray:
    """Class names predicted by the saved model described by `info` (model_info.json)."""
    model, seed = info["model"], info["seed"]
    if info["type"] == "mlp":
        from cellbench.models.mlp import predict_mlp

        return predict_mlp(paths.torch_model_file(model, seed), features)
    # Our own file, written by train_model under the results root.
    return joblib.load(paths.model_file(model, seed)).predict(features)


def evaluate_model(
    table: pd.DataFrame, label_column: str, model: str, seed: int, paths: ResultsPaths
) -> dict:
    """Predict every cell, score the test cells, write metrics.json and predictions.parquet.

    The predictions keep every cell with its split, so any later analysis can check what
    the model saw in training.
    """
    info = json.loads(paths.model_info(model, seed).read_text())
    split = pd.read_parquet(paths.split_file(model, seed)).set_index("cell_id")[SPLIT_COLUMN]
    cell_ids = table[metadata_column("cell_id")]
    features = table[info["feature_columns"]].to_numpy(dtype=np.float32)
    predicted = predict(info, paths, features)

    predictions = table[[c for c in table.columns if c.startswith(METADATA_PREFIX)]].copy()
    predictions[SPLIT_COLUMN] = cell_ids.map(split).to_numpy()
    predictions["predicted"] = predicted
    with atomic_path(paths.predictions(model, seed)) as tmp:
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
    write_json(paths.metrics(model, seed), result)
    return {"accuracy": result["accuracy"], "majority_rate": result["majority_rate"]}
