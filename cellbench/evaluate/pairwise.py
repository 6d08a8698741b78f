"""Pairwise linear-SVM separability of classes: the background-confound study's protocol.

For every unordered pair of classes, the cells of the two classes are classified by a linear SVM
under k-fold stratified cross-validation; the table gives the mean and the standard deviation
of the fold accuracies. A pair near 0.5 is not separable from the representation; near 1.0,
fully separable. With ``backgrounds`` (the class of the donor background each cell was pasted
onto, in the swap experiments) the pairs are scored once per background class, on the cells of
that background only.

The output matches the published tables (``results_{base,mask,same}.csv``: Location1,
Location2, Accuracy, StdDev; ``results_{batch,diff}.csv``: Location1, Location2, Background,
Accuracy, StdDev):

- Pairs are ``(classes[i], classes[j])`` for ``i < j``, in the order of ``classes``, and
  backgrounds follow the same order within a pair, as the published files do. Those files use
  the study's own class order (actin, bud neck, cell periphery, ..., vacuole; see
  ``cellbench.report.background_swap.LOCALISATION_CLASSES``), not alphabetical order; Table 1
  averages base and mask per Location1, so pass that order to reproduce it. Default: sorted.
- StdDev is the population SD of the fold accuracies (``np.std``, ddof=0). The published values
  allow only that: with 1000 cells per class every fold accuracy is a multiple of 1/400, and
  every published (Accuracy, StdDev) is consistent with ddof=0 and almost none with ddof=1.

Differences from the study's ``run_svm.py`` (``SVC(kernel="linear", max_iter=100000)`` on the
raw features, unshuffled ``StratifiedKFold(5)``, the first 1000 cells of each class):

- Features are median-imputed and standardised inside each training fold, and the SVM is
  `LinearSVC` (`cellbench.models.classical.build_classifier`, kind ``"svm"``, no class
  weights), which scales to large tables; its squared-hinge loss differs slightly from libsvm's.
- Folds are shuffled with ``seed`` (``shuffle=False`` gives the study's contiguous folds).
- ``max_per_class`` draws a seeded random subset instead of the first rows, and a class with
  fewer cells is used whole instead of crashing. Classes are not balanced otherwise, so with
  unequal classes the chance level is the larger class's share, not 0.5.
- A pair with fewer than ``min_per_class`` cells in either class is skipped and logged.
- An SVM that reaches its iteration limit is logged (per pair), not raised as a warning.

Examples
--------
>>> table = pairwise_svm_accuracy(features, labels, classes=LOCALISATION_CLASSES)  # doctest: +SKIP
>>> write_pairwise_csv(table, out_dir / "results_base.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold

from cellbench.allocation import task_cpus
from cellbench.io.atomic import atomic_path
from cellbench.models.classical import build_classifier

log = logging.getLogger(__name__)

PAIR_COLUMNS = ["Location1", "Location2", "Accuracy", "StdDev"]
BACKGROUND_COLUMNS = ["Location1", "Location2", "Background", "Accuracy", "StdDev"]


def pairwise_svm_accuracy(
    features: np.ndarray,
    labels: np.ndarray,
    backgrounds: np.ndarray | None = None,
    *,
    classes: Sequence | None = None,
    folds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    min_per_class: int | None = None,
    max_per_class: int | None = None,
    shuffle: bool = True,
    max_iter: int = 10_000,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Cross-validated linear-SVM accuracy for every pair of classes (and background class).

    Parameters
    ----------
    features : (N, F) ndarray
        One row per cell; NaN is allowed (median-imputed within each training fold).
    labels : (N,) array
        Class of each cell.
    backgrounds : (N,) array, optional
        Class of the donor background of each cell (swap experiments): one row per pair and
        background class, computed on the cells of that background.
    classes : sequence, optional
        Class order: pairs are ``(classes[i], classes[j])`` with ``i < j``, and backgrounds are
        listed in this order too (others after them, sorted). Labels outside it are ignored.
        Default: the sorted distinct labels.
    folds : int
        Number of stratified cross-validation folds (>= 2).
    seed : int
        Seeds the fold shuffle, the ``max_per_class`` subsample and the SVM.
    C : float
        SVM regularisation (inverse strength).
    min_per_class : int, optional
        A pair is skipped (with a logged warning) when either class has fewer cells; at least
        ``folds`` (the default), since every fold needs a cell of each class.
    max_per_class : int, optional
        Use at most this many cells per class, drawn at random with ``seed`` (the study: 1000).
    shuffle : bool
        Shuffle before splitting into folds (the study did not).
    max_iter : int
        LinearSVC iteration limit; fits that reach it are logged.
    n_jobs : int, optional
        Pairs scored in parallel (joblib processes); 1 runs them in this process. Default:
        the task's CPUs (`cellbench.allocation.task_cpus`). The table is the same for any
        value.

    Returns
    -------
    DataFrame
        Columns Location1, Location2, [Background,] Accuracy, StdDev (fold mean and population
        SD, ddof=0), one row per scored pair (and background), in the published order.
    """
    features, labels, backgrounds = _check_inputs(features, labels, backgrounds)
    min_per_class = folds if min_per_class is None else min_per_class
    _check_counts(folds, min_per_class, max_per_class)
    order = _class_order(labels, classes)
    jobs = []  # (row keys, features, labels), in the published row order
    for first, second in itertools.combinations(order, 2):
        for background in _background_order(backgrounds, order):
            if background is None:
                keys, in_background = (first, second), np.ones(len(labels), bool)
            else:
                keys, in_background = (first, second, background), backgrounds == background
            picked = _pick_cells(
                labels, in_background, (first, second), min_per_class, max_per_class, seed, keys
            )
            if picked is not None:
                jobs.append((keys, features[picked], labels[picked]))
    scores = Parallel(n_jobs=task_cpus() if n_jobs is None else n_jobs)(
        delayed(_cross_validated_accuracy)(x, y, folds, seed, C, shuffle, max_iter)
        for _, x, y in jobs
    )
    rows = []
    for (keys, _, _), (accuracies, unconverged) in zip(jobs, scores, strict=True):
        if unconverged:
            log.warning(
                "pair %s: LinearSVC reached max_iter=%d in %d of %d folds; raise max_iter",
                " / ".join(map(str, keys)),
                max_iter,
                unconverged,
                folds,
            )
        rows.append((*keys, float(np.mean(accuracies)), float(np.std(accuracies))))
    columns = PAIR_COLUMNS if backgrounds is None else BACKGROUND_COLUMNS
    return pd.DataFrame(rows, columns=columns)


def write_pairwise_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a `pairwise_svm_accuracy` table as the published CSV, atomically.

    Columns are written in the published order (Location1, Location2, [Background,] Accuracy,
    StdDev), without the index. Returns the path written.
    """
    columns = BACKGROUND_COLUMNS if "Background" in table.columns else PAIR_COLUMNS
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"table lacks column(s) {missing}; a pairwise table has columns {columns} "
            f"(got {list(table.columns)}). Build it with pairwise_svm_accuracy."
        )
    path = Path(path)
    with atomic_path(path) as tmp:
        table[columns].to_csv(tmp, index=False)
    return path


def _check_inputs(features, labels, backgrounds):
    features = np.asarray(features)
    labels = np.asarray(labels)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, F); got an array of shape {features.shape}.")
    if labels.shape != (len(features),):
        raise ValueError(
            f"labels must be 1-D with one entry per row of features ({len(features)}); "
            f"got shape {labels.shape}."
        )
    if backgrounds is not None:
        backgrounds = np.asarray(backgrounds)
        if backgrounds.shape != labels.shape:
            raise ValueError(
                f"backgrounds must have one entry per cell, shape {labels.shape}; "
                f"got {backgrounds.shape}."
            )
    return features, labels, backgrounds


def _check_counts(folds: int, min_per_class: int, max_per_class: int | None) -> None:
    if folds < 2:
        raise ValueError(f"folds must be at least 2; got {folds}.")
    if min_per_class < folds:
        raise ValueError(
            f"min_per_class ({min_per_class}) must be at least folds ({folds}): every fold "
            "needs a cell of each class. Leave it unset to use folds."
        )
    if max_per_class is not None and max_per_class < min_per_class:
        raise ValueError(
            f"max_per_class ({max_per_class}) must be at least min_per_class ({min_per_class})."
        )


def _class_order(labels: np.ndarray, classes: Sequence | None) -> list:
    if classes is None:
        return sorted(set(labels.tolist()))
    order = list(classes)
    if len(set(order)) != len(order):
        raise ValueError(f"classes must not repeat a class; got {order}.")
    ignored = sorted(set(labels.tolist()) - set(order), key=str)
    if ignored:
        log.info("labels not in classes are ignored: %s", ignored)
    return order


def _background_order(backgrounds: np.ndarray | None, order: list) -> list:
    if backgrounds is None:
        return [None]
    present = set(backgrounds.tolist())
    return [c for c in order if c in present] + sorted(present - set(order), key=str)


def _pick_cells(labels, in_background, pair, min_per_class, max_per_class, seed, keys):
    """Indices of the pair's cells (each class subsampled to max_per_class), or None if too few."""
    rng = np.random.default_rng(seed)
    picked = []
    for cls in pair:
        cells = np.flatnonzero(in_background & (labels == cls))
        if len(cells) < min_per_class:
            log.warning(
                "pair %s skipped: class %r has %d cell(s), fewer than min_per_class=%d",
                " / ".join(map(str, keys)),
                cls,
                len(cells),
                min_per_class,
            )
            return None
        if max_per_class is not None and len(cells) > max_per_class:
            cells = np.sort(rng.choice(cells, size=max_per_class, replace=False))
        picked.append(cells)
    return np.concatenate(picked)


def _cross_validated_accuracy(x, y, folds, seed, C, shuffle, max_iter):
    """Fold accuracies of the linear SVM, and how many folds hit the iteration limit."""
    splitter = StratifiedKFold(
        n_splits=folds, shuffle=shuffle, random_state=seed if shuffle else None
    )
    accuracies, unconverged = [], 0
    for train, test in splitter.split(x, y):
        model = build_classifier("svm", seed, C=C, class_weight=None, max_iter=max_iter)
        with warnings.catch_warnings():
            # Counted from n_iter_ below and logged per pair by the caller.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x[train], y[train])
        unconverged += int(np.max(model.named_steps["classify"].n_iter_) >= max_iter)
        accuracies.append(model.score(x[test], y[test]))
    return np.array(accuracies), unconverged
