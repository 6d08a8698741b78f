import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cellbench.crops.background import (
    cell_free_windows,
    choose_donors,
    mask_outside,
    minmax,
    paste,
    paste_on_windows,
    remove_centre_cell,
    swap_backgrounds,
)
from cellbench.crops.extract import MASK_CELL, MASK_NUCLEUS, MASK_OTHER_CELL

DATA = Path(
    os.environ.get("CELLBENCH_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data")
)
SWAP_DIR = DATA / "background_swap"


def synthetic_crops(n=6, channels=2, size=16, seed=0):
    """Crops with a disc cell (bit 1) and nucleus (bit 2) in the centre and another cell in a
    corner (bit 4); background intensities differ from cell intensities."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    crops = np.zeros((n, channels, size, size), np.uint16)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        radius = 3 + i % 3
        cell = (yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= radius**2
        nucleus = (yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= 2**2
        other = (yy < 4) & (xx < 4 + i % 2)
        masks[i] = cell * MASK_CELL + nucleus * MASK_NUCLEUS + other * MASK_OTHER_CELL
        background = rng.integers(100, 200, (channels, size, size))
        cell_values = rng.integers(1000, 2000, (channels, size, size))
        other_values = rng.integers(3000, 4000, (channels, size, size))
        crops[i] = np.where(cell, cell_values, np.where(other, other_values, background))
    return crops, masks


# --- real example pair -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_pair():
    fg_path, bg_path = SWAP_DIR / "foreground_example.tiff", SWAP_DIR / "background_example.tiff"
    if not (fg_path.exists() and bg_path.exists()):
        pytest.skip(f"example pair not found under {SWAP_DIR}")
    return tifffile.imread(fg_path), tifffile.imread(bg_path)


def test_paste_real_pair_raw(example_pair):
    fg, bg = example_pair
    assert fg.shape == bg.shape == (64, 64) and fg.dtype == bg.dtype == np.uint16
    inside = fg > 0
    assert 0 < inside.sum() < inside.size
    out = paste(fg[None], inside, bg[None])
    assert out.shape == (1, 64, 64) and out.dtype == np.uint16
    np.testing.assert_array_equal(out[0][inside], fg[inside])
    np.testing.assert_array_equal(out[0][~inside], bg[~inside])
    # The reference synthesis: bg[fg > 0] = fg[fg > 0]
    reference = bg.copy()
    reference[fg > 0] = fg[fg > 0]
    np.testing.assert_array_equal(out[0], reference)


def test_paste_real_pair_normalised(example_pair):
    fg, bg = example_pair
    inside = fg > 0
    out = paste(fg[None], inside, bg[None], normalise=True)
    assert out.dtype == np.float32
    fg_n, bg_n = minmax(fg[None])[0], minmax(bg[None])[0]
    np.testing.assert_array_equal(out[0][inside], fg_n[inside])
    np.testing.assert_array_equal(out[0][~inside], bg_n[~inside])
    assert out.min() >= 0 and out.max() <= 1
    expected_fg = (fg[inside].astype(np.float64) - fg.min()) / (fg.max() - fg.min())
    np.testing.assert_allclose(out[0][inside], expected_fg, rtol=1e-6)


# --- minmax / mask_outside -----------------------------------------------------------------------


def test_minmax_per_channel_and_constant_channel():
    image = np.stack(
        [
            np.arange(16, dtype=np.uint16).reshape(4, 4) + 10,
            np.full((4, 4), 7, np.uint16),
        ]
    )
    out = minmax(image)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out[0], np.arange(16).reshape(4, 4) / 15)
    np.testing.assert_array_equal(out[1], 0)


def test_mask_outside_zeroes_exactly_outside_bit():
    crops, masks = synthetic_crops()
    crops = crops + 1  # no zero pixel left, so every zero in the output was set
    for bit in (MASK_CELL, MASK_NUCLEUS, MASK_OTHER_CELL):
        out = mask_outside(crops, masks, bit)
        assert out.dtype == crops.dtype and out.shape == crops.shape
        keep = (masks & bit) > 0
        keep_c = np.broadcast_to(keep[:, None], crops.shape)
        np.testing.assert_array_equal(out[keep_c], crops[keep_c])
        np.testing.assert_array_equal(out[~keep_c], 0)
    np.testing.assert_array_equal(mask_outside(crops, masks), mask_outside(crops, masks, MASK_CELL))


def test_paste_keeps_dtype_and_checks_shapes():
    fg = np.full((2, 4, 4), 5, np.uint16)
    bg = np.full((2, 4, 4), 9, np.uint16)
    inside = np.zeros((4, 4), bool)
    inside[1:3, 1:3] = True
    out = paste(fg, inside, bg)
    assert out.dtype == np.uint16
    assert (out[:, inside] == 5).all() and (out[:, ~inside] == 9).all()
    with pytest.raises(ValueError):
        paste(fg, inside, bg[:1])


# --- remove_centre_cell --------------------------------------------------------------------------


def test_remove_centre_cell_fills_from_background():
    crops, masks = synthetic_crops()
    crop, mask = crops[2], masks[2]
    out = remove_centre_cell(crop, mask, np.random.default_rng(1))
    assert out.shape == crop.shape and out.dtype == crop.dtype
    centre = (mask & MASK_CELL) > 0
    background = mask == 0
    np.testing.assert_array_equal(out[:, ~centre], crop[:, ~centre])
    for c in range(crop.shape[0]):
        allowed = set(crop[c][background].tolist())
        filled = out[c][centre]
        assert set(filled.tolist()) <= allowed
        # cell values (1000-2000) never coincide with background ones (100-200) here
        kept = filled == crop[c][centre]
        assert not (kept & ~np.isin(crop[c][centre], list(allowed))).any()
        assert filled.max() < 1000
    # one background pixel is drawn for all channels together
    pairs = set(zip(crop[0][background].tolist(), crop[1][background].tolist(), strict=True))
    assert set(zip(out[0][centre].tolist(), out[1][centre].tolist(), strict=True)) <= pairs
    # the texture is not a constant fill
    assert len(np.unique(out[0][centre])) > 1


def test_remove_centre_cell_deterministic_and_no_background():
    crops, masks = synthetic_crops()
    a = remove_centre_cell(crops[0], masks[0], np.random.default_rng(5))
    b = remove_centre_cell(crops[0], masks[0], np.random.default_rng(5))
    c = remove_centre_cell(crops[0], masks[0], np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    full = np.full_like(masks[0], MASK_OTHER_CELL)
    full[6:10, 6:10] = MASK_CELL
    with pytest.raises(ValueError):
        remove_centre_cell(crops[0], full, np.random.default_rng(0))


# --- choose_donors -------------------------------------------------------------------------------


def test_choose_donors_same_class():
    rng = np.random.default_rng(0)
    classes = np.array(["a"] * 5 + ["b"] * 3 + ["c"])
    donors = choose_donors(classes, True, rng)
    assert donors.shape == (9,)
    assert donors[-1] == -1  # single member
    ok = donors >= 0
    assert ok[:-1].all()
    assert (donors[ok] != np.flatnonzero(ok)).all()
    assert (classes[donors[ok]] == classes[ok]).all()


def test_choose_donors_diff_class():
    classes = np.array([2, 0, 1, 2, 0, 1, 1])
    donors = choose_donors(classes, False, np.random.default_rng(0))
    assert (donors >= 0).all()
    assert (classes[donors] != classes).all()
    single = choose_donors(np.zeros(4, int), False, np.random.default_rng(0))
    np.testing.assert_array_equal(single, -1)
    assert choose_donors(np.zeros(0, int), True, np.random.default_rng(0)).shape == (0,)


def test_choose_donors_reproducible():
    classes = np.random.default_rng(3).integers(0, 4, 200)
    for same in (True, False):
        a = choose_donors(classes, same, np.random.default_rng(11))
        b = choose_donors(classes, same, np.random.default_rng(11))
        c = choose_donors(classes, same, np.random.default_rng(12))
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_choose_donors_every_candidate_picked():
    # 6 cells in class 0, 4 in class 1; repeat the draw so each cell gets many donors.
    classes = np.array([0] * 6 + [1] * 4)
    rng = np.random.default_rng(0)
    picks = {(same, i): [] for same in (True, False) for i in range(10)}
    for _ in range(400):
        for same in (True, False):
            donors = choose_donors(classes, same, rng)
            for i, d in enumerate(donors):
                picks[same, i].append(d)
    for (same, i), chosen in picks.items():
        chosen = np.array(chosen)
        candidates = [j for j in range(10) if j != i and (classes[j] == classes[i]) == same]
        counts = np.array([(chosen == j).sum() for j in candidates])
        assert counts.sum() == len(chosen)  # only candidates
        assert (counts > 0).all()
        # roughly uniform: each within 40% of the expected count
        expected = len(chosen) / len(candidates)
        assert np.all(np.abs(counts - expected) < 0.4 * expected)


def test_choose_donors_eligible():
    classes = np.array([0, 0, 0, 1, 1, 1])
    eligible = np.array([True, False, True, True, True, False])
    for seed in range(20):
        same = choose_donors(classes, True, np.random.default_rng(seed), eligible)
        assert eligible[same[same >= 0]].all()
        assert (same != np.arange(6)).all()
        assert (classes[same[same >= 0]] == classes[same >= 0]).all()
        diff = choose_donors(classes, False, np.random.default_rng(seed), eligible)
        assert (diff >= 0).all() and eligible[diff].all()
        assert (classes[diff] != classes).all()
    # cell 0's only eligible same-class candidate is cell 2
    assert choose_donors(classes, True, np.random.default_rng(0), eligible)[0] == 2


# --- cell_free_windows ---------------------------------------------------------------------------


def brute_force_free(cells, size):
    height, width = cells.shape
    return {
        (y, x)
        for y in range(height - size + 1)
        for x in range(width - size + 1)
        if not cells[y : y + size, x : x + size].any()
    }


def test_cell_free_windows_matches_brute_force():
    rng = np.random.default_rng(0)
    cells = np.zeros((30, 40), np.int32)
    for label in range(1, 8):
        y, x = rng.integers(0, 30), rng.integers(0, 40)
        h, w = rng.integers(1, 6, 2)
        cells[y : y + h, x : x + w] = label
    for size in (1, 3, 5, 8):
        expected = brute_force_free(cells, size)
        assert expected  # the test image leaves room
        found = cell_free_windows(cells, size, 10_000, np.random.default_rng(1))
        assert found.shape == (len(expected), 2)
        assert {tuple(p) for p in found.tolist()} == expected
        limited = cell_free_windows(cells, size, 5, np.random.default_rng(1))
        assert len(limited) == min(5, len(expected))
        assert len({tuple(p) for p in limited.tolist()}) == len(limited)
        for y, x in limited:
            assert 0 <= y <= 30 - size and 0 <= x <= 40 - size
            assert not cells[y : y + size, x : x + size].any()


def test_cell_free_windows_seeded_and_edge_cases():
    cells = np.zeros((20, 20), np.uint16)
    cells[5:8, 5:8] = 1
    a = cell_free_windows(cells, 4, 6, np.random.default_rng(3))
    b = cell_free_windows(cells, 4, 6, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64
    assert cell_free_windows(np.ones((10, 10), int), 2, 5, np.random.default_rng(0)).shape == (
        0,
        2,
    )
    assert cell_free_windows(cells, 21, 5, np.random.default_rng(0)).shape == (0, 2)
    assert cell_free_windows(cells, 4, 0, np.random.default_rng(0)).shape == (0, 2)
    whole = cell_free_windows(np.zeros((5, 5), int), 5, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(whole, [[0, 0]])
    with pytest.raises(ValueError):
        cell_free_windows(cells, 0, 5, np.random.default_rng(0))


# --- swap_backgrounds / paste_on_windows ---------------------------------------------------------


@pytest.mark.parametrize("normalise", [False, True])
def test_swap_backgrounds(normalise):
    crops, masks = synthetic_crops()
    donors = np.array([3, 4, 5, 0, 1, -1])
    out = swap_backgrounds(crops, masks, donors, np.random.default_rng(0), normalise)
    assert out.shape == crops.shape
    assert out.dtype == (np.float32 if normalise else crops.dtype)
    np.testing.assert_array_equal(out[5], 0)
    rng = np.random.default_rng(0)
    for i in range(5):
        j = donors[i]
        inside = (masks[i] & MASK_CELL) > 0
        background = remove_centre_cell(crops[j], masks[j], rng)
        fg = mask_outside(crops[i : i + 1], masks[i : i + 1])[0]
        if normalise:
            fg, background = minmax(fg), minmax(background)
        np.testing.assert_array_equal(out[i][:, inside], fg[:, inside])
        np.testing.assert_array_equal(out[i][:, ~inside], background[:, ~inside])
        if not normalise:
            np.testing.assert_array_equal(out[i][:, inside], crops[i][:, inside])
            # the donor's other cell is still there, its own centre cell is gone
            other = (masks[j] & MASK_OTHER_CELL) > 0
            np.testing.assert_array_equal(out[i][:, other & ~inside], crops[j][:, other & ~inside])
            donor_cell = ((masks[j] & MASK_CELL) > 0) & ~inside
            assert (out[i][:, donor_cell] < 1000).all()


def test_swap_backgrounds_deterministic_and_checks():
    crops, masks = synthetic_crops()
    donors = choose_donors(np.array([0, 0, 0, 1, 1, 1]), True, np.random.default_rng(0))
    a = swap_backgrounds(crops, masks, donors, np.random.default_rng(4))
    b = swap_backgrounds(crops, masks, donors, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        swap_backgrounds(crops, masks, donors[:3], np.random.default_rng(0))


def test_swap_backgrounds_in_blocks_with_their_own_donors_equals_one_pass():
    crops, masks = synthetic_crops(n=9)
    donors = choose_donors(np.array([0, 1, 2] * 3), False, np.random.default_rng(1))
    donors[4] = -1
    whole = swap_backgrounds(crops, masks, donors, np.random.default_rng(7))
    rng = np.random.default_rng(7)  # one generator across the blocks, in row order
    for block in (slice(0, 4), slice(4, 5), slice(5, 9)):
        mine = donors[block]
        needed = np.unique(mine[mine >= 0])
        local = np.where(mine >= 0, np.searchsorted(needed, mine), -1)
        part = swap_backgrounds(
            crops[block],
            masks[block],
            local,
            rng,
            donor_crops=crops[needed],
            donor_masks=masks[needed],
        )
        np.testing.assert_array_equal(part, whole[block])
    with pytest.raises(ValueError, match="both"):
        swap_backgrounds(crops, masks, donors, rng, donor_crops=crops)
    with pytest.raises(ValueError, match="do not match"):
        swap_backgrounds(crops, masks, donors, rng, donor_crops=crops[:, :1], donor_masks=masks)


@pytest.mark.parametrize("normalise", [False, True])
def test_paste_on_windows(normalise):
    crops, masks = synthetic_crops()
    rng = np.random.default_rng(2)
    windows = rng.integers(100, 200, (3, *crops.shape[1:])).astype(np.uint16)
    assignment = np.array([0, 2, -1, 1, 0, 2])
    out = paste_on_windows(crops, masks, windows, assignment, normalise)
    assert out.shape == crops.shape
    assert out.dtype == (np.float32 if normalise else np.uint16)
    np.testing.assert_array_equal(out[2], 0)
    for i in np.flatnonzero(assignment >= 0):
        inside = (masks[i] & MASK_CELL) > 0
        fg = mask_outside(crops[i : i + 1], masks[i : i + 1])[0]
        bg = windows[assignment[i]]
        if normalise:
            fg, bg = minmax(fg), minmax(bg)
        else:
            np.testing.assert_array_equal(out[i][:, inside], crops[i][:, inside])
        np.testing.assert_array_equal(out[i][:, inside], fg[:, inside])
        np.testing.assert_array_equal(out[i][:, ~inside], bg[:, ~inside])
    empty = paste_on_windows(crops, masks, windows, np.full(6, -1), normalise)
    np.testing.assert_array_equal(empty, 0)
