"""Classification metrics of one model on held-out cells: scores, per-class report, curves."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics

CURVE_POINTS = 200  # points kept per ROC or PR curve (the curve's ends always kept)


def classification_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: list[str],
    majority_class: str,
    probabilities: np.ndarray | None = None,
) -> dict:
    """Accuracy, balanced accuracy, macro F1, the per-class report and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : (N,) array of str
    classes : list of str
        Row / column order of the confusion matrix, column order of `probabilities`.
    majority_class : str
        The most frequent class in training: its rate on the test cells is the baseline a
        model must beat.
    probabilities : (N, C) array, optional
        Class probabilities; adds each class's one-vs-rest ROC AUC and average precision (the
        area under its precision-recall curve) and their macro means.

    Returns
    -------
    dict
        JSON-able: ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``majority_rate``,
        ``per_class_accuracy`` {class: recall}, ``per_class`` {class: precision, recall (TPR),
        specificity (TNR), f1, support[, roc_auc, average_precision]}, ``confusion`` (rows =
        true, columns = predicted), ``classes``, ``n_test``[, ``roc_auc_macro``,
        ``average_precision_macro``]. A class absent from the test cells has None for what
        needs it (recall, AUC).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    confusion = metrics.confusion_matrix(y_true, y_pred, labels=classes)
    with warnings.catch_warnings():  # test cells may lack a class (e.g. a split by compound)
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        balanced = float(metrics.balanced_accuracy_score(y_true, y_pred))
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / confusion.sum(axis=1)
    result = {
        "n_test": int(len(y_true)),
        "classes": list(classes),
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced,
        "macro_f1": float(metrics.f1_score(y_true, y_pred, labels=classes, average="macro")),
        "majority_rate": float(np.mean(y_true == majority_class)),
        "per_class_accuracy": {
            c: (None if np.isnan(v) else float(v)) for c, v in zip(classes, per_class, strict=True)
        },
        "per_class": per_class_report(y_true, y_pred, classes),
        "confusion": confusion.tolist(),
    }
    if probabilities is not None:
        areas = class_areas(y_true, probabilities, classes)
        for name, values in areas.items():
            result["per_class"][name].update(values)
        for area in ("roc_auc", "average_precision"):
            defined = [v[area] for v in areas.values() if v[area] is not None]
            result[f"{area}_macro"] = float(np.mean(defined)) if defined else None
    return result


def per_class_report(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Precision, recall (TPR), specificity (TNR), F1 and support of each class (one vs rest).

    Examples
    --------
    >>> report = per_class_report(np.array(["a", "a", "b"]), np.array(["a", "b", "b"]), ["a", "b"])
    >>> report["a"]
    {'precision': 1.0, 'recall': 0.5, 'specificity': 1.0, 'f1': 0.6666666666666666, 'support': 2}
    """
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    confusion = metrics.multilabel_confusion_matrix(y_true, y_pred, labels=classes)
    report = {}
    for k, name in enumerate(classes):
        (tn, fp), (_, _) = confusion[k]
        present = support[k] > 0
        report[name] = {
            "precision": float(precision[k]),
            "recall": float(recall[k]) if present else None,
            "specificity": float(tn / (tn + fp)) if tn + fp else None,
            "f1": float(f1[k]),
            "support": int(support[k]),
        }
    return report


def class_areas(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict:
    """One-vs-rest ROC AUC and average precision of each class; None where a class is absent."""
    areas = {}
    for k, name in enumerate(classes):
        positive = y_true == name
        defined = 0 < positive.sum() < len(positive)
        areas[name] = {
            "roc_auc": float(metrics.roc_auc_score(positive, probabilities[:, k]))
            if defined
            else None,
            "average_precision": float(
                metrics.average_precision_score(positive, probabilities[:, k])
            )
            if defined
            else None,
        }
    return areas


def class_curves(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict:
    """One-vs-rest ROC and precision-recall curves of each class present among the test cells.

    Returns
    -------
    dict
        JSON-able {class: {``fpr``, ``tpr``, ``roc_auc``, ``recall``, ``precision``,
        ``average_precision``, ``positives``}}, each curve thinned to at most `CURVE_POINTS`
        points (its ends kept), so the file stays small for any number of cells.
    """
    curves = {}
    y_true = np.asarray(y_true)
    for k, name in enumerate(classes):
        positive = y_true == name
        if not 0 < positive.sum() < len(positive):
            continue
        fpr, tpr, _ = metrics.roc_curve(positive, probabilities[:, k])
        precision, recall, _ = metrics.precision_recall_curve(positive, probabilities[:, k])
        roc, pr = _thinned(len(fpr)), _thinned(len(recall))
        curves[name] = {
            "fpr": fpr[roc].tolist(),
            "tpr": tpr[roc].tolist(),
            "roc_auc": float(metrics.auc(fpr, tpr)),
            "recall": recall[pr].tolist(),
            "precision": precision[pr].tolist(),
            "average_precision": float(
                metrics.average_precision_score(positive, probabilities[:, k])
            ),
            "positives": int(positive.sum()),
        }
    return curves


def _thinned(n: int) -> np.ndarray:
    """Indices of at most `CURVE_POINTS` points spread over a curve of `n`, ends included."""
    if n <= CURVE_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, CURVE_POINTS).round().astype(int))
