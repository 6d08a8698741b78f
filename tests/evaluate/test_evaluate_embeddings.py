"""The evaluate stage's embedding metrics: KMeans silhouette and the NSC table (nsc.csv)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from cellbench.config import SplitConfig
from cellbench.evaluate.nsc import nsc_accuracy
from cellbench.evaluate.run import _embedding_metrics, _nsc, evaluate_model
from cellbench.models.train import train_model
from cellbench.paths import ResultsPaths
from tests.models.test_registry import tiny_data, tiny_entry


def _kmeans_silhouette(x: np.ndarray, k: int, seed: int) -> float:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    clusters = KMeans(k, n_init=10, random_state=seed).fit_predict(unit)
    return silhouette_score(unit, clusters, metric="cosine")


def test_kmeans_silhouette_uses_the_class_count_unless_k_is_given():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    labels = np.repeat(["a", "b", "c"], 10)
    default = _embedding_metrics(x, labels, seed=2)
    assert default["kmeans_clusters"] == 3
    assert default["silhouette_kmeans"] == pytest.approx(_kmeans_silhouette(x, 3, 2))
    two = _embedding_metrics(x, labels, seed=2, kmeans_clusters=2)
    assert two["kmeans_clusters"] == 2
    assert two["silhouette_kmeans"] == pytest.approx(_kmeans_silhouette(x, 2, 2))


def test_nsc_table_is_written_with_every_treatments_neighbour(tmp_path):
    rng = np.random.default_rng(1)
    compounds = np.repeat(["c1", "c2", "c3", "c4"], 6)
    moas = {"c1": "m1", "c2": "m1", "c3": "m2", "c4": "m2"}
    cells = pd.DataFrame(
        {
            "Metadata_Compound": compounds,
            "Metadata_Concentration": np.tile([1.0, 1.0, 1.0, 2.0, 2.0, 2.0], 4),
            "Metadata_Moa": [moas[c] for c in compounds],
            "Metadata_Plate": "P1",
            "Metadata_Well": [f"W{i // 3}" for i in range(len(compounds))],
        }
    )
    x = rng.normal(size=(len(cells), 5))
    path = tmp_path / "nsc.csv"
    summary = _nsc(cells, x, path)
    written = pd.read_csv(path)
    table = pd.concat([cells, pd.DataFrame(x, columns=[f"e{i}" for i in range(5)])], axis=1)
    expected = nsc_accuracy(table).neighbours
    assert len(written) == summary["nsc_treatments"] == 8
    assert written["neighbour_moa"].tolist() == expected["neighbour_moa"].tolist()
    assert written["correct"].mean() == pytest.approx(summary["nsc"])
    assert _nsc(cells.drop(columns="Metadata_Moa"), x, tmp_path / "none.csv") == {}
    assert not (tmp_path / "none.csv").exists()


def test_evaluate_writes_the_kmeans_silhouette_of_a_vae(tmp_path, monkeypatch):
    data = tiny_data()
    monkeypatch.setattr("cellbench.models.train.load_model_data", lambda *a, **k: data)
    monkeypatch.setattr("cellbench.evaluate.run.load_model_data", lambda *a, **k: data)
    params = tiny_entry("vae")
    paths = ResultsPaths(tmp_path)
    split = SplitConfig(by="well", test_fraction=0.25, val_fraction=0.25)
    inputs = {"feature_tables": [], "crop_stores": []}
    train_model(params, split, "condition", 0, paths, settings_hash="t", **inputs)
    files = {**inputs, "channels": ["DNA", "actin"]}
    evaluate_model(params, "condition", 0, paths, mmd=None, kmeans_clusters=2, **files)
    metrics = pd.read_json(paths.metrics(params.name, 0), typ="series")
    embeddings = pd.read_parquet(paths.embeddings(params.name, 0))
    test = embeddings[embeddings["split"] == "test"]
    x = test[[c for c in test.columns if c.startswith("embedding_")]].to_numpy()
    assert metrics["kmeans_clusters"] == 2
    assert metrics["silhouette_kmeans"] == pytest.approx(_kmeans_silhouette(x, 2, 0), abs=1e-6)
