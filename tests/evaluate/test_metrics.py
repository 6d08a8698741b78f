"""Per-class reports, one-vs-rest AUCs and curves, against scikit-learn and hand counts."""

import json

import numpy as np
import pytest
from sklearn import metrics
from sklearn.preprocessing import label_binarize

from cellbench.evaluate.metrics import (
    CURVE_POINTS,
    class_curves,
    classification_metrics,
    per_class_report,
)
from cellbench.report.figures import class_curves_figure, save_figure
from cellbench.report.tables import classification_report

CLASSES = ["a", "b", "c"]


def _predictions(n=3000, seed=0):
    """Labels, informative probabilities and their argmax, with class c rare."""
    rng = np.random.default_rng(seed)
    y = rng.choice(CLASSES, size=n, p=[0.5, 0.4, 0.1])
    logits = rng.normal(size=(n, 3)) + 1.5 * label_binarize(y, classes=CLASSES)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probabilities, np.asarray(CLASSES)[probabilities.argmax(axis=1)]


def test_per_class_report_matches_scikit_learn_and_the_confusion_matrix():
    y, _, predicted = _predictions()
    report = per_class_report(y, predicted, CLASSES)
    reference = metrics.classification_report(y, predicted, labels=CLASSES, output_dict=True)
    confusion = metrics.confusion_matrix(y, predicted, labels=CLASSES)
    for k, name in enumerate(CLASSES):
        for ours, theirs in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")]:
            assert report[name][ours] == pytest.approx(reference[name][theirs])
        assert report[name]["support"] == reference[name]["support"]
        negatives = np.delete(confusion, k, axis=0)  # rows of the other true classes
        true_negatives = np.delete(negatives, k, axis=1).sum()
        assert report[name]["specificity"] == pytest.approx(true_negatives / negatives.sum())


def test_areas_and_curves_match_scikit_learn_one_vs_rest():
    y, probabilities, predicted = _predictions()
    result = classification_metrics(y, predicted, CLASSES, "a", probabilities)
    binary = label_binarize(y, classes=CLASSES)
    aucs = metrics.roc_auc_score(binary, probabilities, average=None)
    aps = metrics.average_precision_score(binary, probabilities, average=None)
    for k, name in enumerate(CLASSES):
        assert result["per_class"][name]["roc_auc"] == pytest.approx(aucs[k])
        assert result["per_class"][name]["average_precision"] == pytest.approx(aps[k])
    assert result["roc_auc_macro"] == pytest.approx(
        metrics.roc_auc_score(y, probabilities, multi_class="ovr", labels=CLASSES)
    )
    assert 0.7 < result["roc_auc_macro"] < 1  # informative, not perfect
    curves = class_curves(y, probabilities, CLASSES)
    for k, name in enumerate(CLASSES):
        curve = curves[name]
        assert len(curve["fpr"]) <= CURVE_POINTS and len(curve["recall"]) <= CURVE_POINTS
        assert curve["fpr"][0] == 0 and curve["tpr"][-1] == 1  # the ends are kept
        assert curve["roc_auc"] == pytest.approx(aucs[k])
        assert curve["positives"] == int((y == name).sum())
        # the thinned curve's area is close to the full one
        assert np.trapezoid(curve["tpr"], curve["fpr"]) == pytest.approx(aucs[k], abs=0.01)
    json.dumps(curves)  # JSON-able


def test_a_class_missing_from_the_test_cells_has_no_recall_or_auc():
    y, probabilities, predicted = _predictions(300)
    keep = y != "c"
    result = classification_metrics(y[keep], predicted[keep], CLASSES, "a", probabilities[keep])
    missing = result["per_class"]["c"]
    assert missing["recall"] is None and missing["roc_auc"] is None and missing["support"] == 0
    assert result["per_class"]["a"]["roc_auc"] is not None
    assert "c" not in class_curves(y[keep], probabilities[keep], CLASSES)


def test_report_table_and_figure(tmp_path):
    records = []
    for seed in (0, 1):
        y, probabilities, predicted = _predictions(500, seed)
        record = classification_metrics(y, predicted, CLASSES, "a", probabilities)
        records.append({"model": "rf", "input": "features", **record})
    table = classification_report(records)
    assert list(table["class"]) == CLASSES and (table["n_seeds"] == 2).all()
    expected = np.mean([r["per_class"]["b"]["roc_auc"] for r in records])
    assert table.set_index("class").loc["b", "roc_auc"] == pytest.approx(expected)
    # a model without probabilities (a VAE's probe) has no AUC columns to average
    y, _, predicted = _predictions(200)
    plain = {"model": "vae", "input": "crops", **classification_metrics(y, predicted, CLASSES, "a")}
    alone = classification_report([plain])
    assert alone["roc_auc"].isna().all() and alone["precision"].notna().all()
    y, probabilities, _ = _predictions(500)
    written = save_figure(
        class_curves_figure(class_curves(y, probabilities, CLASSES), "rf"), tmp_path / "curves"
    )
    assert [p.suffix for p in written] == [".png", ".pdf"] and written[0].stat().st_size > 10_000
