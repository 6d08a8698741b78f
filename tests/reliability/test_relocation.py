"""A results tree copied elsewhere is still done; an output changed after its task is redone."""

from __future__ import annotations

import json
import shutil
import subprocess

from cellbench.config import config_from_dict
from cellbench.execution.plan import describe, plan
from cellbench.execution.run import execute
from cellbench.paths import ResultsPaths
from tests.helpers import experiment_dict


def _finished_tree(tmp_path):
    raw = experiment_dict(tmp_path / "first")
    raw["models"] = []
    config = config_from_dict(raw)
    results = execute(config, "features", "debug", echo=lambda line: None).results
    assert {r.stage: r.state for r in results} == {"segment": "done", "features": "done"}
    crop = execute(config, "crop", "debug", echo=lambda line: None).results
    assert [r.state for r in crop] == ["done"]
    return raw, config


def test_status_files_hold_paths_under_the_root(tmp_path):
    _, config = _finished_tree(tmp_path)
    status = json.loads(ResultsPaths(config.results_root).status_file("crop", "P1").read_text())
    assert list(status["outputs"]) == ["crops/P1.h5"]
    assert list(status["inputs"]) == ["segment/P1.h5"]
    assert str(config.results_root) not in json.dumps(
        {k: status[k] for k in ("inputs", "outputs", "config_hash")}
    )


def test_a_copied_tree_counts_as_done(tmp_path):
    raw, _ = _finished_tree(tmp_path)
    for copy, command in (("cp", ["cp", "-a"]), ("rsync", None)):
        target = tmp_path / copy
        if command is None:
            if shutil.which("rsync") is None:
                continue
            command = ["rsync", "-a"]
            subprocess.run([*command, f"{tmp_path / 'first'}/", str(target)], check=True)
        else:
            subprocess.run([*command, str(tmp_path / "first"), str(target)], check=True)
        moved = config_from_dict({**raw, "results_root": str(target)})
        plans = plan(moved, "crop") + plan(moved, "features")
        assert all(p.todo == [] for p in plans), describe(plans)


def test_a_truncated_store_is_redone_with_a_line_saying_why(tmp_path):
    raw, _ = _finished_tree(tmp_path)
    target = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(tmp_path / "first"), str(target)], check=True)
    moved = config_from_dict({**raw, "results_root": str(target)})
    store = ResultsPaths(target).crop_store("P1")
    size = store.stat().st_size
    with open(store, "r+b") as handle:
        handle.truncate(size // 2)

    plans = plan(moved, "crop")
    assert plans[-1].todo == ["P1"]
    assert plans[0].todo == []  # the segmentation is untouched
    shown = describe(plans)
    why = f"output crops/P1.h5 changed since the task finished (size {size} -> {size // 2} bytes)"
    assert f"crop/P1: runs again: {why}" in shown
    results = execute(moved, "crop", "debug", echo=lambda line: None).results
    assert [(r.stage, r.state) for r in results] == [("crop", "done")]
    assert store.stat().st_size > size // 2
