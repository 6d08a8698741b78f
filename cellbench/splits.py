"""Leakage-safe splits: whole groups (plates, wells, fields, compounds) go to one side.

Cells of one well share its culture, plating and imaging; a split by cell would put near
copies of a test cell in training, and a split that puts one compound on both sides lets a
model recognise the compound instead of its mechanism. Groups are assigned per class, so every
class that has enough groups appears on both sides. Class balancing (`balance_classes`) then
samples cells within each side, as the nucleocentric workflow's ``--sample`` does.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from cellbench.features.measure import metadata_column

log = logging.getLogger(__name__)

TRAIN, VAL, TEST = "train", "val", "test"
UNUSED = "unused"  # left out by class balancing
LEAKY_SPLIT_WARNING = (
    "split.by: cell (also with split.folds) puts cells of one well on both sides of the "
    "split; accuracy will be optimistic (leakage). Split by well, plate, field or compound "
    "for a real estimate."
)


def split_groups(table: pd.DataFrame, by: str) -> pd.Series:
    """The group of every cell of a feature or cell table for a split `by`.

    Parameters
    ----------
    table : DataFrame
        With ``Metadata_Plate``, ``Metadata_CellId`` and the ``Metadata_`` column of `by`.
    by : {"plate", "well", "field", "compound", "cell", "compound_wells"}
        Wells and fields are made unique across plates; a compound is one group whatever
        the plate or concentration; ``compound_wells`` groups by well (its compound is read
        by `split_wells_by_compound`).

    Raises
    ------
    KeyError
        The table has no column for `by` (e.g. no compound for a synthetic plate).
    """
    column = metadata_column({"cell": "cell_id", "compound_wells": "well"}.get(by, by))
    if column not in table.columns:
        raise KeyError(f"split.by: {by!r} needs a {column!r} column; the table has none")
    values = table[column].astype(str)
    if by in ("plate", "compound", "cell"):
        return values
    return table[metadata_column("plate")].astype(str) + "/" + values


def balance_classes(
    assignment: pd.Series, labels: pd.Series, sample: int | str, seed: int = 0
) -> pd.Series:
    """Sample cells per class within each side; the others become ``"unused"``.

    Parameters
    ----------
    assignment : Series of str
        ``train`` / ``val`` / ``test`` per cell (from `split_by_group`).
    labels : Series
        Class of each cell, same index.
    sample : int, "max", "all" or "oversampling"
        N: N cells per class in train, N // 3 in test and N // 10 in validation (all of a
        class's cells when it has fewer); "max": N = the smallest class's training count;
        "all" and "oversampling" (whose draws `training_positions` makes): no sampling here.
    seed : int

    Returns
    -------
    Series of str
        `assignment` with the cells left out set to ``"unused"``.
    """
    if sample in ("all", "oversampling"):  # oversampling draws training cells later
        return assignment
    if sample == "max":
        sample = int(labels[assignment == TRAIN].value_counts().min())
    quota = {TRAIN: int(sample), TEST: int(sample) // 3, VAL: int(sample) // 10}
    rng = np.random.default_rng(seed)
    balanced = pd.Series(UNUSED, index=assignment.index, dtype=object)
    for (side, _), members in assignment.groupby([assignment, labels]).groups.items():
        members = np.asarray(sorted(members))
        take = min(quota[side], len(members))
        balanced[members[rng.permutation(len(members))[:take]]] = side
    return balanced


def training_positions(
    train: np.ndarray, labels: np.ndarray, sample: int | str, n_per_class: int, seed: int = 0
) -> np.ndarray:
    """The training set: the (N,) bool mask `train`, or with ``oversampling`` positions.

    With ``sample="oversampling"``, `n_per_class` training cells of every class drawn with
    replacement (`cellbench.sampling.oversample`), as positions into all N cells; otherwise
    `train` itself. Either indexes an (N, ...) array the same way (``values[train]``).
    """
    if sample != "oversampling":
        return train
    from cellbench.sampling import oversample

    inside = np.flatnonzero(train)
    return inside[oversample(np.asarray(labels)[inside], n_per_class, seed=seed)]


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


def split_wells_by_compound(
    wells: pd.Series,
    compounds: pd.Series,
    *,
    test_fraction: float,
    val_fraction: float,
    seed: int = 0,
) -> pd.Series:
    """The BBBC021 VAE study's split: whole wells, every compound on every side.

    Each compound gives one of its wells (drawn, seeded) to validation, one to test and one to
    training; the wells left over, shuffled together, fill validation and then test up to
    `val_fraction` and `test_fraction` of all wells; the rest train. A compound with fewer
    than three wells gives its first to training, its second to test. The compound of a well
    is the most frequent among its cells.

    Parameters
    ----------
    wells : Series
        Well of each cell, unique across plates (``plate/well``).
    compounds : Series
        Compound of each cell, same index.
    test_fraction, val_fraction : float
        Shares of the wells.
    seed : int

    Returns
    -------
    Series of str
        ``"train"``, ``"val"`` or ``"test"`` per cell, same index.
    """
    rng = np.random.default_rng(seed)
    compound_of = (
        pd.DataFrame({"well": wells, "compound": compounds.astype(str)})
        .groupby("well")["compound"]
        .agg(lambda values: values.value_counts().index[0])
    )
    assignment: dict[str, str] = {}
    rest: list[str] = []
    for compound in sorted(compound_of.unique()):
        members = sorted(compound_of.index[compound_of == compound])
        members = [members[i] for i in rng.permutation(len(members))]
        firsts = (VAL, TEST, TRAIN) if len(members) >= 3 else (TRAIN, TEST)[: len(members)]
        assignment.update(zip(members, firsts, strict=False))
        rest += members[len(firsts) :]
    rest = [rest[i] for i in rng.permutation(len(rest))]
    n_wells = len(compound_of)
    for side, fraction in ((VAL, val_fraction), (TEST, test_fraction)):
        while rest and sum(v == side for v in assignment.values()) < fraction * n_wells:
            assignment[rest.pop()] = side
    assignment.update(dict.fromkeys(rest, TRAIN))
    return wells.map(assignment)


def coculture_labels(
    mono_labels: pd.Series, cultures: pd.Series, marker_labels: pd.Series, coculture: str
) -> pd.Series:
    """The class of every cell for the co-culture split: layout in mono-culture, markers in mixed.

    Parameters
    ----------
    mono_labels : Series
        Class from the layout (``data.label_column``), read for mono-culture cells.
    cultures : Series
        Culture of each cell's well (``split.culture_column``), same index.
    marker_labels : Series
        Class from the marker ground truth (``split.test_label_column``), read for co-culture
        cells; ``undefined`` ones stay so (and are left out by the caller).
    coculture : str
        The culture value of co-culture wells.

    Returns
    -------
    Series of object
        Same index.
    """
    mixed = cultures.astype(str) == coculture
    return mono_labels.astype(object).where(~mixed, marker_labels.astype(object))


def split_coculture(
    groups: pd.Series,
    labels: pd.Series,
    mixed: pd.Series,
    *,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> pd.Series:
    """The nucleocentric study's split: mono-culture wells train, co-culture cells test.

    Every co-culture cell is a test cell; the mono-culture wells go to training, less
    ``ceil(val_fraction * n)`` of each class's wells drawn (seeded) for validation.

    Parameters
    ----------
    groups : Series
        Well of each cell, unique across plates (``plate/well``).
    labels : Series
        Class of each cell, same index.
    mixed : Series of bool
        Whether each cell comes from a co-culture well, same index.
    val_fraction : float
        Share of each class's mono-culture wells held out for validation.
    seed : int

    Returns
    -------
    Series of str
        ``"train"``, ``"val"`` or ``"test"`` per cell, same index.

    Examples
    --------
    >>> groups = pd.Series(["A01", "A02", "A03", "A03"])
    >>> labels = pd.Series(["x", "y", "x", "y"])
    >>> split_coculture(groups, labels, pd.Series([False, False, True, True])).tolist()
    ['train', 'train', 'test', 'test']
    """
    mixed = mixed.astype(bool)
    assignment = pd.Series(TEST, index=groups.index, dtype=object)
    mono = ~mixed
    if mono.any():
        inner = split_by_group(
            groups[mono], labels[mono], test_fraction=val_fraction, seed=seed
        )  # its "test" is our validation
        assignment[mono] = inner.replace({TEST: VAL})
    return assignment


def split_cell_folds(
    labels: pd.Series,
    *,
    folds: int,
    fold: int,
    fold_seed: int = 42,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> pd.Series:
    """Stratified k-fold over cells: fold `fold` is the test set, the other folds train.

    The perturbation study's cross-validation (S4: ``StratifiedKFold(5, shuffle=True,
    random_state=42)``): every cell is in exactly one test fold across folds ``0..folds-1``,
    and each fold keeps the class proportions. Cells of one well fall on both sides, so the
    estimate is optimistic (the callers warn, as for ``split.by: cell``).

    Parameters
    ----------
    labels : Series
        Class of each cell.
    folds : int
        Number of folds (>= 2).
    fold : int
        The test fold, in ``0..folds-1`` (the seed of the task).
    fold_seed : int
        ``random_state`` of the fold shuffle; the same for every fold, so folds do not overlap.
    val_fraction : float
        Share of each class's *training* cells drawn (with `seed`) for validation.
    seed : int

    Returns
    -------
    Series of str
        ``"train"``, ``"val"`` or ``"test"`` per cell, same index.
    """
    from sklearn.model_selection import StratifiedKFold

    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} is not one of the {folds} folds 0..{folds - 1}")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=fold_seed)
    values = labels.astype(str).to_numpy()
    _, test_rows = list(splitter.split(np.zeros(len(values)), values))[fold]
    assignment = pd.Series(TRAIN, index=labels.index, dtype=object)
    assignment.iloc[test_rows] = TEST
    if val_fraction > 0:
        train = assignment == TRAIN
        cells = pd.Series(np.flatnonzero(train.to_numpy()).astype(str), index=labels.index[train])
        inner = split_by_group(cells, labels[train], test_fraction=val_fraction, seed=seed)
        assignment[inner.index[inner == TEST]] = VAL
    return assignment


def _held_out(n_groups: int, fraction: float, reserved: int) -> int:
    """Groups to hold out: ceil(fraction * n), leaving at least one for training."""
    if fraction <= 0:
        return 0
    return max(0, min(math.ceil(fraction * n_groups), n_groups - reserved - 1))
