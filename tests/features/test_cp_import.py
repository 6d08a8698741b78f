"""CellProfiler's exported tables as the features of segmented cells (``features.source``).

The exports are written by `tests.features.cellprofiler_exports` in CellProfiler's layouts from
the plate's own segmentation and native features, so every imported value has a known origin.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from cellbench.config import config_from_dict
from cellbench.data.plates import open_plate
from cellbench.errors import ConfigError
from cellbench.execution.run import execute
from cellbench.features.cp_import import DISTANCE_COLUMN, OBJECT_COLUMN, match_centroids
from cellbench.features.cp_tables import read_export
from cellbench.paths import ResultsPaths
from cellbench.stages import why_task_not_done
from cellbench.tasks import run_task
from tests.features.cellprofiler_exports import (
    EXTRA_PER_FIELD,
    MISSING_PER_FIELD,
    cellprofiler_truth,
    write_single_cells,
    write_spreadsheets,
    write_sqlite,
)
from tests.helpers import assert_pycytominer_sees_every_feature, experiment_dict

OBJECTS = {"Nuclei": "Nuclei", "Cytoplasm": "Cytoplasm", "Cells": "Cells"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A segmented small plate, and its CellProfiler export in every layout."""
    root = tmp_path_factory.mktemp("cp_import")
    raw = experiment_dict(root / "results")
    config = config_from_dict(raw)
    assert run_task(config, "segment", "P1").state == "done"
    plate = open_plate(config, "P1")
    label_store = ResultsPaths(config.results_root).label_store("P1")
    truth = cellprofiler_truth(config, plate, label_store)
    exports = {
        "spreadsheet": write_spreadsheets(truth, root / "export" / "P1"),
        "sqlite": write_sqlite(truth, root / "export.sqlite"),
        "sqlite_single_table": write_sqlite(truth, root / "single.db", single_object_table=True),
        "cytotable": write_single_cells(truth, root / "cells.parquet"),
    }
    return raw, truth, exports, len(plate.fields)


def _features_config(raw: dict, results, **tables):
    raw = {**raw, "results_root": str(results)}
    raw["features"] = {"source": "cellprofiler", "tables": tables}
    return config_from_dict(raw)


def _import(raw, tmp_path, **tables):
    """Run segment and features with the export; the feature table and the task's status."""
    config = _features_config(raw, tmp_path / "results", **tables)
    for stage in ("segment", "features"):
        result = run_task(config, stage, "P1")
        assert result.state == "done", result.message
    paths = ResultsPaths(config.results_root)
    status = json.loads(paths.status_file("features", "P1").read_text())
    return config, pd.read_parquet(paths.feature_table("P1")), status


def test_every_layout_reads_to_the_same_cells(exported):
    _, truth, exports, n_fields = exported
    tables = {}
    for layout, path in exports.items():
        export = read_export(path, OBJECTS)
        assert export.anchor == "Cells"
        cells = export.cells.sort_values(["ImageNumber", "ObjectNumber"], ignore_index=True)
        tables[layout] = cells
    reference = tables.pop("spreadsheet")
    n_objects = len(truth.objects["Cells"])
    assert len(reference) == n_objects
    assert not any(c.startswith(("Cells_Location", "Cells_Parent")) for c in reference.columns)
    for layout, cells in tables.items():
        assert list(cells.columns) == list(reference.columns), layout
        pd.testing.assert_frame_equal(cells, reference, check_dtype=False, obj=layout)
    # the joined nucleus is the cell's own: its area is the native value of the same cell
    native = truth.native.set_index(["field", "label"])
    cell_of = {v: k for k, v in truth.cells.items()}
    keys = [
        cell_of.get((i, o))
        for i, o in zip(reference.ImageNumber, reference.ObjectNumber, strict=True)
    ]
    found = [k is not None for k in keys]
    assert sum(found) == n_objects - EXTRA_PER_FIELD * n_fields
    expected = native.loc[[k for k in keys if k is not None], "Nuclei_AreaShape_Area"]
    got = reference.loc[found, "Nuclei_AreaShape_Area"]
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())


@pytest.mark.parametrize("layout", ["spreadsheet", "sqlite", "cytotable"])
def test_features_stage_joins_each_cell_to_its_own_cellprofiler_object(exported, tmp_path, layout):
    raw, truth, exports, n_fields = exported
    config, table, status = _import(raw, tmp_path, path=str(exports[layout]))
    counts = status["details"]["cellprofiler"]
    n_cells = len(truth.native)
    assert counts["image_sets"] == n_fields and counts["fields_without_image_set"] == 0
    assert counts["matched"] == n_cells - MISSING_PER_FIELD * n_fields == len(table)
    assert counts["cells_without_object"] == MISSING_PER_FIELD * n_fields
    assert counts["objects_without_cell"] == EXTRA_PER_FIELD * n_fields
    assert counts["max_distance_px"] < 1.0  # the centroids were moved by under 0.7 px a side
    assert table[DISTANCE_COLUMN].max() == pytest.approx(counts["max_distance_px"], abs=1e-3)
    # each row is its own cell: CellProfiler's object number, and the native values
    keys = list(zip(table["Metadata_Field"], table["Metadata_Label"], strict=True))
    expected_objects = [truth.cells[k][1] for k in keys]
    np.testing.assert_array_equal(table[OBJECT_COLUMN].to_numpy(), expected_objects)
    native = truth.native.set_index(["field", "label"]).loc[keys]
    features = [c for c in table.columns if c.startswith(("Nuclei_", "Cytoplasm_", "Cells_"))]
    assert len(features) == len([c for c in native.columns if not c.startswith("Image_")])
    np.testing.assert_allclose(table[features].to_numpy(), native[features].to_numpy())
    assert not any("Location" in c or "Parent" in c or "Number" in c for c in features)
    image = [c for c in table.columns if c.startswith("Image_")]
    if layout == "cytotable":  # CytoTable's join keeps only the image's well and plate
        assert image == []
    else:
        assert "Image_Count_Cells" in image and "Image_Intensity_MeanIntensity_DNA" in image
        assert not any("FileName" in c or "ExecutionTime" in c for c in image)
    assert table["Metadata_Condition"].notna().all()
    assert_pycytominer_sees_every_feature(table)


def test_label_match_and_staleness_when_the_export_changes(exported, tmp_path):
    raw, truth, _, _ = exported
    # an export that measured cellbench's own masks numbers each object by its cell's label
    relabelled = _relabelled(truth)
    folder = write_spreadsheets(relabelled, tmp_path / "by_label", prefix="")
    config, table, status = _import(raw, tmp_path, path=str(folder), match="label")
    assert (table[OBJECT_COLUMN] == table["Metadata_Label"]).all()
    assert status["details"]["cellprofiler"]["matched"] == len(table) > 0
    assert why_task_not_done(config, "features", "P1") is None
    csv = folder / "Cells.csv"
    stat = csv.stat()
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert "input" in why_task_not_done(config, "features", "P1")


def test_classical_model_and_cp2image_train_from_imported_tables(exported, tmp_path):
    raw, _, exports, _ = exported
    raw = {
        **raw,
        "crops": {"kinds": {"nuclear": {"size_px": 32}}},
        "models": [
            {"name": "rf", "type": "random_forest", "n_estimators": 100},
            {
                "name": "cp2image",
                "type": "cp2image",
                "crop_kind": "nuclear",
                "size_px": 16,
                "epochs": 2,
                "batch_size": 32,
            },
        ],
    }
    config = _features_config(raw, tmp_path / "results", path=str(exports["sqlite"]))
    results = execute(config, "all", "local", echo=lambda line: None).results
    assert [f"{r.stage}/{r.task}: {r.message}" for r in results if not r.ok] == []
    paths = ResultsPaths(config.results_root)
    features = pd.read_parquet(paths.feature_table("P1"))
    imported = [c for c in features.columns if not c.startswith("Metadata_")]
    rf = json.loads(paths.metrics("rf", 0).read_text())
    assert rf["accuracy"] > rf["majority_rate"]
    generated = json.loads(paths.metrics("cp2image", 0).read_text())
    assert 0 < generated["ssim"] <= 1
    info = json.loads(paths.model_info("cp2image", 0).read_text())
    assert info["feature_columns"] == imported  # the generator read CellProfiler's vector


def test_bad_exports_fail_with_the_path_and_the_cause(exported, tmp_path):
    raw, truth, exports, _ = exported
    cases = {
        "missing": (str(tmp_path / "nowhere"), "does not exist"),
        "other plate": (str(_renamed_files(truth, tmp_path)), "is a field of plate P1"),
        "far": (str(exports["spreadsheet"]), "joined no segmented cell"),
    }
    for case, (path, message) in cases.items():
        tables = {"path": path, "tolerance_px": 0.01} if case == "far" else {"path": path}
        config = _features_config(raw, tmp_path / case, **tables)
        assert run_task(config, "segment", "P1").state == "done"
        result = run_task(config, "features", "P1")
        assert result.state != "done", case
        assert message in result.message and path in result.message, (case, result.message)
        assert not ResultsPaths(config.results_root).feature_table("P1").exists()
    with pytest.raises(ConfigError, match="features.tables.path: .*only {plate}"):
        _features_config(raw, tmp_path, path="export/{well}")
    crops = {**raw, "data": {"input": {"source": "crops", "root": str(tmp_path)}}}
    with pytest.raises(ConfigError, match="pre-cut crops"):
        _features_config(crops, tmp_path, path=str(tmp_path))


def test_centroids_pair_nearest_first_each_once():
    ours = np.array([[0.0, 0.0], [3.0, 0.0], [20.0, 0.0]])
    theirs = np.array([[1.0, 0.0], [1.2, 0.0], [40.0, 0.0]])
    mine, other, distance = match_centroids(ours, theirs, tolerance_px=2.0)
    # both objects are nearest to cell 0: the nearer takes it, the other the next cell
    pairs = sorted(zip(mine.tolist(), other.tolist(), distance.tolist(), strict=True))
    assert pairs == [(0, 0, 1.0), (1, 1, pytest.approx(1.8))]
    assert match_centroids(ours, np.zeros((0, 2)), 2.0)[0].size == 0


def _relabelled(truth):
    """The truth with every Cells object numbered by its cell's label (Nuclei alike)."""
    from copy import deepcopy

    truth = deepcopy(truth)
    label_of = {v: k[1] for k, v in truth.cells.items()}
    cells = truth.objects["Cells"]
    keys = zip(cells["ImageNumber"], cells["Cells_Number_Object_Number"], strict=True)
    labels = [label_of.get(k, 10_000 + i) for i, k in enumerate(keys)]
    old = cells["Cells_Number_Object_Number"].to_numpy()
    cells["Cells_Number_Object_Number"] = labels
    cytoplasm = truth.objects["Cytoplasm"]
    mapping = dict(zip(zip(cells["ImageNumber"], old, strict=True), labels, strict=True))
    parent = zip(cytoplasm["ImageNumber"], cytoplasm["Cytoplasm_Parent_Cells"], strict=True)
    cytoplasm["Cytoplasm_Parent_Cells"] = [mapping[k] for k in parent]
    return truth


def _renamed_files(truth, tmp_path):
    """An export whose image files are another plate's."""
    from copy import deepcopy

    truth = deepcopy(truth)
    for column in [c for c in truth.images.columns if "FileName" in c]:
        truth.images[column] = "other_" + truth.images[column]
    return write_spreadsheets(truth, tmp_path / "other")
