"""Leakage-safe splits: whole groups (plates, wells, fields) go to train, validation or test.

Cells of one well share its culture, plating and imaging; a split by cell would put near
copies of a test cell in training. Groups are assigned per class, so every class that has
enough groups appears on both sides.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

TRAIN, VAL, TEST = "train", "val", "test"


def split_by_group(
    groups: pd.Series,
    labels: pd.Series,
    *,
    test_fraction: float,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> pd.Series:
    """Assign every cell to train / val / test so that no group is in two splits.

    Each group goes with its most frequent label; within each label, ``ceil(fraction * n)``
    of its groups are drawn (seeded) for test, then for validation, always leaving at least
    one group for training.

    Parameters
    ----------
    groups : Series
        Group of each cell (e.g. plate + well).
    labels : Series
        Class of each cell, same index.
    test_fraction, val_fraction : float
        Share of each class's groups held out.
    seed : int

    Returns
    -------
    Series of str
        ``"train"``, ``"val"`` or ``"test"`` per cell, same index.

    Examples
    --------
    >>> groups = pd.Series(["A01", "A01", "A02", "A03", "A04"])
    >>> labels = pd.Series(["x", "x", "x", "y", "y"])
    >>> split_by_group(groups, labels, test_fraction=0.5).tolist()  # doctest: +SKIP
    ['test', 'test', 'train', 'train', 'test']
    """
    rng = np.random.default_rng(seed)
    group_label = (
        pd.DataFrame({"group": groups, "label": labels})
        .groupby("group")["label"]
        .agg(lambda values: values.value_counts().index[0])
    )
    assignment: dict[str, str] = {}
    for label in sorted(group_label.unique()):
        members = sorted(group_label.index[group_label == label])
        members = [members[i] for i in rng.permutation(len(members))]
        n_test = _held_out(len(members), test_fraction, reserved=0)
        n_val = _held_out(len(members), val_fraction, reserved=n_test)
        for i, group in enumerate(members):
            assignment[group] = TEST if i < n_test else VAL if i < n_test + n_val else TRAIN
    return groups.map(assignment)


def _held_out(n_groups: int, fraction: float, reserved: int) -> int:
    """Groups to hold out: ceil(fraction * n), leaving at least one for training."""
    if fraction <= 0:
        return 0
    return max(0, min(math.ceil(fraction * n_groups), n_groups - reserved - 1))
