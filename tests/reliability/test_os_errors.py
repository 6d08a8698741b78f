"""A full disk or a read-only results root fails tasks with one line each, never the run."""

from __future__ import annotations

import errno
import json

from cellbench.config import config_from_dict
from cellbench.execution.run import execute
from cellbench.paths import ResultsPaths
from cellbench.stages import task_state
from cellbench.tasks import run_task
from jobs.submit import main as submit_main
from tests.helpers import write_config
from tests.reliability.conftest import fields_experiment


def test_full_disk_fails_the_task_with_the_path_and_the_error(small_disk, plate_folder, capsys):
    raw = fields_experiment(small_disk / "results", plate_folder)
    raw["segmentation"] = {"nuclei": {"method": "classical"}}
    config_path = write_config(plate_folder.parent / "full.yaml", raw)

    code = submit_main(["--config", str(config_path), "--stage", "segment", "--executor", "debug"])

    out, err = capsys.readouterr()
    assert code == 1
    assert "finished: 0 task(s) ok, 1 failed" in out
    line = next(line for line in out.splitlines() if "segment/P1: failed" in line)
    assert "ENOSPC: No space left on device" in line
    assert str(small_disk) in line  # the path that could not be written
    assert "Traceback" not in out + err
    config = config_from_dict(raw)
    assert task_state(config, "segment", "P1") == "failed"  # not left "running"
    status = json.loads(ResultsPaths(config.results_root).status_file("segment", "P1").read_text())
    assert "ENOSPC" in status["error"] and "Traceback" in status["traceback"]
    assert not ResultsPaths(config.results_root).label_store("P1").exists()
    leftovers = [p for p in (small_disk / "results").rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_traceback_only_with_verbose(small_disk, plate_folder, capsys):
    raw = fields_experiment(small_disk / "results", plate_folder)
    config_path = write_config(plate_folder.parent / "full-v.yaml", raw)
    args = ["--config", str(config_path), "--stage", "segment", "--executor", "debug"]
    assert submit_main([*args, "-v"]) == 1
    out, _ = capsys.readouterr()
    assert "Traceback" in out and "ENOSPC" in out


def test_read_only_root_fails_every_task_and_the_run_exits_1(read_only_root, plate_folder, capsys):
    raw = fields_experiment(read_only_root, plate_folder)
    config_path = write_config(plate_folder.parent / "ro.yaml", raw)

    code = submit_main(["--config", str(config_path), "--stage", "segment", "--executor", "local"])

    out, err = capsys.readouterr()
    assert code == 1
    assert "finished: 0 task(s) ok, 1 failed" in out
    line = next(line for line in out.splitlines() if "segment/P1: failed" in line)
    assert "EROFS: Read-only file system" in line and str(read_only_root) in line
    assert "Traceback" not in out + err
    assert list(read_only_root.iterdir()) == []


def test_a_figure_that_cannot_be_written_fails_the_report(tmp_path, plate_folder, monkeypatch):
    raw = fields_experiment(tmp_path / "results", plate_folder)
    raw["models"] = []
    config = config_from_dict(raw)
    results = execute(config, "features", "debug", echo=lambda line: None).results
    assert [r.state for r in results] == ["done", "done"]

    from matplotlib.figure import Figure

    def full_disk(self, fname, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(fname))

    monkeypatch.setattr(Figure, "savefig", full_disk)
    failed = run_task(config, "aggregate", "report")
    assert failed.state == "failed" and "ENOSPC" in failed.message
    assert task_state(config, "aggregate", "report") == "failed"

    monkeypatch.undo()
    again = run_task(config, "aggregate", "report")  # the rerun makes every figure
    assert again.state == "done"
    assert any(ResultsPaths(config.results_root).report_dir.rglob("*.png"))
