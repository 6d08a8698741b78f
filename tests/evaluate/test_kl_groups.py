"""KL over the proportions of predicted classes per group: the study's Figure 3A definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy

from cellbench.config.analyses import KLPair
from cellbench.evaluate.distributions import (
    PROPORTION_KL_COLUMNS,
    class_proportions,
    proportion_kl_divergence,
)
from cellbench.paths import ResultsPaths
from cellbench.report.aggregate import _kl_study

CLASSES = ["nucleus", "cytoplasm", "ER"]
# Protein X: 4 cells. Original crops: 2 nucleus, 1 cytoplasm, 1 ER -> P = (1/2, 1/4, 1/4);
# masked: 1 nucleus, 2 cytoplasm, 1 ER -> Q = (1/4, 1/2, 1/4).
# Protein Y: 2 cells, both nucleus in both conditions -> P = Q, KL 0.
ORIGINAL = ["nucleus", "nucleus", "cytoplasm", "ER", "nucleus", "nucleus"]
MASKED = ["nucleus", "cytoplasm", "cytoplasm", "ER", "nucleus", "nucleus"]
GROUPS = ["X", "X", "X", "X", "Y", "Y"]


def test_proportions_and_kl_by_hand_and_by_scipy():
    assert class_proportions(np.array(ORIGINAL[:4]), CLASSES).tolist() == [0.5, 0.25, 0.25]
    table = proportion_kl_divergence(
        np.array(ORIGINAL), np.array(MASKED), np.array(GROUPS), CLASSES
    )
    assert list(table.columns) == PROPORTION_KL_COLUMNS
    assert table["group"].tolist() == ["X", "Y"] and table["n_cells"].tolist() == [4, 2]
    by_hand = 0.5 * np.log(0.5 / 0.25) + 0.25 * np.log(0.25 / 0.5) + 0.25 * np.log(1.0)
    assert by_hand == pytest.approx(0.25 * np.log(2))
    kl_x, kl_y = table["kl_of_proportions"]
    assert kl_x == pytest.approx(by_hand, rel=1e-9)
    assert kl_x == pytest.approx(entropy([0.5, 0.25, 0.25], [0.25, 0.5, 0.25]), rel=1e-9)
    assert kl_y == pytest.approx(0.0, abs=1e-12)


def test_direction_is_original_given_changed():
    forward = proportion_kl_divergence(
        np.array(ORIGINAL[:4]), np.array(["ER"] * 3 + ["nucleus"]), np.zeros(4), CLASSES
    )["kl_of_proportions"][0]
    backward = proportion_kl_divergence(
        np.array(["ER"] * 3 + ["nucleus"]), np.array(ORIGINAL[:4]), np.zeros(4), CLASSES
    )["kl_of_proportions"][0]
    p, q = [0.5, 0.25, 0.25], [0.25, 0.0, 0.75]
    eps = 1e-10
    smooth = [np.maximum(v, eps) / np.maximum(v, eps).sum() for v in (p, q)]
    assert forward == pytest.approx(entropy(*smooth), rel=1e-9)  # a class lost: large, finite
    assert forward > 4 and np.isfinite(forward)
    assert backward == pytest.approx(entropy(q, p), rel=1e-6)
    assert forward != pytest.approx(backward)


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="one entry per cell"):
        proportion_kl_divergence(
            np.array(ORIGINAL), np.array(MASKED[:3]), np.array(GROUPS), CLASSES
        )


def write_predictions(paths: ResultsPaths, model: str, predicted: list[str]) -> None:
    """Predictions of 6 test cells: hard classes, and probabilities that put 0.8 on them."""
    frame = pd.DataFrame(
        {
            "Metadata_CellId": [f"c{i}" for i in range(6)],
            "Metadata_Protein": GROUPS,
            "split": "test",
            "predicted": predicted,
        }
    )
    for name in CLASSES:
        frame[f"probability_{name}"] = [0.8 if p == name else 0.1 for p in predicted]
    path = paths.predictions(model, 0)
    path.parent.mkdir(parents=True)
    frame.to_parquet(path)


def test_kl_study_writes_both_statistics_per_group(tmp_path):
    paths = ResultsPaths(tmp_path)
    write_predictions(paths, "orig", ORIGINAL)
    write_predictions(paths, "mask", MASKED)
    summary, pngs = _kl_study(KLPair(original="orig", masked="mask", per="protein"), 0, paths)

    values = pd.read_csv(paths.report_file("kl_orig_vs_mask.csv"))
    assert values["group"].tolist() == ["X", "Y"]
    expected = entropy([0.5, 0.25, 0.25], [0.25, 0.5, 0.25])
    assert values["kl_of_proportions"].tolist() == pytest.approx([expected, 0.0], abs=1e-9)
    mean_p = [(0.8 * 2 + 0.1 * 2) / 4, (0.8 + 0.1 * 3) / 4, (0.8 + 0.1 * 3) / 4]
    mean_q = [(0.8 + 0.1 * 3) / 4, (0.8 * 2 + 0.1 * 2) / 4, (0.8 + 0.1 * 3) / 4]
    assert values["kl"][0] == pytest.approx(entropy(mean_p, mean_q), rel=1e-6)  # unchanged
    assert summary["statistic"].tolist() == ["mean probabilities", "predicted proportions"]
    assert summary["kl_mean"].iloc[1] == pytest.approx(expected / 2, rel=1e-9)
    assert [p.name for p in pngs] == ["kl_orig_vs_mask.png", "kl_orig_vs_mask_proportions.png"]
    assert all(p.stat().st_size > 0 for p in pngs)


def test_kl_study_per_cell_is_unchanged(tmp_path):
    paths = ResultsPaths(tmp_path)
    write_predictions(paths, "orig", ORIGINAL)
    write_predictions(paths, "mask", MASKED)
    summary, pngs = _kl_study(KLPair(original="orig", masked="mask", per="cell"), 0, paths)
    values = pd.read_csv(paths.report_file("kl_orig_vs_mask.csv"))
    assert list(values.columns) == ["cell_id", "kl"] and len(values) == 6
    assert summary["statistic"].tolist() == ["per cell"] and len(pngs) == 1
    changed = values["kl"].to_numpy() > 0
    assert changed.tolist() == [a != b for a, b in zip(ORIGINAL, MASKED, strict=True)]
