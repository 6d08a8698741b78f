"""Background-confound experiments written into a plate's crop store."""

import dataclasses
import tracemalloc

import numpy as np
import pytest

from cellbench.config import BackgroundConfig
from cellbench.crops import experiments
from cellbench.crops import store as crop_store
from cellbench.crops.background import choose_donors, swap_backgrounds
from cellbench.crops.extract import MASK_CELL, crop_spec
from cellbench.crops.plate import crop_plate
from cellbench.crops.store import read_cells, read_crops
from cellbench.data.plates import read_field
from cellbench.paths import ResultsPaths

EXPERIMENTS = ["masked", "swap_same", "swap_diff", "cell_free"]


SETTINGS = BackgroundConfig(experiments=EXPERIMENTS, size_px=40, seed=1, windows_per_field=8)


def crop_with_experiments(config, plate, path, settings=SETTINGS, compression="lzf"):
    """Crop `plate` (kind ``nuclear`` and the background experiments) into `path`."""
    paths = ResultsPaths(config.results_root)
    return crop_plate(
        plate,
        paths.label_store("P1"),
        config.data.channels,
        [crop_spec("nuclear", 24)],
        path,
        config_hash="x",
        compression=compression,
        background=settings,
    )


@pytest.fixture(scope="module")
def store(segmented_plate):
    config, plate = segmented_plate
    path = ResultsPaths(config.results_root).root / "experiments.h5"
    crop_with_experiments(config, plate, path)
    return config, plate, path


def test_every_experiment_is_a_kind_with_its_donor(store):
    _, _, path = store
    cells = read_cells(path)
    original, masks = read_crops(path, "bg_original")
    inside = (masks & MASK_CELL) > 0
    for experiment in EXPERIMENTS:
        images, _ = read_crops(path, f"bg_{experiment}")
        assert images.shape == original.shape
        with_cell = images.transpose(1, 0, 2, 3)[:, inside]
        has_donor = np.ones(len(cells), bool)
        if experiment != "masked":
            has_donor = (cells[f"donor_{experiment}"] != "").to_numpy()
            assert has_donor.mean() > 0.9
        # The cell itself is never touched.
        kept = inside & has_donor[:, None, None]
        np.testing.assert_array_equal(
            images.transpose(1, 0, 2, 3)[:, kept], original.transpose(1, 0, 2, 3)[:, kept]
        )
        assert with_cell.size > 0


def test_masked_is_zero_outside_the_cell(store):
    _, _, path = store
    original, masks = read_crops(path, "bg_original")
    masked, _ = read_crops(path, "bg_masked")
    outside = (masks & MASK_CELL) == 0
    assert np.all(masked.transpose(1, 0, 2, 3)[:, outside] == 0)
    assert np.any(original.transpose(1, 0, 2, 3)[:, outside] > 0)


def test_swap_donors_keep_or_change_the_class(store):
    _, _, path = store
    cells = read_cells(path).set_index("cell_id")
    for experiment, same in [("swap_same", True), ("swap_diff", False)]:
        donors = cells[f"donor_{experiment}"]
        donors = donors[donors != ""]
        assert (donors.index != donors.to_numpy()).all()
        donor_class = cells.loc[donors.to_numpy(), "condition"].to_numpy()
        assert ((donor_class == cells.loc[donors.index, "condition"].to_numpy()) == same).all()


def test_swap_background_comes_from_the_donor_outside_both_cells(store):
    _, _, path = store
    cells = read_cells(path)
    original, masks = read_crops(path, "bg_original")
    swapped, _ = read_crops(path, "bg_swap_diff")
    row_of = {cell_id: i for i, cell_id in enumerate(cells["cell_id"])}
    checked = 0
    for i, donor in enumerate(cells["donor_swap_diff"]):
        if not donor:
            continue
        j = row_of[donor]
        plain = ((masks[i] & MASK_CELL) == 0) & (masks[j] == 0)  # neither cell, no other cell
        np.testing.assert_array_equal(swapped[i][:, plain], original[j][:, plain])
        checked += 1
    assert checked > 10


def test_cell_free_backgrounds_hold_no_cell(store):
    config, plate, path = store
    cells = read_cells(path)
    _, masks = read_crops(path, "bg_original")
    free, _ = read_crops(path, "bg_cell_free")
    fields = {f.name: f for f in plate.fields}
    for i, origin in enumerate(cells["donor_cell_free"][:20]):
        name, corner = origin.split("@")
        top, left = (int(v) for v in corner.strip("()").split(","))
        image = read_field(plate, fields[name], config.data.channels)
        window = image[:, top : top + 40, left : left + 40]
        outside = (masks[i] & MASK_CELL) == 0
        np.testing.assert_array_equal(free[i][:, outside], window[:, outside])


def test_blocks_of_rows_give_what_one_pass_over_the_plate_gives(store, tmp_path, monkeypatch):
    config, plate, path = store
    cells = read_cells(path)
    assert len(cells) < experiments.BLOCK_ROWS  # the fixture's store: one block
    monkeypatch.setattr(experiments, "BLOCK_ROWS", 7)  # 216 cells: 31 blocks, the last short
    blocked = tmp_path / "blocked.h5"
    crop_with_experiments(config, plate, blocked, compression="blosc-lz4")
    blocked_cells = read_cells(blocked)
    for experiment in EXPERIMENTS:
        kind = f"bg_{experiment}"
        for a, b in zip(read_crops(path, kind), read_crops(blocked, kind), strict=True):
            np.testing.assert_array_equal(a, b)
        if experiment != "masked":
            column = f"donor_{experiment}"
            np.testing.assert_array_equal(cells[column], blocked_cells[column])


def test_swaps_are_those_of_the_seed_drawn_over_the_whole_plate(store):
    # The choice made before the second pass existed: every original in memory, one generator
    # drawing the donors of swap_same, their fills, then the donors of swap_diff and theirs.
    _, _, path = store
    cells = read_cells(path)
    original, masks = read_crops(path, "bg_original")
    rng = np.random.default_rng(SETTINGS.seed)
    classes = cells["condition"].astype(str).to_numpy()
    eligible = (masks == 0).any(axis=(1, 2))
    ids = cells["cell_id"].to_numpy()
    for experiment in ("swap_same", "swap_diff"):
        donors = choose_donors(classes, experiment == "swap_same", rng, eligible=eligible)
        expected = swap_backgrounds(original, masks, donors, rng)
        np.testing.assert_array_equal(read_crops(path, f"bg_{experiment}")[0], expected)
        named = np.where(donors >= 0, ids[np.maximum(donors, 0)], "")
        np.testing.assert_array_equal(cells[f"donor_{experiment}"], named)


def _peak_bytes(config, plate, path) -> int:
    """Peak bytes allocated (tracemalloc: numpy and Python objects) while cropping `plate`."""
    tracemalloc.start()
    try:
        crop_with_experiments(config, plate, path, compression="blosc-lz4")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_fields(segmented_plate, tmp_path, monkeypatch):
    config, plate = segmented_plate
    # Blocks smaller than the 2-field plate, so that both plates are read back in blocks; and
    # a smaller (still bounded) pixel sample for the plate statistics, which at this scale
    # would otherwise outweigh the crops and fill up only with more fields.
    monkeypatch.setattr(experiments, "BLOCK_ROWS", 8)
    monkeypatch.setattr(crop_store, "_STATS_SAMPLE", 800)
    two, eight = (dataclasses.replace(plate, fields=plate.fields[:n]) for n in (2, 8))
    _peak_bytes(config, two, tmp_path / "warm-up.h5")  # first-call caches (imports, HDF5)
    peak_two = _peak_bytes(config, two, tmp_path / "two.h5")
    peak_eight = _peak_bytes(config, eight, tmp_path / "eight.h5")
    n_two, n_eight = len(read_cells(tmp_path / "two.h5")), len(read_cells(tmp_path / "eight.h5"))
    assert n_eight >= 3 * n_two
    # Every original crop of the plate in memory, as before the second pass, would be
    # (n_eight - n_two) crops more at 8 fields, and each derived kind as much again.
    grown_by = (n_eight - n_two) * original_bytes_per_cell(tmp_path / "eight.h5")
    assert peak_eight - peak_two < grown_by
    assert peak_eight <= 1.2 * peak_two, f"peak {peak_eight} B at 8 fields, {peak_two} B at 2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eight.h5", "two.h5", "warm-up.h5"]


def original_bytes_per_cell(path) -> int:
    """Bytes of one cell's ``bg_original`` crop and mask in memory."""
    crops, masks = read_crops(path, "bg_original", slice(0, 1))
    return crops.nbytes + masks.nbytes
