"""Pairwise linear-SVM accuracy (the background-confound study's protocol) and its CSV."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from cellbench.evaluate.pairwise import pairwise_svm_accuracy, write_pairwise_csv

DATA = Path(
    os.environ.get("CELLBENCH_DATA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)
PUBLISHED = DATA / "background_swap" / "results" / "pifia"
needs_published = pytest.mark.skipif(
    not PUBLISHED.is_dir(), reason=f"published background-swap results not found at {PUBLISHED}"
)


def three_classes(n_per_class=150, n_features=5, seed=0):
    """Classes a and b drawn from one distribution, c far from both; rows ordered a, b, c."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n_per_class, n_features))
    b = rng.normal(size=(n_per_class, n_features))
    c = rng.normal(loc=8.0, size=(n_per_class, n_features))
    labels = np.repeat(np.array(["a", "b", "c"], dtype=object), n_per_class)
    return np.vstack([a, b, c]), labels


def pair_row(table, first, second, background=None):
    match = (table["Location1"] == first) & (table["Location2"] == second)
    if background is not None:
        match &= table["Background"] == background
    assert match.sum() == 1
    return table[match].iloc[0]


def test_identical_classes_are_at_chance_and_distant_ones_separable():
    features, labels = three_classes()
    table = pairwise_svm_accuracy(features, labels, seed=0)
    assert list(table.columns) == ["Location1", "Location2", "Accuracy", "StdDev"]
    assert list(zip(table["Location1"], table["Location2"], strict=True)) == [
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
    ]
    assert 0.3 < pair_row(table, "a", "b")["Accuracy"] < 0.7
    assert pair_row(table, "a", "c")["Accuracy"] > 0.95
    assert pair_row(table, "b", "c")["Accuracy"] > 0.95
    assert (table["StdDev"] >= 0).all()


def reference_scores(features, labels, pair, folds, seed, C=1.0):
    """Fold accuracies recomputed independently: impute + scale + LinearSVC on the same folds."""
    chosen = np.isin(labels, pair)
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LinearSVC(C=C, dual="auto", max_iter=10_000, random_state=seed),
    )
    return cross_val_score(model, features[chosen], labels[chosen], cv=folds)


def test_mean_and_population_sd_of_the_fold_accuracies():
    features, labels = three_classes(n_per_class=60, seed=3)
    table = pairwise_svm_accuracy(features, labels, seed=7, folds=4, C=0.5)
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=7)
    scores = reference_scores(features, labels, ["a", "b"], folds, seed=7, C=0.5)
    row = pair_row(table, "a", "b")
    assert row["Accuracy"] == pytest.approx(scores.mean())
    assert row["StdDev"] == pytest.approx(np.std(scores, ddof=0))
    assert row["StdDev"] != pytest.approx(np.std(scores, ddof=1))


def test_seed_reproduces_and_shuffle_false_uses_contiguous_folds():
    features, labels = three_classes(n_per_class=40)
    first = pairwise_svm_accuracy(features, labels, seed=1)
    pd.testing.assert_frame_equal(first, pairwise_svm_accuracy(features, labels, seed=1))
    unshuffled = pairwise_svm_accuracy(features, labels, shuffle=False, seed=1)
    scores = reference_scores(features, labels, ["a", "b"], StratifiedKFold(n_splits=5), seed=1)
    row = pair_row(unshuffled, "a", "b")
    assert (row["Accuracy"], row["StdDev"]) == pytest.approx((scores.mean(), scores.std()))
    assert row["Accuracy"] != pytest.approx(pair_row(first, "a", "b")["Accuracy"])


def test_classes_set_the_pair_order_and_restrict_the_classes():
    features, labels = three_classes(n_per_class=30)
    table = pairwise_svm_accuracy(features, labels, classes=["c", "a"])
    assert list(zip(table["Location1"], table["Location2"], strict=True)) == [("c", "a")]


def test_small_classes_are_skipped_with_a_warning(caplog):
    features, labels = three_classes(n_per_class=30)
    keep = np.ones(len(labels), bool)
    keep[np.flatnonzero(labels == "c")[4:]] = False  # c keeps 4 cells, fewer than 5 folds
    with caplog.at_level(logging.WARNING, logger="cellbench.evaluate.pairwise"):
        table = pairwise_svm_accuracy(features[keep], labels[keep])
    assert list(zip(table["Location1"], table["Location2"], strict=True)) == [("a", "b")]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2 and all("'c' has 4 cell(s)" in m for m in skipped)


def test_min_per_class_below_folds_is_refused():
    features, labels = three_classes(n_per_class=10)
    with pytest.raises(ValueError, match=r"min_per_class \(3\) must be at least folds \(5\)"):
        pairwise_svm_accuracy(features, labels, min_per_class=3)


def test_max_per_class_subsamples_each_class():
    features, labels = three_classes(n_per_class=100)
    table = pairwise_svm_accuracy(features, labels, max_per_class=20, folds=5)
    # 40 cells per pair, 8 per test fold: every fold accuracy is a multiple of 1/8.
    fold_sums = table["Accuracy"] * 5 * 8
    np.testing.assert_allclose(fold_sums, np.round(fold_sums), atol=1e-9)


def test_nan_features_are_imputed():
    features, labels = three_classes(n_per_class=50)
    features[::5, 0] = np.nan
    features[:, 1] = np.nan  # a column that is empty throughout
    table = pairwise_svm_accuracy(features, labels)
    assert table["Accuracy"].notna().all() and pair_row(table, "a", "c")["Accuracy"] > 0.95


def test_one_row_per_pair_and_background_on_that_background_cells_only():
    features, labels = three_classes(n_per_class=240, seed=1)
    rng = np.random.default_rng(1)
    backgrounds = rng.permutation(np.tile(np.array(["a", "b", "c"], dtype=object), 240))
    # Only on background "a" does class b differ from class a.
    features[(labels == "b") & (backgrounds == "a")] -= 8.0  # away from c too
    table = pairwise_svm_accuracy(features, labels, backgrounds, seed=0)
    assert list(table.columns) == ["Location1", "Location2", "Background", "Accuracy", "StdDev"]
    assert len(table) == 3 * 3
    assert list(table["Background"]) == ["a", "b", "c"] * 3  # backgrounds vary fastest
    assert pair_row(table, "a", "b", "a")["Accuracy"] > 0.95
    assert 0.3 < pair_row(table, "a", "b", "b")["Accuracy"] < 0.7
    assert 0.3 < pair_row(table, "a", "b", "c")["Accuracy"] < 0.7
    assert (table.loc[table["Location2"] == "c", "Accuracy"] > 0.95).all()


def test_inputs_are_checked():
    features, labels = three_classes(n_per_class=10)
    with pytest.raises(ValueError, match="one entry per row"):
        pairwise_svm_accuracy(features, labels[:-1])
    with pytest.raises(ValueError, match="backgrounds"):
        pairwise_svm_accuracy(features, labels, labels[:5])


def test_csv_has_published_columns_and_reads_back(tmp_path):
    features, labels = three_classes(n_per_class=40)
    table = pairwise_svm_accuracy(features, labels)
    path = write_pairwise_csv(
        table[["Accuracy", "StdDev", "Location2", "Location1"]], tmp_path / "r.csv"
    )
    back = pd.read_csv(path)
    assert list(back.columns) == ["Location1", "Location2", "Accuracy", "StdDev"]
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]  # no temporary file left


def test_csv_without_required_columns_is_refused(tmp_path):
    with pytest.raises(ValueError, match="lacks column"):
        write_pairwise_csv(
            pd.DataFrame({"Location1": ["a"], "Accuracy": [1.0]}), tmp_path / "r.csv"
        )
    assert not (tmp_path / "r.csv").exists()


@needs_published
@pytest.mark.parametrize("experiment", ["base", "diff"])
def test_csv_matches_the_published_format(tmp_path, experiment):
    published = pd.read_csv(PUBLISHED / f"results_{experiment}.csv")
    features, labels = three_classes(n_per_class=40)
    backgrounds = None
    if experiment == "diff":
        backgrounds = np.tile(np.array(["a", "b"], dtype=object), len(labels) // 2)
    table = pairwise_svm_accuracy(features, labels, backgrounds)
    back = pd.read_csv(write_pairwise_csv(table, tmp_path / f"results_{experiment}.csv"))
    assert list(back.columns) == list(published.columns)
    assert (back.dtypes == published.dtypes).all()


@needs_published
def test_published_pair_order_is_reproduced_with_the_study_class_order():
    # The study lists pairs in its own class order (nucleus before nuclear periphery, spindle
    # pole before peroxisome), not alphabetically.
    published = pd.read_csv(PUBLISHED / "results_base.csv")
    study_order = list(dict.fromkeys([*published["Location1"], *published["Location2"]]))
    assert len(study_order) == 15 and study_order != sorted(study_order)
    labels = np.repeat(np.array(study_order, dtype=object), 5)
    features = np.random.default_rng(0).normal(size=(len(labels), 3))
    table = pairwise_svm_accuracy(features, labels, classes=study_order)
    key = ["Location1", "Location2"]
    pd.testing.assert_frame_equal(table[key], published[key], check_dtype=False)


@needs_published
def test_published_background_order_is_reproduced():
    published = pd.read_csv(PUBLISHED / "results_diff.csv")
    study_order = list(dict.fromkeys([*published["Location1"], *published["Location2"]]))
    subset = ["ER", "nucleus", "nuclear periphery", "spindle pole", "peroxisome"]
    order = [c for c in study_order if c in subset]
    labels = np.repeat(np.array(order, dtype=object), 5 * len(order))
    backgrounds = np.tile(np.repeat(np.array(order, dtype=object), 5), len(order))
    features = np.random.default_rng(0).normal(size=(len(labels), 3))
    table = pairwise_svm_accuracy(features, labels, backgrounds, classes=order)
    key = ["Location1", "Location2", "Background"]
    expected = published.loc[published[key].isin(subset).all(axis=1), key].reset_index(drop=True)
    assert len(expected) == 10 * 5
    pd.testing.assert_frame_equal(table[key], expected, check_dtype=False)
