"""The ``logistic_regression_torch`` model type: the study's one-layer torch classifier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import TypeAdapter
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cellbench.config import LogisticRegressionTorchModel, ModelConfig
from cellbench.models import logistic_torch, registry
from cellbench.models.inputs import CELL_ID, ModelData
from cellbench.models.persist import load_torch
from cellbench.paths import ResultsPaths

CLASSES = ["a", "b", "c"]


def blobs(n_per_class: int, spread: float, seed: int) -> ModelData:
    """Three Gaussian classes in 6 features, centres 4 * e_k (5.7 apart), SD `spread`."""
    rng = np.random.default_rng(seed)
    codes = rng.permutation(np.repeat(np.arange(len(CLASSES)), n_per_class))
    centres = 4.0 * np.eye(len(CLASSES), 6)
    features = (centres[codes] + spread * rng.normal(size=(len(codes), 6))).astype(np.float32)
    features[:, 1] = 50.0 + 10.0 * features[:, 1]  # unscaled columns: standardised inside
    labels = np.array(CLASSES, dtype=object)[codes]
    cells = pd.DataFrame({CELL_ID: [f"c{i}" for i in range(len(codes))]})
    return ModelData(cells, labels, features, [f"Cells_F_{i}" for i in range(6)])


def halves(n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """First 2/3 of the (shuffled) cells train, the rest test."""
    split = np.where(np.arange(n) < 2 * n // 3, "train", "test")
    return {"train": split == "train", "val": np.zeros(n, bool)}, split


def fit(tmp_path, data: ModelData, **settings) -> tuple[LogisticRegressionTorchModel, dict]:
    params = LogisticRegressionTorchModel(name="lr", **settings)
    sides, split = halves(len(data.labels))
    run = {"seed": 0, "paths": ResultsPaths(tmp_path)}
    logistic_torch.train(params, data, sides, CLASSES, settings_hash="h", **run)
    return params, {"split": split, **run}


def test_the_type_is_registered_and_a_config_entry_validates():
    assert registry.implementation("logistic_regression_torch") is logistic_torch
    entry = TypeAdapter(ModelConfig).validate_python(
        {"name": "lr", "type": "logistic_regression_torch"}
    )
    assert isinstance(entry, LogisticRegressionTorchModel)
    assert entry.family == "torch" and entry.gives_probabilities


def test_defaults_are_the_study_optimiser_settings():
    # train_lr.py: Adam(lr=1e-3) (no weight decay), batch 128, 5 epochs, plain cross-entropy
    params = LogisticRegressionTorchModel(name="lr")
    assert (params.optimizer, params.learning_rate, params.weight_decay) == ("adam", 1e-3, 0.0)
    assert (params.batch_size, params.epochs, params.scheduler) == (128, 5, "none")
    assert params.patience is None and params.class_weight is None
    assert params.hidden == [] and "hidden" not in params.model_dump()  # not a setting


def test_learns_a_separable_problem(tmp_path):
    data = blobs(200, spread=0.3, seed=1)
    params, run = fit(tmp_path, data, epochs=20, learning_rate=0.05)
    prediction = logistic_torch.predict(params, data, run["split"], seed=0, paths=run["paths"])
    test = run["split"] == "test"
    assert (prediction.predicted[test] == data.labels[test]).mean() == 1.0
    np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (prediction.probabilities[test].max(axis=1) > 0.5).all()


def test_accuracy_agrees_with_scikit_learn_logistic_regression(tmp_path):
    data = blobs(400, spread=2.0, seed=2)  # overlapping classes: neither model is perfect
    params, run = fit(tmp_path, data, epochs=40, learning_rate=0.02)
    test = run["split"] == "test"
    ours = logistic_torch.predict(params, data, run["split"], seed=0, paths=run["paths"])
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    reference.fit(data.features[~test], data.labels[~test])
    theirs = reference.predict(data.features[test])
    our_accuracy = (ours.predicted[test] == data.labels[test]).mean()
    their_accuracy = (theirs == data.labels[test]).mean()
    assert 0.6 < their_accuracy < 0.95  # the problem is neither trivial nor hopeless
    assert our_accuracy == pytest.approx(their_accuracy, abs=0.03)
    assert (ours.predicted[test] == theirs).mean() > 0.93  # mostly the same cells


def test_saved_model_is_one_linear_layer_and_reloads(tmp_path):
    data = blobs(60, spread=1.0, seed=3)
    params, run = fit(tmp_path, data, epochs=2)
    paths = run["paths"]
    assert not paths.checkpoint("lr", 0).exists()  # removed once the model is saved
    saved = load_torch(paths.torch_model_file("lr", 0))  # weights_only, like other models
    weights = {k: v for k, v in saved["state_dict"].items() if k.startswith("layers.")}
    assert sorted(weights) == ["layers.0.bias", "layers.0.weight"]
    assert weights["layers.0.weight"].shape == (len(CLASSES), 6)
    assert saved["classes"] == CLASSES and saved["hidden"] == []
    state = saved["state_dict"]
    x = torch.from_numpy(data.features)
    z = (x - state["mean"]) / state["scale"]
    by_hand = torch.softmax(z @ weights["layers.0.weight"].T + weights["layers.0.bias"], dim=1)
    prediction = logistic_torch.predict(params, data, run["split"], seed=0, paths=paths)
    np.testing.assert_allclose(prediction.probabilities, by_hand.numpy(), rtol=1e-5, atol=1e-6)
    again = logistic_torch.predict(params, data, run["split"], seed=0, paths=paths)
    np.testing.assert_array_equal(again.probabilities, prediction.probabilities)


def test_same_seed_same_weights_and_balanced_weighting_changes_them(tmp_path):
    data = blobs(60, spread=1.5, seed=4)
    keep = np.r_[np.flatnonzero(data.labels != "a"), np.flatnonzero(data.labels == "a")[:10]]
    data = ModelData(data.cells.iloc[keep], data.labels[keep], data.features[keep])

    def weights(folder: str, **settings) -> torch.Tensor:
        _, run = fit(tmp_path / folder, data, epochs=5, batch_size=16, **settings)
        return load_torch(run["paths"].torch_model_file("lr", 0))["state_dict"]["layers.0.weight"]

    first, second = weights("one"), weights("two")
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    # Adam normalises the gradient, so the weighting shows after a few steps, not the first
    assert not torch.allclose(first, weights("balanced", class_weight="balanced"))
