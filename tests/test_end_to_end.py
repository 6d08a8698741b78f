import json
import subprocess
import sys

import pandas as pd

from cellbench.config import config_from_dict
from cellbench.data.plates import open_plate
from tests.helpers import REPO, experiment_dict, write_config

SUBMIT = str(REPO / "jobs" / "submit.py")


def submit(config_path, *args):
    return subprocess.run(
        [sys.executable, SUBMIT, "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dry_run_prints_every_stage_and_runs_nothing(tmp_path):
    raw = experiment_dict(tmp_path / "results", seeds=[0, 1])
    raw["data"]["input"]["plates"] = 3
    run = submit(write_config(tmp_path / "c.yaml", raw), "--stage", "all", "--dry-run")
    assert run.returncode == 0, run.stderr
    expected = {"segment": 3, "crop": 3, "features": 3, "train": 2, "evaluate": 2, "aggregate": 1}
    for stage, count in expected.items():
        line = next(line for line in run.stdout.splitlines() if line.strip().startswith(stage))
        assert f"{count} task(s)" in line
    assert not (tmp_path / "results").exists()


def test_all_stages_end_to_end(tmp_path):
    raw = experiment_dict(tmp_path / "results", seeds=[0, 1])
    config_path = write_config(tmp_path / "c.yaml", raw)
    run = submit(config_path, "--stage", "all", "--executor", "local")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "finished: 8 task(s) ok, 0 failed" in run.stdout

    report = tmp_path / "results" / "report"
    for name in ["accuracy.csv", "accuracy.md", "confusion_rf.png", "index.html"]:
        assert (report / name).stat().st_size > 0
    assert (report / "confusion_rf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(report / "accuracy.csv")
    assert list(table["model"]) == ["rf"] and table.loc[0, "n_seeds"] == 2
    for seed in (0, 1):
        metrics = json.loads(
            (tmp_path / "results" / "models" / "rf" / f"seed{seed}" / "metrics.json").read_text()
        )
        assert metrics["accuracy"] > metrics["majority_rate"] + 0.15, metrics
        predictions = pd.read_parquet(
            tmp_path / "results" / "models" / "rf" / f"seed{seed}" / "predictions.parquet"
        )
        wells_per_split = predictions.groupby("Metadata_Well")["split"].nunique()
        assert (wells_per_split == 1).all()  # no well in two splits
    assert "None: every task finished" in (report / "accuracy.md").read_text()

    again = submit(config_path, "--stage", "all")
    assert again.returncode == 0
    assert "finished: 0 task(s) ok, 0 failed" in again.stdout
    assert again.stdout.count("done, skipped") == 6


def test_a_broken_plate_is_reported_missing_and_the_rest_finishes(tmp_path):
    raw = experiment_dict(tmp_path / "results")
    raw["data"]["input"]["plates"] = 2
    config_path = write_config(tmp_path / "c.yaml", raw)
    config = config_from_dict(raw)
    plate = open_plate(config, "P2")
    (plate.folder / "layout.csv").write_text("well,condition\nA01,x\nA01,y\n")  # duplicated

    run = submit(config_path, "--stage", "all", "--executor", "debug")
    assert run.returncode == 1
    assert "segment/P2: failed" in run.stdout and "A01" in run.stdout
    assert "crop/P2: skipped" in run.stdout and "input missing" in run.stdout
    summary = (tmp_path / "results" / "report" / "accuracy.md").read_text()
    for task in ["segment/P2", "crop/P2", "features/P2"]:
        assert f"- {task}" in summary
    assert "| rf |" in summary  # trained on the plate that worked


def test_a_corrupt_field_fails_alone_and_the_plate_goes_on(tmp_path):
    raw = experiment_dict(tmp_path / "results")
    config_path = write_config(tmp_path / "c.yaml", raw)
    config = config_from_dict(raw)
    plate = open_plate(config, "P1")
    broken = plate.field_path(plate.fields[0])
    broken.write_bytes(broken.read_bytes()[:200])  # a truncated TIFF

    run = submit(config_path, "--stage", "all", "--executor", "debug")
    assert run.returncode == 0, run.stdout + run.stderr
    status = json.loads((tmp_path / "results" / "_status" / "segment" / "P1.json").read_text())
    assert status["state"] == "done"
    assert list(status["details"]["field_errors"]) == [plate.fields[0].name]
    assert status["details"]["fields"] == len(plate.fields) - 1
    features = pd.read_parquet(tmp_path / "results" / "features" / "P1.parquet")
    assert plate.fields[0].name not in set(features["Metadata_Field"])
    assert features["Metadata_Field"].nunique() == len(plate.fields) - 1
    summary = (tmp_path / "results" / "report" / "accuracy.md").read_text()
    assert f"- segment/P1 field {plate.fields[0].name}: " in summary
    shown = submit(config_path, "--status").stdout
    assert "segment    1 partial" in shown and broken.name in shown
