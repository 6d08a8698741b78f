import numpy as np
import pandas as pd
import tifffile
from skimage.segmentation import clear_border

from cellbench.config import SegmentationConfig
from cellbench.paths import ResultsPaths
from cellbench.segment import segment_field
from cellbench.segment.store import read_labels, stored_fields


def match_f1(truth: np.ndarray, predicted: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of objects matched one-to-one at IoU > threshold (IoU > 0.5 makes matches unique)."""
    t, p = truth.ravel(), predicted.ravel()
    both = (t > 0) & (p > 0)
    pairs = (
        pd.Series(1, index=pd.MultiIndex.from_arrays([t[both], p[both]]))
        .groupby(level=[0, 1])
        .sum()
    )
    t_area = np.bincount(t)
    p_area = np.bincount(p)
    inter = pairs.to_numpy()
    ti, pi = pairs.index.get_level_values(0), pairs.index.get_level_values(1)
    iou = inter / (t_area[ti] + p_area[pi] - inter)
    matches = int(np.sum(iou > threshold))
    n_true, n_pred = len(np.unique(t[t > 0])), len(np.unique(p[p > 0]))
    return 2 * matches / (n_true + n_pred)


def test_segmentation_recovers_synthetic_truth(segmented_plate):
    config, plate = segmented_plate
    store = ResultsPaths(config.results_root).label_store("P1")
    assert stored_fields(store) == [f.name for f in plate.fields]
    scores = {"cells": [], "nuclei": []}
    for field in plate.fields:
        cells, nuclei = read_labels(store, field.name)
        true_cells = tifffile.imread(plate.folder / "truth" / f"{field.name}_cells.tif")
        true_nuclei = tifffile.imread(plate.folder / "truth" / f"{field.name}_nuclei.tif")
        # Compare only cells away from the border (and their nuclei): segmentation drops the rest.
        true_cells = clear_border(true_cells)
        true_nuclei = np.where(np.isin(true_nuclei, true_cells), true_nuclei, 0)
        scores["cells"].append(match_f1(true_cells, cells))
        scores["nuclei"].append(match_f1(true_nuclei, nuclei))
    assert np.mean(scores["nuclei"]) > 0.9, scores
    assert np.mean(scores["cells"]) > 0.8, scores


def test_nucleus_carries_its_cell_label(segmented_plate):
    config, plate = segmented_plate
    store = ResultsPaths(config.results_root).label_store("P1")
    cells, nuclei = read_labels(store, plate.fields[0].name)
    assert cells.dtype == np.int32 and nuclei.dtype == np.int32
    inside = nuclei > 0
    assert np.all(cells[inside] == nuclei[inside])
    assert set(np.unique(nuclei[inside])) == set(np.unique(cells[cells > 0]))


def test_border_objects_are_removed(segmented_plate):
    config, plate = segmented_plate
    cells, _ = read_labels(
        ResultsPaths(config.results_root).label_store("P1"), plate.fields[0].name
    )
    edges = np.concatenate([cells[0], cells[-1], cells[:, 0], cells[:, -1]])
    assert np.all(edges == 0)


def test_blank_field_gives_no_objects():
    image = np.full((3, 64, 64), 100, np.uint16)
    cells, nuclei = segment_field(image, ["DNA", "tubulin", "actin"], SegmentationConfig())
    assert cells.max() == 0 and nuclei.max() == 0
