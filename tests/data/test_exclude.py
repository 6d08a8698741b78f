"""`data.exclude`: wells, fields and images left out by name where plates are opened."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from cellbench.config import config_from_dict
from cellbench.data import exclude as exclude_module
from cellbench.data.plates import check_exclusions, open_plate
from cellbench.errors import ConfigError, NothingToDo
from cellbench.paths import ResultsPaths
from cellbench.report.exclusions import exclusion_note
from cellbench.segment.store import stored_fields
from cellbench.stages import task_hash, task_state
from cellbench.status import read_status
from tests.helpers import experiment_dict

TINY_INPUT = {  # 2 plates of 2 x 3 wells, 2 sites: 12 fields a plate, named identically
    "source": "synthetic",
    "plates": 2,
    "rows": "AB",
    "columns": [1, 2, 3],
    "sites": 2,
    "field_shape_px": [128, 128],
    "cells_per_field": 8,
    "seed": 5,
}


def tiny(tmp_path, exclude: dict | None = None, **data):
    raw = experiment_dict(tmp_path / "results")
    raw["data"] = {"input": dict(TINY_INPUT), **data}
    if exclude is not None:
        raw["data"]["exclude"] = exclude
    return config_from_dict(raw)


def names(config, plate="P1") -> list[str]:
    return [f.name for f in open_plate(config, plate).fields]


@pytest.fixture(autouse=True)
def _forget_warnings():
    exclude_module._warned.clear()


# --- the config --------------------------------------------------------------------------------
def test_an_empty_name_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="data.exclude.fields.1"):
        tiny(tmp_path, {"fields": ["A-01-01", "  "]})


def test_a_missing_file_is_a_config_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="data.exclude.file: exclusion list .*nope.txt"):
        tiny(tmp_path, {"file": str(tmp_path / "nope.txt")})


def test_a_csv_without_a_name_column_is_a_config_error(tmp_path):
    (tmp_path / "list.csv").write_text("image,reason\nA-01-01.tif,blurry\n")
    with pytest.raises(ConfigError, match="data.exclude.file: .*column 'name'"):
        tiny(tmp_path, {"file": str(tmp_path / "list.csv")})


def test_an_unknown_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="data.exclude.plates"):
        tiny(tmp_path, {"plates": ["P1"]})


# --- what is left out --------------------------------------------------------------------------
def test_nothing_excluded_by_default(tmp_path):
    opened = open_plate(tiny(tmp_path), "P1")
    assert len(opened.fields) == 12 and opened.excluded == {}


def test_exclusion_by_well_in_either_spelling(tmp_path):
    config = tiny(tmp_path, {"wells": ["A1", "B03"]})
    left = names(config)
    assert len(left) == 8
    assert not {"A-01-01", "A-01-02", "B-03-01", "B-03-02"} & set(left)
    assert open_plate(config, "P1").excluded == {"fields": 4, "wells": ["A01", "B03"]}


def test_exclusion_by_field(tmp_path):
    config = tiny(tmp_path, {"fields": ["A-02-02"]})
    assert "A-02-02" not in names(config) and "A-02-01" in names(config)
    assert open_plate(config, "P1").excluded == {"fields": 1, "wells": ["A02"]}


def test_exclusion_by_image_file_name_or_stem(tmp_path):
    config = tiny(tmp_path, {"images": ["A-03-01.tif", "B-01-02"]})
    assert not {"A-03-01", "B-01-02"} & set(names(config))
    assert len(names(config)) == 10


def test_a_plate_prefix_restricts_an_entry_to_that_plate(tmp_path):
    config = tiny(tmp_path, {"fields": ["P2/A-01-01"], "wells": ["P1/B02"]})
    assert "A-01-01" in names(config, "P1") and "A-01-01" not in names(config, "P2")
    assert "B-02-01" not in names(config, "P1") and "B-02-01" in names(config, "P2")


def test_exclusion_by_a_text_file_of_any_kind_of_name(tmp_path):
    listing = tmp_path / "noisy.txt"
    listing.write_text("# noisy images\nA01\n\nP2/B-02-01   # only there\nB-03-02.tif\n")
    config = tiny(tmp_path, {"file": str(listing)})
    assert sorted(set(names(config, "P2")) ^ set(names(tiny(tmp_path), "P2"))) == [
        "A-01-01",
        "A-01-02",
        "B-02-01",
        "B-03-02",
    ]
    assert "B-02-01" in names(config, "P1")


def test_exclusion_by_a_csv_with_name_and_plate_columns(tmp_path):
    listing = tmp_path / "noisy.csv"
    listing.write_text("name,plate,why\nA-02-01,P1,blurry\nB01,,debris\n")
    config = tiny(tmp_path, {"file": str(listing)})
    assert open_plate(config, "P1").excluded == {"fields": 3, "wells": ["A02", "B01"]}
    assert open_plate(config, "P2").excluded == {"fields": 2, "wells": ["B01"]}


def test_a_plate_left_without_fields_fails_naming_data_exclude(tmp_path):
    config = tiny(tmp_path, {"wells": ["P1/A01", "P1/A02", "P1/A03", "P1/B01", "P1/B02", "P1/B03"]})
    with pytest.raises(NothingToDo, match="data.exclude leaves out all 12 field"):
        open_plate(config, "P1")
    assert len(names(config, "P2")) == 12


def test_names_that_match_nothing_are_warned_about_once(tmp_path, caplog):
    config = tiny(tmp_path, {"wells": ["A01", "H12"], "fields": ["P3/A-01-01"]})
    with caplog.at_level(logging.WARNING, logger="cellbench.data.exclude"):
        open_plate(config, "P1")  # a synthetic plate: its own unmatched names are known
        open_plate(config, "P2")
        unmatched = check_exclusions(config)
        check_exclusions(config)
        open_plate(config, "P1")
    assert unmatched == ["H12", "P3/A-01-01"]
    warnings = [r.getMessage() for r in caplog.records if "data.exclude" in r.getMessage()]
    text = " | ".join(warnings)
    assert text.count("H12") == 1 and text.count("P3/A-01-01") == 1, text
    assert "A01" not in text.replace("A-01-01", "")


def test_editing_the_exclusion_makes_every_task_stale(tmp_path):
    listing = tmp_path / "noisy.txt"
    listing.write_text("A01\n")
    before = tiny(tmp_path, {"file": str(listing)})
    hashes = {s: task_hash(before, s, "P1") for s in ("segment", "crop", "features")}
    listing.write_text("A01\nB02\n")  # same path, new content
    after = tiny(tmp_path, {"file": str(listing)})
    assert all(task_hash(after, s, "P1") != h for s, h in hashes.items())
    by_list = tiny(tmp_path, {"wells": ["A01"]})
    assert task_hash(by_list, "segment", "P1") != task_hash(tiny(tmp_path), "segment", "P1")


def test_the_report_note_counts_fields_wells_and_plates():
    assert exclusion_note({}) is None
    assert exclusion_note({"P1": {"fields": 0, "wells": []}}) is None
    note = exclusion_note(
        {"P2": {"fields": 3, "wells": ["A01", "B02"]}, "P1": {"fields": 1, "wells": ["C01"]}}
    )
    assert note == "excluded by data.exclude: 4 fields (3 wells) in plates P1, P2"


# --- end to end --------------------------------------------------------------------------------
def test_excluded_fields_never_reach_the_label_store_features_or_report(tmp_path):
    from cellbench.execution.run import execute

    raw = experiment_dict(tmp_path / "results")
    raw["data"]["input"].update(columns=[1, 2, 3, 4])  # 1 plate, 2 x 4 wells, 2 sites
    raw["data"]["exclude"] = {"wells": ["A01"], "fields": ["B-02-01"], "images": ["A-03-02.tif"]}
    config = config_from_dict(raw)
    outcome = execute(config, "all", "local", echo=lambda line: None)
    assert all(r.state == "done" for r in outcome.results), [r.summary for r in outcome.results]

    paths = ResultsPaths(config.results_root)
    gone = {"A-01-01", "A-01-02", "B-02-01", "A-03-02"}
    status = read_status(paths.status_file("segment", "P1"))
    assert status["details"]["excluded"] == {"fields": 4, "wells": ["A01", "A03", "B02"]}
    stored = set(stored_fields(paths.label_store("P1")))
    assert len(stored) == 12 and not gone & stored
    features = pd.read_parquet(paths.feature_table("P1"))
    field_column = next(c for c in features.columns if c.lower().endswith("field"))
    assert set(features[field_column]) == stored
    note = "excluded by data.exclude: 4 fields (3 wells) in plates P1"
    assert note in (paths.report_dir / "accuracy.md").read_text()
    assert note in (paths.report_dir / "index.html").read_text()

    raw["data"]["exclude"]["wells"] = ["A02"]
    changed = config_from_dict(raw)
    assert task_state(changed, "segment", "P1") == "stale"
    assert task_state(changed, "features", "P1") == "stale"
    assert task_state(config, "segment", "P1") == "done"
