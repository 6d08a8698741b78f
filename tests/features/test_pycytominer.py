"""Feature tables as pycytominer reads them: CellProfiler's object names, nothing dropped."""

import subprocess
import sys

import pandas as pd
import pytest
from pycytominer import normalize

from cellbench import __version__
from cellbench.cli import main
from cellbench.features.plate import measure_plate
from cellbench.paths import ResultsPaths
from tests.features.test_measure import CHANNELS, FEATURES
from tests.helpers import REPO, assert_pycytominer_sees_every_feature


def test_pycytominer_defaults_see_every_feature_of_a_plate_table(segmented_plate, tmp_path):
    config, plate = segmented_plate
    path = tmp_path / "P1.parquet"
    measure_plate(
        plate, ResultsPaths(config.results_root).label_store("P1"), CHANNELS, FEATURES, path
    )
    table = pd.read_parquet(path)
    assert_pycytominer_sees_every_feature(table)
    features = [c for c in table.columns if c.startswith(("Cells_", "Nuclei_", "Cytoplasm_"))]
    # normalize(features="infer") keeps every feature: none silently dropped
    normalized = normalize(table, features="infer", samples="all", method="standardize")
    assert [c for c in normalized.columns if c in features] == features


def test_features_info_counts_what_pycytominer_sees(segmented_plate, tmp_path, capsys):
    config, plate = segmented_plate
    path = tmp_path / "P1.parquet"
    labels = ResultsPaths(config.results_root).label_store("P1")
    measure_plate(plate, labels, CHANNELS, FEATURES, path)
    table = pd.read_parquet(path)
    assert main(["features-info", str(path)]) == 0
    out = capsys.readouterr().out
    regions = [c for c in table.columns if c.startswith(("Cells_", "Nuclei_", "Cytoplasm_"))]
    assert f"pycytominer infer_cp_features: {len(regions)} columns with its defaults" in out
    assert f"{len(table.columns)} columns" in out and "+1 with image_features=True" in out
    cells = [c for c in regions if c.startswith("Cells_")]
    assert f"  Cells: {len(cells)} (AreaShape 13," in out


def test_features_info_reads_a_cellprofiler_csv_header_only(tmp_path, capsys):
    path = tmp_path / "Cells.csv"
    path.write_text("ImageNumber,ObjectNumber,Metadata_Well,Cells_Granularity_1_DNA,Image_Count\n")
    assert main(["features-info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Cells: 1 (Granularity 1)" in out and "other: 2 (ImageNumber, ObjectNumber)" in out
    assert main(["features-info", str(tmp_path / "missing.parquet")]) == 2
    assert "missing.parquet: no such file" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"cellbench {__version__}"
    submit = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "submit.py"), "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert submit.returncode == 0 and submit.stdout.strip() == f"cellbench {__version__}"
