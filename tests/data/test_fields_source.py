"""Real microscope folders as plates: ExampleFly, ExampleHuman and an ND2 file."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml

from cellbench.config import default_data_root, load_config
from cellbench.data.plates import list_plates, open_plate, read_field
from cellbench.execution.run import execute
from cellbench.paths import ResultsPaths
from cellbench.segment.store import read_labels, stored_fields
from tests.helpers import REPO

DATA = default_data_root()
pytestmark = pytest.mark.skipif(
    not (DATA / "cellprofiler_examples").is_dir(), reason=f"no CellProfiler examples in {DATA}"
)


def real_config(tmp_path, name, **input_overrides):
    raw = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    raw["results_root"] = str(tmp_path / "results")
    raw["data"]["input"].update(input_overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_examplefly_fields_are_grouped_by_channel(tmp_path):
    config = real_config(tmp_path, "examplefly")
    assert list_plates(config) == ["ExampleFly"]
    plate = open_plate(config, "ExampleFly")
    assert [f.name for f in plate.fields] == ["POS002", "POS076", "POS218"]
    image = read_field(plate, plate.fields[1], ["DNA", "stainR"])
    folder = DATA / "cellprofiler_examples" / "ExampleFly" / "images"
    assert image.shape == (2, 1006, 1000) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0], tifffile.imread(folder / "01_POS076_D.TIF"))
    np.testing.assert_array_equal(image[1], tifffile.imread(folder / "01_POS076_R.TIF"))


def test_examplefly_features_have_one_row_per_segmented_cell(tmp_path):
    config = real_config(tmp_path, "examplefly")
    results = execute(config, "features", "local", echo=lambda line: None).results
    assert [r.state for r in results] == ["done", "done"]  # segment, then features
    paths = ResultsPaths(config.results_root)
    features = pd.read_parquet(paths.feature_table("ExampleFly"))
    expected = 0
    for name in stored_fields(paths.label_store("ExampleFly")):
        cells, _ = read_labels(paths.label_store("ExampleFly"), name)
        n = len(np.unique(cells[cells > 0]))
        assert (features["Metadata_Field"] == name).sum() == n
        expected += n
    assert len(features) == expected > 300
    assert features["Metadata_CellId"].is_unique


def test_examplehuman_ph3_channel_is_read_by_name(tmp_path):
    config = real_config(tmp_path, "examplehuman")
    plate = open_plate(config, "ExampleHuman")
    (field,) = plate.fields
    assert (field.well, field.site) == ("D03", "00")
    image = read_field(plate, field, ["PH3", "DNA"])
    folder = DATA / "cellprofiler_examples" / "ExampleHuman" / "images"
    np.testing.assert_array_equal(image[0], tifffile.imread(next(folder.glob("*d1.tif"))))
    np.testing.assert_array_equal(image[1], tifffile.imread(next(folder.glob("*d0.tif"))))


def test_a_corrupt_real_tiff_fails_its_field_only(tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(DATA / "cellprofiler_examples" / "ExampleFly" / "images", folder)
    broken = folder / "01_POS076_F.TIF"
    broken.write_bytes(broken.read_bytes()[:5000])
    config = real_config(tmp_path, "examplefly", root=str(folder))
    execute(config, "segment", "local", echo=lambda line: None)
    paths = ResultsPaths(config.results_root)
    status = json.loads(paths.status_file("segment", "ExampleFly").read_text())
    assert status["state"] == "done"
    assert list(status["details"]["field_errors"]) == ["POS076"]
    assert broken.name in status["details"]["field_errors"]["POS076"]
    assert stored_fields(paths.label_store("ExampleFly")) == ["POS002", "POS218"]


def test_missing_channel_file_and_bad_names_are_named(tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(DATA / "cellprofiler_examples" / "ExampleFly" / "images", folder)
    (folder / "01_POS218_R.TIF").unlink()
    config = real_config(tmp_path, "examplefly", root=str(folder))
    plate = open_plate(config, "ExampleFly")
    from cellbench.errors import CellbenchError

    with pytest.raises(CellbenchError, match="POS218.*'stainR'"):
        read_field(plate, plate.fields[-1], ["DNA", "stainR"])
    (folder / "notes.tif").write_bytes(b"")
    (folder / "01_POS9_D.TIF").write_bytes(b"")
    with pytest.raises(CellbenchError) as info:
        open_plate(config, "ExampleFly")
    assert "notes" in str(info.value) and "01_POS9_D" in str(info.value)


def test_an_nd2_file_is_a_field(tmp_path):
    folder = tmp_path / "nd2"
    folder.mkdir()
    shutil.copy(DATA / "nd2" / "cluster.nd2", folder / "A-01-01.nd2")
    raw = {
        "name": "nd2",
        "results_root": str(tmp_path / "results"),
        "data": {
            "input": {
                "source": "fields",
                "root": str(folder),
                "plate_from": "root",
                "channel_map": {"dye": "5-FAM/pH 9.0", "membrane": 1},
            },
            "channels": ["dye", "membrane"],
            "marker_channels": [],
        },
        "segmentation": {"nucleus_channel": "dye"},
    }
    config_path = tmp_path / "nd2.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    config = load_config(config_path)
    plate = open_plate(config, "nd2")
    assert [f.name for f in plate.fields] == ["A-01-01"]
    image = read_field(plate, plate.fields[0], ["membrane", "dye"])
    assert image.shape == (2, 31, 38) and image.dtype == np.uint16
