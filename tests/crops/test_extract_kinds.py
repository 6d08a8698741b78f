"""`crop_kinds` cuts what `crop_cells` cuts, sharing windows; windows at and past the border."""

import numpy as np
import pandas as pd
import pytest

from cellbench.crops.extract import (
    _gather_windows,
    crop_cells,
    crop_kinds,
    crop_spec,
    measure_cells,
    region_pixels,
)


def reference_window(array: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """The size x size window of a (C, Y, X) array at a top-left corner, zero outside."""
    out = np.zeros((array.shape[0], size, size), array.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, array.shape[1]), min(left + size, array.shape[2])
    if y1 > y0 and x1 > x0:
        out[:, y0 - top : y1 - top, x0 - left : x1 - left] = array[:, y0:y1, x0:x1]
    return out


@pytest.mark.parametrize("size", [1, 8, 40, 70])
def test_gathered_windows_equal_one_by_one_windows(size):
    rng = np.random.default_rng(size)
    array = rng.integers(1, 1000, (2, 50, 60)).astype(np.uint16)
    # Inside, across each border and corner, wholly outside, and larger than the array.
    top = np.array([0, 10, -3, 45, 20, -size, 49, 200, -100, 5])
    left = np.array([0, 15, 20, -2, 55, -size, 59, 3, -100, 58])
    gathered = _gather_windows(array, top, left, size)
    assert gathered.shape == (len(top), 2, size, size)
    for i in range(len(top)):
        np.testing.assert_array_equal(gathered[i], reference_window(array, top[i], left[i], size))
    inside = _gather_windows(array, np.array([0, 3]), np.array([1, 2]), 8)
    np.testing.assert_array_equal(inside[1], array[:, 3:11, 2:10])
    assert inside.flags.c_contiguous


def _field(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """A field of square cells, some at the border, each with a nucleus in its middle."""
    rng = np.random.default_rng(seed)
    cells = np.zeros((60, 70), np.int32)
    nuclei = np.zeros_like(cells)
    corners = [(0, 0), (5, 30), (40, 58), (48, 2), (20, 20), (25, 45)]
    for label, (y, x) in enumerate(corners, start=1):
        cells[y : y + 12, x : x + 12] = label
        nuclei[y + 3 : y + 8, x + 3 : x + 8] = label
    image = rng.integers(1, 4000, (3, *cells.shape)).astype(np.uint16)
    return image, cells, nuclei, measure_cells(cells, nuclei)


@pytest.mark.parametrize("border", ["pad", "shift"])
def test_kinds_equal_each_kind_cut_alone(border):
    image, cells, nuclei, table = _field()
    specs = [
        crop_spec("whole_cell", 24, border=border),
        crop_spec("nuclear", 16, border=border),
        crop_spec("nucleocentric", 16, border=border),
        crop_spec("cytoplasm", 24, border=border),  # shares the whole-cell window
    ]
    together = crop_kinds(image, cells, nuclei, table, specs)
    assert list(together) == [spec.kind for spec in specs]
    for spec in specs:
        crops, masks = crop_cells(image, cells, nuclei, table, spec)
        np.testing.assert_array_equal(together[spec.kind][0], crops)
        np.testing.assert_array_equal(together[spec.kind][1], masks)
        assert crops.shape == (len(table), 3, spec.size_px, spec.size_px)


def test_crops_match_their_field_windows_and_masks():
    image, cells, nuclei, table = _field(1)
    spec = crop_spec("nuclear", 16)
    crops, masks = crop_cells(image, cells, nuclei, table, spec)
    for i, row in enumerate(table.itertuples()):
        top, left = round(row.nucleus_y) - 8, round(row.nucleus_x) - 8
        window = reference_window(image, top, left, 16)
        labels = reference_window(cells[np.newaxis], top, left, 16)[0]
        nucleus = reference_window(nuclei[np.newaxis], top, left, 16)[0]
        expected_masks = (
            (labels == row.label) * 1
            + (nucleus == row.label) * 2
            + ((labels > 0) & (labels != row.label)) * 4
        )
        np.testing.assert_array_equal(masks[i], expected_masks)
        keep = region_pixels(masks[i], spec.region)
        np.testing.assert_array_equal(crops[i], window * keep)
    assert crops[table["bbox_min_y"].to_numpy() == 0].sum() > 0  # border cells are cut too


def test_kinds_sharing_a_window_get_their_own_arrays():
    image, cells, nuclei, table = _field(2)
    specs = [crop_spec("nuclear", 16), crop_spec("nucleocentric", 16)]
    together = crop_kinds(image, cells, nuclei, table, specs)
    (nuclear, nuclear_masks), (centred, centred_masks) = (
        together["nuclear"],
        together["nucleocentric"],
    )
    assert not np.shares_memory(nuclear, centred)
    assert not np.shares_memory(nuclear_masks, centred_masks)
    assert (centred != nuclear).any()  # unmasked against masked
    before = nuclear.copy()
    centred[:] = 0
    centred_masks[:] = 0
    np.testing.assert_array_equal(nuclear, before)
    assert nuclear_masks.any()


def test_no_cells_gives_empty_arrays():
    image, cells, nuclei, table = _field()
    out = crop_kinds(image, cells, nuclei, table.iloc[:0], [crop_spec("nuclear", 16)])
    crops, masks = out["nuclear"]
    assert crops.shape == (0, 3, 16, 16) and masks.shape == (0, 16, 16)
    assert crops.dtype == image.dtype and masks.dtype == np.uint8


def test_bit_masks_compare_labels_without_wrapping():
    from cellbench.crops.extract import _bit_masks

    windows = np.array([[[44, 7], [0, 44]]], np.uint8)
    wide = _bit_masks(windows.astype(np.int64), windows.astype(np.int64), np.array([44]))
    np.testing.assert_array_equal(_bit_masks(windows, windows, np.array([44])), wide)
    np.testing.assert_array_equal(wide, [[[3, 4], [0, 3]]])
    # 300 does not fit uint8: it must not match 300 % 256 == 44
    np.testing.assert_array_equal(_bit_masks(windows, windows, np.array([300])), [[[4, 4], [0, 4]]])
