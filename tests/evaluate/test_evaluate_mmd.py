"""The evaluate stage's MMD between groups of test cells: grouped by a metadata column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellbench.config import MMDConfig, SplitConfig
from cellbench.errors import CellbenchError
from cellbench.evaluate.run import evaluate_model
from cellbench.models.train import train_model
from cellbench.paths import ResultsPaths
from tests.models.test_registry import tiny_data, tiny_entry


def trained_vae(tmp_path, monkeypatch):
    """A tiny VAE trained on `tiny_data` (split by well), its paths and evaluate's file args."""
    data = tiny_data()
    monkeypatch.setattr("cellbench.models.train.load_model_data", lambda *a, **k: data)
    monkeypatch.setattr("cellbench.evaluate.run.load_model_data", lambda *a, **k: data)
    params = tiny_entry("vae")
    paths = ResultsPaths(tmp_path)
    split = SplitConfig(by="well", test_fraction=0.25, val_fraction=0.25)
    inputs = {"feature_tables": [], "crop_stores": []}
    train_model(params, split, "condition", 0, paths, settings_hash="t", **inputs)
    files = {**inputs, "channels": ["DNA", "actin"]}
    return params, paths, files


def test_mmd_groups_follow_group_by_and_a_missing_column_is_named(tmp_path, monkeypatch):
    params, paths, files = trained_vae(tmp_path, monkeypatch)

    by_well = MMDConfig(group_by="Metadata_Well", n_bootstrap=3)
    evaluate_model(params, "condition", 0, paths, mmd=by_well, **files)
    table = pd.read_csv(paths.mmd_table(params.name, 0))
    predictions = pd.read_parquet(paths.predictions(params.name, 0))
    test_wells = set(predictions.loc[predictions["split"] == "test", "Metadata_Well"])
    assert set(table.group_a) | set(table.group_b) == test_wells
    n = len(test_wells)
    assert len(table) == n * (n - 1) // 2 + n  # every pair, and each well's two halves
    assert pd.read_json(paths.metrics(params.name, 0), typ="series")["mmd_groups"] == n

    paths.mmd_table(params.name, 0).unlink()
    evaluate_model(params, "condition", 0, paths, mmd=None, **files)
    assert not paths.mmd_table(params.name, 0).exists()  # switched off
    assert "mmd2_between" not in pd.read_json(paths.metrics(params.name, 0), typ="series")

    wrong = MMDConfig(group_by="Metadata_Compound")
    with pytest.raises(CellbenchError, match=r"evaluate\.mmd\.group_by: .*'Metadata_Compound'"):
        evaluate_model(params, "condition", 0, paths, mmd=wrong, **files)


def test_several_groupings_share_one_table_and_columns_join_into_one_group(tmp_path, monkeypatch):
    params, paths, files = trained_vae(tmp_path, monkeypatch)

    groupings = ["label", "Metadata_Plate+Metadata_Well", "Metadata_Well"]
    evaluate_model(params, "condition", 0, paths, mmd=MMDConfig(group_by=groupings), **files)
    table = pd.read_csv(paths.mmd_table(params.name, 0))
    assert list(dict.fromkeys(table["grouping"])) == groupings  # in the configured order
    predictions = pd.read_parquet(paths.predictions(params.name, 0))
    test = predictions[predictions["split"] == "test"]
    by_label = table[table["grouping"] == "label"]
    assert set(by_label.group_a) | set(by_label.group_b) == set(test["Metadata_Condition"])
    joined = table[table["grouping"] == "Metadata_Plate+Metadata_Well"]
    assert set(joined.group_a) == {f"P1 @ {w}" for w in test["Metadata_Well"]}
    by_well = table[table["grouping"] == "Metadata_Well"]
    assert np.allclose(joined["mmd2"], by_well["mmd2"])  # one plate: the same groups
    metrics = pd.read_json(paths.metrics(params.name, 0), typ="series")
    assert metrics["mmd_groups"] == by_label["group_a"].nunique()  # the first grouping
    wells = test["Metadata_Well"].nunique()
    assert metrics["mmd_groups_plate_well"] == metrics["mmd_groups_well"] == wells
    assert metrics["mmd2_between_well"] == pytest.approx(
        by_well.loc[by_well.group_a != by_well.group_b, "mmd2"].mean()
    )
    assert list(metrics["mmd_groupings"]) == groupings

    with pytest.raises(CellbenchError, match=r"evaluate\.mmd\.group_by: .*'Metadata_Site'"):
        bad = MMDConfig(group_by=["label", "Metadata_Well+Metadata_Site"])
        evaluate_model(params, "condition", 0, paths, mmd=bad, **files)
