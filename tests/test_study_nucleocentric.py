"""The nucleocentric study end to end on a small synthetic co-culture plate.

At a reduced size (a 2 x 3-well plate, the random forest and one ResNet-18 for one epoch) it
checks that the co-culture split, the marker ground truth and the study's options run
through every stage, not the accuracy reached.
"""

from __future__ import annotations

import json

import pandas as pd
import yaml

from cellbench.config import config_from_dict
from cellbench.execution.run import execute
from cellbench.paths import ResultsPaths
from tests.helpers import REPO

STUDY = REPO / "configs" / "studies" / "nucleocentric.yaml"


def reduced(results_root) -> dict:
    """The study with a small plate, one seed, the forest and one ResNet-18 for one epoch."""
    raw = yaml.safe_load(STUDY.read_text())
    raw["results_root"] = str(results_root)
    raw["data"]["input"] |= {"rows": "AB", "columns": [1, 2, 3], "sites": 2}
    raw["data"]["input"] |= {"field_shape_px": [160, 160], "cells_per_field": 14}
    raw["seeds"] = [0]
    keep = {"rf", "rf_trees_010", "rf_trees_150", "resnet18_nucleocentric"}
    keep |= {"resnet18_whole_cell_unmasked"}
    raw["models"] = [m for m in raw["models"] if m["name"] in keep]
    for sweep in raw["report"]["sweeps"]:  # the sweep's two ends
        sweep["models"] = [m for m in sweep["models"] if m in keep]
    for model in raw["models"]:
        if "epochs" in model:
            model |= {"epochs": 1, "gradcam_cells": 2}
    return raw


def test_the_study_uses_the_studys_settings() -> None:
    config = config_from_dict(yaml.safe_load(STUDY.read_text()) | {"results_root": "unused"})
    assert config.data.input.design == "coculture" and config.split.by == "coculture"
    assert config.data.marker_channels == ["EdU", "BrdU"]
    assert set(config.ground_truth.rules) == {"astro", "neuron"}
    rf = config.model("rf")
    assert (rf.n_estimators, rf.max_depth, rf.prune_correlation) == (30, 2, 0.95)
    assert rf.zscore_per_well and rf.undersample
    kinds = {m.crop_kind for m in config.models if m.type == "resnet"}
    assert kinds == {"whole_cell", "whole_cell_unmasked", "nuclear", "nucleocentric"}
    assert config.crops.kinds["whole_cell_unmasked"].masked is False
    assert {m.depth for m in config.models if m.type == "resnet"} == {18, 50}
    (sweep,) = config.report.sweeps
    swept = [config.model(m) for m in sweep.models]
    assert [m.n_estimators for m in swept] == list(range(10, 151, 20))
    assert {(m.max_depth, m.zscore_per_well, m.undersample) for m in swept} == {(10, True, True)}
    assert config.report.embeddings.zscore_by == ["Metadata_Plate"]  # its replicates
    assert config.report.feature_clustermap.zscore_by == ["Metadata_Plate", "Metadata_Well"]


def test_the_study_runs_end_to_end_at_a_reduced_size(tmp_path) -> None:
    config = config_from_dict(reduced(tmp_path / "results"))
    results = execute(config, "all", "local", echo=lambda line: None).results
    assert [f"{r.stage}/{r.task}: {r.message}" for r in results if not r.ok] == []
    paths = ResultsPaths(config.results_root)
    for model in config.models:
        info = json.loads(paths.model_info(model.name, 0).read_text())
        assert info["undefined_cells_dropped"] > 0, model.name  # co-culture cells, no marker
        split = pd.read_parquet(paths.split_file(model.name, 0))
        predictions = pd.read_parquet(paths.predictions(model.name, 0))
        culture = predictions.set_index("Metadata_CellId")["Metadata_Culture"]
        sides = split.set_index("cell_id")["split"]
        assert (sides == "test").any(), model.name
        assert (culture[sides.index[sides == "test"]] == "coculture").all(), model.name
        assert not (culture[sides.index[sides != "test"]] == "coculture").any(), model.name
        classes = predictions.set_index("Metadata_CellId")["class"]  # what it was scored on
        assert set(classes[sides.index[sides == "test"]]) <= {"astro", "neuron"}, model.name
        metrics = json.loads(paths.metrics(model.name, 0).read_text())
        assert 0 <= metrics["accuracy"] <= 1, model.name
    assert (paths.report_dir / "index.html").stat().st_size > 0
    sweep = pd.read_csv(paths.report_dir / "sweep_trees.csv")
    assert list(sweep["value"]) == [10, 150]
    assert list(sweep["model"]) == ["rf_trees_010", "rf_trees_150"]
    assert sweep["accuracy_mean"].between(0, 1).all()
    assert (paths.report_dir / "sweep_trees.png").stat().st_size > 0
    by_crop = pd.read_csv(paths.report_dir / "accuracy_by_crop.csv")  # the study's table
    assert set(by_crop["model"]) == {"rf", "resnet18_nucleocentric", "resnet18_whole_cell_unmasked"}
    masked = by_crop["masked"].map({True: "masked", False: "unmasked"}).fillna("-")
    inputs = set(zip(by_crop["crop_kind"], masked, strict=True))
    assert inputs == {
        ("handcrafted features", "-"),
        ("nucleocentric", "unmasked"),
        ("whole_cell", "unmasked"),
    }
    assert (paths.report_dir / "accuracy_by_crop.png").stat().st_size > 0
    for figure in ("feature_clustermap", "umap_resnet18_nucleocentric"):
        assert (paths.report_dir / f"{figure}.png").stat().st_size > 0, figure
