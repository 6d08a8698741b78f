import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cellbench.config import config_from_dict
from cellbench.data.plates import open_plate
from cellbench.execution.plan import plan
from cellbench.paths import ResultsPaths
from cellbench.stages import list_tasks, task_state
from cellbench.tasks import run_task
from tests.helpers import experiment_dict, write_config


def test_task_lists_come_from_the_config(tmp_path):
    raw = experiment_dict(tmp_path, seeds=[0, 1])
    raw["data"]["input"]["plates"] = 3
    config = config_from_dict(raw)
    assert list_tasks(config, "segment") == ["P1", "P2", "P3"]
    assert list_tasks(config, "train") == ["rf.seed0", "rf.seed1"]
    assert list_tasks(config, "aggregate") == ["report"]
    assert not (tmp_path / "input").exists()  # listing opened nothing


def test_done_task_is_skipped_until_its_settings_change(tmp_path):
    raw = experiment_dict(tmp_path)
    config = config_from_dict(raw)
    paths = ResultsPaths(config.results_root)
    assert run_task(config, "segment", "P1").state == "done"
    store_time = paths.label_store("P1").stat().st_mtime_ns

    again = run_task(config, "segment", "P1")
    assert again.state == "skipped" and again.message == "already done"
    assert paths.label_store("P1").stat().st_mtime_ns == store_time

    forced = run_task(config, "segment", "P1", force=True)
    assert forced.state == "done"
    assert paths.label_store("P1").stat().st_mtime_ns != store_time

    # A change to crop settings does not redo segmentation; a segmentation change does.
    raw["crops"] = {"kinds": {"whole_cell": {"size_px": 32}}}
    assert run_task(config_from_dict(raw), "segment", "P1").state == "skipped"
    raw["segmentation"] = {"nuclei": {"smoothing_sigma_px": 2.0}}
    changed = config_from_dict(raw)
    assert task_state(changed, "segment", "P1") == "stale"
    assert run_task(changed, "segment", "P1").state == "done"


def test_deleted_output_is_redone(tmp_path):
    config = config_from_dict(experiment_dict(tmp_path))
    run_task(config, "segment", "P1")
    ResultsPaths(tmp_path).label_store("P1").unlink()
    assert [p.todo for p in plan(config, "segment")] == [["P1"]]
    assert run_task(config, "segment", "P1").state == "done"


def test_missing_input_is_recorded_as_skipped(tmp_path):
    config = config_from_dict(experiment_dict(tmp_path))
    result = run_task(config, "crop", "P1")
    assert result.state == "skipped" and "input missing" in result.message
    status = json.loads(ResultsPaths(tmp_path).status_file("crop", "P1").read_text())
    assert status["state"] == "skipped" and "segment/P1.h5" in status["message"]
    assert not ResultsPaths(tmp_path).crop_store("P1").exists()


def test_unreadable_plate_fails_only_itself(tmp_path):
    raw = experiment_dict(tmp_path)
    raw["data"]["input"]["plates"] = 2
    config = config_from_dict(raw)
    plate = open_plate(config, "P2")
    for field in plate.fields:
        plate.field_path(field).write_bytes(b"not a tiff")
    good, bad = run_task(config, "segment", "P1"), run_task(config, "segment", "P2")
    assert good.state == "done"
    assert bad.state == "failed" and "no field could be segmented" in bad.message
    status = json.loads(ResultsPaths(tmp_path).status_file("segment", "P2").read_text())
    assert status["state"] == "failed" and "cannot read TIFF" in status["error"]
    assert not ResultsPaths(tmp_path).label_store("P2").exists()
    leftovers = [p.name for p in (tmp_path / "segment").iterdir()]
    assert leftovers == ["P1.h5"]


def test_killed_task_leaves_no_complete_looking_output(tmp_path):
    raw = experiment_dict(tmp_path)
    raw["data"]["input"].update(rows="ABCD", sites=4, field_shape_px=[256, 256])
    config_path = write_config(tmp_path / "c.yaml", raw)
    config = config_from_dict(raw)
    open_plate(config, "P1")  # generate the plate first, so the kill lands in segmentation
    paths = ResultsPaths(config.results_root)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cellbench.cli",
            "run",
            "--stage",
            "segment",
            "--task",
            "P1",
            "--config",
            str(config_path),
        ],
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if paths.label_store("P1").parent.exists() and any(
            p.name.startswith(".P1.tmp-") for p in paths.label_store("P1").parent.iterdir()
        ):
            break
        assert process.poll() is None, "the task ended before it could be killed"
        time.sleep(0.01)
    else:
        pytest.fail("no temporary output appeared")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    assert not paths.label_store("P1").exists()
    assert task_state(config, "segment", "P1") == "died"  # never "done", nor "running"
    assert [p.todo for p in plan(config, "segment")] == [["P1"]]
    assert run_task(config, "segment", "P1").state == "done"
    assert paths.label_store("P1").exists()
    leftovers = [p.name for p in paths.label_store("P1").parent.iterdir() if ".tmp-" in p.name]
    assert leftovers == []  # the rerun removed the killed run's temporary file


@pytest.mark.parametrize("profiles", [None, {"control": {"column": "Metadata_Condition"}}])
def test_a_retried_plate_replans_every_stage_that_reads_it(tmp_path, profiles):
    raw = experiment_dict(tmp_path / "results", profiles=profiles)
    raw["data"]["input"]["plates"] = 2
    config = config_from_dict(raw)
    plans = {p.stage: p.todo for p in plan(config, "all", only={"segment": {"P2"}})}
    # a stage without tasks (profiles when not configured) passes nothing on, blocks nothing
    assert plans["segment"] == plans["crop"] == plans["features"] == ["P2"]
    assert plans["profiles"] == ([] if profiles is None else ["P2"])
    assert plans["train"] == plans["evaluate"] == ["rf.seed0"] and plans["aggregate"] == ["report"]
    # only a profiles task: the models do not read profiles, the report does
    if profiles is not None:
        plans = {p.stage: p.todo for p in plan(config, "all", only={"profiles": {"P1"}})}
        assert plans["profiles"] == ["P1"] and plans["aggregate"] == ["report"]
        assert plans["train"] == plans["evaluate"] == plans["features"] == []
