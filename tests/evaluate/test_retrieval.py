import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import silhouette_score

from cellbench.evaluate.retrieval import (
    average_precision,
    average_precision_p_values,
    benjamini_hochberg,
    mean_average_precision,
    null_average_precision,
    retrieval_map,
    silhouette,
    silhouette_kmeans,
)


def on_circle(degrees):
    """Unit 2-D vectors at the given angles: cosine similarity falls with angular distance."""
    radians = np.deg2rad(np.asarray(degrees, dtype=float))
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def clustered(n_per_class=(12, 9, 6), dims=6, spread=0.3, seed=0):
    """Seeded samples around one random direction per class."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(n_per_class), dims))
    labels = np.repeat([f"c{i}" for i in range(len(n_per_class))], n_per_class)
    codes = np.repeat(np.arange(len(n_per_class)), n_per_class)
    return centres[codes] + spread * rng.normal(size=(len(labels), dims)), labels


def test_ap_of_a_known_ranking():
    # query at 0 deg ranks: 10 (pos), 20 (neg), 30 (pos), 40 (neg) -> AP = (1/1 + 2/3) / 2
    x = on_circle([0, 10, 30, 20, 40])
    table = average_precision(x, ["a", "a", "a", "b", "b"])
    assert table["average_precision"][0] == pytest.approx(5 / 6)
    # query at 40 deg ranks: 30 (neg), 20 (pos) -> AP = 1/2
    assert table["average_precision"][4] == pytest.approx(0.5)
    assert table["n_pos_pairs"].tolist() == [2, 2, 2, 1, 1]
    assert (table["n_total_pairs"] == 4).all()


def test_ties_rank_positives_first():
    # the two other samples are identical: the positive is ranked first, as in copairs
    x = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    table = average_precision(x, ["a", "b", "a"])
    assert table["average_precision"][0] == 1.0


def test_lone_class_has_no_ap_and_no_map():
    x, labels = clustered()
    labels = np.append(labels, "alone")
    x = np.vstack([x, np.ones(x.shape[1])])
    table = average_precision(x, labels)
    assert np.isnan(table["average_precision"].iloc[-1])
    assert table["n_pos_pairs"].iloc[-1] == 0
    classes = mean_average_precision(table, null_size=100, seed=0)
    assert "alone" not in set(classes["label"])
    assert np.isnan(average_precision_p_values(table, null_size=100)[-1])


def test_block_boundaries_do_not_change_ap(monkeypatch):
    import cellbench.evaluate.retrieval as retrieval

    x, labels = clustered(spread=1.0)
    whole = average_precision(x, labels)
    monkeypatch.setattr(retrieval, "_BLOCK_ELEMENTS", 2 * len(labels) + 1)
    np.testing.assert_array_equal(average_precision(x, labels), whole)


def test_null_of_small_configurations():
    # one positive among two: AP is 1 (ranked first) or 1/2, each half of the time
    null = null_average_precision(1, 2, 2000, seed=0)
    assert set(np.unique(null)) == {np.float32(0.5), np.float32(1.0)}
    assert 0.45 < np.mean(null == 1.0) < 0.55
    assert (null_average_precision(3, 3, 50, seed=0) == 1.0).all()


def test_p_values_separate_signal_from_noise():
    x, labels = clustered(spread=0.2)
    queries, classes = retrieval_map(x, labels, null_size=1000, seed=0)
    assert (classes["mean_average_precision"] > 0.99).all()
    assert (classes["p_value"] == 1 / 1001).all()
    assert classes["below_corrected_p"].all()
    assert (queries["p_value"] < 0.05).all()

    noise = np.random.default_rng(1).normal(size=x.shape)
    _, classes = retrieval_map(noise, labels, null_size=1000, seed=0)
    assert not classes["below_corrected_p"].all()
    assert (classes["p_value"] > 1 / 1001).all()


def test_map_p_value_counts_only_greater_nulls():
    # a and a are each other's nearest: AP 1 with 1 positive among 2, whose null is 1 or 1/2.
    # copairs counts null mAPs strictly above the observed one, so ties at 1 do not count.
    x = on_circle([0, 5, 90])
    classes = mean_average_precision(average_precision(x, ["a", "a", "b"]), null_size=99)
    assert classes["label"].tolist() == ["a"]
    assert classes["p_value"][0] == pytest.approx(1 / 100)
    queries = average_precision(x, ["a", "a", "b"])
    p_values = average_precision_p_values(queries, null_size=99)
    assert 0.4 < p_values[0] < 0.6  # per query, nulls equal to the AP do count


def test_benjamini_hochberg_by_hand():
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
    np.testing.assert_allclose(q, [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert benjamini_hochberg(np.array([0.9, 0.95])).max() <= 1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="all zero"):
        average_precision(np.array([[1.0, 0.0], [0.0, 0.0]]), ["a", "a"])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        average_precision(np.eye(2), ["a", "a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        average_precision(np.array([[1.0, np.nan], [0.0, 1.0]]), ["a", "a"])


def test_equals_copairs(tmp_path, monkeypatch):
    """AP, per-query p-values, mAP, p-values and q-values equal copairs' on one example."""
    pytest.importorskip("copairs")
    from copairs.map import average_precision as copairs_ap
    from copairs.map import mean_average_precision as copairs_map
    from copairs.map.average_precision import p_values as copairs_p_values

    monkeypatch.setenv("HOME", str(tmp_path))  # copairs caches null distributions in ~/.copairs
    x, labels = clustered(n_per_class=(10, 7, 5, 3), spread=1.5, seed=4)
    x, labels = np.vstack([x, np.ones(x.shape[1])]), np.append(labels, "alone")
    theirs = copairs_ap(
        pd.DataFrame({"label": labels}),
        x,
        pos_sameby=["label"],
        pos_diffby=[],
        neg_sameby=[],
        neg_diffby=["label"],
        progress_bar=False,
    )
    ours = average_precision(x, labels)
    np.testing.assert_allclose(ours["average_precision"], theirs["average_precision"], atol=1e-12)
    np.testing.assert_array_equal(ours["n_pos_pairs"], theirs["n_pos_pairs"])
    np.testing.assert_array_equal(ours["n_total_pairs"], theirs["n_total_pairs"])

    their_p = copairs_p_values(theirs, null_size=300, seed=7, progress_bar=False)
    our_p = average_precision_p_values(ours, null_size=300, seed=7)
    np.testing.assert_allclose(our_p, their_p, rtol=1e-6)  # copairs stores them as float32

    their_map = copairs_map(
        theirs,
        sameby=["label"],
        null_size=300,
        threshold=0.05,
        seed=7,
        progress_bar=False,
        cache_dir=tmp_path / "fresh",
    )
    our_map = mean_average_precision(ours, null_size=300, seed=7)
    assert our_map["label"].tolist() == their_map["label"].tolist()
    for column in ("mean_average_precision", "p_value", "corrected_p_value"):
        np.testing.assert_allclose(our_map[column], their_map[column], rtol=1e-12)
    assert our_map["p_value"].nunique() > 1  # the comparison covers more than the floor


def test_silhouette_is_sklearns_cosine_silhouette():
    x, labels = clustered(spread=0.2)
    assert silhouette(x, labels) == pytest.approx(silhouette_score(x, labels, metric="cosine"))
    assert silhouette(x, labels) > 0.5
    noise = np.random.default_rng(0).normal(size=x.shape)
    assert abs(silhouette(noise, labels)) < 0.2


def test_silhouette_sample_is_seeded():
    x, labels = clustered(spread=1.0)
    a = silhouette(x, labels, sample_size=15, seed=3)
    assert a == silhouette(x, labels, sample_size=15, seed=3)
    assert a != silhouette(x, labels, sample_size=15, seed=4)


def test_silhouette_kmeans_is_sklearns_silhouette_of_independent_kmeans_labels():
    from sklearn.cluster import KMeans

    x, labels = clustered(spread=0.4)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    for k in (2, 3, 5):
        clusters = KMeans(k, n_init=10, random_state=7).fit_predict(unit)
        expected = silhouette_score(unit, clusters, metric="cosine")
        assert silhouette_kmeans(x, k, seed=7) == pytest.approx(expected, rel=1e-12)
    # well-separated classes: KMeans finds them, so both silhouettes agree
    tight, tight_labels = clustered(spread=0.05)
    assert silhouette_kmeans(tight, 3) == pytest.approx(silhouette(tight, tight_labels), abs=1e-9)


def test_silhouette_kmeans_rejects_k_outside_2_to_n_minus_1():
    x, _ = clustered()
    with pytest.raises(ValueError, match="n_clusters"):
        silhouette_kmeans(x, 1)
    with pytest.raises(ValueError, match="n_clusters"):
        silhouette_kmeans(x, len(x))


def test_benjamini_hochberg_equals_the_step_up_rule():
    """scipy's BH equals the step-up rule written out: q_(i) = min_{j>=i} p_(j) M / j, <= 1."""
    p = np.random.default_rng(3).uniform(size=40) ** 3
    order = np.argsort(p)
    raw = p[order] * len(p) / np.arange(1, len(p) + 1)
    expected = np.empty_like(p)
    expected[order] = np.minimum(np.minimum.accumulate(raw[::-1])[::-1], 1.0)
    np.testing.assert_allclose(benjamini_hochberg(p), expected, rtol=1e-12)
