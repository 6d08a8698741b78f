"""Per-well z-scores, correlation pruning and class sampling against their reference behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from cellbench.config import RandomForestModel, SplitConfig
from cellbench.models.classical import build_classical
from cellbench.models.feature_prep import CorrelationFilter, zscore_per_group
from cellbench.sampling import oversample, undersample
from cellbench.splits import training_positions


def test_zscore_per_well_equals_a_standard_scaler_per_group() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5, 3, (60, 4))
    x[:, 3] = 7.0  # constant: 0 after scaling, as StandardScaler gives
    groups = rng.choice(["P1/A01", "P1/A02", "P2/A01"], 60)
    got = zscore_per_group(x, groups)
    for group in np.unique(groups):
        rows = groups == group
        np.testing.assert_allclose(got[rows], StandardScaler().fit_transform(x[rows]))
    assert not np.allclose(got, StandardScaler().fit_transform(x))  # not one global scaling


def test_a_column_constant_within_a_group_becomes_exactly_zero() -> None:
    # 0.1 three or seven times: the mean is off by rounding, the SD ~1e-17, and dividing the
    # one by the other would give +-1 for every cell
    for n in (3, 5, 7, 11):
        x = np.column_stack([np.full(n, 0.1), np.arange(n, dtype=float)])
        x[0, 1] = np.nan
        got = zscore_per_group(x, np.zeros(n))
        np.testing.assert_array_equal(got[:, 0], 0.0)
        assert np.isnan(got[0, 1]) and np.isfinite(got[1:, 1]).all()
        np.testing.assert_allclose(got[1:, 1], StandardScaler().fit_transform(x[1:, 1:]).ravel())


def test_correlation_pruning_keeps_exactly_one_of_each_correlated_pair() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(200, 4))
    twins = 2 * base[:, :2] + 1 + rng.normal(0, 0.01, (200, 2))  # |r| ~ 1 with columns 0, 1
    anti = -base[:, 2:3]  # r = -1 with column 2
    x = np.hstack([base, twins, anti])  # columns 0..3, twins 4, 5, anti 6
    kept = CorrelationFilter(threshold=0.95).fit(x).kept_.tolist()
    assert kept == [0, 1, 2, 3]
    for pair in ((0, 4), (1, 5), (2, 6)):
        assert sum(c in kept for c in pair) == 1
    r = np.abs(np.corrcoef(x[:, kept], rowvar=False))
    assert (r[~np.eye(len(kept), dtype=bool)] <= 0.95).all()
    assert CorrelationFilter(threshold=0.95).fit_transform(x).shape == (200, 4)
    chain = np.hstack([base[:, :1], base[:, :1] + 0.6 * base[:, 1:2], 0.6 * base[:, 1:2]])
    assert CorrelationFilter(threshold=0.8).fit(chain).kept_.tolist() == [0, 2]  # a ~ b ~ c


def test_the_random_forest_pipeline_prunes_when_asked() -> None:
    params = RandomForestModel(name="rf", prune_correlation=0.95, n_estimators=5)
    names = [name for name, _ in build_classical(params, None, seed=0).steps]
    assert names == ["impute", "prune", "scale", "classify"]
    assert "prune" not in dict(build_classical(RandomForestModel(name="rf"), None, 0).steps)
    with pytest.raises(ValueError, match="prune_correlation"):
        RandomForestModel(name="rf", prune_correlation=1.5)


def test_undersampling_gives_every_class_the_smallest_count() -> None:
    labels = np.array(["a"] * 50 + ["b"] * 20 + ["c"] * 7)
    taken = undersample(labels, seed=3)
    assert len(set(taken)) == len(taken)  # without replacement
    assert pd.Series(labels[taken]).value_counts().to_dict() == {"a": 7, "b": 7, "c": 7}
    assert not np.array_equal(taken, undersample(labels, seed=4))


def test_oversampling_gives_n_per_class_with_replacement() -> None:
    labels = np.array(["a"] * 50 + ["b"] * 20)
    taken = oversample(labels, 300, seed=0)
    assert pd.Series(labels[taken]).value_counts().to_dict() == {"a": 300, "b": 300}
    assert len(set(taken[labels[taken] == "b"])) == 20  # 300 draws from 20 cells: repeats
    train = np.arange(70) % 3 != 0  # a third held out
    positions = training_positions(train, labels, "oversampling", 100, seed=0)
    assert train[positions].all() and len(positions) == 200
    assert training_positions(train, labels, "all", 100) is train
    assert SplitConfig(sample="oversampling").oversample_per_class == 5000
