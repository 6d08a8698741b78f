"""Classical pipelines: classifiers, PCA, block standardisation and crop flattening."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from cellbench.config import RandomForestModel
from cellbench.models.classical import (
    CLASSIFIER_KINDS,
    BlockStandardiser,
    build_classical,
    build_classifier,
    build_fusion_classifier,
    flatten_crops,
)


def separable(seed: int = 0, n_features: int = 20):
    """A seeded 3-class problem that a linear model separates well, split 70/30."""
    x, y = make_classification(
        n_samples=600,
        n_features=n_features,
        n_informative=6,
        n_redundant=2,
        n_classes=3,
        n_clusters_per_class=1,
        class_sep=3.0,
        random_state=seed,
    )
    return train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)


@pytest.mark.parametrize("kind", CLASSIFIER_KINDS)
def test_each_kind_learns_a_separable_problem(kind):
    train_x, test_x, train_y, test_y = separable()
    train_x[::7, 3] = np.nan  # imputation is part of the pipeline
    model = build_classifier(kind, seed=0).fit(train_x, train_y)
    assert model.score(test_x, test_y) > 0.9


@pytest.mark.parametrize("kind", CLASSIFIER_KINDS)
def test_each_kind_learns_after_fusion(kind):
    train_x, test_x, train_y, test_y = separable()
    model = build_fusion_classifier(kind, [12, 8], seed=0, scale_by_width=True)
    assert model.fit(train_x, train_y).score(test_x, test_y) > 0.9


def test_unknown_kind_names_the_valid_ones():
    with pytest.raises(ValueError, match="'svc'.*random_forest, svm, logistic_regression"):
        build_classifier("svc", seed=0)


def test_random_forest_builder_keeps_its_config_settings():
    params = RandomForestModel(name="rf", n_estimators=7, max_depth=3, min_samples_leaf=2)
    model = build_classical(params, None, seed=5)
    assert list(model.named_steps) == ["impute", "scale", "classify"]
    forest = model.named_steps["classify"]
    assert (forest.n_estimators, forest.max_depth, forest.min_samples_leaf) == (7, 3, 2)
    assert (forest.class_weight, forest.random_state) == ("balanced", 5)


@pytest.mark.parametrize("kind", CLASSIFIER_KINDS)
def test_pca_keeps_the_requested_number_of_components(kind):
    train_x, _, train_y, _ = separable()
    model = build_classifier(kind, seed=0, pca_components=5).fit(train_x, train_y)
    assert list(model.named_steps) == ["impute", "scale", "pca", "classify"]
    assert model.named_steps["pca"].n_components_ == 5
    assert model.named_steps["classify"].n_features_in_ == 5


def test_pca_variance_fraction_keeps_fewer_components_than_features():
    train_x, _, train_y, _ = separable()
    model = build_classifier("logistic_regression", seed=0, pca_components=0.8)
    pca = model.fit(train_x, train_y).named_steps["pca"]
    assert 1 <= pca.n_components_ < train_x.shape[1]
    assert pca.explained_variance_ratio_.sum() >= 0.8


def test_whole_float_pca_components_count_components():
    # The config's pca_components field is a float: "5" in YAML arrives as 5.0.
    train_x, _, train_y, _ = separable()
    model = build_classifier("svm", seed=0, pca_components=5.0).fit(train_x, train_y)
    assert model.named_steps["pca"].n_components_ == 5


def test_random_forest_builder_passes_pca_components():
    params = RandomForestModel(name="rf", n_estimators=5, pca_components=3)
    train_x, _, train_y, _ = separable()
    model = build_classical(params, None, seed=0).fit(train_x, train_y)
    assert model.named_steps["pca"].n_components_ == 3


@pytest.mark.parametrize("bad", [0, 0.0, 1.5, -0.2, True])
def test_bad_pca_components_are_refused(bad):
    with pytest.raises(ValueError, match="pca_components"):
        build_classifier("svm", seed=0, pca_components=bad)


def test_fusion_pipeline_steps_and_pca():
    train_x, _, train_y, _ = separable()
    model = build_fusion_classifier("svm", [15, 5], seed=0, pca_components=4)
    model.fit(train_x, train_y)
    assert list(model.named_steps) == ["fuse", "pca", "classify"]
    assert model.named_steps["pca"].n_components_ == 4


def test_block_standardiser_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(loc=[10.0, -3.0, 0.0], scale=[2.0, 0.5, 4.0], size=(500, 3))
    fuse = BlockStandardiser(block_sizes=[2, 1]).fit(train)
    z_train = fuse.transform(train)
    np.testing.assert_allclose(z_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z_train.std(axis=0), 1.0, atol=1e-12)
    # A test set shifted by 5 training SDs stays shifted: it is not re-centred on itself.
    shift = 5 * np.array([2.0, 0.5, 4.0])
    z_test = fuse.transform(train[:100] + shift)
    np.testing.assert_allclose(
        z_test - z_train[:100], np.broadcast_to(shift / fuse.scales_, (100, 3))
    )
    assert np.all(z_test.mean(axis=0) > 4.0)


def test_block_standardiser_fills_nan_with_training_medians():
    train = np.array([[1.0, 10.0, np.nan], [3.0, np.nan, np.nan], [5.0, 30.0, np.nan]])
    fuse = BlockStandardiser(block_sizes=[1, 2]).fit(train)
    np.testing.assert_allclose(fuse.medians_, [3.0, 20.0, 0.0])  # all-NaN column: 0
    out = fuse.transform(np.array([[np.nan, np.nan, 7.0]]))
    assert np.isfinite(out).all()
    # NaN becomes the training median; the all-NaN column has SD 1 and mean 0.
    np.testing.assert_allclose(out[0, :2], (fuse.medians_[:2] - fuse.means_[:2]) / fuse.scales_[:2])
    assert out[0, 2] == pytest.approx(7.0)


def test_block_standardiser_equalises_block_variance_when_asked():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 20)) * rng.uniform(0.1, 10, size=20)
    blocks = [16, 4]
    plain = BlockStandardiser(block_sizes=blocks).fit_transform(x)
    weighted = BlockStandardiser(block_sizes=blocks, scale_by_width=True).fit_transform(x)
    # Total variance per block: its width when plain, 1 when scaled by width.
    np.testing.assert_allclose([plain[:, :16].var(0).sum(), plain[:, 16:].var(0).sum()], blocks)
    np.testing.assert_allclose([weighted[:, :16].var(0).sum(), weighted[:, 16:].var(0).sum()], 1)


def test_block_standardiser_checks_widths_and_columns():
    with pytest.raises(ValueError, match="add up to 5 columns but X has 4"):
        BlockStandardiser(block_sizes=[3, 2]).fit(np.zeros((3, 4)))
    fuse = BlockStandardiser(block_sizes=[2, 2]).fit(np.arange(12.0).reshape(3, 4))
    with pytest.raises(ValueError, match="features"):
        fuse.transform(np.zeros((2, 3)))


def test_flatten_crops_shape_dtype_and_order():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 4000, size=(5, 3, 16, 16)).astype(np.uint16)
    same = flatten_crops(crops, size_px=16)
    assert same.shape == (5, 3 * 16 * 16) and same.dtype == np.float32
    np.testing.assert_array_equal(same[2].reshape(3, 16, 16), crops[2])
    smaller = flatten_crops(crops, size_px=8)
    assert smaller.shape == (5, 3 * 8 * 8) and smaller.dtype == np.float32


def test_flatten_crops_resizes_each_channel_and_cell_separately():
    crops = np.zeros((2, 2, 12, 12), np.uint16)
    crops[0, 1] = 1000  # cell 0: channel 1 bright; cell 1: dark everywhere
    out = flatten_crops(crops, size_px=20).reshape(2, 2, 20, 20)
    np.testing.assert_allclose(out[0, 1], 1000.0, rtol=1e-6)  # intensities kept, not [0, 1]
    np.testing.assert_array_equal(out[0, 0], 0.0)
    np.testing.assert_array_equal(out[1], 0.0)


def test_flatten_crops_anti_aliases_when_shrinking():
    crops = np.zeros((1, 1, 32, 32))
    crops[0, 0, :, ::2] = 1.0  # one-pixel stripes, finer than the output grid
    out = flatten_crops(crops, size_px=8)
    assert np.ptp(out) < 0.2 and out.mean() == pytest.approx(0.5, abs=0.05)


def test_flatten_crops_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        flatten_crops(np.zeros((3, 8, 8)), size_px=8)
    with pytest.raises(ValueError, match="size_px"):
        flatten_crops(np.zeros((1, 1, 8, 8)), size_px=0)


def test_pca_on_fused_blocks_matches_pca_on_standardised_features():
    # Without width scaling, BlockStandardiser is the per-column imputer + scaler.
    train_x, _, _, _ = separable()
    fused = BlockStandardiser(block_sizes=[10, 10]).fit_transform(train_x)
    scaled = (train_x - train_x.mean(0)) / train_x.std(0)
    np.testing.assert_allclose(fused, scaled, atol=1e-10)
    np.testing.assert_allclose(
        PCA(3, random_state=0).fit(fused).explained_variance_,
        PCA(3, random_state=0).fit(scaled).explained_variance_,
    )
