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


# --- incremental PCA on crops read in chunks (pca_method: incremental) -------------------------


def _crop_problem(n: int = 90, seed: int = 0, side: int = 6):
    """Seeded (n, 2, 6, 6) crops of three classes: five patterns of falling weight plus noise.

    The first pattern's weight depends on the class; the variance lies in five clear
    directions, so the first five principal components are well defined.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.array(["a", "b", "c"]), n // 3)
    patterns = rng.normal(size=(5, 2 * side * side))
    weights = rng.normal(size=(n, 5)) * np.array([3.0, 2.5, 2.0, 1.5, 1.0])
    weights[:, 0] += np.searchsorted(["a", "b", "c"], labels) * 12.0
    pixels = weights @ patterns + 0.05 * rng.normal(size=(n, 2 * side * side))
    return pixels.reshape(n, 2, side, side).astype(np.float32), labels


def test_incremental_pca_on_chunks_matches_full_pca_and_reads_chunk_by_chunk(monkeypatch):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from cellbench.models.crop_rows import CropRows
    from cellbench.models.streamed_pca import fit_streamed

    crops, labels = _crop_problem()
    reads = []
    original = CropRows.to_array

    def counting(self, workers=0):
        reads.append(len(self))
        return original(self, workers)

    monkeypatch.setattr(CropRows, "to_array", counting)
    model = fit_streamed(
        CropRows(crops),
        None,
        labels,
        LogisticRegression(max_iter=1000),
        "passthrough",
        size_px=6,
        n_components=5,
        batch_size=32,
    )
    # three passes (scale, PCA, scores) over 90 cells in chunks of 32, 32, 26: never all at once
    assert reads == [32, 32, 26] * 3
    scaled = StandardScaler().fit_transform(crops.reshape(len(crops), -1).astype(np.float64))
    full = PCA(n_components=5).fit(scaled)
    incremental = model.named_steps["pca"]
    np.testing.assert_allclose(
        incremental.explained_variance_ratio_, full.explained_variance_ratio_, rtol=1e-3
    )
    # the same subspace: the projection of each full component onto the incremental ones
    overlap = np.linalg.norm(incremental.components_ @ full.components_.T, axis=0)
    np.testing.assert_allclose(overlap, 1, atol=1e-3)
    assert (
        model.named_steps["classify"].score(
            incremental.transform(model.named_steps["scale"].transform(crops.reshape(90, -1))),
            labels,
        )
        > 0.9
    )


def test_a_small_last_chunk_joins_the_one_before():
    from cellbench.models.streamed_pca import chunk_positions

    chunks = chunk_positions(70, 32, smallest=10)
    assert [len(c) for c in chunks] == [32, 38]
    assert np.array_equal(np.concatenate(chunks), np.arange(70))
    assert [len(c) for c in chunk_positions(70, 32)] == [32, 32, 6]


def test_streamed_fusion_standardises_the_features_beside_the_crop_scores(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from cellbench.models.crop_rows import CropRows
    from cellbench.models.persist import load_sklearn, save_sklearn
    from cellbench.models.streamed_pca import fit_streamed, predict_streamed

    crops, labels = _crop_problem()
    features = np.random.default_rng(1).normal(loc=100, scale=20, size=(90, 3))
    model = fit_streamed(
        CropRows(crops),
        features,
        labels,
        LogisticRegression(max_iter=1000),
        BlockStandardiser(block_sizes=[3]),
        size_px=6,
        n_components=4,
        batch_size=40,
    )
    assert model.named_steps["classify"].n_features_in_ == 4 + 3
    standardised = model.named_steps["features"].transform(features)
    np.testing.assert_allclose(standardised.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(standardised.std(axis=0), 1, atol=1e-9)
    save_sklearn(model, tmp_path / "model.skops")
    loaded = load_sklearn(tmp_path / "model.skops")
    predicted, probabilities = predict_streamed(
        loaded, CropRows(crops), features, size_px=6, batch_size=40, probabilities=True
    )
    assert (predicted == labels).mean() > 0.9
    assert probabilities.shape == (90, 3)


def test_incremental_pca_in_a_pipeline_on_features():
    train_x, test_x, train_y, test_y = separable()
    model = build_classifier("logistic_regression", seed=0, pca_components=5, pca_batch_size=64)
    pca = model.fit(train_x, train_y).named_steps["pca"]
    assert type(pca).__name__ == "IncrementalPCA" and pca.batch_size == 64
    assert pca.n_components_ == 5
    with pytest.raises(ValueError, match="pca_components"):
        build_classifier("svm", seed=0, pca_components=0.5, pca_batch_size=64)


# --- feature_columns: exact columns for fusion ---------------------------------------------------


def test_feature_columns_pick_exactly_those_columns_in_order(tmp_path):
    import pandas as pd

    from cellbench.config import LogisticRegressionModel
    from cellbench.errors import ConfigError
    from cellbench.models.inputs import load_model_data

    wanted = ["Nuclei_Texture_Entropy_DNA_3_00_256", "Image_Count_Nuclei"]
    table = pd.DataFrame(
        {
            "Metadata_CellId": [f"c{i}" for i in range(4)],
            "Metadata_Moa": ["x", "y", "x", "y"],
            "Image_Count_Nuclei": [1.0, 2, 3, 4],
            "Nuclei_Texture_Contrast_DNA_3_00_256": [5.0, 6, 7, 8],
            "Nuclei_Texture_Entropy_DNA_3_00_256": [9.0, 10, 11, 12],
        }
    )
    table.to_parquet(tmp_path / "p.parquet")
    params = LogisticRegressionModel(name="lr", feature_columns=wanted)
    data = load_model_data(params, "moa", [tmp_path / "p.parquet"], [])
    assert data.feature_names == wanted
    np.testing.assert_array_equal(data.features, table[wanted].to_numpy(np.float32))
    typo = LogisticRegressionModel(name="lr", feature_columns=["Image_Count_Nucleus"])
    with pytest.raises(ConfigError, match="'Image_Count_Nucleus'") as info:
        load_model_data(typo, "moa", [tmp_path / "p.parquet"], [])
    assert "close matches: ['Image_Count_Nuclei']" in str(info.value)
    assert "models.lr.feature_columns" in str(info.value)


def test_incremental_fusion_trains_and_predicts_through_the_registry(tmp_path):
    from cellbench.config import LogisticRegressionModel
    from cellbench.models import classical
    from cellbench.models.inputs import ModelData
    from cellbench.paths import ResultsPaths

    crops, labels = _crop_problem(side=8)
    features = np.random.default_rng(2).normal(size=(90, 3))
    params = LogisticRegressionModel(
        name="c11",
        input="fusion",
        crop_kind="whole_cell",
        size_px=8,
        pca_method="incremental",
        pca_components=4,
        pca_batch_size=32,
    )
    data = ModelData(cells=None, labels=labels, features=features, crops=crops)
    train = np.arange(90) % 3 != 0
    paths = ResultsPaths(tmp_path)
    classical.train(params, data, {"train": train}, [], seed=0, settings_hash="t", paths=paths)
    prediction = classical.predict(params, data, np.array([]), seed=0, paths=paths)
    assert (prediction.predicted[~train] == labels[~train]).mean() >= 0.85  # chance: 1/3
    assert prediction.probabilities.shape == (90, 3)
    # the same as the streamed steps called here on the training cells, the features scaled
    from sklearn.linear_model import LogisticRegression

    from cellbench.models.crop_rows import CropRows
    from cellbench.models.streamed_pca import fit_streamed, predict_streamed

    by_hand = fit_streamed(
        CropRows(crops[train]),
        features[train],
        labels[train],
        LogisticRegression(class_weight="balanced", max_iter=10_000, random_state=0),
        BlockStandardiser(block_sizes=[3]),
        size_px=8,
        n_components=4,
        batch_size=32,
    )
    expected, _ = predict_streamed(
        by_hand, CropRows(crops), features, size_px=8, batch_size=32, probabilities=False
    )
    assert np.array_equal(prediction.predicted, expected)
