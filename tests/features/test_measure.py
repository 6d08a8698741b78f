import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from skimage import measure

from cellbench.config import FeaturesConfig, TextureConfig
from cellbench.data.plates import read_field
from cellbench.features.measure import (
    INTENSITY_FEATURES,
    SHAPE_FEATURES,
    TEXTURE_FEATURES,
    measure_field,
    region_labels,
)
from cellbench.features.plate import _as_arrow, _layout_types, measure_plate
from cellbench.features.select import select_columns
from cellbench.paths import ResultsPaths
from cellbench.segment.store import read_labels

CHANNELS = ["DNA", "tubulin", "actin"]
REGIONS = ["Nuclei", "Cytoplasm", "Cells"]
TEXTURE = TextureConfig(distances_px=[1], angles_deg=[0], levels=32)
FEATURES = FeaturesConfig(regions=REGIONS, texture=TEXTURE)
CELL_ONLY = FeaturesConfig(regions=["Cells"], texture=None)


@pytest.fixture(scope="module")
def field(segmented_plate):
    config, plate = segmented_plate
    first = plate.fields[0]
    image = read_field(plate, first, CHANNELS)
    cells, nuclei = read_labels(ResultsPaths(config.results_root).label_store("P1"), first.name)
    return image, cells, nuclei


@pytest.fixture(scope="module")
def table(field):
    image, cells, nuclei = field
    return measure_field(image, cells, nuclei, CHANNELS, FEATURES).set_index("label")


def test_features_match_direct_scikit_image_calls(field, table):
    image, cells, nuclei = field
    for label in table.index[:4]:
        cell = cells == label
        nucleus = nuclei == label
        cytoplasm = cell & ~nucleus
        row = table.loc[label]
        for region, mask in [("Nuclei", nucleus), ("Cytoplasm", cytoplasm), ("Cells", cell)]:
            props = measure.regionprops(mask.astype(np.uint8))[0]
            assert row[f"{region}_AreaShape_Area"] == mask.sum()
            for prop, name in SHAPE_FEATURES.items():
                assert row[f"{region}_AreaShape_{name}"] == pytest.approx(
                    getattr(props, prop), rel=1e-9, abs=1e-9
                ), (label, region, name)
            for c, channel in enumerate(CHANNELS):
                pixels = image[c][mask].astype(float)
                expected = {
                    "MeanIntensity": pixels.mean(),
                    "StdIntensity": pixels.std(),  # ddof=0
                    "MinIntensity": pixels.min(),
                    "MaxIntensity": pixels.max(),
                    "MedianIntensity": np.median(pixels),
                    "LowerQuartileIntensity": np.percentile(pixels, 25),
                    "UpperQuartileIntensity": np.percentile(pixels, 75),
                    "IntegratedIntensity": pixels.sum(),
                }
                for name, value in expected.items():
                    assert row[f"{region}_Intensity_{name}_{channel}"] == pytest.approx(
                        value, rel=1e-12
                    ), (label, region, channel, name)


def test_shape_of_every_cell_equals_regionprops_table(field, table):
    image, cells, nuclei = field
    for region, labels in region_labels(cells, nuclei).items():
        labels = np.where(np.isin(labels, table.index), labels, 0)
        expected = measure.regionprops_table(labels, properties=["label", *SHAPE_FEATURES])
        for prop, name in SHAPE_FEATURES.items():
            got = table.loc[expected["label"], f"{region}_AreaShape_{name}"].to_numpy()
            np.testing.assert_allclose(got, expected[prop], rtol=1e-9, atol=1e-9)


def tricky_shapes():
    """Holes, a hole holding another object, fragments, lines, single pixels, touching objects."""
    labels = np.zeros((40, 48), np.int32)
    labels[2:12, 2:12] = 1
    labels[5:8, 5:8] = 0  # a hole of background
    labels[2:14, 16:28] = 2
    labels[5:10, 19:24] = 3  # an object inside object 2 ...
    labels[6:8, 21] = 0  # ... with a hole itself
    labels[16:18, 2:6] = 4
    labels[20:23, 2:6] = 4  # two fragments
    labels[20:22, 3:5] = 0  # one with a hole
    labels[22, 3] = 4
    labels[26, 2:30] = 5  # a one-pixel line
    labels[30, 30] = 6  # a single pixel
    labels[28:38, 32:40] = 7
    labels[30:36, 40:46] = 8  # touching 7
    labels[33, 34] = 0  # a hole touching a diagonal only
    labels[34, 35] = 0
    labels[0:3, 40:48] = 9  # on the field edge, with a notch open to the edge
    labels[0, 43] = 0
    rr, cc = np.mgrid[:40, :48]
    labels[((rr - 20) ** 2 + (cc - 38) ** 2 < 25) & (labels == 0)] = 10  # a disc
    return labels


def test_shape_of_tricky_objects_equals_regionprops_table():
    labels = tricky_shapes()
    image = np.ones((1, *labels.shape), np.uint16)
    table = measure_field(image, labels, labels, ["DNA"], CELL_ONLY).set_index("label")
    expected = measure.regionprops_table(labels, properties=["label", *SHAPE_FEATURES])
    for prop, name in SHAPE_FEATURES.items():
        got = table.loc[expected["label"], f"Cells_AreaShape_{name}"].to_numpy()
        np.testing.assert_allclose(got, expected[prop], rtol=1e-9, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("dtype", [np.uint16, np.int64, np.uint64])
def test_label_dtypes_and_label_numbers_do_not_matter(dtype):
    labels = tricky_shapes()
    image = np.random.default_rng(1).integers(0, 4000, (2, *labels.shape)).astype(np.uint16)
    reference = measure_field(image, labels, labels, ["a", "b"], FEATURES)
    sparse = np.where(labels > 0, labels * 1000 + 7, 0).astype(dtype)  # not 1..N
    table = measure_field(image, sparse, sparse, ["a", "b"], FEATURES)
    assert (table["label"] == reference["label"] * 1000 + 7).all()
    pd.testing.assert_frame_equal(table.drop(columns="label"), reference.drop(columns="label"))


def test_intensity_of_float_and_signed_images_matches_numpy():
    labels = tricky_shapes()
    rng = np.random.default_rng(0)
    for image in (
        rng.normal(0, 3, (1, *labels.shape)).astype(np.float32),
        rng.integers(-500, 500, (1, *labels.shape)).astype(np.int16),
        rng.integers(0, 2**20, (1, *labels.shape)).astype(np.uint32),
    ):
        table = measure_field(image, labels, labels, ["x"], CELL_ONLY).set_index("label")
        for label in table.index:
            pixels = image[0][labels == label].astype(np.float64)
            row = table.loc[label]
            assert row["Cells_Intensity_MinIntensity_x"] == pixels.min()
            assert row["Cells_Intensity_UpperQuartileIntensity_x"] == pytest.approx(
                np.percentile(pixels, 75), rel=1e-12
            )
            assert row["Cells_Intensity_StdIntensity_x"] == pytest.approx(
                pixels.std(), rel=1e-9, abs=1e-12
            )


def test_empty_and_single_cell_fields():
    image = np.ones((2, 16, 16), np.uint16)
    empty = np.zeros((16, 16), np.int32)
    table = measure_field(image, empty, empty, ["DNA", "actin"], FEATURES)
    assert len(table) == 0
    assert table.shape[1] == 2 + 3 * (len(SHAPE_FEATURES) + 2 * (8 + 6))
    one = empty.copy()
    one[3:9, 4:12] = 5
    table = measure_field(image, one, one, ["DNA", "actin"], FEATURES)
    assert list(table["label"]) == [5]
    assert table["Image_Count_Cells"].tolist() == [1]
    assert table.loc[0, "Cells_AreaShape_Area"] == 48
    assert np.isnan(table.loc[0, "Cytoplasm_AreaShape_Area"])


def test_cell_that_is_all_nucleus_has_nan_cytoplasm():
    cells = np.zeros((20, 20), np.int32)
    cells[5:10, 5:10] = 1
    cells[12:18, 12:18] = 2
    nuclei = np.where(cells == 1, 1, 0).astype(np.int32)  # cell 1 is all nucleus, cell 2 has none
    nuclei[14:16, 14:16] = 2
    image = np.ones((1, 20, 20), np.uint16) * 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = measure_field(image, cells, nuclei, ["DNA"], FEATURES)
    table = table.set_index("label")
    cytoplasm = [c for c in table.columns if c.startswith("Cytoplasm_")]
    assert len(cytoplasm) == len(SHAPE_FEATURES) + len(INTENSITY_FEATURES) + 6
    assert table.loc[1, cytoplasm].isna().all()
    assert table.loc[2, cytoplasm].notna().sum() == len(cytoplasm) - 1  # constant: correlation
    assert table.loc[2, "Cytoplasm_AreaShape_Area"] == 36 - 4
    assert table.loc[2, "Cytoplasm_AreaShape_FilledArea"] == 36
    assert table.loc[1, "Nuclei_Intensity_MeanIntensity_DNA"] == 7
    assert np.isnan(table.loc[1, "Nuclei_Texture_Correlation_DNA_1_00"])
    assert table.loc[1, "Nuclei_Texture_Energy_DNA_1_00"] == 1


def test_columns_are_named_and_counted(field, table):
    image, cells, _ = field
    per_region = len(SHAPE_FEATURES) + len(CHANNELS) * (
        len(INTENSITY_FEATURES) + len(TEXTURE_FEATURES)
    )
    assert table.shape[1] == 1 + len(REGIONS) * per_region  # + Image_Count_Cells
    assert list(table.index) == sorted(np.unique(cells[cells > 0]))
    assert (table["Image_Count_Cells"] == len(table)).all()
    for column in [
        "Nuclei_Intensity_MeanIntensity_DNA",
        "Cytoplasm_Intensity_LowerQuartileIntensity_actin",
        "Cells_AreaShape_MaximumFeretDiameter",
        "Cells_AreaShape_PerimeterCrofton",
        "Nuclei_Texture_Contrast_DNA_1_00",
        "Cells_Texture_ASM_tubulin_1_00",
    ]:
        assert column in table.columns
    assert table.drop(columns=[c for c in table.columns if "Cytoplasm" in c]).notna().all().all()
    several = TextureConfig(distances_px=[1, 3], angles_deg=[0, 45, 90], levels=8)
    wider = measure_field(
        image[:1], cells, cells, ["DNA"], FeaturesConfig(regions=["Cells"], texture=several)
    )
    names = [c for c in wider.columns if c.startswith("Cells_Texture_Contrast_")]
    assert names == [
        f"Cells_Texture_Contrast_DNA_{d}_{a}" for d in (1, 3) for a in ("00", "45", "90")
    ]


def test_select_columns(table):
    columns = ["Metadata_Well", "label", *table.columns]
    shape = select_columns(columns, groups=["shape"], regions=["Nuclei"])
    assert shape == [f"Nuclei_AreaShape_{name}" for name in SHAPE_FEATURES.values()]
    dna = select_columns(columns, groups=["intensity", "texture"], channels=["DNA"])
    assert len(dna) == len(REGIONS) * (len(INTENSITY_FEATURES) + len(TEXTURE_FEATURES))
    assert all("_DNA" in c for c in dna)
    assert select_columns(columns, groups=["count"]) == ["Image_Count_Cells"]
    everything = select_columns(columns)
    assert everything == list(table.columns)
    no_marker = select_columns(columns, channels=["DNA", "tubulin"])
    assert not any(c.endswith("_actin") or "_actin_" in c for c in no_marker)
    assert "Cells_AreaShape_Area" in no_marker
    with pytest.raises(ValueError, match="valid"):
        select_columns(columns, groups=["colour"])
    with pytest.raises(ValueError, match="valid"):
        select_columns(columns, regions=["Membrane"])


def test_plate_table_has_metadata_and_one_row_per_cell(segmented_plate, tmp_path):
    config, plate = segmented_plate
    labels = ResultsPaths(config.results_root).label_store("P1")
    path = tmp_path / "P1.parquet"
    counts = measure_plate(plate, labels, CHANNELS, FEATURES, path)
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
    assert "Nuclei_Intensity_MeanIntensity_DNA" in table.columns
    assert "Cells_AreaShape_Solidity" in table.columns
    assert "Cells_Texture_Contrast_DNA_1_00" in table.columns


def test_plate_table_is_written_field_by_field(segmented_plate, tmp_path):
    """One row group per field with cells: the plate's rows are never all held at once."""
    config, plate = segmented_plate
    labels = ResultsPaths(config.results_root).label_store("P1")
    path = tmp_path / "P1.parquet"
    measure_plate(plate, labels, CHANNELS, CELL_ONLY, path)
    with_cells = [f for f in plate.fields if read_labels(labels, f.name)[0].max() > 0]
    parquet = pq.ParquetFile(path)
    assert parquet.num_row_groups == len(with_cells)
    table = pd.read_parquet(path)
    firsts = table.groupby("Metadata_Field", sort=False).size()
    assert list(firsts.index) == [f.name for f in with_cells]


def test_layout_types_come_from_every_well():
    """A layout value missing in one well keeps its column's type (integers stay integers)."""
    layout = {"A01": {"dose": 3, "drug": "taxol"}, "A02": {"drug": None}}
    plate = SimpleNamespace(
        fields=[SimpleNamespace(well="A01"), SimpleNamespace(well="A02")],
        layout=SimpleNamespace(columns=["drug"]),
        well_metadata=lambda well: layout[well],
    )
    types = _layout_types(plate)
    assert types == {"Metadata_Drug": pa.string(), "Metadata_Dose": pa.int64()}
    missing = pd.DataFrame({"Metadata_Dose": [None, None], "Metadata_Drug": [None, None]})
    rows = _as_arrow(missing, types)
    assert rows.schema.field("Metadata_Dose").type == pa.int64()
    assert rows.schema.field("Metadata_Drug").type == pa.string()
