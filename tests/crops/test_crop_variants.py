"""Crop variants: one store holds a kind masked and unmasked (``crops.kinds.<name>.kind``)."""

import h5py
import numpy as np
import pytest

from cellbench.crops.extract import MASK_CELL
from cellbench.crops.store import read_cells, read_crops
from cellbench.errors import ConfigError
from cellbench.paths import ResultsPaths
from cellbench.tasks import run_task
from tests.helpers import small_config

VARIANTS = {
    "whole_cell": {"size_px": 40},
    "whole_cell_unmasked": {"kind": "whole_cell", "size_px": 40, "masked": False},
}


def test_a_store_holds_a_kind_masked_and_unmasked(tmp_path):
    config = small_config(tmp_path, crops={"kinds": VARIANTS})
    assert config.crop_kinds() == ["whole_cell", "whole_cell_unmasked"]
    for stage in ("segment", "crop"):
        result = run_task(config, stage, "P1")
        assert result.state == "done", result.message
    path = ResultsPaths(config.results_root).crop_store("P1")
    masked, masks = read_crops(path, "whole_cell")
    unmasked, unmasked_masks = read_crops(path, "whole_cell_unmasked")
    assert masked.shape == unmasked.shape == (len(read_cells(path)), 3, 40, 40)
    np.testing.assert_array_equal(masks, unmasked_masks)  # the same windows
    in_cell = ((masks & MASK_CELL) > 0)[:, np.newaxis]
    np.testing.assert_array_equal(masked, unmasked * in_cell)
    assert np.any(unmasked * ~in_cell > 0)  # the unmasked crops keep the surroundings
    with h5py.File(path, "r") as handle:
        attrs = handle["whole_cell_unmasked"].attrs
        assert (bool(attrs["masked"]), attrs["centred_on"]) == (False, "cell")
        assert bool(handle["whole_cell"].attrs["masked"])


def test_a_model_reads_a_variant_by_its_name(tmp_path):
    model = {"name": "r", "type": "resnet", "crop_kind": "whole_cell_unmasked", "epochs": 1}
    config = small_config(tmp_path, crops={"kinds": VARIANTS}, models=[model])
    assert config.model("r").crop_kind == "whole_cell_unmasked"
    with pytest.raises(ConfigError, match=r"crop_kind: 'nuclear' is not a crop kind"):
        small_config(
            tmp_path, crops={"kinds": VARIANTS}, models=[{**model, "crop_kind": "nuclear"}]
        )


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        ({"unmasked_cells": {"masked": False}}, r"unmasked_cells: not a crop kind"),
        ({"whole": {"kind": "wholecell"}}, r"crops.kinds.whole.kind"),
        ({"cells": {"kind": "whole_cell"}}, r"cells: this name is taken"),
        ({"bg_mine": {"kind": "whole_cell"}}, r"bg_mine: this name is taken"),
        ({"precut": {"kind": "whole_cell"}}, r"precut: this name is taken"),
        ({"../up": {"kind": "whole_cell"}}, r"crops.kinds"),
        (
            {"cyto_open": {"kind": "cytoplasm", "masked": False}},
            r"cyto_open.masked: cytoplasm crops are always masked",
        ),
    ],
)
def test_bad_variants_are_refused_naming_the_key(tmp_path, kinds, message):
    with pytest.raises(ConfigError, match=message):
        small_config(tmp_path, crops={"kinds": kinds})
