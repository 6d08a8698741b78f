"""GT-onto-CP registration on real CellProfiler example fields of $CELLBENCH_DATA."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from cellbench.align import (
    Alignment,
    _common_slice,
    align_pair,
    apply_shift,
    common_mask,
    crop_to_common,
    estimate_shift,
    foreground,
    qc_cells,
)

DATA = Path(
    os.environ.get("CELLBENCH_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)
EXAMPLES = DATA / "cellprofiler_examples"
HUMAN = EXAMPLES / "ExampleHuman" / "images"
FLY = EXAMPLES / "ExampleFly" / "images"

pytestmark = pytest.mark.skipif(
    not (HUMAN.is_dir() and FLY.is_dir()),
    reason=f"CellProfiler example images not found under {EXAMPLES} (set CELLBENCH_DATA)",
)

SHIFTS = [(7.4, -12.6), (-3.25, 5.5), (0.0, 9.0), (-15.7, -0.35)]
WINDOW = (slice(60, 360), slice(50, 470))  # a non-square 300 x 420 field


def read(folder: Path, pattern: str) -> np.ndarray:
    (path,) = sorted(folder.glob(pattern))
    return tifffile.imread(path)


@pytest.fixture(scope="module")
def human() -> np.ndarray:
    """(3, 512, 512) uint8: DNA (d0), PH3 (d1), cell stain (d2)."""
    return np.stack([read(HUMAN, f"*d{c}.tif") for c in range(3)])


@pytest.fixture(scope="module")
def fly() -> np.ndarray:
    """(1006, 1000) uint8 DNA channel of one ExampleFly field."""
    return read(FLY, "01_POS002_D.TIF")


def shifted_pair(field: np.ndarray, shift: tuple[float, float], seed: int = 0):
    """CP = a window of the field; GT = the same window of the field shifted by `shift`.

    Both images are full of data (as two real acquisitions are), GT has a little noise.
    """
    field = field.astype(np.float64)
    lead = (0,) * (field.ndim - 2)
    cp = field[(..., *WINDOW)]
    gt = ndi.shift(field, (*lead, *shift), order=3, mode="nearest")[(..., *WINDOW)]
    gt = gt + np.random.default_rng(seed).normal(0.0, 2.0, gt.shape)
    return cp, gt


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("which", ["human", "fly"])
@pytest.mark.parametrize("shift", SHIFTS)
def test_recovers_known_subpixel_shift_on_non_square_real_field(request, which, shift):
    field = request.getfixturevalue(which)
    field = field[0] if field.ndim == 3 else field
    cp, gt = shifted_pair(field, shift)
    assert cp.shape == (300, 420)

    alignment = estimate_shift(cp, gt)

    # gt = shift(cp, d)  =>  the shift registering gt onto cp is -d
    np.testing.assert_allclose(alignment.shift_yx, (-shift[0], -shift[1]), atol=0.25)
    assert 0.0 <= alignment.error < 0.6
    aligned = apply_shift(gt, alignment)
    assert aligned.shape == gt.shape and aligned.dtype == gt.dtype
    assert correlation(crop_to_common(cp, alignment), crop_to_common(aligned, alignment)) > 0.95


def test_sign_convention_matches_scipy_shift(human):
    cp = human[0, :300, :420].astype(np.float64)
    gt = ndi.shift(cp, (6.0, -4.0), order=1)
    alignment = estimate_shift(cp, gt)
    np.testing.assert_allclose(alignment.shift_yx, (-6.0, 4.0), atol=0.1)
    # integer shift, so the aligned GT equals CP exactly where it has data
    aligned = apply_shift(gt, alignment)
    inner = (slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(aligned[inner], cp[inner], atol=1e-6)
    # the common area drops the rows / columns the shift moved in from outside
    assert alignment.common == (slice(0, 294), slice(4, 420))


def test_error_is_high_for_unrelated_fields(human, fly):
    alignment = estimate_shift(human[0, :300, :420], fly[:300, :420])
    assert alignment.error > 0.9


def test_common_area_excludes_padding():
    alignment = Alignment(shift_yx=(2.5, -3.2), error=0.0, common=(slice(3, 10), slice(0, 6)))
    image = np.ones((10, 10), dtype=np.uint8)
    shifted = apply_shift(image, alignment)
    # any pixel reading outside the source is 0; none of those may be in the common area
    np.testing.assert_array_equal(crop_to_common(shifted, alignment), 1)
    mask = common_mask(alignment, (10, 10))
    assert mask.sum() == 7 * 6 and mask[3:, :6].all()
    assert (_common_slice(2.5, 10), _common_slice(-3.2, 10)) == (slice(3, 10), slice(0, 6))
    assert _common_slice(0.0, 10) == slice(0, 10)
    assert _common_slice(-12.0, 10) == slice(0, 0)


def test_multichannel_registered_on_dna(human):
    """CP = DNA, PH3, cell stain; GT = PH3 + DNA shifted; registered on the DNA channels."""
    shift = (-9.6, 4.3)
    cp, _ = shifted_pair(human, shift)
    _, gt_all = shifted_pair(human, shift, seed=1)
    gt = gt_all[[1, 0]]  # PH3, DNA

    cp_crop, gt_crop, alignment = align_pair(cp, gt, cp_channels=[0], gt_channels=[1])

    np.testing.assert_allclose(alignment.shift_yx, (9.6, -4.3), atol=0.25)
    assert cp_crop.shape[0] == 3 and gt_crop.shape[0] == 2
    assert cp_crop.shape[1:] == gt_crop.shape[1:]
    assert correlation(cp_crop[0], gt_crop[1]) > 0.95  # DNA
    assert correlation(cp_crop[1], gt_crop[0]) > 0.95  # PH3


@pytest.mark.parametrize("shift", [(7.4, -12.6), (-3.25, 5.5), (0.0, 9.0)])
def test_align_pair_crops_both_to_the_same_smaller_shape(fly, shift):
    cp, gt = shifted_pair(fly, shift)
    cp = cp[None].astype(np.uint8)
    gt = np.clip(gt, 0, 255)[None].astype(np.uint8)

    cp_crop, gt_crop, alignment = align_pair(cp, gt)

    assert cp_crop.dtype == gt_crop.dtype == np.uint8
    assert cp_crop.shape == gt_crop.shape
    for axis, d in enumerate(shift):
        lost = cp.shape[axis + 1] - cp_crop.shape[axis + 1]
        assert abs(d) <= lost <= abs(d) + 1.5


def test_align_pair_rejects_mismatched_shapes(human):
    cp = human[:, :300, :420]
    gt = human[:2, :300, :400]
    with pytest.raises(ValueError, match=r"\(3, 300, 420\).*\(2, 300, 400\)"):
        align_pair(cp, gt)


def test_foreground_is_otsu_of_max_projection(human):
    fg = foreground(human[:2])
    assert fg.shape == (512, 512) and fg.dtype == bool
    assert 0.01 < fg.mean() < 0.6
    np.testing.assert_array_equal(foreground(human[[0, 0]]), foreground(human[0]))
    assert not foreground(np.full((4, 5), 7)).any()


def test_qc_cells_on_hand_made_labels():
    shape = (40, 60)
    cells = np.zeros(shape, dtype=np.int32)
    cells[5:15, 5:15] = 1  # healthy
    cells[5:15, 45:58] = 2  # cut by the common border at x = 50
    cells[20:30, 5:15] = 7  # GT foreground covers 10% of the CP foreground
    cells[20:30, 20:30] = 9  # no CP foreground
    mask = np.zeros(shape, dtype=bool)
    mask[:, :50] = True
    cp_fg = np.zeros(shape, dtype=bool)
    cp_fg[5:15, 5:15] = cp_fg[5:15, 45:58] = cp_fg[20:30, 5:15] = True
    gt_fg = np.zeros(shape, dtype=bool)
    gt_fg[5:15, 5:15] = True
    gt_fg[5:15, 45:50] = True
    gt_fg[20:30, 5] = True  # 10 of 100 px
    gt_fg[20:30, 20:30] = True

    table = qc_cells(cells, gt_fg, cp_fg, mask)

    assert list(table.columns) == ["label", "inside_common", "area_ratio", "keep"]
    assert table["label"].tolist() == [1, 2, 7, 9]
    assert table["inside_common"].tolist() == [True, False, True, True]
    np.testing.assert_allclose(table["area_ratio"], [1.0, 50 / 130, 0.1, np.nan])
    assert table["keep"].tolist() == [True, False, False, False]
    assert table["keep"].dtype == bool
    # the threshold is respected
    assert qc_cells(cells, gt_fg, cp_fg, mask, min_area_ratio=0.05)["keep"].tolist() == [
        True,
        False,
        True,
        False,
    ]


def test_qc_cells_with_common_mask_of_a_real_alignment(human):
    cp, gt = shifted_pair(human[0], (7.4, -12.6))
    alignment = estimate_shift(cp, gt)
    mask = common_mask(alignment, cp.shape)
    cells = np.zeros(cp.shape, dtype=np.int64)
    cells[100:120, 100:120] = 10**9  # sparse, large label ids are fine
    # shift_yx ≈ (-7.4, 12.6): the aligned GT lacks the bottom 8 rows and the left 13 columns
    assert alignment.common == (slice(0, 292), slice(13, 420))
    cells[280:300, 100:120] = 3
    cells[100:120, 0:20] = 4
    table = qc_cells(cells, foreground(gt), foreground(cp), mask)
    assert table["label"].tolist() == [3, 4, 10**9]
    assert table["inside_common"].tolist() == [False, False, True]


def test_qc_cells_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="common_mask"):
        qc_cells(np.zeros((4, 4), int), np.zeros((4, 4), bool), np.zeros((4, 4), bool), np.ones(3))


def test_qc_cells_without_cells_is_empty():
    z = np.zeros((4, 4), dtype=bool)
    table = qc_cells(np.zeros((4, 4), int), z, z, ~z)
    assert table.empty and list(table.columns) == ["label", "inside_common", "area_ratio", "keep"]
