"""The cytoplasm crop kind: the whole-cell window with the nucleus zeroed."""

import h5py
import numpy as np
import pytest

from cellbench.config.crop_kinds import CROP_KINDS
from cellbench.crops.extract import MASK_CELL, MASK_NUCLEUS, crop_spec
from cellbench.crops.plate import crop_plate
from cellbench.crops.store import read_cells, read_crops
from cellbench.errors import ConfigError
from cellbench.paths import ResultsPaths
from cellbench.tasks import run_task
from tests.helpers import small_config


@pytest.fixture(scope="module")
def store(segmented_plate):
    config, plate = segmented_plate
    paths = ResultsPaths(config.results_root)
    path = paths.root / "cytoplasm_test.h5"
    crop_plate(
        plate,
        paths.label_store("P1"),
        config.data.channels,
        [crop_spec("whole_cell", 48), crop_spec("cytoplasm", 48)],
        path,
        config_hash="abc",
        compression="lzf",
    )
    return path


def test_cytoplasm_is_declared_like_a_masked_whole_cell():
    cytoplasm, whole_cell = crop_spec("cytoplasm"), crop_spec("whole_cell")
    assert (cytoplasm.size_px, cytoplasm.centred_on) == (whole_cell.size_px, "cell")
    assert cytoplasm.masked and cytoplasm.region == "cytoplasm"
    assert not CROP_KINDS["cytoplasm"].switchable


def test_cytoplasm_is_the_whole_cell_crop_without_its_nucleus(store):
    whole, whole_masks = read_crops(store, "whole_cell")
    cytoplasm, masks = read_crops(store, "cytoplasm")
    assert cytoplasm.shape == whole.shape and len(read_cells(store)) > 50
    np.testing.assert_array_equal(masks, whole_masks)  # the same window: same size, same centre
    in_cell = (masks & MASK_CELL) > 0
    in_nucleus = (masks & MASK_NUCLEUS) > 0
    by_pixel, whole_by_pixel = cytoplasm.transpose(1, 0, 2, 3), whole.transpose(1, 0, 2, 3)
    assert np.all(by_pixel[:, in_nucleus] == 0)
    assert np.all(by_pixel[:, ~in_cell] == 0)
    rest = in_cell & ~in_nucleus
    np.testing.assert_array_equal(by_pixel[:, rest], whole_by_pixel[:, rest])
    assert np.any(whole_by_pixel[:, in_nucleus & in_cell] > 0)  # the nucleus had signal
    assert np.all(cytoplasm.sum(axis=(1, 2, 3)) > 0)  # every crop keeps some cytoplasm
    with h5py.File(store, "r") as handle:
        attrs = handle["cytoplasm"].attrs
        assert (attrs["region"], attrs["centred_on"], bool(attrs["masked"])) == (
            "cytoplasm",
            "cell",
            True,
        )


def test_crop_stage_cuts_cytoplasm_crops(tmp_path):
    config = small_config(tmp_path, crops={"kinds": {"cytoplasm": {}}})
    assert config.crop_kinds() == ["cytoplasm"]
    for stage in ("segment", "crop"):
        result = run_task(config, stage, "P1")
        assert result.state == "done", result.message
    path = ResultsPaths(config.results_root).crop_store("P1")
    with h5py.File(path, "r") as handle:
        assert list(handle) == ["cells", "cytoplasm"]
        assert handle["cytoplasm/images"].shape[1:] == (3, 192, 192)  # the default size
        assert len(handle["cytoplasm/images"]) == len(read_cells(path)) > 0


def test_unmasking_cytoplasm_is_refused_at_load(tmp_path):
    with pytest.raises(ConfigError, match=r"crops.kinds: cytoplasm.masked: .*always masked"):
        small_config(tmp_path, crops={"kinds": {"cytoplasm": {"masked": False}}})
