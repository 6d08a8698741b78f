"""PCA, t-SNE, clustermap, NSC confusion and nearest-neighbour mosaic figures."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from scipy.cluster import hierarchy  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from cellbench.report.figures_embedding import embedding_figure  # noqa: E402
from cellbench.report.figures_representation import (  # noqa: E402
    choose_queries,
    clustermap_figure,
    nearest_neighbours,
    neighbour_mosaic_figure,
    nsc_confusion,
    nsc_confusion_figure,
    pca_axis_labels,
    pca_coordinates,
    tsne_coordinates,
    well_means,
    zscore_columns,
)


def blobs(n_per_class=(10, 8, 6), dims=5, spread=0.3, seed=0):
    """Seeded samples around one random centre per class."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(n_per_class), dims)) * 3
    codes = np.repeat(np.arange(len(n_per_class)), n_per_class)
    labels = np.array([f"c{c}" for c in codes])
    return centres[codes] + spread * rng.normal(size=(len(codes), dims)), labels


def scattered_points(fig):
    return sum(len(c.get_offsets()) for ax in fig.axes for c in ax.collections)


def test_pca_coordinates_and_explained_variance_are_sklearns():
    x, labels = blobs()
    coords, explained = pca_coordinates(x)
    pca = PCA(2).fit(x)
    np.testing.assert_allclose(np.abs(coords), np.abs(pca.transform(x)), atol=1e-9)
    np.testing.assert_allclose(explained, pca.explained_variance_ratio_)
    xlabel, ylabel = pca_axis_labels(explained)
    assert xlabel == f"PC1 ({100 * pca.explained_variance_ratio_[0]:.1f}%)"
    fig = embedding_figure(coords, labels, axis_labels=(xlabel, ylabel))
    assert fig.axes[0].get_xlabel() == xlabel and fig.axes[0].get_ylabel() == ylabel
    assert scattered_points(fig) == len(x)
    assert len(fig.axes[0].collections) == 3  # one scatter per class
    plt.close(fig)


def test_tsne_is_seeded_and_draws_tiny_sets_below_the_perplexity():
    x, labels = blobs((3, 3), dims=4)  # 6 cells: perplexity 30 would fail in sklearn
    a = tsne_coordinates(x, seed=1)
    np.testing.assert_array_equal(a, tsne_coordinates(x, seed=1))
    assert a.shape == (6, 2) and np.isfinite(a).all()
    fig = embedding_figure(a, labels, axis_labels=("t-SNE 1", "t-SNE 2"))
    assert scattered_points(fig) == 6
    plt.close(fig)


def test_clustermap_rows_follow_scipys_leaves_of_the_same_linkage():
    x, labels = blobs((4, 3, 3), dims=7)
    x[:, 2] *= 50  # z-scoring makes this column count like the others
    fig = clustermap_figure(x, labels)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    np.testing.assert_allclose(zscore_columns(x), z)
    expected_rows = hierarchy.leaves_list(hierarchy.linkage(z, method="average"))
    expected_cols = hierarchy.leaves_list(hierarchy.linkage(z.T, method="average"))
    np.testing.assert_array_equal(fig.row_order, expected_rows)
    heat = fig.heatmap_axes.get_images()[0].get_array()
    assert heat.shape == (10, 7)
    # the top row of the heatmap is the last leaf (dendrogram leaves run bottom to top)
    np.testing.assert_allclose(heat[::-1], z[expected_rows][:, expected_cols])
    ticks = [t.get_text() for t in fig.heatmap_axes.get_yticklabels()]
    assert ticks == [labels[i] for i in expected_rows[::-1]]
    plt.close(fig)


def test_well_means_average_the_cells_of_each_well():
    table = pd.DataFrame(
        {"Metadata_Well": ["A1", "A1", "B2"], "label": ["x", "x", "y"], "e0": [1.0, 3.0, 5.0]}
    )
    means = well_means(table, ["e0"], ["Metadata_Well", "label"])
    assert means["e0"].tolist() == [2.0, 5.0]


def test_nsc_confusion_counts_equal_a_hand_count():
    neighbours = pd.DataFrame(
        {
            "moa": ["A", "A", "A", "B", "B", "C"],
            "neighbour_moa": ["A", "B", "B", "B", "C", "A"],
        }
    )
    counts = nsc_confusion(neighbours)
    # by hand: A->A 1, A->B 2, B->B 1, B->C 1, C->A 1
    expected = np.array([[1, 2, 0], [0, 1, 1], [1, 0, 0]])
    assert counts.index.tolist() == ["A", "B", "C"] == counts.columns.tolist()
    np.testing.assert_array_equal(counts.to_numpy(), expected)
    fig = nsc_confusion_figure(counts)
    np.testing.assert_array_equal(fig.axes[0].get_images()[0].get_array(), expected)
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["1", "1", "1", "1", "2"]
    assert "NSC accuracy 0.333 (6 treatments)" in fig.axes[0].get_title()
    plt.close(fig)


def test_nsc_confusion_names_missing_columns():
    with pytest.raises(ValueError, match="neighbour_moa"):
        nsc_confusion(pd.DataFrame({"moa": ["A"]}))


def test_mosaic_neighbours_are_the_brute_force_cosine_nearest():
    x, labels = blobs((7, 6, 5), dims=4, spread=1.0, seed=2)
    queries = choose_queries(labels, seed=3)
    assert [labels[q] for q in queries] == ["c0", "c1", "c2"]  # one query per class
    np.testing.assert_array_equal(queries, choose_queries(labels, seed=3))
    neighbours = nearest_neighbours(x, queries, k=4)
    for q, found in zip(queries, neighbours, strict=True):
        sims = [
            (x[q] @ x[j]) / (np.linalg.norm(x[q]) * np.linalg.norm(x[j]))
            for j in range(len(x))
            if j != q
        ]
        others = [j for j in range(len(x)) if j != q]
        expected = [others[i] for i in np.argsort(sims)[::-1][:4]]
        assert found.tolist() == expected
    crops = np.random.default_rng(0).integers(0, 4000, size=(len(x), 2, 8, 8)).astype(np.uint16)
    fig = neighbour_mosaic_figure(crops, labels, queries, neighbours)
    assert len(fig.axes) == 3 * 5
    grid = np.array(fig.axes).reshape(3, 5)
    for row, q in enumerate(queries):
        assert grid[row, 0].get_title() == f"query: {labels[q]}"
        assert [ax.get_title() for ax in grid[row, 1:]] == [labels[j] for j in neighbours[row]]
    plt.close(fig)
