"""Class-balanced training sets: undersampling to the smallest class, oversampling to N.

The nucleocentric study balances its training cells two ways, here as positions into the
training cells (so a cell drawn twice is trained on twice):

- `undersample`: every class cut to the smallest class's count, drawn without replacement,
  as imbalanced-learn's ``RandomUnderSampler()`` (``sampling_strategy="auto"``, i.e. every
  class but the minority, ``replacement=False``) does before the study's random forest; the
  cells drawn differ (another random generator), the counts are the same;
- `oversample`: N cells of every class drawn *with* replacement (the study's ``--sample
  oversampling``, 5,000 per class, pandas' ``groupby(target).sample(n, replace=True)``); a
  class with more than N cells is cut to N, one with fewer repeats cells. This is not
  imbalanced-learn's ``RandomOverSampler``, which keeps every cell and adds copies of the
  smaller classes up to the majority's count.

Both return positions, so crops need not be copied, and need no extra dependency.

Examples
--------
>>> labels = np.array(["a", "a", "a", "b"])
>>> undersample(labels, seed=0).size, oversample(labels, 3, seed=0).size
(2, 6)
"""

from __future__ import annotations

import numpy as np


def undersample(labels: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Positions of an equal number of cells of every class: the smallest class's count.

    Parameters
    ----------
    labels : (N,) array-like
        Class of each cell.
    seed : int

    Returns
    -------
    (K * n_classes,) ndarray of int
        Sorted positions into `labels`, none repeated.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    smallest = int(counts.min())
    taken = [rng.choice(np.flatnonzero(labels == c), smallest, replace=False) for c in classes]
    return np.sort(np.concatenate(taken)).astype(np.int64)


def oversample(labels: np.ndarray, n_per_class: int, *, seed: int = 0) -> np.ndarray:
    """Positions of `n_per_class` cells of every class, drawn with replacement.

    Parameters
    ----------
    labels : (N,) array-like
        Class of each cell.
    n_per_class : int
        Draws per class (>= 1).
    seed : int

    Returns
    -------
    (n_per_class * n_classes,) ndarray of int
        Positions into `labels`, class by class (classes sorted), repeats allowed.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class!r}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    draws = [
        rng.choice(np.flatnonzero(labels == c), n_per_class, replace=True)
        for c in np.unique(labels)
    ]
    return np.concatenate(draws).astype(np.int64) if draws else np.zeros(0, dtype=np.int64)
