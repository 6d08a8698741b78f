"""Features of pre-cut crops: centre segmentation, mosaic measurement and the crop store."""

import time

import numpy as np
import pandas as pd
import pytest
from skimage import measure
from skimage.filters import threshold_otsu
from skimage.segmentation import find_boundaries

from cellbench.config import FeaturesConfig, TextureConfig, default_data_root
from cellbench.crops.extract import MASK_CELL, MASK_NUCLEUS, CropSpec
from cellbench.crops.store import write_crop_store
from cellbench.errors import CellbenchError
from cellbench.features.crops import FOUND_COLUMN, measure_crops, measure_store_crops
from cellbench.features.measure import COUNT_COLUMN, measure_field
from cellbench.segment.crop_centre import otsu_thresholds, segment_crop_centres

CHANNELS = ["DNA", "tubulin", "actin"]
REGIONS = ["Nuclei", "Cytoplasm", "Cells"]
TEXTURE = TextureConfig(distances_px=[1, 2], angles_deg=[0, 45, 90], levels=16)
FEATURES = FeaturesConfig(regions=REGIONS, texture=TEXTURE)
NO_TEXTURE = FeaturesConfig(regions=REGIONS, texture=None)
SIZE = 68
BBBC021_CROPS = default_data_root() / "bbbc021" / "crops"


def disk(radius, centre=((SIZE - 1) / 2, (SIZE - 1) / 2), size=SIZE):
    rows, cols = np.ogrid[:size, :size]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def hand_made_crop():
    """A nucleus disk (r 9) inside a cell disk (r 22), flat intensities per compartment."""
    nucleus, cell = disk(9), disk(22)
    crop = np.empty((3, SIZE, SIZE), np.uint16)
    crop[0] = np.where(nucleus, 3000, np.where(cell, 300, 100))
    crop[1] = np.where(cell, 2000, 200)
    crop[2] = np.where(cell & ~nucleus, 1500, np.where(nucleus, 900, 150))
    return crop, cell, nucleus


def synthetic_crops(n, seed=0):
    """Seeded noisy crops: an off-centre nucleus in a cell, a neighbour, varied sizes."""
    rng = np.random.default_rng(seed)
    crops = np.empty((n, 3, SIZE, SIZE), np.uint16)
    for k in range(n):
        centre = (SIZE / 2 + rng.uniform(-4, 4), SIZE / 2 + rng.uniform(-4, 4))
        nucleus = disk(rng.uniform(6, 12), centre)
        cell = disk(rng.uniform(16, 26), centre)
        neighbour = disk(8, (rng.uniform(0, 8), rng.uniform(0, SIZE)))
        base = rng.normal(200, 20, (3, SIZE, SIZE))
        base[0] += 2500 * (nucleus | neighbour)
        base[1] += 1800 * cell
        base[2] += 1200 * (cell & ~nucleus) + rng.normal(0, 200, (SIZE, SIZE)) * cell
        crops[k] = base.clip(0, 65535).astype(np.uint16)
    return crops


def measure_all(crops, **kwargs):
    return measure_crops(crops, CHANNELS, FEATURES, "DNA", ["tubulin", "actin"], **kwargs)


# --- segmentation ------------------------------------------------------------------------------


def test_hand_made_crop_is_segmented_as_drawn():
    crop, cell, nucleus = hand_made_crop()
    cells, nuclei = segment_crop_centres(crop[None], 0, [1, 2])
    assert cells.dtype == np.int32 and cells.shape == (1, SIZE, SIZE)
    assert set(np.unique(cells)) == {0, 1} and set(np.unique(nuclei)) == {0, 1}
    np.testing.assert_array_equal(nuclei[0] > 0, nucleus)
    misplaced = (cells[0] > 0) ^ cell  # smoothing may move the outline by a pixel, no more
    assert misplaced.sum() < 0.02 * cell.sum()
    assert not (misplaced & ~find_boundaries(cell, mode="thick")).any()


def test_nucleus_off_centre_is_the_nearest_and_specks_are_ignored():
    crop = np.full((1, 1, SIZE, SIZE), 100, np.uint16)
    near = disk(6, (34, 50))
    far = disk(10, (8, 8))
    crop[0, 0][near | far] = 2000
    crop[0, 0, 33:35, 33:35] = 2000  # a 4-pixel speck on the centre itself
    cells, nuclei = segment_crop_centres(crop, 0, [], min_nucleus_area_px=16)
    np.testing.assert_array_equal(nuclei[0] > 0, near)
    np.testing.assert_array_equal(cells, nuclei)  # no cell channel: the cell is the nucleus


def test_otsu_thresholds_equal_scikit_image():
    rng = np.random.default_rng(4)
    planes = np.concatenate(
        [
            rng.gamma(2.0, 300.0, (6, 40, 40)),
            np.round(rng.normal(1000, 50, (3, 40, 40))),  # ties on bin edges
            np.full((1, 40, 40), 7.0),  # constant
        ]
    )
    expected = [threshold_otsu(plane) for plane in planes]
    np.testing.assert_allclose(otsu_thresholds(planes), expected, rtol=1e-12)


def test_bad_channel_indices_are_named():
    with pytest.raises(ValueError, match="channel index 3"):
        segment_crop_centres(np.zeros((2, 3, 8, 8), np.uint16), 0, [1, 3])
    with pytest.raises(ValueError, match=r"\['GFP'\] are not among"):
        measure_crops(np.zeros((1, 3, 8, 8)), CHANNELS, NO_TEXTURE, "DNA", ["GFP"])


# --- measurement -------------------------------------------------------------------------------


def test_features_of_hand_made_crop_equal_regionprops():
    crop, _, _ = hand_made_crop()
    cells, nuclei = segment_crop_centres(crop[None], 0, [1, 2])
    row = measure_all(crop[None]).iloc[0]
    assert row[FOUND_COLUMN] == 1.0
    cell, nucleus = cells[0] > 0, nuclei[0] > 0
    for region, mask in [("Nuclei", nucleus), ("Cytoplasm", cell & ~nucleus), ("Cells", cell)]:
        props = measure.regionprops(mask.astype(np.uint8), np.moveaxis(crop, 0, -1))[0]
        assert row[f"{region}_AreaShape_Area"] == props.area
        assert row[f"{region}_AreaShape_Eccentricity"] == pytest.approx(props.eccentricity)
        assert row[f"{region}_AreaShape_Perimeter"] == pytest.approx(props.perimeter)
        for c, channel in enumerate(CHANNELS):
            mean = row[f"{region}_Intensity_MeanIntensity_{channel}"]
            assert mean == pytest.approx(props.intensity_mean[c], rel=1e-12)
    assert row["Nuclei_Intensity_MeanIntensity_DNA"] == 3000
    assert row["Nuclei_Intensity_MinIntensity_DNA"] == 3000


def test_given_masks_equal_measure_field_on_the_crop_as_a_field():
    crops = synthetic_crops(3, seed=1)
    rng = np.random.default_rng(2)
    cells = np.stack([disk(r) for r in rng.uniform(15, 25, 3)]).astype(np.int32)
    nuclei = np.stack([disk(r) for r in rng.uniform(5, 10, 3)]).astype(np.int32)
    table = measure_all(crops, cells=cells, nuclei=nuclei)
    for k in range(3):
        field = measure_field(crops[k], cells[k], nuclei[k], CHANNELS, FEATURES)
        expected = field.drop(columns=["label", COUNT_COLUMN]).astype(np.float64)
        got = table.iloc[[k]].drop(columns=FOUND_COLUMN).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_tiling_is_invisible():
    crops = synthetic_crops(11, seed=5)
    crops[4] = 0  # a blank crop among the others
    batched = measure_all(crops)
    one_by_one = pd.concat([measure_all(crops[[k]]) for k in range(len(crops))], ignore_index=True)
    pd.testing.assert_frame_equal(batched, one_by_one, check_exact=False, rtol=1e-12, atol=1e-12)
    chunked = measure_all(crops, chunk_crops=3)
    pd.testing.assert_frame_equal(batched, chunked, check_exact=False, rtol=1e-12, atol=1e-12)
    assert batched[FOUND_COLUMN].tolist() == [1.0] * 4 + [0.0] + [1.0] * 6


def test_blank_crops_give_nan_features_and_no_nucleus():
    blank = np.zeros((2, 3, SIZE, SIZE), np.uint16)
    blank[1] = 500  # constant, not zero
    table = measure_all(blank)
    reference = measure_all(synthetic_crops(1))
    assert list(table.columns) == list(reference.columns)
    assert table[FOUND_COLUMN].tolist() == [0.0, 0.0]
    assert table.drop(columns=FOUND_COLUMN).isna().all().all()
    assert (table.dtypes == np.float64).all()
    assert measure_all(blank[:0]).shape == (0, reference.shape[1])


# --- crop store --------------------------------------------------------------------------------


def write_store(path, crops, masks):
    n = len(crops)
    cells = pd.DataFrame(
        {
            "cell_id": [f"c{k:03d}" for k in range(n)],
            "plate": "P7",
            "well": ["B02", "B03"] * (n // 2) + ["B02"] * (n % 2),
            "site": 1,
            "compound": "taxol",
            "concentration": 0.3,
            "moa": ["Actin disruptors", "Microtubule stabilizers"] * (n // 2) + ["DMSO"] * (n % 2),
        }
    )
    write_crop_store(
        path,
        plate="P7",
        channel_names=["actin", "DNA", "tubulin"],  # stored in another order than measured
        specs=[CropSpec("precut", SIZE, masked=False, centred_on="cell")],
        batches=[(cells, {"precut": (crops[:, [2, 0, 1]], masks)})],
        config_hash="abc",
        compression="lzf",
    )
    return cells


def test_store_crops_are_measured_with_metadata(tmp_path):
    crops = synthetic_crops(5, seed=8)
    crops[2] = 0
    masks = np.zeros((5, SIZE, SIZE), np.uint8)
    masks[3] = disk(20) * MASK_CELL + disk(6) * MASK_NUCLEUS  # a stored mask wins
    store, out = tmp_path / "P7.h5", tmp_path / "features" / "P7.parquet"
    cells = write_store(store, crops, masks)
    details = measure_store_crops(
        store,
        "precut",
        CHANNELS,
        FEATURES,
        "DNA",
        ["tubulin", "actin"],
        "moa",
        out,
        chunk_crops=2,
    )
    assert details == {"cells": 5, "nucleus_found": 4}
    table = pd.read_parquet(out)
    metadata = ["CellId", "Plate", "Well", "Site", "Compound", "Concentration", "Moa"]
    assert list(table.columns[:8]) == [f"Metadata_{m}" for m in metadata] + [FOUND_COLUMN]
    assert table["Metadata_CellId"].tolist() == cells["cell_id"].tolist()
    assert table["Metadata_Moa"].tolist() == cells["moa"].tolist()
    expected = measure_all(crops)
    given = measure_all(crops[[3]], cells=disk(20)[None], nuclei=disk(6)[None])
    expected.iloc[3] = given.iloc[0]
    assert table["Nuclei_AreaShape_Area"].iloc[3] == disk(6).sum()
    pd.testing.assert_frame_equal(
        table.iloc[:, 7:], expected, check_exact=False, rtol=1e-12, atol=1e-12
    )
    assert not list(out.parent.glob(".*tmp-*"))


def test_store_errors_name_the_problem(tmp_path):
    store = tmp_path / "P7.h5"
    write_store(store, synthetic_crops(2), np.zeros((2, SIZE, SIZE), np.uint8))
    args = (NO_TEXTURE, "DNA", ["tubulin"])
    with pytest.raises(CellbenchError, match="no crop kind 'nuclear'"):
        measure_store_crops(store, "nuclear", CHANNELS, *args, "moa", tmp_path / "o.parquet")
    with pytest.raises(CellbenchError, match=r"channels \['GFP'\] not stored"):
        measure_store_crops(store, "precut", ["DNA", "GFP"], *args, "moa", tmp_path / "o.parquet")
    with pytest.raises(CellbenchError, match="label column 'target'"):
        measure_store_crops(store, "precut", CHANNELS, *args, "target", tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


# --- real crops --------------------------------------------------------------------------------


@pytest.mark.skipif(not BBBC021_CROPS.is_dir(), reason=f"no BBBC021 crops at {BBBC021_CROPS}")
def test_real_bbbc021_crops():
    files = sorted(BBBC021_CROPS.glob("*.npy"))
    chosen = [files[i] for i in np.linspace(0, len(files) - 1, min(200, len(files))).astype(int)]
    crops = np.stack([np.load(f).transpose(2, 0, 1) for f in chosen])
    started = time.perf_counter()
    cells, nuclei = segment_crop_centres(crops, 0, [1, 2])
    segment_s = time.perf_counter() - started
    started = time.perf_counter()
    table = measure_all(crops)
    measure_s = time.perf_counter() - started
    found = table[FOUND_COLUMN].to_numpy() == 1
    nucleus_area = table["Nuclei_AreaShape_Area"].to_numpy()
    cell_area = table["Cells_AreaShape_Area"].to_numpy()
    print(
        f"\n{len(crops)} BBBC021 crops: nucleus found in {found.mean():.1%}; "
        f"segmentation {1000 * segment_s / len(crops):.2f} ms per crop, segmentation + "
        f"features with texture {1000 * measure_s / len(crops):.2f} ms per crop; "
        f"median area nucleus {np.nanmedian(nucleus_area):.0f} px, cell "
        f"{np.nanmedian(cell_area):.0f} px"
    )
    assert found.mean() >= 0.95
    assert (nucleus_area[found] < cell_area[found]).mean() >= 0.8
    assert 100 <= np.median(nucleus_area[found]) <= 2500
    np.testing.assert_array_equal(nucleus_area[found], (nuclei[found] > 0).sum(axis=(1, 2)))
    np.testing.assert_array_equal(cell_area[found], (cells[found] > 0).sum(axis=(1, 2)))
