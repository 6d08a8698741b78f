"""Names that become paths (plates, fields, models, the experiment) fit one pattern."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cellbench.config import config_from_dict
from cellbench.data.plates import list_plates, open_plate
from cellbench.errors import CellbenchError, ConfigError, NothingToDo
from cellbench.names import NAME_PATTERN, check_name, is_valid_name
from cellbench.paths import ResultsPaths
from jobs.submit import main as submit_main
from tests.helpers import experiment_dict, write_config

XSS = 'Q"><img src=x onerror=alert(2)>'


def touch_plate(folder: Path, names=("A-01-01", "A-01-02")) -> Path:
    """A plate folder of empty field files (enough to be listed, not to be read)."""
    (folder / "fields").mkdir(parents=True)
    for name in names:
        (folder / "fields" / f"{name}.tif").touch()
    return folder


def fields_dict(tmp_path: Path, root: Path, **input_overrides) -> dict:
    raw = experiment_dict(tmp_path / "results")
    raw["data"] = {"input": {"source": "fields", "root": str(root), **input_overrides}}
    return raw


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize(
    "name",
    ["P1", "Week1_22123", "A01", "A-01-03", "A01_s1", "A-01-03_p00", "rf", "rf.seed0", "report"],
)
def test_names_in_use_fit_the_pattern(name):
    assert is_valid_name(name) and check_name("plate", name) == name


@pytest.mark.parametrize(
    "name", ["", "..", "../P1", "a/b", "/abs", ".hidden", "-x", "a..b", "a b", "P1\n", "x" * 129]
)
def test_names_that_would_leave_their_folder_do_not(name):
    assert not is_valid_name(name)
    with pytest.raises(CellbenchError, match="is not a valid plate name"):
        check_name("plate", name)


def test_a_plate_that_climbs_out_of_the_root_is_a_config_error_and_writes_nothing(tmp_path, capsys):
    root = tmp_path / "a" / "b" / "c" / "screen"
    touch_plate(root / "P1")
    raw = fields_dict(tmp_path / "a" / "b" / "c", root, plates=["../../../P1"])
    config_path = write_config(tmp_path / "climb.yaml", raw)
    before = tree(tmp_path)

    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert "data.input.plates.0: '../../../P1' is not a valid plate name" in str(info.value)
    code = submit_main(["--config", str(config_path), "--stage", "all", "--executor", "debug"])

    assert code == 2
    assert "data.input.plates.0: '../../../P1'" in capsys.readouterr().err
    assert tree(tmp_path) == before  # no store, no status, no results root


def test_a_folder_whose_name_is_not_a_plate_name_is_skipped_with_a_warning(tmp_path, caplog):
    root = tmp_path / "screen"
    touch_plate(root / "P1")
    touch_plate(root / XSS)
    config = config_from_dict(fields_dict(tmp_path, root))

    with caplog.at_level(logging.WARNING, logger="cellbench.names"):
        assert list_plates(config) == ["P1"]

    (record,) = [r for r in caplog.records if r.name == "cellbench.names"]
    assert repr(XSS) in record.getMessage() and str(root) in record.getMessage()
    assert NAME_PATTERN in record.getMessage()
    assert (root / XSS).is_dir()  # reported, never renamed


def test_a_plate_group_of_the_scheme_that_is_not_a_plate_name_is_skipped(tmp_path, caplog):
    root = tmp_path / "flat"
    root.mkdir()
    for name in ("P1__A-01-01", "P 2__A-01-01"):
        (root / f"{name}.tif").touch()
    scheme = r"^(?P<plate>[^_]+)__(?P<row>[A-P])-(?P<column>\d{2})-(?P<site>\d{2})$"
    config = config_from_dict(fields_dict(tmp_path, root, plate_from="scheme", scheme=scheme))

    with caplog.at_level(logging.WARNING, logger="cellbench.names"):
        assert list_plates(config) == ["P1"]
    assert "'P 2'" in caplog.text


def test_a_root_folder_that_is_not_a_plate_name_is_skipped_and_nothing_is_left(tmp_path, caplog):
    root = touch_plate(tmp_path / "my screen")
    config = config_from_dict(fields_dict(tmp_path, root, plate_from="root"))
    with pytest.raises(NothingToDo, match=r"1 skipped: not valid plate names"):
        list_plates(config)
    assert "'my screen'" in caplog.text
    named = config_from_dict(fields_dict(tmp_path, root, plate_from="root", plates=["S1"]))
    assert list_plates(named) == ["S1"]


def test_a_field_name_that_is_not_a_field_name_names_its_file(tmp_path):
    root = tmp_path / "screen"
    (root / "P1").mkdir(parents=True)
    (root / "P1" / "A01_x y.tif").touch()
    scheme = r"^(?P<well>[A-P]\d{2})_(?P<site>.+)$"
    config = config_from_dict(fields_dict(tmp_path, root, scheme=scheme))

    with pytest.raises(CellbenchError, match=r"not a valid field name") as info:
        open_plate(config, "P1")
    assert str(root / "P1" / "A01_x y.tif") in str(info.value)


@pytest.mark.parametrize(
    "key, value",
    [("name", "../exp"), ("name", ".."), ("models", [{"name": "../rf", "type": "random_forest"}])],
)
def test_bad_experiment_and_model_names_are_config_errors(tmp_path, key, value):
    wanted = "name: '../exp'" if value == "../exp" else "name: '..'"
    if key == "models":
        wanted = "models.0.name: '../rf' is not a valid model name"
    with pytest.raises(ConfigError) as info:
        config_from_dict(experiment_dict(tmp_path, **{key: value}))
    assert wanted in str(info.value)


def results_paths_calls(paths: ResultsPaths, name: str) -> dict:
    """Every ResultsPaths method that takes a name, called with `name` in each such place."""
    seed = 0
    return {
        "input_plate": lambda: paths.input_plate(name),
        "label_store": lambda: paths.label_store(name),
        "crop_store": lambda: paths.crop_store(name),
        "feature_table": lambda: paths.feature_table(name),
        "profile_table": lambda: paths.profile_table(name),
        "embeddings": lambda: paths.embeddings(name, seed),
        "model_dir": lambda: paths.model_dir(name, seed),
        "model_file": lambda: paths.model_file(name, seed),
        "torch_model_file": lambda: paths.torch_model_file(name, seed),
        "checkpoint": lambda: paths.checkpoint(name, seed),
        "history": lambda: paths.history(name, seed),
        "split_file": lambda: paths.split_file(name, seed),
        "model_info": lambda: paths.model_info(name, seed),
        "metrics": lambda: paths.metrics(name, seed),
        "curves": lambda: paths.curves(name, seed),
        "mmd_table": lambda: paths.mmd_table(name, seed),
        "predictions": lambda: paths.predictions(name, seed),
        "nsc_table": lambda: paths.nsc_table(name, seed),
        "gradcam_maps": lambda: paths.gradcam_maps(name, seed),
        "gradcam_panel": lambda: paths.gradcam_panel(name, seed),
        "latent_usage": lambda: paths.latent_usage(name, seed),
        "latent_grids": lambda: paths.latent_grids(name, seed),
        "generation_grids": lambda: paths.generation_grids(name, seed),
        "report_file": lambda: paths.report_file(name),
        "report_figure": lambda: paths.report_figure(name),
        "background_study_results": lambda: paths.background_study_results(name),
        "status_file(stage)": lambda: paths.status_file(name, "P1"),
        "status_file(task)": lambda: paths.status_file("segment", name),
        "status_dir": lambda: paths.status_dir(name),
        "log_dir": lambda: paths.log_dir(name),
        "submission_file": lambda: paths.submission_file(name),
        "task_lock(stage)": lambda: paths.task_lock(name, "P1"),
        "task_lock(task)": lambda: paths.task_lock("segment", name),
    }


def test_the_name_methods_cover_every_public_method_that_takes_one():
    taking_a_name = {
        name
        for name in dir(ResultsPaths)
        if not name.startswith("_") and callable(getattr(ResultsPaths, name))
    }
    covered = {key.split("(")[0] for key in results_paths_calls(ResultsPaths(Path("/r")), "x")}
    assert taking_a_name == covered


@pytest.mark.parametrize("name", ["../x", "..", ".", "/etc/x", "a/../../x", ""])
def test_results_paths_refuse_names_that_leave_the_root(tmp_path, name):
    paths = ResultsPaths(tmp_path / "results")
    for method, call in results_paths_calls(paths, name).items():
        with pytest.raises(CellbenchError, match="is not inside the results root") as info:
            call()
        assert str(tmp_path / "results") in str(info.value), method


def test_results_paths_accept_names_in_use_and_odd_plain_names(tmp_path):
    paths = ResultsPaths(tmp_path / "results")
    assert (
        paths.status_file("train", "rf.seed0") == tmp_path / "results/_status/train/rf.seed0.json"
    )
    assert paths.status_file("aggregate", "report").name == "report.json"
    assert paths.label_store("Week1_22123").name == "Week1_22123.h5"
    assert paths.label_store("a b").parent == tmp_path / "results" / "segment"  # plain, inside
