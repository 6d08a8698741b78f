"""Tables across seeds: mean, SD (ddof=1) and 3 standard errors, per class, and LaTeX."""

import math

import pandas as pd

from cellbench.report.tables import per_class_accuracy, summarise_metrics, to_latex


def test_metrics_across_seeds_by_hand():
    records = [
        {"model": "vae", "input": "crops:x", "seed": s, "map": v, "silhouette": 0.1}
        for s, v in enumerate([0.2, 0.4, 0.9])
    ]
    table = summarise_metrics(records, ["map", "silhouette", "nsc"])
    row = table.iloc[0]
    sd = math.sqrt(((0.2 - 0.5) ** 2 + (0.4 - 0.5) ** 2 + (0.9 - 0.5) ** 2) / 2)
    assert row["n_seeds"] == 3
    assert math.isclose(row["map_mean"], 0.5) and math.isclose(row["map_sd"], sd)
    assert math.isclose(row["map_pm3se"], 3 * sd / math.sqrt(3))
    assert "nsc_mean" not in table  # measured by no record: no column


def test_per_class_accuracy_ignores_classes_absent_from_a_seed():
    records = [
        {"model": "rf", "input": "f", "per_class_accuracy": {"a": 0.5, "b": None}},
        {"model": "rf", "input": "f", "per_class_accuracy": {"a": 0.7, "b": 0.4}},
    ]
    table = per_class_accuracy(records)
    assert math.isclose(table.loc[0, "a"], 0.6) and math.isclose(table.loc[0, "b"], 0.4)


def test_latex_escapes_and_rules():
    tex = to_latex(pd.DataFrame({"model": ["rf_a"], "input": ["x"], "acc": [0.5]}), "50% of cells")
    assert "rf\\_a & x & 0.500 \\\\" in tex and "\\caption{50\\% of cells}" in tex
    assert tex.count("\\toprule") == 1 and tex.count("\\bottomrule") == 1


def test_fold_notes_say_the_spread_is_over_folds(tmp_path):
    from cellbench.report.tables import fold_notes
    from tests.helpers import experiment_dict, small_config

    raw = experiment_dict(tmp_path / "r", seeds=[0, 1, 2])
    raw["models"].append({**raw["models"][0], "name": "rf_folds"})
    raw["models"][1]["split"] = {"by": "cell", "folds": 3}
    config = small_config(tmp_path / "r", seeds=[0, 1, 2], models=raw["models"])
    notes = fold_notes(config)
    assert len(notes) == 1 and notes[0].startswith("rf_folds: seeds are folds")
    assert "3-fold" in notes[0] and "over folds" in notes[0]
