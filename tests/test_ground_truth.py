"""Ground truth from marker channels, on hand-made cells and on the real ExampleHuman field."""

import numpy as np
import pandas as pd
import pytest
import yaml

from cellbench.config import GroundTruthConfig, default_data_root, load_config
from cellbench.crops.store import read_cells
from cellbench.errors import CellbenchError
from cellbench.execution.run import execute
from cellbench.ground_truth import UNDEFINED, assign_classes, marker_table
from cellbench.paths import ResultsPaths
from tests.helpers import REPO, assert_pycytominer_sees_every_feature


def three_cells():
    cells = np.zeros((10, 30), np.int32)
    cells[2:8, 1:9], cells[2:8, 11:19], cells[2:8, 21:29] = 1, 2, 3
    nuclei = np.where((cells > 0) & (np.arange(30) % 10 > 2) & (np.arange(30) % 10 < 7), cells, 0)
    edu = np.where(cells == 1, 900, np.where(cells == 2, 100, 900)).astype(np.uint16)
    brdu = np.where(cells == 1, 100, np.where(cells == 2, 700, 700)).astype(np.uint16)
    dna = np.full(cells.shape, 800, np.uint16)
    return marker_table(np.stack([edu, brdu]), ["EdU", "BrdU"], dna, cells, nuclei)


def test_rules_assign_classes_and_undefined():
    table = three_cells()
    assert table["EdU_mean"].tolist() == [900, 100, 900]
    settings = GroundTruthConfig(
        rules={
            "astro": "EdU_mean > 600 and BrdU_mean < 300",
            "SHSY5Y": "EdU_mean < 600 and BrdU_mean > 300",
        }
    )
    assert assign_classes(table, settings).tolist() == ["astro", "SHSY5Y", UNDEFINED]
    overlapping = GroundTruthConfig(rules={"a": "EdU_mean > 0", "b": "BrdU_mean > 0"})
    assert set(assign_classes(table, overlapping)) == {UNDEFINED}  # every cell matches two
    strict = settings.model_copy(update={"min_nucleus_area_px": 1000})
    assert set(assign_classes(table, strict)) == {UNDEFINED}  # quality filter


def test_bad_rule_names_the_rule_and_the_variables():
    settings = GroundTruthConfig(rules={"astro": "Edu_mean >> 3"})
    with pytest.raises(CellbenchError, match="ground_truth.rules.astro.*EdU_mean"):
        assign_classes(three_cells(), settings)


def test_otsu_splits_two_populations():
    table = pd.DataFrame(
        {
            "label": range(1, 41),
            "nucleus_area": 50.0,
            "dna_mean": 1.0,
            "PH3_mean": [100.0] * 35 + [1000.0] * 5,
        }
    )
    settings = GroundTruthConfig(auto={"marker": "PH3", "classes": ["no", "yes"]})
    assert assign_classes(table, settings).value_counts().to_dict() == {"no": 35, "yes": 5}


@pytest.mark.skipif(
    not (default_data_root() / "cellprofiler_examples").is_dir(), reason="no CellProfiler examples"
)
def test_examplehuman_mitotic_cells_from_ph3(tmp_path):
    raw = yaml.safe_load((REPO / "configs" / "examplehuman.yaml").read_text())
    raw["results_root"] = str(tmp_path / "results")
    path = tmp_path / "examplehuman.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    results = execute(config, "features", "local", echo=lambda line: None).results
    assert [r.state for r in results] == ["done", "done"]
    paths = ResultsPaths(config.results_root)
    features = pd.read_parquet(paths.feature_table("ExampleHuman"))
    classes = features["Metadata_Mitosis"]
    mitotic = classes == "mitotic"
    fraction = mitotic.sum() / classes.isin(["mitotic", "non_mitotic"]).sum()
    assert 0.01 <= fraction <= 0.30, fraction
    dna = features["Nuclei_Intensity_MeanIntensity_DNA"]
    assert dna[mitotic].mean() > dna[classes == "non_mitotic"].mean()  # condensed chromatin
    assert "Metadata_PH3Mean" in features and not any(
        "PH3" in c for c in features if not c.startswith("Metadata_")
    )
    assert_pycytominer_sees_every_feature(features)
    execute(config, "crop", "local", echo=lambda line: None)
    cells = read_cells(paths.crop_store("ExampleHuman"))
    assert set(cells["mitosis"]) <= {"mitotic", "non_mitotic", UNDEFINED}
    assert (cells["mitosis"] == "mitotic").sum() == mitotic.sum()


@pytest.mark.skipif(
    not (default_data_root() / "cellprofiler_examples").is_dir(), reason="no CellProfiler examples"
)
def test_second_round_markers_are_aligned_before_measuring():
    """A marker round shifted by (7, -11) px gives the same classes once aligned, not before."""
    import tifffile
    from scipy import ndimage as ndi

    from cellbench.config import load_config
    from cellbench.ground_truth import MarkerSetup
    from cellbench.segment import Segmenter

    folder = default_data_root() / "cellprofiler_examples" / "ExampleHuman" / "images"
    planes = [tifffile.imread(next(folder.glob(f"*d{c}.tif"))) for c in range(3)]
    dna, ph3, stain = (p.astype(np.float32) for p in planes)
    config = load_config(REPO / "configs" / "examplehuman.yaml")
    cells, nuclei = Segmenter(config.segmentation).segment_fields(
        [np.stack([dna, stain])], ["DNA", "cellstain"]
    )[0]
    settings = config.ground_truth
    unshifted = MarkerSetup(settings, ["PH3"], "DNA").classify(
        np.stack([dna, stain, ph3]), ["DNA", "cellstain"], cells, nuclei
    )
    second_round = [ndi.shift(p, (7, -11), order=1) for p in (dna, ph3)]  # round 2: DNA, PH3
    image = np.stack([dna, stain, *second_round])
    aligned_settings = settings.model_copy(update={"align_channel": "DNA2"})
    aligned = MarkerSetup(aligned_settings, ["DNA2", "PH3"], "DNA").classify(
        image, ["DNA", "cellstain"], cells, nuclei
    )
    naive = MarkerSetup(settings, ["DNA2", "PH3"], "DNA").classify(
        image, ["DNA", "cellstain"], cells, nuclei
    )
    column = settings.column
    kept = aligned[column] != UNDEFINED
    lost = (~kept).sum()
    assert 0 < lost < 0.15 * len(aligned)  # cells near the edge left the common area
    agree = (aligned[column] == unshifted[column])[kept].mean()
    agree_naive = (naive[column] == unshifted[column])[kept].mean()
    assert agree >= 0.97, agree
    assert agree > agree_naive
    ph3_error = (aligned["PH3_mean"] - unshifted["PH3_mean"])[kept].abs().median()
    naive_error = (naive["PH3_mean"] - unshifted["PH3_mean"])[kept].abs().median()
    assert ph3_error < 0.25 * naive_error


def test_align_channel_must_be_a_marker_channel():
    raw = yaml.safe_load((REPO / "configs" / "examplehuman.yaml").read_text())
    raw["ground_truth"]["align_channel"] = "DNA_round2"
    from cellbench.config import config_from_dict

    with pytest.raises(Exception, match="ground_truth.align_channel"):
        config_from_dict(raw)
