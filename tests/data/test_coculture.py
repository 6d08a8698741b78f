"""Tests for the synthetic co-culture plate: layout, true types, marker ground truth, seeds."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from cellbench.config import GroundTruthConfig, SyntheticSource
from cellbench.data.coculture import CHANNELS, CULTURES, MARKERS, write_coculture_plate
from cellbench.data.plates import ensure_synthetic_plate
from cellbench.ground_truth import UNDEFINED, classify_field

SMALL = {"rows": "A", "columns": (1, 2, 3), "sites": 2, "field_shape": (160, 160)}
SMALL |= {"cells_per_field": 14}
STUDY_RULES = {  # the nucleocentric study's thresholds (set_GT_threshold)
    "astro": "EdU_mean > 600 and BrdU_mean < 300",
    "neuron": "EdU_mean < 600 and BrdU_mean > 300",
}


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_coculture_plate(tmp_path_factory.mktemp("coculture") / "plate", **SMALL)


def _marker_classes(plate: Path, rules: dict[str, str]) -> pd.DataFrame:
    """Every cell's class from the marker rules (true masks), merged with the truth table."""
    settings = GroundTruthConfig(rules=rules)
    tables = []
    for path in sorted((plate / "fields").glob("*.tif")):
        cells = tifffile.imread(plate / "truth" / f"{path.stem}_cells.tif")
        nuclei = tifffile.imread(plate / "truth" / f"{path.stem}_nuclei.tif")
        image = tifffile.imread(path)
        table = classify_field(image, list(CHANNELS), list(MARKERS), "DNA", cells, nuclei, settings)
        tables.append(table.assign(field=path.stem))
    truth = pd.read_csv(plate / "truth" / "cells.csv")
    return pd.concat(tables, ignore_index=True).merge(truth, on=["field", "label"])


def test_layout_cultures_and_true_types(plate: Path) -> None:
    layout = pd.read_csv(plate / "layout.csv")
    assert layout.to_dict("list") == {"well": ["A01", "A02", "A03"], "culture": list(CULTURES)}
    truth = pd.read_csv(plate / "truth" / "cells.csv")
    types = truth.groupby("culture")["cell_type"].agg(lambda t: sorted(set(t)))
    assert types.to_dict() == {
        "astro": ["astro"],
        "neuron": ["neuron"],
        "coculture": ["astro", "neuron"],
    }
    assert tifffile.imread(plate / "fields" / "A-01-01.tif").shape == (len(CHANNELS), 160, 160)


def test_types_differ_in_morphology(plate: Path) -> None:
    areas = []
    for path in sorted((plate / "truth").glob("*_cells.tif")):
        field = path.name.removesuffix("_cells.tif")
        for kind in ("cells", "nuclei"):
            labels = tifffile.imread(plate / "truth" / f"{field}_{kind}.tif")
            counts = np.bincount(labels.ravel())[1:]
            areas.append(pd.DataFrame({"field": field, "label": np.arange(1, len(counts) + 1),
                                       "kind": kind, "area": counts}))  # fmt: skip
    truth = pd.read_csv(plate / "truth" / "cells.csv")
    merged = pd.concat(areas).merge(truth, on=["field", "label"])
    mean = merged[~merged["cut_by_border"]].groupby(["kind", "cell_type"])["area"].mean()
    assert mean["nuclei", "astro"] > 1.2 * mean["nuclei", "neuron"]
    assert mean["cells", "astro"] > 1.5 * mean["cells", "neuron"]


def test_marker_rules_recover_the_true_types(plate: Path) -> None:
    cells = _marker_classes(plate, STUDY_RULES)
    defined = cells["ground_truth"] != UNDEFINED
    assert 0.75 < defined.mean() < 0.98  # cells without a marker stay undefined
    agreement = (cells.loc[defined, "ground_truth"] == cells.loc[defined, "cell_type"]).mean()
    assert agreement > 0.97
    assert not (cells.loc[~cells["labelled"], "ground_truth"] != UNDEFINED).any()
    swapped = {"astro": STUDY_RULES["neuron"], "neuron": STUDY_RULES["astro"]}
    wrong = _marker_classes(plate, swapped)
    defined = wrong["ground_truth"] != UNDEFINED
    assert (wrong.loc[defined, "ground_truth"] == wrong.loc[defined, "cell_type"]).mean() < 0.05


def test_deterministic_and_seed_dependent(tmp_path: Path, plate: Path) -> None:
    again = write_coculture_plate(tmp_path / "again", **SMALL)
    files = sorted(p.relative_to(plate) for p in plate.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (plate / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = write_coculture_plate(tmp_path / "other", **(SMALL | {"seed": 1}))
    a = tifffile.imread(plate / "fields" / "A-03-01.tif")
    assert not np.array_equal(a, tifffile.imread(other / "fields" / "A-03-01.tif"))


def test_the_synthetic_source_writes_a_coculture_plate(tmp_path: Path) -> None:
    source = SyntheticSource(rows="A", columns=[1, 2, 3], sites=1, field_shape_px=(64, 64),
                             cells_per_field=3, design="coculture")  # fmt: skip
    ensure_synthetic_plate(source, "P1", tmp_path / "P1")
    assert pd.read_csv(tmp_path / "P1" / "layout.csv")["culture"].tolist() == list(CULTURES)
    with pytest.raises(ValueError, match="design"):
        SyntheticSource(design="mixed")
