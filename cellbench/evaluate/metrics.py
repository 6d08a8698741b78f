"""Classification metrics of one model on held-out cells."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], majority_class: str
) -> dict:
    """Accuracy, balanced accuracy, macro F1, per-class accuracy and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : (N,) array of str
    classes : list of str
        Row / column order of the confusion matrix.
    majority_class : str
        The most frequent class in training: its rate on the test cells is the baseline a
        model must beat.

    Returns
    -------
    dict
        JSON-able: ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``majority_rate``,
        ``per_class_accuracy`` {class: recall}, ``confusion`` (rows = true, columns = predicted),
        ``classes``, ``n_test``.
    """
    confusion = metrics.confusion_matrix(y_true, y_pred, labels=classes)
    with warnings.catch_warnings():  # test cells may lack a class (e.g. a split by compound)
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        balanced = float(metrics.balanced_accuracy_score(y_true, y_pred))
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / confusion.sum(axis=1)
    return {
        "n_test": int(len(y_true)),
        "classes": list(classes),
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced,
        "macro_f1": float(metrics.f1_score(y_true, y_pred, labels=classes, average="macro")),
        "majority_rate": float(np.mean(np.asarray(y_true) == majority_class)),
        "per_class_accuracy": {
            c: (None if np.isnan(v) else float(v)) for c, v in zip(classes, per_class, strict=True)
        },
        "confusion": confusion.tolist(),
    }
