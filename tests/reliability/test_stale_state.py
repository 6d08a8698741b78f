"""Killed runs: their tasks show as died, are redone, and leave no temporary file behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import filelock
import h5py
import pytest

from cellbench.config import config_from_dict
from cellbench.execution.plan import plan
from cellbench.execution.progress import collect
from cellbench.paths import ResultsPaths
from cellbench.stages import task_state
from cellbench.status import process_gone
from cellbench.tasks import run_task
from tests.helpers import REPO, experiment_dict, write_config


def _submit(config_path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "jobs/submit.py", "--config", str(config_path), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(condition, process: subprocess.Popen, what: str, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"the submit ended before {what}: {process.stdout.read()[-2000:]}")
        time.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


def _temporary_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".tmp-" in p.name)


def test_kill_9_of_a_submit_in_the_crop_stage(tmp_path):
    raw = experiment_dict(tmp_path / "results")
    raw["data"]["input"].update(plates=2, rows="ABC", sites=2, field_shape_px=[256, 256])
    raw["crops"] = {"kinds": {"whole_cell": {"size_px": 64}, "nuclear": {}, "nucleocentric": {}}}
    config_path = write_config(tmp_path / "c.yaml", raw)
    config = config_from_dict(raw)
    paths = ResultsPaths(config.results_root)
    first = _submit(config_path, "--stage", "segment")
    assert first.communicate(timeout=300)[0] and first.returncode == 0

    process = _submit(config_path, "--stage", "crop")
    crops = paths.crop_store("P1").parent
    _wait_for(
        lambda: crops.is_dir() and any(".tmp-" in p.name for p in crops.iterdir()),
        process,
        "a crop store was being written",
    )
    running = [
        json.loads(paths.status_file("crop", p).read_text())
        for p in ("P1", "P2")
        if paths.status_file("crop", p).exists()
    ]
    os.kill(process.pid, signal.SIGKILL)  # the submit alone: its workers must die with it
    process.communicate()
    deadline = time.time() + 10
    while time.time() < deadline and not all(process_gone(s) for s in running):
        time.sleep(0.1)
    assert running and all(process_gone(s) for s in running), "a worker outlived its submit"

    for plate in ("P1", "P2"):  # each store is complete or absent
        state = task_state(config, "crop", plate)
        if paths.crop_store(plate).exists():
            assert state == "done"
            with h5py.File(paths.crop_store(plate)) as store:
                assert store["whole_cell/images"].shape[0] == len(store["cells/cell_id"])
        else:
            assert state in ("died", "missing")
    views = {v.task: v for v in collect(config, ["crop"])[0]}
    died = [task for task, view in views.items() if view.state == "died"]
    assert died, "no task was shown as died"
    assert all("ended without recording an end" in views[t].detail for t in died)
    reasons = plan(config, "crop")[-1].reasons
    assert all(reasons[t].startswith("it died") for t in died)
    assert _temporary_files(paths.root)  # the killed run left its temporary store

    rerun = _submit(config_path, "--stage", "crop")
    output = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, output
    assert all(task_state(config, "crop", p) == "done" for p in ("P1", "P2"))
    assert _temporary_files(paths.root) == []


def test_a_task_never_runs_twice_at_once(tmp_path):
    config = config_from_dict(experiment_dict(tmp_path))
    paths = ResultsPaths(config.results_root)
    paths.status_dir("segment").mkdir(parents=True)
    with filelock.FileLock(paths.task_lock("segment", "P1"), timeout=0):  # another runner
        result = run_task(config, "segment", "P1")
    assert result.state == "skipped" and "running elsewhere" in result.message
    assert not paths.status_file("segment", "P1").exists()  # the other runner's status stays
    assert run_task(config, "segment", "P1").state == "done"  # once it let go


def test_a_running_status_of_a_live_process_is_not_died(tmp_path):
    config = config_from_dict(experiment_dict(tmp_path))
    paths = ResultsPaths(config.results_root)
    sleeper = subprocess.Popen(
        [sys.executable, "-c", _WRITE_RUNNING, str(paths.status_file("segment", "P1"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sleeper.stdout.readline().strip() == "written"
        assert task_state(config, "segment", "P1") == "running"
        assert {v.task: v.state for v in collect(config, ["segment"])[0]} == {"P1": "running"}
    finally:
        sleeper.kill()
        sleeper.communicate()
    assert task_state(config, "segment", "P1") == "died"


_WRITE_RUNNING = """
import sys, time
from pathlib import Path
from cellbench.status import write_status
write_status(Path(sys.argv[1]), state="running", stage="segment", task="P1")
print("written", flush=True)
time.sleep(60)
"""
