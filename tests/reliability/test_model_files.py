"""Model files are read without pickle: a tampered file fails clearly and runs nothing."""

import pickle
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import skops.io
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from cellbench.config import (
    GradientBoostingModel,
    LogisticRegressionModel,
    RandomForestModel,
    SVMModel,
)
from cellbench.errors import CellbenchError
from cellbench.evaluate.probe import fit_on_embeddings
from cellbench.models.classical import build_classical, classical_inputs
from cellbench.models.images import load_image_model
from cellbench.models.inputs import CELL_ID, ModelData
from cellbench.models.mlp import predict_mlp
from cellbench.models.persist import (
    TRUSTED_TYPES,
    ModelFileError,
    load_sklearn,
    load_torch,
    save_sklearn,
)
from cellbench.models.train import SPLIT_COLUMN
from cellbench.models.training import load_checkpoint
from cellbench.paths import ResultsPaths

CONFIGS = {
    "random_forest": lambda **kw: RandomForestModel(name="m", n_estimators=5, **kw),
    "svm": lambda **kw: SVMModel(name="m", **kw),
    "logistic_regression": lambda **kw: LogisticRegressionModel(name="m", **kw),
    "gradient_boosting": lambda **kw: GradientBoostingModel(
        name="m", max_iter=5, min_samples_leaf=2, **kw
    ),
}
INPUTS = [
    {},
    {"pca_components": 2},
    {"pca_components": 0.9},
    {"input": "fusion", "crop_kind": "whole_cell", "size_px": 8},
    {"input": "fusion", "crop_kind": "whole_cell", "size_px": 8, "pca_components": 3},
]


class WriteMarker:
    """A pickle payload: loading it opens (creates) the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class Untrusted(TransformerMixin, BaseEstimator):
    """A transformer of this test module: not on the trusted list."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


def tiny_data(n: int = 60) -> ModelData:
    rng = np.random.default_rng(0)
    labels = np.array(["a", "b", "c"])[np.arange(n) % 3]
    features = rng.normal(size=(n, 5)) + (np.arange(n) % 3)[:, None]
    features[0, 0], features[1, 1] = np.nan, np.inf
    cells = pd.DataFrame({CELL_ID: [f"c{i}" for i in range(n)]})
    crops = rng.uniform(size=(n, 1, 8, 8)).astype(np.float32)
    return ModelData(cells, labels, features.astype(np.float32), None, crops)


@pytest.mark.parametrize("options", INPUTS, ids=lambda o: "-".join(map(str, o.values())) or "x")
@pytest.mark.parametrize("kind", list(CONFIGS))
def test_every_classical_model_round_trips(tmp_path, kind, options):
    params = CONFIGS[kind](**options)
    data = tiny_data()
    inputs = classical_inputs(params, data)
    model = build_classical(params, data, seed=0).fit(inputs, data.labels)
    path = tmp_path / "model.skops"
    save_sklearn(model, path)
    assert set(skops.io.get_untrusted_types(file=path)) <= set(TRUSTED_TYPES)
    loaded = load_sklearn(path)
    np.testing.assert_array_equal(loaded.predict(inputs), model.predict(inputs))
    score = "predict_proba" if hasattr(model, "predict_proba") else "decision_function"
    np.testing.assert_array_equal(getattr(loaded, score)(inputs), getattr(model, score)(inputs))


def test_embedding_probe_is_saved_in_skops_format(tmp_path):
    paths = ResultsPaths(tmp_path)
    data = tiny_data()
    split = np.where(np.arange(60) < 45, "train", "test")
    source = RandomForestModel(name="source")  # only its name is read
    split_path = paths.split_file(source.name, 0)
    split_path.parent.mkdir(parents=True)
    pd.DataFrame({"cell_id": data.cells[CELL_ID], SPLIT_COLUMN: split}).to_parquet(split_path)
    params = LogisticRegressionModel(name="probe", input="embeddings", embedding_model="source")
    fit_on_embeddings(params, source, data, 0, paths)
    model = load_sklearn(paths.model_file("probe", 0))
    assert paths.model_file("probe", 0).suffix == ".skops"
    assert set(model.predict(data.features)) <= {"a", "b", "c"}


def test_garbage_bytes_fail_naming_the_file(tmp_path):
    path = tmp_path / "model.skops"
    path.write_bytes(b"\x00\x01 not a model \xff" * 10)
    with pytest.raises(CellbenchError, match=f"{path} is not a skops model file"):
        load_sklearn(path)


def test_pickle_with_payload_fails_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(WriteMarker(marker)))
    with pytest.raises(ModelFileError, match=f"{path} is not a skops model file"):
        load_sklearn(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes()).close()  # the payload is real: unpickling runs it
    assert marker.exists()


def test_zip_without_a_schema_fails(tmp_path):
    path = tmp_path / "model.skops"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("payload.pkl", pickle.dumps(WriteMarker(tmp_path / "pwned.txt")))
    with pytest.raises(ModelFileError, match="is not a skops model file this project wrote"):
        load_sklearn(path)
    assert not (tmp_path / "pwned.txt").exists()


def test_untrusted_type_in_a_skops_file_is_refused(tmp_path):
    model = Pipeline([("odd", Untrusted()), ("classify", LogisticRegression())])
    model.fit(np.arange(20.0).reshape(10, 2), [0, 1] * 5)
    path = tmp_path / "model.skops"
    skops.io.dump(model, path)  # as an attacker could; save_sklearn refuses it
    with pytest.raises(ModelFileError) as caught:
        load_sklearn(path)
    message = str(caught.value)
    assert str(path) in message
    assert "contains types not on the trusted list" in message
    assert f"{__name__}.Untrusted" in message
    with pytest.raises(TypeError, match="TRUSTED_TYPES"):
        save_sklearn(model, tmp_path / "other.skops")
    assert not (tmp_path / "other.skops").exists()


def test_tree_with_out_of_range_nodes_is_refused(tmp_path):
    params = RandomForestModel(name="m", n_estimators=2)
    data = tiny_data()
    model = build_classical(params, data, seed=0).fit(data.features, data.labels)
    tree = model[-1].estimators_[0].tree_
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**9
    tree.__setstate__({**state, "nodes": nodes})  # scikit-learn itself accepts it
    path = tmp_path / "model.skops"
    skops.io.dump(model, path)
    with pytest.raises(ModelFileError, match="decision tree with invalid nodes"):
        load_sklearn(path)


BAD_BOOSTED_NODES = {
    "child outside the tree": ("left", 10**6),
    "child before its parent (a loop)": ("right", 0),
    "feature outside the input": ("feature_idx", 99),
    "negative feature": ("feature_idx", -1),
    "categorical split": ("is_categorical", 1),
}


@pytest.mark.parametrize("field, value", BAD_BOOSTED_NODES.values(), ids=list(BAD_BOOSTED_NODES))
def test_boosted_tree_with_invalid_nodes_is_refused(tmp_path, field, value):
    params = GradientBoostingModel(name="m", max_iter=3, min_samples_leaf=2)
    data = tiny_data()
    model = build_classical(params, data, seed=0).fit(data.features, data.labels)
    predictor = model[-1]._predictors[-1][0]
    assert predictor.nodes["is_leaf"][0] == 0  # the root splits
    predictor.nodes[field][0] = value  # scikit-learn itself would walk it unchecked
    path = tmp_path / "model.skops"
    skops.io.dump(model, path)
    with pytest.raises(ModelFileError, match="gradient-boosted trees with invalid nodes"):
        load_sklearn(path)


def test_missing_model_file_says_so(tmp_path):
    with pytest.raises(CellbenchError, match="no model file"):
        load_sklearn(tmp_path / "model.skops")


def tampered_torch_file(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "model.pt"
    torch.save({"kind": "resnet", "payload": WriteMarker(marker)}, path)
    return path, marker


def test_tampered_torch_file_fails_and_runs_nothing(tmp_path):
    path, marker = tampered_torch_file(tmp_path)
    for load in (
        load_torch,
        load_image_model,
        lambda p: predict_mlp(p, np.zeros((2, 3), np.float32)),
        lambda p: load_checkpoint(p, "hash"),
    ):
        with pytest.raises(ModelFileError, match=f"{path} is not a PyTorch file"):
            load(path)
    assert not marker.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.load(path, weights_only=False)  # the payload is real: full unpickling runs it
    assert marker.exists()


def test_unreadable_torch_file_fails_naming_it(tmp_path):
    from cellbench.models.generator import generate

    path = tmp_path / "model.pt"
    path.write_bytes(b"garbage" * 20)
    with pytest.raises(ModelFileError, match=f"{path} is not a PyTorch file"):
        generate(path, np.zeros((1, 3)))
    torch.save([1, 2], path)
    with pytest.raises(ModelFileError, match="holds a list, not a dict"):
        load_torch(path)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    assert load_torch(path)["state_dict"]["w"].shape == (2,)
