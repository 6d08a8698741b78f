"""Real CellProfiler 4.2.8 output of the ExampleHuman field, joined to cellbench's own cells.

CellProfiler's pipeline and cellbench's config segment the field differently, so not every
object has a cell; the join must still pair each cell with its own object. That shows in the
measurements both tools make of the same nucleus: with the wrong partners they would not
correlate at all.
"""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from cellbench.config import default_data_root, load_config
from cellbench.execution.run import execute
from cellbench.paths import ResultsPaths
from tests.helpers import REPO, assert_pycytominer_sees_every_feature

FIXTURE = REPO / "tests" / "fixtures" / "cellprofiler_examplehuman"
PLATE = "ExampleHuman"

pytestmark = pytest.mark.skipif(
    not (default_data_root() / "cellprofiler_examples" / PLATE).is_dir(),
    reason="ExampleHuman images not in $CELLBENCH_DATA",
)


def _unpacked(folder, target):
    target.mkdir(parents=True)
    for packed in folder.glob("*.gz"):
        with gzip.open(packed) as source, open(target / packed.stem, "wb") as out:
            shutil.copyfileobj(source, out)
    return target


def _features(tmp_path, name, features):
    raw = yaml.safe_load((REPO / "configs" / "examplehuman.yaml").read_text())
    raw["results_root"] = str(tmp_path / name)
    raw["features"] = features
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    results = execute(config, "features", "local", echo=lambda line: None).results
    assert [r.message for r in results if not r.ok] == []
    paths = ResultsPaths(config.results_root)
    status = json.loads(paths.status_file("features", PLATE).read_text())
    return pd.read_parquet(paths.feature_table(PLATE)), status["details"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("cp_real")
    spreadsheet = _unpacked(FIXTURE / "spreadsheet", tmp_path / "spreadsheet")
    database = _unpacked(FIXTURE / "sqlite", tmp_path / "sqlite") / "DefaultDB.db"
    tables = {}
    for name, path in [("spreadsheet", spreadsheet), ("sqlite", database)]:
        source = {"source": "cellprofiler", "tables": {"path": str(path)}}
        tables[name] = _features(tmp_path, name, source)
    native = _features(tmp_path, "native", {"source": "measure"})
    return tables, native


def test_real_cellprofiler_objects_join_their_own_cells(imported):
    tables, (native, native_details) = imported
    table, details = tables["spreadsheet"]
    counts = details["cellprofiler"]
    ours = native_details["cells"]
    assert counts["objects"] == 289 and counts["image_sets"] == 1
    assert counts["matched"] == len(table) >= 0.85 * ours
    assert counts["matched"] + counts["cells_without_object"] == ours
    assert counts["median_distance_px"] < 2.0
    both = table.merge(native, on="Metadata_CellId", suffixes=("_cp", "_ours"))
    assert len(both) == len(table)
    for column, least in [
        ("Nuclei_AreaShape_Area", 0.85),
        ("Cells_AreaShape_Area", 0.85),
        ("Nuclei_Intensity_MeanIntensity_DNA", 0.95),
    ]:
        r = np.corrcoef(both[f"{column}_cp"], both[f"{column}_ours"])[0, 1]
        assert r > least, (column, r)
    # CellProfiler scales 8-bit intensities to [0, 1], cellbench keeps them: a nucleus's
    # brightest pixel is the same pixel in both (its nuclei are larger, their means lower)
    brightest = both["Nuclei_Intensity_MaxIntensity_DNA_cp"] * 255
    same = np.isclose(brightest, both["Nuclei_Intensity_MaxIntensity_DNA_ours"])
    assert same.mean() > 0.9, same.mean()
    assert {"Image_Count_Cells", "Image_Threshold_FinalThreshold_Nuclei"} <= set(table.columns)
    assert "Cells_AreaShape_Zernike_9_9" in table.columns  # CellProfiler's own measurements
    assert not any("Location" in c or "Parent" in c or "FileName" in c for c in table.columns)
    assert table["Metadata_Mitosis"].isin(["mitotic", "non_mitotic"]).all()
    assert_pycytominer_sees_every_feature(table)


def test_spreadsheet_and_database_exports_give_the_same_table(imported):
    tables, _ = imported
    spreadsheet, database = tables["spreadsheet"][0], tables["sqlite"][0]
    # ExportToDatabase adds per-image means of the objects' measurements, which are left out
    assert list(database.columns) == list(spreadsheet.columns)
    pd.testing.assert_frame_equal(database, spreadsheet, check_dtype=False, rtol=1e-6)
