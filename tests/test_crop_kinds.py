"""The crop-kind registry: every list of kinds derives from its declarations."""

import typing

import pytest

from cellbench.config.crop_kinds import (
    CROP_KINDS,
    PRECUT,
    background_kind,
    background_kinds,
    kind_info,
)
from cellbench.config.crops import CropKindName
from cellbench.crops.extract import crop_spec
from cellbench.evaluate.background_study import EXPERIMENT_KINDS
from tests.helpers import small_config


def test_config_accepts_exactly_the_registered_kinds():
    assert set(typing.get_args(CropKindName)) == set(CROP_KINDS)


def test_every_registered_kind_has_a_spec_with_its_declaration():
    for name, info in CROP_KINDS.items():
        spec = crop_spec(name)
        assert (spec.size_px, spec.masked, spec.centred_on) == (
            info.size_px,
            info.masked,
            info.centred_on,
        )
        assert spec.kept_region == info.region


def test_experiment_and_precut_kinds_are_named_by_the_registry(tmp_path):
    experiments = ["masked", "cell_free"]
    background = {"experiments": experiments, "size_px": 32}
    config = small_config(tmp_path, crops={"kinds": {"nuclear": {}}, "background": background})
    assert config.crop_kinds() == ["nuclear", "bg_original", "bg_masked", "bg_cell_free"]
    assert background_kinds(experiments) == config.crop_kinds()[1:]
    assert EXPERIMENT_KINDS["base"] == background_kind("original") == "bg_original"
    for kind in (*background_kinds(experiments), PRECUT):
        assert not kind_info(kind).masked and crop_spec(kind, 16).kept_region == "none"
    with pytest.raises(ValueError, match="no default size"):
        crop_spec(PRECUT)
    with pytest.raises(ValueError, match="unknown crop kind 'whole'; valid kinds"):
        kind_info("whole")
