"""A well imaged but missing from the layout: its cells have no class, and nothing crashes.

Before, the crop stage failed writing a NaN condition into ``/cells`` (h5py: "Can't
implicitly convert non-string objects to strings"), and nothing said which well it was.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import pandas as pd
import pytest

from cellbench.config import config_from_dict
from cellbench.crops.store import read_cells
from cellbench.data.synthetic import write_plate
from cellbench.paths import ResultsPaths
from cellbench.tasks import run_task

MISSING = "B03"
TASKS = [
    ("segment", "P1"),
    ("crop", "P1"),
    ("features", "P1"),
    ("train", "rf.seed0"),
    ("evaluate", "rf.seed0"),
]


def plate_without_well(root: Path, well: str) -> Path:
    """A 2 x 3-well plate (1 site, 128 px, 2 conditions) whose layout.csv lacks `well`."""
    folder = write_plate(
        root / "P1",
        rows="AB",
        columns=(1, 2, 3),
        sites=1,
        field_shape=(128, 128),
        cells_per_field=10,
        conditions=("control", "textured"),
        seed=1,
    )
    layout = pd.read_csv(folder / "layout.csv")
    layout[layout["well"] != well].to_csv(folder / "layout.csv", index=False)
    return root


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Every stage but the report run once on the plate; (config, {stage: TaskResult})."""
    root = tmp_path_factory.mktemp("layout_missing")
    config = config_from_dict(
        {
            "name": "layout_missing",
            "results_root": str(root / "results"),
            "data": {"input": {"source": "fields", "root": str(plate_without_well(root, MISSING))}},
            "crops": {"kinds": {"whole_cell": {"size_px": 32}}},
            "models": [{"name": "rf", "type": "random_forest", "n_estimators": 20}],
            "seeds": [0],
        }
    )
    results = {stage: run_task(config, stage, task) for stage, task in TASKS}
    return config, results


def test_every_stage_is_done(pipeline):
    _, results = pipeline
    failed = {stage: r.message for stage, r in results.items() if r.state != "done"}
    assert failed == {}
    assert results["segment"].details["layout_problems"]["without_layout"] == [MISSING]


@pytest.mark.parametrize("stage", ["segment", "crop", "features"])
def test_each_plate_task_warns_once_naming_the_well(pipeline, stage, caplog):
    config, _ = pipeline
    with caplog.at_level(logging.WARNING, logger="cellbench"):
        assert run_task(config, stage, "P1", force=True).state == "done"
    lines = [r.getMessage() for r in caplog.records if MISSING in r.getMessage()]
    assert lines == [
        f"plate P1: 1 well(s) imaged but not in the layout ({MISSING}): "
        "their cells have no condition"
    ]


def test_crop_store_holds_an_empty_condition_read_back_as_missing(pipeline):
    config, _ = pipeline
    path = ResultsPaths(config.results_root).crop_store("P1")
    with h5py.File(path, "r") as store:
        wells = store["cells/well"].asstr()[()]
        conditions = store["cells/condition"].asstr()[()]
        assert list(store["cells"].attrs["missing"]) == ["condition"]
    assert (wells == MISSING).any()
    assert set(conditions[wells == MISSING]) == {""}
    assert "" not in set(conditions[wells != MISSING])
    cells = read_cells(path)
    assert cells.loc[cells["well"] == MISSING, "condition"].isna().all()
    assert cells.loc[cells["well"] != MISSING, "condition"].notna().all()


def test_feature_table_holds_null(pipeline):
    config, _ = pipeline
    table = pd.read_parquet(ResultsPaths(config.results_root).feature_table("P1"))
    missing = table["Metadata_Well"] == MISSING
    assert missing.any()
    assert table.loc[missing, "Metadata_Condition"].isna().all()
    assert table.loc[~missing, "Metadata_Condition"].notna().all()


def test_training_leaves_the_cells_out_and_counts_them(pipeline):
    config, results = pipeline
    paths = ResultsPaths(config.results_root)
    table = pd.read_parquet(paths.feature_table("P1"))
    n_missing = int((table["Metadata_Well"] == MISSING).sum())
    assert results["train"].details["unlabelled_cells_dropped"] == n_missing > 0
    info = json.loads(paths.model_info("rf", 0).read_text())
    assert info["unlabelled_cells_dropped"] == n_missing
    split = pd.read_parquet(paths.split_file("rf", 0))
    assert len(split) == len(table) - n_missing
    predictions = pd.read_parquet(paths.predictions("rf", 0))
    assert not (predictions["Metadata_Well"] == MISSING).any()
    assert "accuracy" in results["evaluate"].details
