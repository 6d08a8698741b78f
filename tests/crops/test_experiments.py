"""Background-confound experiments written into a plate's crop store."""

import numpy as np
import pytest

from cellbench.config import BackgroundConfig
from cellbench.crops.extract import MASK_CELL, crop_spec
from cellbench.crops.plate import crop_plate
from cellbench.crops.store import read_cells, read_crops
from cellbench.data.plates import read_field
from cellbench.paths import ResultsPaths

EXPERIMENTS = ["masked", "swap_same", "swap_diff", "cell_free"]


@pytest.fixture(scope="module")
def store(segmented_plate):
    config, plate = segmented_plate
    paths = ResultsPaths(config.results_root)
    path = paths.root / "experiments.h5"
    settings = BackgroundConfig(experiments=EXPERIMENTS, size_px=40, seed=1, windows_per_field=8)
    crop_plate(
        plate,
        paths.label_store("P1"),
        config.data.channels,
        [crop_spec("nuclear", 24)],
        path,
        config_hash="x",
        compression="lzf",
        background=settings,
    )
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
