"""Per-well profiles with pycytominer: aggregate, normalise to controls, select features."""

import numpy as np
import pandas as pd
import pytest

from cellbench.config import ProfilesConfig, config_from_dict
from cellbench.errors import CellbenchError
from cellbench.execution.run import execute
from cellbench.features.profiles import (
    OBJECT_COUNT,
    normalize_profiles,
    select_profile_features,
    well_profiles,
)
from cellbench.paths import ResultsPaths
from tests.helpers import experiment_dict


def cells_table(seed: int = 0) -> pd.DataFrame:
    """Cells of 6 wells: 2 DMSO wells (feature around 10), 4 treated wells (around 20)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, (well, compound) in enumerate(
        [
            ("A01", "DMSO"),
            ("A02", "DMSO"),
            ("A03", "taxol"),
            ("A04", "taxol"),
            ("A05", "x"),
            ("A06", "x"),
        ]
    ):
        centre = 10.0 if compound == "DMSO" else 20.0
        for cell in range(5 + k):
            rows.append(
                {
                    "Metadata_Plate": "P1",
                    "Metadata_Well": well,
                    "Metadata_Compound": compound,
                    "Metadata_CellId": f"{well}-{cell}",  # differs per cell: not carried
                    "Cells_AreaShape_Area": centre + rng.normal(),
                    "Nuclei_Intensity_MeanIntensity_DNA": 2 * centre + rng.normal(),
                    "Image_Count_Cells": 7.0,
                }
            )
    return pd.DataFrame(rows)


def test_wells_are_medians_normalised_to_the_control_wells():
    cells = cells_table()
    config = ProfilesConfig(normalize="standardize")
    wells = well_profiles(cells, config)
    assert list(wells["Metadata_Well"]) == ["A01", "A02", "A03", "A04", "A05", "A06"]
    assert list(wells[OBJECT_COUNT]) == [5, 6, 7, 8, 9, 10]
    assert "Metadata_Compound" in wells and "Metadata_CellId" not in wells
    assert "Image_Count_Cells" not in wells  # per-object features only
    # by hand: median per well, then (x - mean of controls) / SD of controls (ddof 0)
    medians = cells.groupby("Metadata_Well")["Cells_AreaShape_Area"].median().to_numpy()
    controls = medians[:2]
    expected = (medians - controls.mean()) / controls.std()
    np.testing.assert_allclose(wells["Cells_AreaShape_Area"], expected, rtol=1e-6)
    assert (wells["Cells_AreaShape_Area"].iloc[2:] > 3).all()  # treated wells far from DMSO


def test_a_plate_without_enough_control_wells_is_a_clear_error():
    cells = cells_table()
    cells = cells[cells["Metadata_Well"] != "A02"]
    with pytest.raises(CellbenchError, match=r"P1.parquet: 1 control well\(s\).*normalize_per"):
        well_profiles(cells, ProfilesConfig(), source="P1.parquet")
    wells = well_profiles(cells, ProfilesConfig(normalize_per="experiment"))  # normalised later
    np.testing.assert_allclose(
        wells["Cells_AreaShape_Area"],
        cells.groupby("Metadata_Well")["Cells_AreaShape_Area"].median().to_numpy(),
    )
    with pytest.raises(CellbenchError, match="1 control well"):
        normalize_profiles(wells, ProfilesConfig(normalize_per="experiment"))


def test_a_control_value_cannot_inject_a_query():
    config = ProfilesConfig(control={"column": "Metadata_Compound", "value": "x' or '1'=='1"})
    with pytest.raises(CellbenchError, match="profiles.control.value"):
        well_profiles(cells_table(), config)
    with pytest.raises(ValueError, match="column"):
        ProfilesConfig(control={"column": "__import__('os')", "value": "DMSO"})


def test_feature_selection_drops_a_constant_and_a_duplicate_feature():
    wells = well_profiles(cells_table(), ProfilesConfig(normalize="standardize"))
    wells["Cytoplasm_Intensity_MeanIntensity_DNA"] = 1.0  # no variance
    wells["Cells_AreaShape_Perimeter"] = wells["Cells_AreaShape_Area"] * 2  # correlation 1
    wells["Nuclei_Intensity_MeanIntensity_DNA"] = [1.0, -1.0, 2.0, -2.0, 0.5, -0.5]  # unrelated
    config = ProfilesConfig(feature_select=["variance_threshold", "correlation_threshold"])
    selected = select_profile_features(wells, config)
    features = [c for c in selected if not c.startswith("Metadata_")]
    assert "Cytoplasm_Intensity_MeanIntensity_DNA" not in features
    assert len({"Cells_AreaShape_Area", "Cells_AreaShape_Perimeter"} & set(features)) == 1
    assert "Nuclei_Intensity_MeanIntensity_DNA" in features
    assert [c for c in selected if c.startswith("Metadata_")] == [
        c for c in wells if c.startswith("Metadata_")
    ]


def test_profiles_stage_writes_each_plate_and_the_report_scores_them(tmp_path):
    raw = experiment_dict(tmp_path / "results")
    raw["data"]["input"]["plates"] = 2
    assert raw["data"]["input"].get("conditions") is None  # the default three, label "condition"
    raw["profiles"] = {"control": {"column": "Metadata_Condition", "value": "control"}}
    raw["models"] = []
    config = config_from_dict(raw)
    outcome = execute(config, "all", "local", echo=lambda line: None)
    assert not outcome.failed, [r.message for r in outcome.results if r.state == "failed"]
    paths = ResultsPaths(config.results_root)
    for plate in ("P1", "P2"):
        wells = pd.read_parquet(paths.profile_table(plate))
        assert len(wells) == 12 and set(wells["Metadata_Condition"]) == {
            "control",
            "enlarged_nuclei",
            "textured",
        }
    representations = pd.read_csv(paths.report_file("representations.csv"))
    row = representations.set_index("model").loc["per-well profiles"]
    assert row["input"] == "mad_robustize" and 0 < row["map_mean"] <= 1
    assert paths.report_file("profiles_selected.parquet").exists()
