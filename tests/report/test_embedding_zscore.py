"""report.embeddings.zscore_by: embeddings z-scored per replicate before the UMAP and the rest."""

import logging

import numpy as np
import pandas as pd
import pytest

from cellbench.config import config_from_dict
from cellbench.errors import ConfigError
from cellbench.paths import ResultsPaths
from cellbench.report import figures_embedding, gallery
from cellbench.report.figures_representation import well_means
from cellbench.report.zscore import titled, zscore_title, zscore_within
from tests.helpers import experiment_dict

LABEL = "Metadata_Culture"
DIMS = [f"embedding_{i:03d}" for i in range(4)]


def embeddings_table(n_per_plate: int = 12, seed: int = 0) -> pd.DataFrame:
    """Test and train cells of two plates, the second plate shifted and scaled."""
    rng = np.random.default_rng(seed)
    rows = []
    for plate, (shift, scale) in {"P1": (0.0, 1.0), "P2": (5.0, 3.0)}.items():
        for i in range(n_per_plate):
            values = shift + scale * rng.normal(size=len(DIMS))
            values[3] = 7.0  # constant: becomes 0
            rows.append(
                {
                    "Metadata_Plate": plate,
                    "Metadata_Well": f"A{i % 3 + 1}",
                    "Metadata_CellId": f"{plate}_{i}",
                    LABEL: "astro" if i % 2 else "neuron",
                    "split": "test" if i % 4 else "train",
                    **dict(zip(DIMS, values, strict=True)),
                }
            )
    return pd.DataFrame(rows)


def by_hand(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """(x - group mean) / group population SD per column, a constant column 0 (pandas)."""
    grouped = table.groupby(by)[DIMS]
    sd = grouped.transform(lambda c: c.std(ddof=0))
    return (table[DIMS] - grouped.transform("mean")) / sd.where(sd > 0, 1.0)


def write_embeddings(tmp_path, table: pd.DataFrame, model: str = "resnet") -> ResultsPaths:
    paths = ResultsPaths(tmp_path)
    path = paths.embeddings(model, 0)
    path.parent.mkdir(parents=True)
    table.to_parquet(path, index=False)
    return paths


class Model:  # what the gallery reads of a model config
    def __init__(self, name: str) -> None:
        self.name = name


def test_zscore_within_equals_a_pandas_groupby_by_hand() -> None:
    table = embeddings_table()
    z = zscore_within(table, DIMS, ["Metadata_Plate"], key="k")
    np.testing.assert_allclose(z[DIMS].to_numpy(), by_hand(table, ["Metadata_Plate"]), atol=1e-12)
    assert (z["embedding_003"] == 0).all()
    means = z.groupby("Metadata_Plate")[DIMS[:3]].mean().to_numpy()
    sds = z.groupby("Metadata_Plate")[DIMS[:3]].std(ddof=0).to_numpy()
    np.testing.assert_allclose(means, 0, atol=1e-12)
    np.testing.assert_allclose(sds, 1, atol=1e-12)
    two = zscore_within(table, DIMS, ["Metadata_Plate", "Metadata_Well"], key="k")
    expected = by_hand(table, ["Metadata_Plate", "Metadata_Well"])
    np.testing.assert_allclose(two[DIMS].to_numpy(), expected, atol=1e-12)
    pd.testing.assert_frame_equal(z.drop(columns=DIMS), table.drop(columns=DIMS))


def test_many_dimensions_keep_the_table_whole(recwarn) -> None:
    rng = np.random.default_rng(0)
    dims = [f"embedding_{i:03d}" for i in range(512)]  # a ResNet's: no PerformanceWarning
    table = pd.DataFrame(rng.normal(size=(40, 512)), columns=dims)
    table.insert(0, "Metadata_Plate", ["P1", "P2"] * 20)
    z = zscore_within(table, dims, ["Metadata_Plate"], key="k")
    assert list(z.columns) == list(table.columns)
    well_means(z, dims, ["Metadata_Plate"])  # the clustermap's means, inserting the keys
    assert not recwarn.list


def test_a_missing_column_names_the_config_key_and_the_columns_there_are() -> None:
    key = "report.embeddings.zscore_by"
    with pytest.raises(
        ConfigError, match=rf"{key}: no column \['Metadata_Batch'\].*Metadata_Plate"
    ):
        zscore_within(embeddings_table(), DIMS, ["Metadata_Batch"], key=key)


def test_titles_say_how_the_embeddings_were_z_scored() -> None:
    assert zscore_title(["Metadata_Plate"]) == "z-scored per plate"
    assert titled("rf: UMAP", None) == "rf: UMAP"
    assert titled("rf: UMAP", ["Metadata_Plate"]) == "rf: UMAP (z-scored per plate)"


def capture_umap(monkeypatch) -> dict:
    """Record what the UMAP and its figure are given; the UMAP itself is not run."""
    seen = {}

    def fake_umap(x, seed=0):
        seen["x"] = x
        return x[:, :2]

    original = figures_embedding.embedding_figure

    def recording_figure(coords, labels, **kwargs):
        seen["title"] = kwargs["title"]
        return original(coords, labels, **kwargs)

    monkeypatch.setattr(figures_embedding, "umap_embedding", fake_umap)
    monkeypatch.setattr(figures_embedding, "embedding_figure", recording_figure)
    return seen


def test_the_umap_gets_each_plates_test_cells_z_scored(tmp_path, monkeypatch) -> None:
    table = embeddings_table()
    paths = write_embeddings(tmp_path, table)
    seen = capture_umap(monkeypatch)
    (png,) = gallery.embedding_figures(
        paths, [Model("resnet")], 0, LABEL, zscore_by=["Metadata_Plate"]
    )
    assert png.name == "umap_resnet.png" and png.stat().st_size > 0
    test = table[table["split"] == "test"].reset_index(drop=True)
    np.testing.assert_allclose(seen["x"], by_hand(test, ["Metadata_Plate"]), atol=1e-12)
    assert seen["title"] == "resnet: UMAP of test-cell embeddings (z-scored per plate)"


def test_without_the_option_the_umap_gets_the_embeddings_as_before(tmp_path, monkeypatch) -> None:
    table = embeddings_table()
    paths = write_embeddings(tmp_path, table)
    seen = capture_umap(monkeypatch)
    assert config_from_dict(experiment_dict(tmp_path)).report.embeddings.zscore_by is None
    gallery.embedding_figures(paths, [Model("resnet")], 0, LABEL)
    test = table[table["split"] == "test"]
    np.testing.assert_array_equal(seen["x"], test[DIMS].to_numpy())
    assert seen["title"] == "resnet: UMAP of test-cell embeddings"


def test_pca_tsne_and_clustermap_share_the_z_score(tmp_path, monkeypatch) -> None:
    from cellbench.report import figures_representation

    table = embeddings_table(n_per_plate=20)
    paths = write_embeddings(tmp_path, table)
    seen = {}
    original = figures_representation.clustermap_figure

    def recording_clustermap(values, row_labels, **kwargs):
        seen["values"], seen["title"] = values, kwargs["title"]
        return original(values, row_labels, **kwargs)

    monkeypatch.setattr(figures_representation, "clustermap_figure", recording_clustermap)
    zscore = {"zscore_by": ["Metadata_Plate"]}
    written = gallery.projection_figures(paths, [Model("resnet")], 0, LABEL, **zscore)
    assert [p.name for p in written] == ["pca_resnet.png", "tsne_resnet.png"]
    (png,) = gallery.clustermap_figures(paths, [Model("resnet")], 0, LABEL, **zscore)
    assert png.stat().st_size > 0
    test = table[table["split"] == "test"].reset_index(drop=True)
    z = test.copy()
    z[DIMS] = by_hand(test, ["Metadata_Plate"])
    keys = ["Metadata_Plate", "Metadata_Well", LABEL]
    expected = z.groupby(keys, sort=True)[DIMS].mean().to_numpy()
    np.testing.assert_allclose(seen["values"], expected, atol=1e-12)
    assert seen["title"].endswith("(z-scored per plate)")


def test_a_model_without_the_column_is_logged_and_skipped(tmp_path, monkeypatch, caplog) -> None:
    paths = write_embeddings(tmp_path, embeddings_table().drop(columns="Metadata_Plate"))
    capture_umap(monkeypatch)
    with caplog.at_level(logging.WARNING):
        written = gallery.embedding_figures(
            paths, [Model("resnet")], 0, LABEL, zscore_by=["Metadata_Plate"]
        )
    assert written == []
    assert "report.embeddings.zscore_by: no column ['Metadata_Plate']" in caplog.text


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({"embeddings": {"zscore_by": "Metadata_Plate"}}, "report.embeddings.zscore_by"),
        ({"embeddings": {"zscore_by": ["plate"]}}, "report.embeddings.zscore_by"),
        ({"embeddings": {"zscore_by": []}}, "report.embeddings.zscore_by"),
        ({"embeddings": {"zscore": ["Metadata_Plate"]}}, "unknown key 'zscore'"),
        (
            {"feature_clustermap": {"zscore": "well"}},
            r"report.feature_clustermap.*unknown key 'zscore'",
        ),
        ({"feature_clustermap": {"max_cells": 1}}, "report.feature_clustermap.max_cells"),
        ({"feature_clustermap": {"zscore_by": ["Well"]}}, "report.feature_clustermap.zscore_by"),
    ],
)
def test_the_config_rejects_a_bad_shape(tmp_path, report, message) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(experiment_dict(tmp_path, report=report))


def test_the_config_reads_both_options(tmp_path) -> None:
    report = {"embeddings": {"zscore_by": ["Metadata_Plate"]}, "feature_clustermap": {}}
    config = config_from_dict(experiment_dict(tmp_path, report=report))
    assert config.report.embeddings.zscore_by == ["Metadata_Plate"]
    clustermap = config.report.feature_clustermap
    assert (clustermap.zscore_by, clustermap.max_cells) == (
        ["Metadata_Plate", "Metadata_Well"],
        500,
    )
    assert config_from_dict(experiment_dict(tmp_path)).report.feature_clustermap is None
