"""The model-type registry: every config type is implemented, and what it declares holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter

from cellbench.config import MODEL_TYPES, MMDConfig, ModelConfig, SplitConfig
from cellbench.config.base import union_members
from cellbench.evaluate.distributions import MMD_COLUMNS
from cellbench.evaluate.run import evaluate_model
from cellbench.models import registry
from cellbench.models.classical import CLASSIFIERS
from cellbench.models.inputs import CELL_ID, ModelData
from cellbench.models.persist import load_sklearn
from cellbench.models.train import train_model
from cellbench.paths import ResultsPaths

CLASSES = ["a", "b", "c"]
SIZE_PX = 32
ABILITIES = {"gives_embeddings": "embed", "gives_crops": "reconstruct", "gives_gradcam": "explain"}
# Quicker settings than the defaults, where a type has them; any other type runs as declared.
QUICK = {
    "random_forest": {"n_estimators": 5},
    "gradient_boosting": {"max_iter": 5, "min_samples_leaf": 2},
    "resnet": {"width": 4, "gradcam_cells": 2},
}


def config_class(model_type: str):
    return union_members(ModelConfig)[model_type]


def tiny_entry(model_type: str):
    """A valid, quick config entry of `model_type` (one epoch for PyTorch types)."""
    fields = config_class(model_type).model_fields
    entry = {"name": "m", "type": model_type, **QUICK.get(model_type, {})}
    if "epochs" in fields:
        entry.update(epochs=1, batch_size=8, patience=None)
    if "crop_kind" in fields and fields["crop_kind"].is_required():
        entry["crop_kind"] = "whole_cell"
    if "size_px" in fields:
        entry["size_px"] = SIZE_PX
    return TypeAdapter(ModelConfig).validate_python(entry)


def tiny_data(n_wells_per_class: int = 4, cells_per_well: int = 4) -> ModelData:
    """Seeded cells of 3 classes, one class per well: features, 2-channel crops, metadata."""
    rng = np.random.default_rng(0)
    wells = np.repeat(np.arange(len(CLASSES) * n_wells_per_class), cells_per_well)
    labels = np.array(CLASSES, dtype=object)[wells % len(CLASSES)]  # str, as read from tables
    n = len(labels)
    codes = np.searchsorted(CLASSES, labels)
    names = [f"Cells_Intensity_MeanIntensity_ch{i}" for i in range(4)]
    features = (rng.normal(size=(n, len(names))) + 2.0 * codes[:, None]).astype(np.float32)
    crops = rng.uniform(0, 0.2, size=(n, 2, SIZE_PX, SIZE_PX)).astype(np.float32)
    crops[:, 0, 10:22, 10:22] += 0.3 * (1 + codes)[:, None, None]  # brighter per class
    cells = pd.DataFrame(
        {
            CELL_ID: [f"c{i}" for i in range(n)],
            "Metadata_Plate": "P1",
            "Metadata_Well": [f"A{w:02d}" for w in wells],
            "Metadata_Condition": labels,
        }
    )
    return ModelData(cells, labels, features, names, crops)


@pytest.fixture(scope="module")
def data() -> ModelData:
    return tiny_data()


def sides_of(n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Masks of the train / val cells and every cell's split name: 2/3 train, then val, test."""
    split = np.array(["train", "train", "val", "test"] * (n // 4))
    return {s: split == s for s in ("train", "val")}, split


def test_the_registered_types_are_the_config_types():
    assert set(registry.registered_types()) == set(MODEL_TYPES)
    classical = {t for t in MODEL_TYPES if config_class(t).family == "classical"}
    assert classical == set(CLASSIFIERS)  # the shared module builds each of them


def test_an_unknown_type_names_the_registered_types():
    with pytest.raises(ValueError, match="'gbm' has no implementation; registered types: ") as e:
        registry.implementation("gbm")  # never a fallback to another model
    assert all(model_type in str(e.value) for model_type in MODEL_TYPES)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_each_module_has_the_functions_its_types_declare(model_type):
    module = registry.implementation(model_type)
    assert callable(module.train) and callable(module.predict)
    served = [t for t in registry.registered_types() if registry.implementation(t) is module]
    for ability, function in ABILITIES.items():
        declared = any(getattr(config_class(t), ability) for t in served)
        assert hasattr(module, function) == declared, (model_type, function)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_each_declared_ability_holds(tmp_path, data, model_type):
    params = tiny_entry(model_type)
    module = registry.implementation(model_type)
    paths = ResultsPaths(tmp_path)
    sides, split = sides_of(len(data.labels))
    run = {"seed": 0, "paths": paths}
    details = module.train(params, data, sides, CLASSES, settings_hash="t", **run)
    assert isinstance(details, dict)
    prediction = module.predict(params, data, split, **run)

    if prediction.predicted is not None:
        assert prediction.predicted.shape == (len(data.labels),)
        assert set(prediction.predicted) <= set(CLASSES)
    assert (prediction.probabilities is not None) == params.gives_probabilities
    if params.gives_probabilities:
        assert prediction.probabilities.shape == (len(data.labels), len(CLASSES))
        np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    if params.family == "classical":  # the fitted pipeline itself
        fitted = load_sklearn(paths.model_file(params.name, 0))
        assert hasattr(fitted, "predict_proba") == params.gives_probabilities
    assert (prediction.embeddings is not None) == params.gives_embeddings
    if params.gives_embeddings:
        embeddings = module.embed(params, data, **run)
        assert embeddings.ndim == 2 and len(embeddings) == len(data.labels)
        np.testing.assert_allclose(prediction.embeddings, embeddings, rtol=1e-5, atol=1e-6)
    test = split == "test"
    if params.gives_crops:
        made = module.reconstruct(params, data, test, **run)
        assert made.shape == data.crops[test].shape
    if params.gives_gradcam:
        explained = module.explain(params, data, test, CLASSES, **run)
        assert set(explained) == {"gradcam"} and explained["gradcam"]
        assert paths.gradcam_maps(params.name, 0).exists()


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_train_and_evaluate_stages_reach_every_type(tmp_path, monkeypatch, data, model_type):
    # The stage functions with the tiny cells in place of feature tables and crop stores.
    monkeypatch.setattr("cellbench.models.train.load_model_data", lambda *a, **k: data)
    monkeypatch.setattr("cellbench.evaluate.run.load_model_data", lambda *a, **k: data)
    params = tiny_entry(model_type)
    paths = ResultsPaths(tmp_path)
    split = SplitConfig(by="well", test_fraction=0.25, val_fraction=0.25)
    files = {"feature_tables": [], "crop_stores": []}
    train_model(params, split, "condition", 0, paths, settings_hash="t", **files)
    mmd = MMDConfig(n_bootstrap=5)
    result = evaluate_model(
        params, "condition", 0, paths, channels=["DNA", "actin"], mmd=mmd, **files
    )

    predictions = pd.read_parquet(paths.predictions(params.name, 0))
    has_probabilities = any(c.startswith("probability_") for c in predictions.columns)
    assert has_probabilities == params.gives_probabilities
    assert paths.embeddings(params.name, 0).exists() == params.gives_embeddings  # written
    if params.gives_embeddings:
        embeddings = pd.read_parquet(paths.embeddings(params.name, 0))
        assert len(embeddings) == len(data.labels) and "embedding_000" in embeddings.columns
        assert "silhouette" in result
        # MMD^2 between the classes of the test cells, and within each class
        table = pd.read_csv(paths.mmd_table(params.name, 0))
        assert list(table.columns) == ["grouping", *MMD_COLUMNS] and len(table) > 0
        assert set(table.grouping) == {"label"}  # the default grouping
        test_classes = set(embeddings.loc[embeddings["split"] == "test", "Metadata_Condition"])
        assert set(table.group_a) | set(table.group_b) == test_classes
        assert (table.ci_low <= table.ci_high).all() and table.sigma.gt(0).all()
        summary = pd.read_json(paths.metrics(params.name, 0), typ="series")
        assert summary["mmd_groups"] == len(test_classes)
    assert paths.mmd_table(params.name, 0).exists() == params.gives_embeddings
    assert ("reconstruction_mse" in result) == params.gives_crops
    metrics = pd.read_json(paths.metrics(params.name, 0), typ="series")
    assert ("gradcam" in metrics) == params.gives_gradcam
    assert ("latent_kl_total" in metrics) == params.gives_latent_analysis
    assert paths.latent_grids(params.name, 0).exists() == params.gives_latent_analysis
    assert paths.generation_grids(params.name, 0).exists() == params.gives_generation_grids
    assert ("generation_grid_cells" in metrics) == params.gives_generation_grids
    if params.gives_latent_analysis:  # the test cells' KL per dimension and their grids
        usage = pd.read_csv(paths.latent_usage(params.name, 0))
        assert list(usage["dimension"]) == list(range(params.latent_size))
        assert np.isclose(usage["kl"].sum(), metrics["latent_kl_total"])
        grids = np.load(paths.latent_grids(params.name, 0))
        saved_split = pd.read_parquet(paths.split_file(params.name, 0))
        test_ids = set(saved_split.loc[saved_split["split"] == "test", "cell_id"].astype(str))
        assert set(grids["cell_ids"]) <= test_ids
        cells = min(params.analysis_cells, len(test_ids))
        shape = (2, SIZE_PX, SIZE_PX)
        assert grids["originals"].shape == grids["reconstructions"].shape == (cells, *shape)
        assert grids["traversal"].shape[2:] == shape and grids["interpolation"].shape[1:] == shape
