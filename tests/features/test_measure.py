import numpy as np
import pandas as pd
import pytest
from skimage import measure

from cellbench.data.plates import read_field
from cellbench.features.measure import measure_field
from cellbench.features.plate import measure_plate
from cellbench.paths import ResultsPaths
from cellbench.segment.store import read_labels

CHANNELS = ["DNA", "tubulin", "actin"]
REGIONS = ["Nucleus", "Cytoplasm", "Cell"]


@pytest.fixture(scope="module")
def field(segmented_plate):
    config, plate = segmented_plate
    first = plate.fields[0]
    image = read_field(plate, first, CHANNELS)
    cells, nuclei = read_labels(ResultsPaths(config.results_root).label_store("P1"), first.name)
    return image, cells, nuclei


def test_features_match_direct_scikit_image_calls(field):
    image, cells, nuclei = field
    table = measure_field(image, cells, nuclei, CHANNELS, REGIONS).set_index("label")
    for label in table.index[:3]:
        cell = cells == label
        nucleus = nuclei == label
        cytoplasm = cell & ~nucleus
        for region, mask in [("Nucleus", nucleus), ("Cytoplasm", cytoplasm), ("Cell", cell)]:
            props = measure.regionprops(mask.astype(np.uint8))[0]
            row = table.loc[label]
            assert row[f"{region}_AreaShape_Area"] == mask.sum()
            assert row[f"{region}_AreaShape_Eccentricity"] == pytest.approx(props.eccentricity)
            assert row[f"{region}_AreaShape_Solidity"] == pytest.approx(props.solidity)
            for c, channel in enumerate(CHANNELS):
                pixels = image[c][mask].astype(float)
                assert row[f"{region}_Intensity_MeanIntensity_{channel}"] == pytest.approx(
                    pixels.mean(), rel=1e-5
                )
                assert row[f"{region}_Intensity_MaxIntensity_{channel}"] == pixels.max()
                assert row[f"{region}_Intensity_IntegratedIntensity_{channel}"] == pytest.approx(
                    pixels.sum(), rel=1e-5
                )
                assert row[f"{region}_Intensity_MedianIntensity_{channel}"] == pytest.approx(
                    np.median(pixels)
                )


def test_cell_that_is_all_nucleus_has_nan_cytoplasm():
    cells = np.zeros((20, 20), np.int32)
    cells[5:10, 5:10] = 1
    cells[12:18, 12:18] = 2
    nuclei = np.where(cells == 1, 1, 0).astype(np.int32)  # cell 1 is all nucleus, cell 2 has none
    nuclei[14:16, 14:16] = 2
    image = np.ones((1, 20, 20), np.uint16) * 7
    table = measure_field(image, cells, nuclei, ["DNA"], REGIONS).set_index("label")
    assert np.isnan(table.loc[1, "Cytoplasm_Intensity_MeanIntensity_DNA"])
    assert table.loc[2, "Cytoplasm_AreaShape_Area"] == 36 - 4
    assert table.loc[1, "Nucleus_Intensity_MeanIntensity_DNA"] == 7


def test_plate_table_has_metadata_and_one_row_per_cell(segmented_plate, tmp_path):
    config, plate = segmented_plate
    labels = ResultsPaths(config.results_root).label_store("P1")
    path = tmp_path / "P1.parquet"
    counts = measure_plate(plate, labels, CHANNELS, REGIONS, path)
    table = pd.read_parquet(path)
    assert len(table) == counts["cells"]
    n_cells = sum(len(np.unique(read_labels(labels, f.name)[0])) - 1 for f in plate.fields)
    assert len(table) == n_cells
    for column in [
        "Metadata_CellId",
        "Metadata_Plate",
        "Metadata_Well",
        "Metadata_Site",
        "Metadata_Field",
        "Metadata_Label",
        "Metadata_Condition",
    ]:
        assert column in table.columns
    assert table["Metadata_CellId"].is_unique
    assert "Nucleus_Intensity_MeanIntensity_DNA" in table.columns
    assert "Cell_AreaShape_Solidity" in table.columns
