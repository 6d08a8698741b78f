"""Pre-cut crop ingest on the real BBBC021 crops of $CELLBENCH_DATA."""

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from cellbench.config import config_from_dict, default_data_root, load_config
from cellbench.crops.store import read_cells, read_crops
from cellbench.data.precut import index_crops
from cellbench.errors import CellbenchError
from cellbench.execution.run import execute
from cellbench.paths import ResultsPaths
from cellbench.stages import list_tasks
from cellbench.status import read_status
from cellbench.tasks import run_task
from tests.helpers import REPO

BBBC021 = default_data_root() / "bbbc021"
pytestmark = pytest.mark.skipif(not BBBC021.is_dir(), reason=f"no BBBC021 data at {BBBC021}")


def bbbc021_config(tmp_path, **input_overrides):
    raw = yaml.safe_load((REPO / "configs" / "bbbc021.yaml").read_text())
    raw["results_root"] = str(tmp_path / "results")
    raw["data"]["input"].update(input_overrides)
    path = tmp_path / "bbbc021.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_every_crop_joins_and_round_trips(tmp_path):
    config = bbbc021_config(tmp_path)
    lines = []
    results = execute(config, "crop", "local", echo=lines.append).results
    assert len(results) == 55 and all(r.state == "done" for r in results)
    assert "cells per moa (1996 in all):" in lines
    assert any(line.split() == ["Microtubule", "stabilizers", "775"] for line in lines)
    assert list_tasks(config, "segment") == []  # pre-cut: nothing to segment
    assert list_tasks(config, "features") == list_tasks(config, "crop")  # measured per crop

    paths = ResultsPaths(config.results_root)
    total = 0
    for plate in list_tasks(config, "crop"):
        cells = read_cells(paths.crop_store(plate))
        crops, _ = read_crops(paths.crop_store(plate), "precut")
        assert {"moa", "compound", "concentration", "plate", "well", "site"} <= set(cells.columns)
        assert set(cells["plate"]) == {plate}
        for i, cell_id in enumerate(cells["cell_id"]):
            source = np.load(BBBC021 / "crops" / f"{cell_id}.npy")
            np.testing.assert_array_equal(crops[i], source.transpose(2, 0, 1))
        total += len(cells)
    assert total == 1996


def test_a_crop_that_does_not_join_is_named(tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    for name in sorted((BBBC021 / "crops").iterdir())[:5]:
        shutil.copy(name, folder)
    stray = folder / "B02_s1_w1FFFFFFFF-0000-0000-0000-000000000000_1.npy"  # no such image
    shutil.copy(next(folder.iterdir()), stray)
    (folder / "notes_about_crops.npy").write_bytes(b"")
    with pytest.raises(CellbenchError) as info:
        index_crops(bbbc021_config(tmp_path, root=str(folder)).data.input)
    message = str(info.value)
    assert "2 crop(s) do not match" in message
    assert stray.name in message and "BBBC021_v1_image.csv" in message
    assert "notes_about_crops.npy (name does not follow 'bbbc021')" in message

    allowed = index_crops(
        bbbc021_config(tmp_path, root=str(folder), allow_unmatched=True).data.input
    )
    assert len(allowed) == 5


def test_mixed_shapes_fail_their_plate_with_the_file_named(tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    sources = sorted((BBBC021 / "crops").iterdir())[:3]
    for name in sources:
        shutil.copy(name, folder)
    odd = folder / sources[1].name
    np.save(odd, np.zeros((60, 60, 3), np.uint16))
    config = bbbc021_config(tmp_path, root=str(folder))
    plates = list_tasks(config, "crop")
    results = {p: run_task(config, "crop", p) for p in plates}
    plate_of_odd = index_crops(config.data.input).set_index("cell_id").loc[odd.stem, "plate"]
    assert results[plate_of_odd].state == "failed"
    assert odd.name in results[plate_of_odd].message
    assert not ResultsPaths(config.results_root).crop_store(plate_of_odd).exists()
    others = [r for p, r in results.items() if p != plate_of_odd]
    assert all(r.state == "done" for r in others)


def test_unreadable_crop_is_named(tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    source = sorted((BBBC021 / "crops").iterdir())[0]
    (folder / source.name).write_bytes(b"not numpy")
    config = bbbc021_config(tmp_path, root=str(folder))
    (plate,) = list_tasks(config, "crop")
    result = run_task(config, "crop", plate)
    assert result.state == "failed" and source.name in result.message


def test_custom_regex_scheme_without_joins(tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    for i, well in enumerate(["A01", "A01", "B02"]):
        np.save(folder / f"plateX_{well}_{i}.npy", np.full((8, 8, 2), i, np.uint16))
    raw = {
        "name": "custom",
        "results_root": str(tmp_path / "results"),
        "data": {
            "input": {
                "source": "crops",
                "root": str(folder),
                "scheme": r"^(?P<plate>[^_]+)_(?P<well>[A-P]\d{2})_(?P<cell>\d+)$",
            },
            "channels": ["a", "b"],
            "marker_channels": [],
            "label_column": "well",
        },
        "models": [{"name": "rf", "type": "random_forest"}],
    }
    config = config_from_dict(raw)
    assert list_tasks(config, "crop") == ["plateX"]
    assert run_task(config, "crop", "plateX").details["class_counts"] == {"A01": 2, "B02": 1}
    crops, _ = read_crops(ResultsPaths(config.results_root).crop_store("plateX"), "precut")
    assert crops.shape == (3, 2, 8, 8) and crops[2].max() == 2


def test_data_exclude_leaves_out_images_and_crops_by_name(tmp_path):
    plate = "Week5_29321"  # the smallest plate of the subset: 6 crops
    index = index_crops(bbbc021_config(tmp_path).data.input)
    rows = index[index["plate"] == plate].sort_values("cell_id")
    image = rows["image"].value_counts().index[0]  # the image most of its crops come from
    by_image = set(rows.loc[rows["image"] == image, "cell_id"])
    other = sorted(set(rows["cell_id"]) - by_image)[0]
    raw = yaml.safe_load((REPO / "configs" / "bbbc021.yaml").read_text())
    raw["results_root"] = str(tmp_path / "results")
    raw["data"]["exclude"] = {
        "images": [f"{image}.tif", f"{plate}/{other}.npy", "Week1_22123/no_such_crop.npy"]
    }
    config = config_from_dict(raw)

    assert list_tasks(config, "crop") == list_tasks(bbbc021_config(tmp_path), "crop")
    for stage in ("crop", "features"):
        assert run_task(config, stage, plate).state == "done"
    paths = ResultsPaths(config.results_root)
    cells = read_cells(paths.crop_store(plate))
    assert set(cells["cell_id"]) == set(rows["cell_id"]) - by_image - {other}
    excluded = read_status(paths.status_file("crop", plate))["details"]["excluded"]
    assert excluded["crops"] == len(by_image) + 1
    assert excluded["wells"] == sorted(
        set(rows.loc[rows["cell_id"].isin(by_image | {other}), "well"])
    )
    assert len(pd.read_parquet(paths.feature_table(plate))) == len(cells)

    from cellbench.data.plates import check_exclusions

    assert check_exclusions(config) == ["Week1_22123/no_such_crop.npy"]
