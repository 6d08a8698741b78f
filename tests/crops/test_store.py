import h5py
import numpy as np
import pytest

from cellbench.crops.extract import MASK_CELL, MASK_NUCLEUS, MASK_OTHER_CELL, crop_spec
from cellbench.crops.plate import crop_plate
from cellbench.crops.store import SCHEMA, read_cells, read_crops
from cellbench.data.plates import read_field
from cellbench.paths import ResultsPaths
from cellbench.segment.store import read_labels

KINDS = ["whole_cell", "nuclear", "nucleocentric"]


@pytest.fixture(scope="module")
def crop_store(segmented_plate):
    config, plate = segmented_plate
    paths = ResultsPaths(config.results_root)
    specs = [crop_spec("whole_cell", 48), crop_spec("nuclear", 24), crop_spec("nucleocentric", 24)]
    path = paths.root / "store_test.h5"
    crop_plate(
        plate,
        paths.label_store("P1"),
        config.data.channels,
        specs,
        path,
        config_hash="abc",
        compression="lzf",
    )
    return config, plate, paths, specs, path


def expected_window(array, centre_y, centre_x, size):
    """The size x size window of a (..., Y, X) array around a centre, zero outside."""
    top, left = int(round(centre_y)) - size // 2, int(round(centre_x)) - size // 2
    out = np.zeros((*array.shape[:-2], size, size), array.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, array.shape[-2]), min(left + size, array.shape[-1])
    out[..., y0 - top : y1 - top, x0 - left : x1 - left] = array[..., y0:y1, x0:x1]
    return out


def test_store_attributes_and_table(crop_store):
    config, plate, _, specs, path = crop_store
    cells = read_cells(path)
    with h5py.File(path, "r") as store:
        assert store.attrs["schema"] == SCHEMA
        assert list(store.attrs["channel_names"]) == config.data.channels
        for spec in specs:
            group = store[spec.kind]
            assert group["images"].dtype == np.uint16
            assert group["images"].shape == (len(cells), 3, spec.size_px, spec.size_px)
            assert group["images"].chunks == (1, 3, spec.size_px, spec.size_px)
            assert group["images"].compression == "lzf"
            assert group.attrs["masked"] == spec.masked
            assert group.attrs["border"] == "pad"
    assert len(cells) > 50
    assert cells["cell_id"].is_unique
    assert {"plate", "well", "site", "field", "label", "condition", "centroid_y"} <= set(
        cells.columns
    )
    assert set(cells["condition"]) == {"control", "enlarged_nuclei", "textured"}


@pytest.mark.parametrize("kind", KINDS)
def test_every_crop_equals_its_field_window(crop_store, kind):
    config, plate, paths, specs, path = crop_store
    spec = next(s for s in specs if s.kind == kind)
    cells = read_cells(path)
    crops, masks = read_crops(path, kind)
    checked = 0
    for field_name, rows in cells.groupby("field"):
        field = next(f for f in plate.fields if f.name == field_name)
        image = read_field(plate, field, config.data.channels)
        cell_labels, nucleus_labels = read_labels(paths.label_store("P1"), field_name)
        for i, row in rows.iterrows():
            cy, cx = (
                (row.centroid_y, row.centroid_x)
                if spec.centred_on == "cell"
                else (row.nucleus_y, row.nucleus_x)
            )
            window = expected_window(image, cy, cx, spec.size_px)
            is_cell = expected_window(cell_labels, cy, cx, spec.size_px) == row.label
            is_nucleus = expected_window(nucleus_labels, cy, cx, spec.size_px) == row.label
            if spec.masked:
                window = window * (is_cell if kind == "whole_cell" else is_nucleus)
            np.testing.assert_array_equal(crops[i], window)
            np.testing.assert_array_equal(masks[i] & MASK_CELL > 0, is_cell)
            np.testing.assert_array_equal(masks[i] & MASK_NUCLEUS > 0, is_nucleus)
            other = expected_window(cell_labels, cy, cx, spec.size_px)
            np.testing.assert_array_equal(masks[i] & MASK_OTHER_CELL > 0, (other > 0) & ~is_cell)
            checked += 1
    assert checked == len(cells)


def test_masked_whole_cell_crop_is_zero_outside_its_cell(crop_store):
    _, _, _, _, path = crop_store
    crops, masks = read_crops(path, "whole_cell")
    outside = (masks & MASK_CELL) == 0
    assert np.all(crops.transpose(1, 0, 2, 3)[:, outside] == 0)
    assert np.all(crops.sum(axis=(1, 2, 3)) > 0)


def test_plate_statistics_are_recorded(crop_store):
    _, _, _, _, path = crop_store
    crops, masks = read_crops(path, "whole_cell")
    with h5py.File(path, "r") as store:
        attrs = store["whole_cell"].attrs
        assert list(attrs["stats_percentiles"]) == [1.0, 99.0]
        low, high, mean = attrs["stats_low"], attrs["stats_high"], attrs["stats_mean"]
    inside = np.moveaxis(crops, 1, -1)[(masks & MASK_CELL) > 0].astype(float)
    assert low.shape == (3,) and np.all(low < high)
    np.testing.assert_allclose(mean, inside.mean(axis=0), rtol=0.05)
    np.testing.assert_allclose(high, np.percentile(inside, 99, axis=0), rtol=0.1)


def test_read_rows_in_any_order(crop_store):
    _, _, _, _, path = crop_store
    everything, _ = read_crops(path, "nuclear")
    rows = np.array([5, 1, 3])
    some, _ = read_crops(path, "nuclear", rows)
    np.testing.assert_array_equal(some, everything[rows])


def test_border_policies_shift_and_drop():
    from cellbench.crops.extract import crop_cells, fits_in_field, measure_cells

    image = np.arange(3 * 50 * 60, dtype=np.uint16).reshape(3, 50, 60)
    cells = np.zeros((50, 60), np.int32)
    cells[1:6, 2:7] = 1  # near the top-left corner
    cells[20:26, 30:36] = 2  # well inside
    table = measure_cells(cells, cells)
    shifted = crop_spec("nucleocentric", 20, border="shift")
    crops, _ = crop_cells(image, cells, cells, table, shifted)
    np.testing.assert_array_equal(crops[0], image[:, 0:20, 0:20])  # moved inside the field
    cy, cx = round(table.loc[1, "centroid_y"]), round(table.loc[1, "centroid_x"])
    np.testing.assert_array_equal(crops[1], image[:, cy - 10 : cy + 10, cx - 10 : cx + 10])
    dropped = crop_spec("nucleocentric", 20, border="drop")
    assert fits_in_field(table, dropped, cells.shape).tolist() == [False, True]


@pytest.mark.parametrize("problem", ["empty", "duplicates"])
def test_bad_tables_leave_no_store(tmp_path, problem):
    import pandas as pd

    from cellbench.crops.store import write_crop_store

    spec = crop_spec("nuclear", 8)
    n = 0 if problem == "empty" else 2
    cells = pd.DataFrame({"cell_id": ["a", "a"][:n], "label": [1, 2][:n]})
    crops = np.zeros((n, 1, 8, 8), np.uint16)
    batches = [(cells, {"nuclear": (crops, np.zeros((n, 8, 8), np.uint8))})]
    path = tmp_path / "P1.h5"
    with pytest.raises(ValueError, match="no cell" if problem == "empty" else "duplicated"):
        write_crop_store(
            path, plate="P1", channel_names=["DNA"], specs=[spec], batches=batches, config_hash="x"
        )
    assert list(tmp_path.iterdir()) == []
