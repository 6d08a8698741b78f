import numpy as np
import pytest

from cellbench.evaluate.distributions import (
    MMD_COLUMNS,
    _unbiased_mmd2,
    gaussian_kernel_sum,
    group_kl_divergence,
    group_mmd,
    kl_divergence,
    median_bandwidth,
    mmd,
    mmd_summary,
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
    """The unbiased MMD^2 estimator written out with loops (one sigma, or a sum over several)."""
    sigmas = np.atleast_1d(sigma)

    def k(a, b):
        return sum(np.exp(-np.sum((a - b) ** 2) / (2 * s**2)) for s in sigmas)

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


def test_multi_kernel_mmd_is_the_loops_over_the_sum_of_kernels():
    x = np.array([[0.0, 1.0], [1.0, 0.5], [0.2, 0.2]])
    y = np.array([[2.0, 1.0], [3.0, 0.0], [2.5, 2.0], [1.5, 1.5]])
    sigma = median_bandwidth(np.vstack([x, y]))
    multipliers = [0.5, 1.0, 1.5, 2.0]
    result = mmd(x, y, multipliers=multipliers)
    assert result["bandwidth"] == pytest.approx(sigma)
    assert result["multipliers"] == multipliers
    expected = brute_force_mmd2(x, y, sigma * np.array(multipliers))
    assert result["mmd2"] == pytest.approx(expected, rel=1e-12)
    # the sum kernel's MMD^2 is the sum of each kernel's MMD^2
    single = [mmd(x, y, bandwidth=sigma * k)["mmd2"] for k in multipliers]
    assert result["mmd2"] == pytest.approx(sum(single), rel=1e-12)
    assert mmd(x, y, bandwidth=1.0, multipliers=[2.0])["mmd2"] == pytest.approx(
        brute_force_mmd2(x, y, 2.0)
    )


def test_kernel_sum_by_hand():
    d2 = np.array([[0.0, 4.0]])
    kernel = gaussian_kernel_sum(d2, [1.0, 2.0])
    np.testing.assert_allclose(kernel, [[2.0, np.exp(-2.0) + np.exp(-0.5)]])


def test_resampled_weights_leave_out_copies_of_one_cell():
    # A resample with counts: the within-set means skip pairs of one cell with its copies.
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 2)), rng.normal(size=(3, 2)) + 1
    pooled = np.vstack([x, y])
    kernel = gaussian_kernel_sum(((pooled[:, None] - pooled[None]) ** 2).sum(-1), [1.3])
    np.fill_diagonal(kernel, 0.0)
    counts_x, counts_y = np.array([2, 0, 1, 1]), np.array([0, 2, 1])
    ix, iy = np.repeat(np.arange(4), counts_x), np.repeat(np.arange(3), counts_y)

    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * 1.3**2))

    def within(points, origin):
        pairs = [
            k(points[i], points[j])
            for i in range(len(points))
            for j in range(len(points))
            if origin[i] != origin[j]
        ]
        return sum(pairs) / len(pairs)

    xs, ys = x[ix], y[iy]
    xy = sum(k(a, b) for a in xs for b in ys) / (len(xs) * len(ys))
    expected = within(xs, ix) + within(ys, iy) - 2 * xy
    in_x = np.concatenate([counts_x, np.zeros(3)])[None]
    in_y = np.concatenate([np.zeros(4), counts_y])[None]
    assert _unbiased_mmd2(kernel, in_x, in_y)[0] == pytest.approx(expected, rel=1e-12)


def test_bootstrap_interval_holds_the_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(150, 4)), rng.normal(loc=0.5, size=(120, 4))
    result = mmd(x, y, multipliers=[0.5, 1, 1.5, 2], n_bootstrap=50, seed=1)
    assert result["n_bootstrap"] == 50
    assert result["ci_low"] < result["mmd2"] < result["ci_high"]
    assert result["ci_low"] > 0  # shifted sets: the whole interval is above 0
    assert result["bootstrap_mean"] == pytest.approx(result["mmd2"], abs=0.5 * result["mmd2"])
    again = mmd(x, y, multipliers=[0.5, 1, 1.5, 2], n_bootstrap=50, seed=1)
    assert again == result
    other = mmd(x, y, multipliers=[0.5, 1, 1.5, 2], n_bootstrap=50, seed=2)
    assert other["mmd2"] == result["mmd2"] and other["ci_low"] != result["ci_low"]
    assert mmd(x, y)["ci_low"] is None


def test_same_distribution_multi_kernel_near_zero_shifted_clearly_positive():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(200, 6)), rng.normal(size=(200, 6))
    shifted = rng.normal(loc=0.6, size=(200, 6))
    settings = {"multipliers": [0.5, 1, 1.5, 2], "n_bootstrap": 40, "seed": 0}
    same, apart = mmd(x, y, **settings), mmd(x, shifted, **settings)
    assert abs(same["mmd2"]) < 0.02
    assert same["ci_low"] < 0 < same["ci_high"]
    assert apart["mmd2"] > 10 * abs(same["mmd2"]) and apart["ci_low"] > same["ci_high"]
    # the labels permuted across the pooled cells: as one distribution
    pooled = rng.permutation(np.vstack([x, shifted]))
    permuted = mmd(pooled[:200], pooled[200:], **settings)
    assert abs(permuted["mmd2"]) < 0.02 and permuted["ci_low"] < 0 < permuted["ci_high"]


def test_max_cells_subsamples_each_set():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(40, 3))
    result = mmd(x, y, max_cells=50, seed=0)
    assert (result["n_x"], result["n_y"]) == (50, 40)
    assert mmd(x, y, max_cells=50, seed=0) == result
    assert mmd(x, y, max_cells=50, seed=1)["mmd2"] != result["mmd2"]
    with pytest.raises(ValueError, match="max_cells"):
        mmd(x, y, max_cells=1)
    with pytest.raises(ValueError, match="multipliers"):
        mmd(x, y, multipliers=[1.0, 0.0])


def three_groups(n=120, seed=0):
    """Groups a and c from one distribution, b shifted; d has a single cell."""
    rng = np.random.default_rng(seed)
    embeddings = np.vstack(
        [rng.normal(size=(n, 5)), rng.normal(loc=0.8, size=(n, 5)), rng.normal(size=(n, 5))]
    )
    groups = np.repeat(np.array(["a", "b", "c"]), n)
    return np.vstack([embeddings, np.ones((1, 5))]), np.append(groups, "d")


def test_group_mmd_pairs_within_baseline_and_shared_sigma():
    embeddings, groups = three_groups()
    table = group_mmd(embeddings, groups, n_bootstrap=20, max_cells=100, seed=0)
    assert list(table.columns) == MMD_COLUMNS
    pairs = {
        (a, b): row
        for a, b, row in zip(table.group_a, table.group_b, table.itertuples(), strict=True)
    }
    assert set(pairs) == {("a", "b"), ("a", "c"), ("b", "c"), ("a", "a"), ("b", "b"), ("c", "c")}
    assert pairs["a", "b"].mmd2 > 0.1 and pairs["b", "c"].mmd2 > 0.1
    assert abs(pairs["a", "c"].mmd2) < 0.02
    for a, b in [("a", "a"), ("b", "b"), ("c", "c")]:  # halves of 100 subsampled cells
        assert abs(pairs[a, b].mmd2) < 0.05 and (pairs[a, b].n_a, pairs[a, b].n_b) == (50, 50)
    assert (table.n_a[table.group_a != table.group_b] == 100).all()
    assert (table.ci_low <= table.mmd2).all() and (table.mmd2 <= table.ci_high).all()
    assert table.sigma.nunique() == 1 and table.sigma.iloc[0] > 0
    assert group_mmd(embeddings, groups, n_bootstrap=20, max_cells=100, seed=0).equals(table)

    summary = mmd_summary(table)
    assert summary["mmd_groups"] == 3
    assert summary["mmd2_between"] == pytest.approx(table.mmd2[:3].mean())
    assert summary["mmd2_between"] > 5 * abs(summary["mmd2_within"])
    assert summary["mmd_sigma"] == table.sigma.iloc[0]


def test_group_mmd_without_two_groups_of_cells():
    table = group_mmd(np.eye(3), np.array(["a", "b", "c"]))  # one cell each: nothing
    assert table.empty and list(table.columns) == MMD_COLUMNS
    assert mmd_summary(table) == {
        "mmd2_between": None,
        "mmd2_within": None,
        "mmd_groups": 0,
        "mmd_sigma": None,
    }
    one = group_mmd(np.random.default_rng(0).normal(size=(6, 2)), np.array(["a"] * 6))
    assert list(zip(one.group_a, one.group_b, strict=True)) == [("a", "a")]
    with pytest.raises(ValueError, match="groups must have shape"):
        group_mmd(np.eye(3), np.array(["a", "b"]))


def test_bootstrap_of_two_cells_keeps_only_resamples_of_distinct_cells():
    x, y = np.array([[0.0], [1.0]]), np.array([[3.0], [4.0]])
    few = mmd(x, y, n_bootstrap=3, seed=0)  # every resample drew one cell twice
    assert few["mmd2"] > 0 and few["ci_low"] is None and few["bootstrap_mean"] is None
    many = mmd(x, y, n_bootstrap=30, seed=0)  # the resamples of distinct cells are the sets
    assert many["ci_low"] == pytest.approx(many["mmd2"]) == many["ci_high"]
