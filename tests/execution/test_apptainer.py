"""Tasks inside a real Apptainer image: by hand and as SLURM array tasks, against the same tasks
outside it.

Needs the image that `containers/build-image.sh` builds and an apptainer command:
``CELLBENCH_TEST_IMAGE`` (the .sif) and ``CELLBENCH_APPTAINER`` (``apptainer``, or
``containers/apptainer-here.sh`` on a machine without it). CI builds the image and sets both;
elsewhere the tests skip, in CI they fail without them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from cellbench.config import config_from_dict
from cellbench.paths import ResultsPaths
from cellbench.tasks import run_task
from tests.execution.slurm_helpers import (
    TEST_PROFILE,
    cancel_jobs,
    require_slurm,
    submitted_arrays,
    wait_until,
)
from tests.execution.test_slurm import submit
from tests.helpers import experiment_dict, write_config


def _image_and_apptainer() -> tuple[Path, str]:
    image = os.environ.get("CELLBENCH_TEST_IMAGE")
    apptainer = os.environ.get("CELLBENCH_APPTAINER", "apptainer")
    problem = None
    if not image or not Path(image).is_file():
        problem = "CELLBENCH_TEST_IMAGE names no image (containers/build-image.sh builds one)"
    elif shutil.which(apptainer) is None:
        problem = f"no apptainer command {apptainer!r} (CELLBENCH_APPTAINER)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs the container tests: {problem}")
        pytest.skip(problem)
    return Path(image).resolve(), str(Path(shutil.which(apptainer)).resolve())


@pytest.fixture(scope="module")
def image():
    return _image_and_apptainer()


def _experiment(root: Path, **execution) -> dict:
    raw = experiment_dict(root / "results")
    raw["crops"] = {"kinds": {"whole_cell": {"size_px": 48}, "nuclear": {"size_px": 32}}}
    raw["models"] = []
    raw["execution"] = {"local_workers": 2, **execution}
    return raw


def _store_contents(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 store, by name (attributes such as times left out)."""
    contents = {}
    with h5py.File(path, "r") as store:
        store.visititems(
            lambda name, item: (
                contents.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
            )
        )
    return contents


def _assert_same_store(first: Path, second: Path) -> None:
    a, b = _store_contents(first), _store_contents(second)
    assert sorted(a) == sorted(b) and len(a) > 4
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """Segment and crop outside any container: the reference stores."""
    root = tmp_path_factory.mktemp("outside")
    config = config_from_dict(_experiment(root))
    for stage in ("segment", "crop"):
        assert run_task(config, stage, "P1").state == "done"
    return ResultsPaths(config.results_root)


def test_image_passes_its_own_test(image):
    sif, apptainer = image
    done = subprocess.run(
        [apptainer, "test", str(sif)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cellbench" in done.stdout and "torch 2.13.0+cpu" in done.stdout


def test_a_task_run_by_hand_inside_the_image_writes_the_same_crops(image, outside, tmp_path):
    sif, apptainer = image
    raw = _experiment(tmp_path)
    config = config_from_dict(raw)
    assert run_task(config, "segment", "P1").state == "done"  # outside; the crop task inside
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    results = str(config.results_root)
    command = [apptainer, "exec", "--bind", results, "--bind", str(tmp_path), str(sif)]
    command += ["cellbench", "run", "--stage", "crop", "--task", "P1", "--config", str(config_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    paths = ResultsPaths(config.results_root)
    status = yaml.safe_load(paths.status_file("crop", "P1").read_text())
    assert status["state"] == "done" and status["python"].startswith("3.11")
    _assert_same_store(paths.crop_store("P1"), outside.crop_store("P1"))


def test_slurm_array_tasks_run_inside_the_image(image, outside, tmp_path):
    require_slurm()
    sif, apptainer = image
    raw = _experiment(
        tmp_path,
        cluster=str(TEST_PROFILE),
        container={"image": str(sif), "apptainer": apptainer},
    )
    config_path = write_config(tmp_path / "config.yaml", raw)
    config = config_from_dict(raw)
    paths = ResultsPaths(config.results_root)
    try:
        run = submit(config_path, "--stage", "all", "--executor", "slurm")
        assert run.returncode == 0, run.stdout + run.stderr

        def all_done():
            status = submit(config_path, "--status")
            return status.returncode == 0 and "aggregate  1 done" in status.stdout

        wait_until(all_done, 420, "the SLURM run in the image to finish", poll_s=3)
    finally:
        cancel_jobs(submitted_arrays(tmp_path))
    for stage in ("segment", "crop", "features", "aggregate"):
        task = "P1" if stage != "aggregate" else "report"
        status = json.loads(paths.status_file(stage, task).read_text())
        assert status["state"] == "done", (stage, status.get("error"))
        assert status["slurm"].get("SLURM_JOB_ID"), (stage, status["slurm"])
        assert status["container"] == str(sif), (stage, status.get("container"))
    _assert_same_store(paths.crop_store("P1"), outside.crop_store("P1"))
    _assert_same_store(paths.label_store("P1"), outside.label_store("P1"))
    # the report, written inside the image, names it by its real SHA-256
    page = (paths.report_dir / "index.html").read_text()
    digest = hashlib.sha256(sif.read_bytes()).hexdigest()
    assert digest in page and str(sif) in page
