import numpy as np
import pandas as pd
import pytest

from cellbench.splits import split_by_group
from tests.helpers import REPO


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


def cell_table(n_per_well=5):
    rows = []
    for plate in ("P1", "P2"):
        for compound, moa in (("c1", "x"), ("c2", "x"), ("c3", "y"), ("c4", "y"), ("c5", "y")):
            for well in ("A01", "A02"):
                well_name = f"{well}{compound}"
                for k in range(n_per_well):
                    rows.append(
                        {
                            "Metadata_CellId": f"{plate}_{well_name}_{k}",
                            "Metadata_Plate": plate,
                            "Metadata_Well": well_name,
                            "Metadata_Compound": compound,
                            "Metadata_Moa": moa,
                        }
                    )
    return pd.DataFrame(rows)


def test_a_compound_is_one_group_across_plates():
    from cellbench.splits import split_groups

    table = cell_table()
    groups = split_groups(table, "compound")
    assert groups.nunique() == 5
    split = split_by_group(groups, table["Metadata_Moa"], test_fraction=0.4, seed=0)
    per_compound = pd.DataFrame({"c": table["Metadata_Compound"], "s": split})
    assert (per_compound.groupby("c")["s"].nunique() == 1).all()
    wells = split_groups(table, "well")
    assert wells.nunique() == 20  # wells are unique per plate
    with pytest.raises(KeyError, match="split.by.*Metadata_Field"):
        split_groups(table, "field")


def test_class_balancing_takes_n_per_class_and_thirds_for_test():
    from cellbench.splits import UNUSED, balance_classes

    labels = pd.Series(["a"] * 60 + ["b"] * 30)
    assignment = pd.Series(["train"] * 40 + ["test"] * 20 + ["train"] * 20 + ["test"] * 10)
    balanced = balance_classes(assignment, labels, 12, seed=0)
    counts = pd.crosstab(labels, balanced)
    assert counts.loc["a", "train"] == 12 and counts.loc["b", "train"] == 12
    assert counts.loc["a", "test"] == 4 and counts.loc["b", "test"] == 4
    assert (balanced == UNUSED).sum() == 90 - 32
    smallest = balance_classes(assignment, labels, "max", seed=0)
    assert pd.crosstab(labels, smallest).loc[:, "train"].tolist() == [20, 20]
    assert balance_classes(assignment, labels, "all").equals(assignment)


def test_a_split_by_cell_warns_that_it_leaks():
    from cellbench.config import SplitConfig
    from cellbench.models.inputs import ModelData
    from cellbench.models.train import split_cells

    table = cell_table()
    data = ModelData(cells=table, labels=table["Metadata_Moa"].to_numpy())
    with pytest.warns(UserWarning, match="leakage"):
        split = split_cells(data, SplitConfig(by="cell", test_fraction=0.3), seed=0)
    assert set(split) == {"train", "test"}


def _bbbc021_wells():
    """Every image of BBBC021 with a mechanism of action (the VAE study's 962 wells) as a row:
    its plate/well and its compound."""
    from cellbench.config import default_data_root

    folder = default_data_root() / "bbbc021" / "metadata"
    if not folder.is_dir():
        pytest.skip("BBBC021 metadata not in $CELLBENCH_DATA")
    images = pd.read_csv(folder / "BBBC021_v1_image.csv")
    moa = pd.read_csv(folder / "BBBC021_v1_moa.csv")
    table = images.merge(
        moa,
        left_on=["Image_Metadata_Compound", "Image_Metadata_Concentration"],
        right_on=["compound", "concentration"],
    )
    wells = table["Image_Metadata_Plate_DAPI"] + "/" + table["Image_Metadata_Well_DAPI"]
    return wells, table["Image_Metadata_Compound"]


@pytest.mark.parametrize("seed", [0, 1])
def test_compound_well_split_holds_the_vae_studys_rule_on_bbbc021(seed):
    from cellbench.splits import split_wells_by_compound

    wells, compounds = _bbbc021_wells()
    side = split_wells_by_compound(wells, compounds, test_fraction=0.1, val_fraction=0.1, seed=seed)
    per_well = pd.DataFrame({"well": wells, "compound": compounds, "side": side})
    assert (per_well.groupby("well")["side"].nunique() == 1).all()  # a well on one side only
    sides = per_well.drop_duplicates("well")
    n_wells = len(sides)
    assert n_wells == 962 and sides["compound"].nunique() == 39  # the study's wells
    by_compound = sides.groupby("compound")["side"].agg(set)
    three_or_more = sides.groupby("compound").size() >= 3
    assert all(s == {"train", "val", "test"} for s in by_compound[three_or_more])
    assert all("train" in s for s in by_compound)  # no compound missing from training
    counts = sides["side"].value_counts()
    for name in ("val", "test"):
        assert 0.1 * n_wells <= counts[name] < 0.1 * n_wells + 1
    again = split_wells_by_compound(
        wells, compounds, test_fraction=0.1, val_fraction=0.1, seed=seed
    )
    assert again.equals(side)  # seeded
    other = split_wells_by_compound(
        wells, compounds, test_fraction=0.1, val_fraction=0.1, seed=seed + 10
    )
    assert not other.equals(side)


def test_compound_well_split_is_a_config_choice():
    from tests.helpers import small_config

    model = {"name": "rf", "type": "random_forest", "split": {"by": "compound_wells"}}
    config = small_config(REPO / "results" / "unused", models=[model])
    assert config.model("rf").split.by == "compound_wells"


def _fold_labels(n: int = 103) -> pd.Series:
    """Seeded labels of three unequal classes, on a non-default index."""
    rng = np.random.default_rng(7)
    values = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    return pd.Series(values, index=100 + np.arange(n))


def test_cell_folds_put_each_cell_in_exactly_one_test_fold():
    from cellbench.splits import split_cell_folds

    labels = _fold_labels()
    sides = [split_cell_folds(labels, folds=5, fold=k) for k in range(5)]
    tested = np.sum([(s == "test").to_numpy() for s in sides], axis=0)
    assert (tested == 1).all()
    assert all(set(s) == {"train", "test"} for s in sides)


def test_cell_folds_match_stratified_kfold_computed_here():
    from sklearn.model_selection import StratifiedKFold

    from cellbench.splits import split_cell_folds

    labels = _fold_labels()
    expected = StratifiedKFold(5, shuffle=True, random_state=42).split(labels, labels)
    for k, (_, test_rows) in enumerate(expected):
        side = split_cell_folds(labels, folds=5, fold=k, fold_seed=42)
        assert np.array_equal(np.flatnonzero((side == "test").to_numpy()), np.sort(test_rows))
        test_share = labels[side == "test"].value_counts(normalize=True)
        expected_share = labels.iloc[test_rows].value_counts(normalize=True)
        pd.testing.assert_series_equal(test_share, expected_share, check_names=False)


def test_cell_folds_same_seed_same_folds_other_seed_other_folds():
    from cellbench.splits import split_cell_folds

    labels = _fold_labels()
    first = split_cell_folds(labels, folds=4, fold=2, fold_seed=42)
    again = split_cell_folds(labels, folds=4, fold=2, fold_seed=42)
    other = split_cell_folds(labels, folds=4, fold=2, fold_seed=43)
    assert first.equals(again)
    assert not first.equals(other)


def test_cell_folds_draw_validation_from_training_cells_only():
    from cellbench.splits import split_cell_folds

    labels = _fold_labels()
    plain = split_cell_folds(labels, folds=5, fold=1)
    with_val = split_cell_folds(labels, folds=5, fold=1, val_fraction=0.2, seed=3)
    assert (with_val[plain == "test"] == "test").all()
    assert set(with_val[plain == "train"]) == {"train", "val"}
    per_class = labels[with_val == "val"].value_counts()
    assert set(per_class.index) == {"a", "b", "c"}


def test_split_cells_uses_the_seed_as_fold_and_still_warns():
    from cellbench.config import SplitConfig
    from cellbench.models.inputs import ModelData
    from cellbench.models.train import split_cells
    from cellbench.splits import split_cell_folds

    table = cell_table()
    labels = table["Metadata_Moa"]
    data = ModelData(cells=table, labels=labels.to_numpy())
    split = SplitConfig(by="cell", folds=3)
    with pytest.warns(UserWarning, match="leakage"):
        side = split_cells(data, split, seed=2)
    expected = split_cell_folds(pd.Series(labels.to_numpy()), folds=3, fold=2, fold_seed=42)
    assert side.tolist() == expected.tolist()
