import numpy as np
import pandas as pd
import pytest
from skimage.metrics import structural_similarity

from cellbench.evaluate.reconstruction import (
    feature_correlation_summary,
    feature_correlations,
    reconstruction_mse,
    reconstruction_ssim,
)


def images(n=3, c=2, size=16, seed=0):
    return np.random.default_rng(seed).random((n, c, size, size))


def test_mse_by_hand():
    original = np.zeros((2, 1, 8, 8))
    reconstructed = original.copy()
    reconstructed[0] = 1.0
    reconstructed[1, 0, :4] = 2.0  # half the pixels off by 2 -> 4 * 0.5
    np.testing.assert_allclose(reconstruction_mse(original, reconstructed), [1.0, 2.0])


def test_ssim_of_identical_images_is_one():
    x = images()
    np.testing.assert_allclose(reconstruction_ssim(x, x, data_range=1.0), 1.0)
    as_uint16 = (x * 65535).astype(np.uint16)
    np.testing.assert_allclose(reconstruction_ssim(as_uint16, as_uint16, data_range=65535), 1.0)


def test_ssim_is_the_mean_over_channels_and_drops_with_noise():
    x = images()
    noisy = x + 0.2 * np.random.default_rng(1).normal(size=x.shape)
    scores = reconstruction_ssim(x, noisy, data_range=1.0)
    assert (scores < 0.9).all()
    per_channel = [structural_similarity(x[0, c], noisy[0, c], data_range=1.0) for c in range(2)]
    assert scores[0] == pytest.approx(np.mean(per_channel))
    # a wider data range makes the same error look smaller
    assert (reconstruction_ssim(x, noisy, data_range=10.0) > scores).all()


def test_image_shapes_are_checked():
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_mse(images(n=2), images(n=3))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        reconstruction_ssim(images()[0], images()[0], data_range=1.0)
    with pytest.raises(ValueError, match="data_range"):
        reconstruction_ssim(images(), images(), data_range=0)


def test_correlations_by_hand():
    target = pd.DataFrame({"area": [1.0, 2.0, 3.0, 4.0], "mean": [4.0, 1.0, 3.0, 2.0]})
    measured = pd.DataFrame({"mean": [-4.0, -1.0, -3.0, -2.0], "area": [3.0, 5.0, 7.0, 9.0]})
    table = feature_correlations(measured, target).set_index("feature")
    assert table.loc["area", "pearson_r"] == pytest.approx(1.0)
    assert table.loc["mean", "pearson_r"] == pytest.approx(-1.0)
    assert table["n_cells"].tolist() == [4, 4]


def test_correlations_skip_missing_values_and_constant_features():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(20, 3))
    measured = target + 0.5 * rng.normal(size=(20, 3))
    measured[3, 0], target[7, 0] = np.nan, np.inf
    measured[:, 2] = 0.1  # constant: r undefined
    table = feature_correlations(measured, target)
    keep = np.ones(20, bool)
    keep[[3, 7]] = False
    expected = np.corrcoef(measured[keep, 0], target[keep, 0])[0, 1]
    assert table["pearson_r"][0] == pytest.approx(expected)
    assert table["n_cells"].tolist() == [18, 20, 20]
    assert table["pearson_r"][1] == pytest.approx(np.corrcoef(measured[:, 1], target[:, 1])[0, 1])
    assert np.isnan(table["pearson_r"][2])

    summary = feature_correlation_summary(measured, target)
    assert summary["n_features"] == 3 and summary["n_defined"] == 2
    assert summary["mean_pearson_r"] == pytest.approx(table["pearson_r"][:2].mean())
    assert summary["per_feature"]["2"] is None


def test_feature_tables_must_match():
    a = pd.DataFrame({"area": [1.0, 2.0], "mean": [1.0, 2.0]})
    with pytest.raises(ValueError, match="only in target: \\['perimeter'\\]"):
        feature_correlations(a, a.rename(columns={"mean": "perimeter"}))
    with pytest.raises(ValueError, match="one row per cell"):
        feature_correlations(a, a.iloc[:1])
