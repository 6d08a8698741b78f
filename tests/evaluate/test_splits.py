import numpy as np
import pandas as pd
import pytest

from cellbench.evaluate.splits import split_by_group


def plate_of_wells(n_wells_per_class=4, cells_per_well=10, classes=("a", "b", "c")):
    groups, labels = [], []
    for label in classes:
        for w in range(n_wells_per_class):
            groups += [f"{label}{w}"] * cells_per_well
            labels += [label] * cells_per_well
    return pd.Series(groups), pd.Series(labels)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_group_in_two_splits(seed):
    groups, labels = plate_of_wells()
    split = split_by_group(groups, labels, test_fraction=0.3, val_fraction=0.2, seed=seed)
    per_group = pd.DataFrame({"g": groups, "s": split}).groupby("g")["s"].nunique()
    assert (per_group == 1).all()
    # every class is on every side
    for side in ("train", "val", "test"):
        assert set(labels[split == side]) == {"a", "b", "c"}


def test_fractions_and_seed():
    groups, labels = plate_of_wells(n_wells_per_class=10)
    a = split_by_group(groups, labels, test_fraction=0.3, seed=0)
    b = split_by_group(groups, labels, test_fraction=0.3, seed=0)
    c = split_by_group(groups, labels, test_fraction=0.3, seed=1)
    pd.testing.assert_series_equal(a, b)
    assert not a.equals(c)
    test_groups = groups[a == "test"].unique()
    assert len(test_groups) == 3 * 3  # ceil(0.3 * 10) per class
    assert set(np.unique(a)) == {"train", "test"}


def test_a_class_with_one_group_stays_in_training():
    groups = pd.Series(["w1", "w1", "w2", "w3"])
    labels = pd.Series(["a", "a", "b", "b"])
    split = split_by_group(groups, labels, test_fraction=0.5, seed=0)
    assert list(split[groups == "w1"]) == ["train", "train"]
