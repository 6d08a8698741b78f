"""Instance segmentation scores: object matching by IoU, F1 and the DSB 2018 average precision.

Label images are (Y, X) integer arrays; 0 is background and every other value is one object
(labels need not be consecutive). All pairwise intersections come from one `np.bincount` over
pair codes, so images with thousands of objects score in milliseconds.

Conventions (never NaN): a ratio whose numerator and denominator are both 0 is 1.0 when truth
and prediction are both empty (nothing to find, nothing found) and 0.0 otherwise.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

DEFAULT_THRESHOLDS = np.arange(0.5, 1.0, 0.05)

# Above this IoU a true object can overlap at most one predicted object that much (and the
# other way round): each such intersection is more than half of both objects.
_UNIQUE_ABOVE = 0.5


def _as_labels(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == bool:
        return image.astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer):
        return image
    if np.issubdtype(image.dtype, np.floating) and np.all(np.mod(image, 1) == 0):
        return image.astype(np.int64)
    raise ValueError(f"{name} must hold integer labels, got dtype {image.dtype}")


def _dense_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (the sorted non-zero labels, an index image: 0 for background, k for labels[k-1])."""
    flat = labels.ravel()
    if flat.size == 0:
        return np.zeros(0, labels.dtype), np.zeros(0, np.intp)
    low, high = flat.min(), flat.max()
    if low >= 0 and int(high) <= 4 * flat.size + 65_536:
        # Small labels: a lookup table avoids sorting every pixel.
        index = flat.astype(np.intp, copy=False)
        present = np.bincount(index, minlength=int(high) + 1) > 0
        present[0] = False
        present_at = np.flatnonzero(present)
        lookup = np.zeros(int(high) + 1, np.intp)
        lookup[present_at] = np.arange(1, len(present_at) + 1)
        return present_at.astype(labels.dtype), lookup[index]
    values, inverse = np.unique(flat, return_inverse=True)
    inverse = inverse.ravel()
    if (values == 0).any():
        zero = int(np.searchsorted(values, 0))
        # Move background to index 0 and shift the labels below it (negative ones) up by one.
        inverse = np.where(inverse == zero, 0, inverse + (inverse < zero))
        values = np.delete(values, zero)
    else:
        inverse = inverse + 1
    return values, inverse


def iou_matrix(
    truth: np.ndarray, predicted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every (true object, predicted object) pair, from two (Y, X) label images.

    Parameters
    ----------
    truth, predicted : np.ndarray
        Label images of the same shape; 0 is background.

    Returns
    -------
    true_labels : np.ndarray
        The (T,) sorted non-zero labels of `truth`.
    predicted_labels : np.ndarray
        The (P,) sorted non-zero labels of `predicted`.
    iou : np.ndarray
        (T, P) float64 intersection over union; 0 where a pair does not overlap.
    """
    truth = _as_labels(truth, "truth")
    predicted = _as_labels(predicted, "predicted")
    if truth.shape != predicted.shape:
        raise ValueError(f"truth {truth.shape} and prediction {predicted.shape} differ in shape")
    true_labels, t_index = _dense_labels(truth)
    pred_labels, p_index = _dense_labels(predicted)
    n_t, n_p = len(true_labels) + 1, len(pred_labels) + 1  # with background at index 0
    codes = t_index.astype(np.int64) * n_p + p_index
    counts = np.bincount(codes, minlength=n_t * n_p).reshape(n_t, n_p)
    intersection = counts[1:, 1:]
    true_area = counts[1:, :].sum(axis=1)
    pred_area = counts[:, 1:].sum(axis=0)
    union = true_area[:, None] + pred_area[None, :] - intersection
    iou = intersection / np.maximum(union, 1)  # every object has area >= 1, so union >= 1
    return true_labels, pred_labels, iou.astype(np.float64)


def match_at(iou: np.ndarray, threshold: float) -> int:
    """Count true positives: one-to-one matches with IoU > `threshold`.

    For `threshold` >= 0.5 matches are unique by construction, so every entry above it is one
    match. Below 0.5 an object can pass with several partners; `linear_sum_assignment` then
    finds the most matches (ties broken by the largest total IoU).

    Parameters
    ----------
    iou : np.ndarray
        (T, P) IoU matrix, as from `iou_matrix`.
    threshold : float
        IoU a pair must exceed to match.

    Returns
    -------
    int
        Number of matched pairs.
    """
    iou = np.asarray(iou, dtype=np.float64)
    above = iou > threshold
    if threshold >= _UNIQUE_ABOVE:
        return int(above.sum())
    rows = np.flatnonzero(above.any(axis=1))
    cols = np.flatnonzero(above.any(axis=0))
    if len(rows) == 0:
        return 0
    sub_above = above[np.ix_(rows, cols)]
    sub_iou = iou[np.ix_(rows, cols)]
    # One per match, plus at most 0.5 in all from the IoUs: the count always dominates.
    gain = sub_above + sub_above * sub_iou / (2 * min(sub_above.shape))
    r, c = linear_sum_assignment(gain, maximize=True)
    return int(sub_above[r, c].sum())


def _ratio(numerator: float, denominator: float, both_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return float(numerator / denominator)


def _counts(tp: int, n_true: int, n_predicted: int) -> dict:
    """Precision, recall and F1 from counts, with the empty-image conventions."""
    fp, fn = n_predicted - tp, n_true - tp
    both_empty = n_true == 0 and n_predicted == 0
    return {
        "precision": _ratio(tp, tp + fp, both_empty),
        "recall": _ratio(tp, tp + fn, both_empty),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, both_empty),
    }


def score_image(truth: np.ndarray, predicted: np.ndarray, thresholds=DEFAULT_THRESHOLDS) -> dict:
    """Score one predicted label image against its ground truth.

    Parameters
    ----------
    truth, predicted : np.ndarray
        (Y, X) label images; 0 is background.
    thresholds : array-like
        IoU thresholds of the average precision (default 0.5, 0.55, ..., 0.95).

    Returns
    -------
    dict
        ``n_true``, ``n_predicted``; at IoU > 0.5: ``tp``, ``fp``, ``fn``, ``precision``,
        ``recall``, ``f1``; ``ap_50_95``, the Data Science Bowl 2018 score: the mean over
        `thresholds` of TP / (TP + FP + FN); and ``ap_by_threshold``, {threshold: that ratio}.
        Both images empty scores 1.0 everywhere; only one empty scores 0.0.
    """
    _, _, iou = iou_matrix(truth, predicted)
    n_true, n_predicted = iou.shape
    both_empty = n_true == 0 and n_predicted == 0
    tp = match_at(iou, 0.5)
    per_threshold = {}
    for threshold in np.atleast_1d(np.asarray(thresholds, dtype=np.float64)):
        hits = match_at(iou, float(threshold))
        per_threshold[round(float(threshold), 6)] = _ratio(
            hits, n_true + n_predicted - hits, both_empty
        )
    return {
        "n_true": int(n_true),
        "n_predicted": int(n_predicted),
        "tp": int(tp),
        "fp": int(n_predicted - tp),
        "fn": int(n_true - tp),
        **_counts(tp, n_true, n_predicted),
        "ap_50_95": float(np.mean(list(per_threshold.values()))) if per_threshold else 0.0,
        "ap_by_threshold": per_threshold,
    }


def summarise(scores: list[dict]) -> dict:
    """Combine per-image scores of `score_image` into overall scores.

    Parameters
    ----------
    scores : list of dict
        One `score_image` result per image (extra keys are ignored; ``seconds`` is summed
        when every image has it).

    Returns
    -------
    dict
        ``n_images``, ``n_true``, ``n_predicted``; means over images: ``mean_precision``,
        ``mean_recall``, ``mean_f1``, ``mean_ap_50_95`` and ``mean_ap_by_threshold``; pooled
        over images (sums of the counts): ``tp``, ``fp``, ``fn``, ``pooled_precision``,
        ``pooled_recall``, ``pooled_f1``.
    """
    if not scores:
        raise ValueError("no image scores to summarise")
    total = {key: int(sum(s[key] for s in scores)) for key in ("n_true", "n_predicted", "tp")}
    pooled = _counts(total["tp"], total["n_true"], total["n_predicted"])
    summary = {
        "n_images": len(scores),
        "n_true": total["n_true"],
        "n_predicted": total["n_predicted"],
        **{
            f"mean_{key}": float(np.mean([s[key] for s in scores]))
            for key in ("precision", "recall", "f1", "ap_50_95")
        },
        "tp": total["tp"],
        "fp": total["n_predicted"] - total["tp"],
        "fn": total["n_true"] - total["tp"],
        **{f"pooled_{key}": value for key, value in pooled.items()},
    }
    by_threshold = [s.get("ap_by_threshold") for s in scores]
    if all(b is not None and b.keys() == by_threshold[0].keys() for b in by_threshold):
        summary["mean_ap_by_threshold"] = {
            t: float(np.mean([b[t] for b in by_threshold])) for t in by_threshold[0]
        }
    if all("seconds" in s for s in scores):
        summary["seconds"] = float(sum(s["seconds"] for s in scores))
    return summary
