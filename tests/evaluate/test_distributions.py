import numpy as np
import pytest

from cellbench.evaluate.distributions import (
    group_kl_divergence,
    kl_divergence,
    median_bandwidth,
    mmd,
)


def softmax_rows(n=50, k=4, seed=0):
    logits = np.random.default_rng(seed).normal(size=(n, k))
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def test_kl_by_hand():
    p, q = np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])
    expected = 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)
    assert kl_divergence(p, q)[0] == pytest.approx(expected, rel=1e-9)
    assert kl_divergence(q, p)[0] != pytest.approx(expected)  # not symmetric


def test_identical_distributions_give_zero():
    p = softmax_rows()
    np.testing.assert_array_equal(kl_divergence(p, p), 0.0)
    assert (kl_divergence(p, softmax_rows(seed=1)) > 0).all()


def test_zero_probabilities_stay_finite():
    p, q = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    kl = kl_divergence(p, q, eps=1e-12)[0]
    assert np.isfinite(kl)
    assert kl == pytest.approx(np.log(1e12), rel=1e-6)  # about p * log(p / eps)
    assert kl_divergence(p, q, eps=1e-6)[0] < kl
    # a class p never predicts costs next to nothing
    assert kl_divergence(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]]))[0] == 0.0


def test_kl_rejects_non_probabilities():
    p = softmax_rows()
    with pytest.raises(ValueError, match="sum to 1"):
        kl_divergence(p * 2, p)
    with pytest.raises(ValueError, match="same shape"):
        kl_divergence(p, p[:, :3] / p[:, :3].sum(axis=1, keepdims=True))
    with pytest.raises(ValueError, match="negative"):
        kl_divergence(p - 0.5, p)


def test_group_kl_of_means_differs_from_mean_kl():
    # group g: each cell flips its prediction, but the mean distribution is unchanged
    p = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    q = np.array([[0.0, 1.0], [1.0, 0.0], [0.9, 0.1]])
    table = group_kl_divergence(p, q, np.array(["g", "g", "h"])).set_index("group")
    assert table.loc["g", "n_cells"] == 2
    assert table.loc["g", "kl_of_means"] == pytest.approx(0.0, abs=1e-9)
    assert table.loc["g", "mean_cell_kl"] > 20
    expected_h = 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)
    assert table.loc["h", "kl_of_means"] == pytest.approx(expected_h)
    assert table.loc["h", "mean_cell_kl"] == pytest.approx(expected_h)


def brute_force_mmd2(x, y, sigma):
    """The unbiased MMD^2 estimator written out with loops."""

    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * sigma**2))

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_mmd_matches_the_formula_and_median_heuristic():
    x, y = np.array([[0.0], [1.0]]), np.array([[3.0], [4.0], [4.5]])
    # pooled distances 1, 3, 4, 4.5, 2, 3, 3.5, 1, 1.5, 0.5 -> median 2.5
    assert median_bandwidth(np.vstack([x, y])) == pytest.approx(2.5)
    result = mmd(x, y)
    assert result["bandwidth"] == pytest.approx(2.5)
    assert result["mmd2"] == pytest.approx(brute_force_mmd2(x, y, 2.5))
    assert mmd(x, y, bandwidth=1.0)["mmd2"] == pytest.approx(brute_force_mmd2(x, y, 1.0))
    assert result["p_value"] is None


def test_same_distribution_mmd_near_zero_and_not_significant():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 5)), rng.normal(size=(100, 5))
    result = mmd(x, y, n_permutations=200, seed=0)
    assert abs(result["mmd2"]) < 0.01
    assert result["p_value"] > 0.05
    assert abs(mmd(x, x)["mmd2"]) < 0.01


def test_shifted_sets_are_significant():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 5)), rng.normal(loc=0.7, size=(100, 5))
    result = mmd(x, y, n_permutations=200, seed=0)
    assert result["mmd2"] > 0.05
    assert result["p_value"] == pytest.approx(1 / 201)
    assert result["n_x"] == 120 and result["n_y"] == 100


def test_permutations_are_seeded():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 3)), rng.normal(loc=0.2, size=(30, 3))
    a = mmd(x, y, n_permutations=100, seed=5)["p_value"]
    assert a == mmd(x, y, n_permutations=100, seed=5)["p_value"]
    assert 1 / 101 < a < 1


def test_mmd_rejects_bad_input():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="identical"):
        mmd(x, x)
    with pytest.raises(ValueError, match="same width"):
        mmd(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="bandwidth"):
        mmd(np.eye(3), np.eye(3) + 1, bandwidth=0.0)
