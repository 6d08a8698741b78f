"""The CellProfiler backend (``features.backend: cellprofiler``, cp_measure) against the native one.

The agreement is checked on the real ExampleHuman field, cropped to its top-left 256 x 256 px
(about a quarter of its cells) because cp_measure takes ~16 s for the whole field's 261 cells.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from cellbench.config import FeaturesConfig, default_data_root
from cellbench.features.measure import measure_field
from cellbench.features.plate import measure_plate
from cellbench.features.select import select_columns
from cellbench.paths import ResultsPaths
from tests.helpers import assert_pycytominer_sees_every_feature, segmented_examplehuman_field

pytest.importorskip("cp_measure", reason="cp_measure not installed (cellbench[cellprofiler])")

from cellbench.features.cellprofiler import measure_field_cellprofiler  # noqa: E402

REGIONS = ["Nuclei", "Cytoplasm", "Cells"]
# Same definition, same arithmetic: bit-for-bit equal.
EXACT_SHAPE = ["Area", "ConvexArea", "FilledArea", "Solidity", "Extent", "EquivalentDiameter"]
EXACT_INTENSITY = [
    "MeanIntensity",
    "MinIntensity",
    "MaxIntensity",
    "MedianIntensity",
    "LowerQuartileIntensity",  # cp_measure's default (non-legacy) quartiles: np.percentile
    "UpperQuartileIntensity",
    "IntegratedIntensity",
]
# Same definition, summed in another order: equal to rounding (relative 1e-12).
CLOSE_SHAPE = [
    "Perimeter",
    "PerimeterCrofton",
    "Eccentricity",
    "MajorAxisLength",
    "MinorAxisLength",
]
CLOSE_INTENSITY = ["StdIntensity"]


@pytest.fixture(scope="module")
def examplehuman_field(tmp_path_factory):
    """The ExampleHuman field segmented by its config, cropped: (image, cells, nuclei, channels)."""
    if not (default_data_root() / "cellprofiler_examples").is_dir():
        pytest.skip("no CellProfiler examples under CELLBENCH_DATA")
    tmp = tmp_path_factory.mktemp("examplehuman")
    image, cells, nuclei, channels = segmented_examplehuman_field(tmp)
    crop = (slice(0, 256), slice(0, 256))
    return image[:, crop[0], crop[1]], cells[crop], nuclei[crop], channels


@pytest.fixture(scope="module")
def both(examplehuman_field):
    image, cells, nuclei, channels = examplehuman_field
    features = FeaturesConfig(regions=REGIONS)
    native = measure_field(image, cells, nuclei, channels, features)
    with warnings.catch_warnings():  # cp_measure warns of undefined Costes, empty bins, ...
        warnings.simplefilter("ignore", RuntimeWarning)
        cellprofiler = measure_field_cellprofiler(image, cells, nuclei, channels, features)
    return native, cellprofiler, channels


def _shared(region: str, channels: list[str], shape: list[str], intensity: list[str]) -> list[str]:
    return [f"{region}_AreaShape_{name}" for name in shape] + [
        f"{region}_Intensity_{name}_{channel}" for name in intensity for channel in channels
    ]


def test_rows_labels_and_count_are_the_native_ones(both):
    native, cellprofiler, _ = both
    assert len(native) > 20
    np.testing.assert_array_equal(cellprofiler["label"], native["label"])
    np.testing.assert_array_equal(cellprofiler["Image_Count_Cells"], native["Image_Count_Cells"])


@pytest.mark.parametrize("region", REGIONS)
def test_shared_columns_agree_exactly_or_to_rounding(both, region):
    native, cellprofiler, channels = both
    exact = _shared(region, channels, EXACT_SHAPE, EXACT_INTENSITY)
    close = _shared(region, channels, CLOSE_SHAPE, CLOSE_INTENSITY)
    for column in exact:
        pd.testing.assert_series_equal(
            cellprofiler[column], native[column], check_dtype=False, obj=column
        )
    for column in close:
        np.testing.assert_allclose(
            cellprofiler[column], native[column], rtol=1e-12, atol=0, err_msg=column
        )


@pytest.mark.parametrize("region", REGIONS)
def test_orientation_is_the_same_angle_in_degrees(both, region):
    """CellProfiler gives Orientation in degrees, cellbench (scikit-image) in radians."""
    native, cellprofiler, _ = both
    column = f"{region}_AreaShape_Orientation"
    np.testing.assert_allclose(
        cellprofiler[column], np.degrees(native[column]), atol=1e-9, err_msg=column
    )


def test_feret_diameters_differ_by_definition(both):
    """scikit-image's Feret diameter spans pixel edges, CellProfiler's pixel centres: larger."""
    native, cellprofiler, _ = both
    ours = native["Cells_AreaShape_MaximumFeretDiameter"]
    theirs = cellprofiler["Cells_AreaShape_MaxFeretDiameter"]
    ratio = ours / theirs
    assert (ratio >= 1).all() and 1.0 < ratio.median() < 1.2


def test_cellprofiler_names_every_measurement_per_region_channel_and_pair(both):
    _, cellprofiler, channels = both
    first, second = channels[:2]
    for region in REGIONS:
        for column in [
            f"{region}_Granularity_1_{first}",
            f"{region}_AreaShape_Zernike_3_1",
            f"{region}_AreaShape_MaxFeretDiameter",
            f"{region}_RadialDistribution_FracAtD_{first}_1of4",
            f"{region}_RadialDistribution_ZernikeMagnitude_{second}_2_0",
            f"{region}_Texture_Contrast_{second}_3_00_256",
            f"{region}_Location_CenterMassIntensity_X_{first}",
            f"{region}_Correlation_Correlation_{first}_{second}",
            f"{region}_Correlation_Manders_{second}_{first}",
            f"{region}_Correlation_Costes_{first}_{second}",
        ]:
            assert column in cellprofiler, column
    pearson = cellprofiler[f"Cells_Correlation_Correlation_{first}_{second}"]
    assert pearson.between(-1, 1).all()


def test_features_stage_end_to_end_on_a_synthetic_plate(segmented_plate, tmp_path):
    config, plate = segmented_plate
    features = FeaturesConfig(regions=REGIONS, backend="cellprofiler")
    channels = list(config.data.channels)
    labels = ResultsPaths(config.results_root).label_store("P1")
    path = tmp_path / "P1.parquet"
    with warnings.catch_warnings():  # cp_measure warns of undefined Costes, empty bins, ...
        warnings.simplefilter("ignore", RuntimeWarning)
        counts = measure_plate(plate, labels, channels, features, path)
    table = pd.read_parquet(path)
    assert len(table) == counts["cells"] > 0
    assert "Cells_Granularity_1_DNA" in table and "Metadata_CellId" in table
    assert_pycytominer_sees_every_feature(table)
    every = select_columns(table.columns)
    features_only = [c for c in table.columns if not c.startswith(("Metadata_", "Image_"))]
    assert set(features_only) <= set(every)
    assert "Cells_Correlation_Correlation_DNA_tubulin" in select_columns(
        table.columns, regions=["Cells"]
    )
    assert not any(
        c.startswith("Nuclei_") for c in select_columns(table.columns, regions=["Cells"])
    )


def test_missing_cp_measure_is_a_config_error_naming_the_extra(monkeypatch):
    import sys

    from pydantic import ValidationError

    monkeypatch.setitem(sys.modules, "cp_measure", None)  # as if not installed
    with pytest.raises(ValidationError, match=r"pip install cellbench\[cellprofiler\]"):
        FeaturesConfig(backend="cellprofiler")
    assert FeaturesConfig().backend == "cellbench"


def test_the_demo_runs_end_to_end_on_the_cellprofiler_backend(tmp_path):
    """The demo's config, one plate of one site a well, with CellProfiler's feature set."""
    from tests.test_models_end_to_end import load_yaml_config, metrics, run_all

    raw = load_yaml_config("demo.yaml", tmp_path / "results", seeds=[0])
    raw["data"]["input"].update(plates=1, sites=1)
    raw["features"]["backend"] = "cellprofiler"
    raw["models"] = [m for m in raw["models"] if m["name"] in ("rf", "logreg_fusion")]
    raw["report"]["kl_pairs"] = []
    with warnings.catch_warnings():  # cp_measure warns of undefined Costes, empty bins, ...
        warnings.simplefilter("ignore", RuntimeWarning)
        config, paths = run_all(raw)
    table = pd.read_parquet(paths.feature_table("P1"))
    assert "Cells_Correlation_Costes_DNA_tubulin" in table
    assert "Nuclei_Granularity_1_actin" in table
    assert_pycytominer_sees_every_feature(table)
    for model in ("rf", "logreg_fusion"):
        result = metrics(paths, model)
        assert result["accuracy"] > result["majority_rate"], (model, result)
    assert pd.read_parquet(paths.profile_table("P1"))["Metadata_Well"].is_unique
