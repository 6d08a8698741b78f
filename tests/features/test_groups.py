"""The feature-group registry: one vocabulary, one column grammar, every column read back."""

import subprocess
import sys

import numpy as np
import pytest

from cellbench.config import FeaturesConfig, TextureConfig
from cellbench.config.feature_groups import FEATURE_GROUPS, IMAGE, REGIONS
from cellbench.features.columns import Column, ColumnGrammar
from cellbench.features.groups import GROUPS, group_named, parse_column
from cellbench.features.measure import measure_field
from cellbench.features.select import select_columns
from tests.helpers import REPO, small_config


def small_field():
    cells = np.zeros((24, 24), np.int32)
    cells[2:10, 2:12], cells[13:22, 4:20] = 1, 2
    nuclei = np.where((cells > 0) & (np.arange(24) % 12 > 4), cells, 0)
    rng = np.random.default_rng(0)
    return rng.integers(0, 4000, (2, 24, 24)).astype(np.uint16), cells, nuclei


def test_registry_holds_the_config_vocabulary_in_column_order():
    assert tuple(GROUPS) == FEATURE_GROUPS
    for name, module in GROUPS.items():
        assert module.GRAMMAR.group == name
        assert module.__name__ == f"cellbench.features.groups.{name.lower()}"
        assert callable(module.measure) and module.FEATURES
        assert group_named(name.upper()) is module


def test_every_measured_column_parses_back_to_itself():
    image, cells, nuclei = small_field()
    texture = TextureConfig(distances_px=[1, 2], angles_deg=[0, 22.5], levels=8)
    features = FeaturesConfig(regions=list(REGIONS), texture=texture)
    columns = list(measure_field(image, cells, nuclei, ["DNA", "my_marker"], features).columns)
    assert columns[:2] == ["label", "Image_Count_Cells"]
    for column in columns[1:]:
        parsed = parse_column(column)
        grammar = GROUPS[parsed.group].GRAMMAR
        assert parsed.compartment in grammar.compartments
        assert grammar.column(*parsed[:1], *parsed[2:]) == column
    assert {parse_column(c).channel for c in columns[2:]} == {None, "DNA", "my_marker"}
    assert "Cells_Texture_Contrast_my_marker_2_22p5" in columns
    assert select_columns(columns) == columns[1:]


def test_parse_column_rejects_what_the_grammar_does_not_say():
    for column in [
        "label",
        "Metadata_Well",
        "Metadata_NucleusFound",
        "Nuclei_Count_Cells",  # Count is per field only
        "Image_Intensity_MeanIntensity_DNA",
        "Cells_AreaShape_Area_DNA",  # AreaShape has no channel
        "Cells_Intensity_MeanIntensity",  # Intensity has one
        "Cells_Texture_Contrast_DNA_1",  # Texture has distance and angle
        "Cells_Colour_Hue_DNA",
    ]:
        assert parse_column(column) is None, column
    assert parse_column("Cells_Texture_ASM_a_b_3_45") == Column(
        "Cells", "Texture", "ASM", "a_b", ("3", "45")
    )
    assert parse_column("Image_Count_Cells") == Column(IMAGE, "Count", "Cells")


def test_grammar_refuses_a_column_it_cannot_read_back():
    with pytest.raises(ValueError, match="channel"):
        ColumnGrammar("AreaShape").column("Cells", "Area", "DNA")
    with pytest.raises(ValueError, match="parameters"):
        GROUPS["Texture"].GRAMMAR.column("Cells", "ASM", "DNA", ("1",))


def test_groups_are_selected_by_any_case_and_unknown_ones_listed():
    columns = ["Image_Count_Cells", "Cells_AreaShape_Area", "Cells_Intensity_MeanIntensity_DNA"]
    assert select_columns(columns, groups=["Count"]) == ["Image_Count_Cells"]
    assert select_columns(columns, groups=["AREASHAPE", "intensity"]) == columns[1:]
    with pytest.raises(ValueError, match="Texture"):
        select_columns(columns, groups=["Colour"])


def test_cellprofilers_own_groups_are_selected_by_their_group_word():
    columns = [
        "Image_Count_Cells",
        "Image_Threshold_FinalThreshold_Nuclei",  # a per-image value of CellProfiler's
        "Cells_AreaShape_Area",
        "Cells_AreaShape_Zernike_3_1",  # outside the native grammar
        "Cells_Granularity_1_DNA",
        "Nuclei_Granularity_2_DNA",
        "Cells_Correlation_Correlation_DNA_actin",
        "Cells_RadialDistribution_FracAtD_DNA_1of4",
    ]
    assert select_columns(columns, groups=["granularity"]) == columns[4:6]
    assert select_columns(columns, groups=["Granularity"], regions=["Cells"]) == [columns[4]]
    assert select_columns(columns, groups=["AreaShape"]) == columns[2:4]
    assert select_columns(columns, groups=["Correlation", "RadialDistribution"]) == columns[6:]
    assert select_columns(columns, groups=["Threshold"]) == [columns[1]]
    assert select_columns(columns) == columns
    model = {"name": "rf", "type": "random_forest", "feature_groups": ["Granularity"]}
    config = small_config(REPO / "results" / "unused", models=[model])
    assert config.models[0].feature_groups == ["Granularity"]


def test_config_reads_the_names_without_importing_the_features_package():
    code = (
        "import sys, cellbench.config, cellbench.config.feature_groups; "
        "print([m for m in sys.modules if m.startswith('cellbench.features')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
