"""Nothing to do is not success: no plate, or a named plate without images, fails the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellbench.config import config_from_dict
from cellbench.data.plates import list_plates
from cellbench.data.precut import list_precut_plates
from cellbench.errors import NothingToDo
from cellbench.paths import ResultsPaths
from cellbench.stages import task_state
from cellbench.tasks import run_task
from jobs.submit import main as submit_main
from tests.helpers import experiment_dict, write_config


def fields_dict(tmp_path: Path, root: Path, **input_overrides) -> dict:
    raw = experiment_dict(tmp_path / "results")
    raw["data"] = {"input": {"source": "fields", "root": str(root), **input_overrides}}
    return raw


@pytest.fixture
def empty_root(tmp_path) -> Path:
    root = tmp_path / "screen"
    (root / "notes").mkdir(parents=True)  # a sub-folder without images is no plate
    (root / "notes" / "readme.txt").write_text("no images here")
    return root


@pytest.mark.parametrize("plate_from", ["folder", "scheme", "root"])
def test_an_input_root_without_plates_names_the_folder_and_the_scheme(
    tmp_path, empty_root, plate_from
):
    config = config_from_dict(fields_dict(tmp_path, empty_root, plate_from=plate_from))
    with pytest.raises(NothingToDo) as info:
        list_plates(config)
    message = str(info.value)
    assert f"no plate found in {empty_root}" in message
    assert "scheme 'xyyzz'" in message and ".tif, .tiff, .nd2" in message
    assert "data.input.plate_from" in message


def test_submit_on_an_empty_root_fails_and_says_where_it_looked(tmp_path, empty_root, capsys):
    config_path = write_config(tmp_path / "empty.yaml", fields_dict(tmp_path, empty_root))

    run = submit_main(["--config", str(config_path), "--stage", "all", "--executor", "debug"])
    run_out, run_err = capsys.readouterr()
    status = submit_main(["--config", str(config_path), "--status"])
    _, status_err = capsys.readouterr()

    assert run == 1 and status == 1
    assert "task(s) ok" not in run_out
    for err in (run_err, status_err):
        assert f"no plate found in {empty_root}" in err and "Traceback" not in err


@pytest.mark.parametrize("plate", ["P9", "P404"])  # an empty folder, no folder at all
def test_a_named_plate_without_images_fails_its_segment_task(tmp_path, empty_root, plate):
    (empty_root / "P9").mkdir()
    config = config_from_dict(fields_dict(tmp_path, empty_root, plates=[plate]))

    result = run_task(config, "segment", plate)

    assert result.state == "failed"
    assert str(empty_root / plate) in result.message and "scheme 'xyyzz'" in result.message
    assert task_state(config, "segment", plate) == "failed"
    status = ResultsPaths(config.results_root).status_file("segment", plate)
    assert str(empty_root / plate) in json.loads(status.read_text())["error"]


def test_a_named_plate_without_images_makes_the_run_exit_1(tmp_path, empty_root, capsys):
    raw = fields_dict(tmp_path, empty_root, plates=["P9"])
    config_path = write_config(tmp_path / "named.yaml", raw)
    code = submit_main(["--config", str(config_path), "--stage", "segment", "--executor", "debug"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "segment/P9: failed" in out and str(empty_root / "P9") in out


def test_pre_cut_crops_without_crop_files_are_nothing_to_do(tmp_path, empty_root):
    raw = experiment_dict(tmp_path / "results")
    raw["data"] = {
        "input": {
            "source": "crops",
            "root": str(empty_root),
            "scheme": r"^(?P<well>[A-P]\d{2})_(?P<cell>\d+)$",
        }
    }
    config = config_from_dict(raw)
    with pytest.raises(NothingToDo, match=f"no plate found in {empty_root}: no crop file"):
        list_precut_plates(config.data.input)
    with pytest.raises(NothingToDo):
        list_plates(config)
