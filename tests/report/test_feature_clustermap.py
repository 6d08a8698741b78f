"""report.feature_clustermap: cells x handcrafted features z-scored per well, rows by class."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from cellbench.config import config_from_dict  # noqa: E402
from cellbench.errors import ConfigError  # noqa: E402
from cellbench.paths import ResultsPaths  # noqa: E402
from cellbench.report import figures_representation  # noqa: E402
from cellbench.report.feature_clustermap import (  # noqa: E402
    feature_clustermap_figures,
    feature_clustermap_matrix,
    stratified_sample,
)
from cellbench.report.figures_representation import clustermap_figure  # noqa: E402
from tests.helpers import experiment_dict  # noqa: E402

VARYING = [
    "Cells_AreaShape_Area",
    "Nuclei_AreaShape_Area",
    "Cells_Intensity_MeanIntensity_DNA",
    "Nuclei_Intensity_MeanIntensity_DNA",
]
CONSTANT = "Cells_AreaShape_Solidity"
PARTLY_NAN = "Cytoplasm_Intensity_MeanIntensity_DNA"
WELL = ["Metadata_Plate", "Metadata_Well"]


def feature_table(plate: str, seed: int, cells_per_well: int = 8) -> pd.DataFrame:
    """Three wells with their own offsets; a constant feature and one with a NaN."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, well in enumerate(["A01", "A02", "B01"]):
        n = cells_per_well
        frame = pd.DataFrame(rng.normal(10.0 * k, 1.0 + k, size=(n, len(VARYING))), columns=VARYING)
        frame[CONSTANT] = 0.9
        frame[PARTLY_NAN] = rng.normal(size=n)
        frame.insert(0, "Metadata_Plate", plate)
        frame.insert(1, "Metadata_Well", well)
        frame.insert(2, "Metadata_CellId", [f"{plate}_{well}_{i}" for i in range(n)])
        frame.insert(3, "Metadata_Culture", ["astro"] * (n - 2) + ["neuron"] * 2)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table.loc[3, PARTLY_NAN] = np.nan
    return table


def test_stratified_sample_caps_shows_every_class_and_is_seeded() -> None:
    labels = np.array(["a"] * 90 + ["b"] * 9 + ["c"])
    rows = stratified_sample(labels, 20, seed=1)
    assert len(rows) == 20 and len(set(rows)) == 20 and (np.diff(rows) > 0).all()
    classes, counts = np.unique(labels[rows], return_counts=True)
    assert classes.tolist() == ["a", "b", "c"] and counts.tolist() == [17, 2, 1]
    np.testing.assert_array_equal(rows, stratified_sample(labels, 20, seed=1))
    assert not np.array_equal(rows, stratified_sample(labels, 20, seed=2))
    np.testing.assert_array_equal(stratified_sample(labels, 500), np.arange(100))
    assert labels[stratified_sample(labels, 2)].tolist() == ["a", "b"]  # the largest classes


def test_the_matrix_is_z_scored_per_well_and_drops_constant_and_nan_columns() -> None:
    table = pd.concat([feature_table("P1", 0), feature_table("P2", 1)], ignore_index=True)
    names = [*VARYING, CONSTANT, PARTLY_NAN]
    values, classes = feature_clustermap_matrix(
        table[WELL],
        table[names].to_numpy(),
        names,
        table["Metadata_Culture"].to_numpy(),
        zscore_by=WELL,
        max_cells=1000,
    )
    assert list(values.columns) == VARYING  # the constant and the partly undefined are out
    np.testing.assert_array_equal(values.index, np.arange(len(table)))  # every cell
    by_well = values.groupby([table[c] for c in WELL])
    np.testing.assert_allclose(by_well.mean().to_numpy(), 0, atol=1e-9)
    np.testing.assert_allclose(by_well.std(ddof=0).to_numpy(), 1, atol=1e-9)
    grouped = table.groupby(WELL)[VARYING]
    expected = (table[VARYING] - grouped.transform("mean")) / grouped.transform(
        lambda c: c.std(ddof=0)
    )
    np.testing.assert_allclose(values.to_numpy(), expected.to_numpy(), atol=1e-9)
    assert classes.tolist() == table["Metadata_Culture"].tolist()


def test_the_matrix_names_the_config_key_of_a_missing_column() -> None:
    table = feature_table("P1", 0)
    with pytest.raises(ConfigError, match=r"report.feature_clustermap.zscore_by: no column"):
        feature_clustermap_matrix(
            table[["Metadata_Plate"]],
            table[VARYING].to_numpy(),
            VARYING,
            table["Metadata_Culture"].to_numpy(),
            zscore_by=WELL,
            max_cells=10,
        )


def test_the_figure_writes_a_png_of_the_per_well_z_scores(tmp_path, monkeypatch) -> None:
    paths = ResultsPaths(tmp_path)
    tables = []
    for k, plate in enumerate(["P1", "P2"]):
        path = paths.feature_table(plate)
        path.parent.mkdir(parents=True, exist_ok=True)
        feature_table(plate, k).to_parquet(path, index=False)
        tables.append(path)
    seen = {}

    def recording_clustermap(values, row_labels, **kwargs):
        seen["values"], seen["kwargs"] = values, kwargs
        return clustermap_figure(values, row_labels, **kwargs)

    monkeypatch.setattr(figures_representation, "clustermap_figure", recording_clustermap)
    report = {"feature_clustermap": {"max_cells": 1000}}
    settings = config_from_dict(experiment_dict(tmp_path, report=report)).report.feature_clustermap
    (png,) = feature_clustermap_figures(tables, "culture", settings, paths)
    assert png == paths.report_dir / "feature_clustermap.png" and png.stat().st_size > 0
    cells = pd.concat([pd.read_parquet(p) for p in tables], ignore_index=True)
    means = pd.DataFrame(seen["values"]).groupby([cells[c] for c in WELL]).mean()
    np.testing.assert_allclose(means.to_numpy(), 0, atol=1e-6)  # float32 features
    assert seen["values"].shape == (len(cells), len(VARYING))
    assert seen["kwargs"]["zscore"] is False
    assert sorted(set(seen["kwargs"]["row_classes"])) == ["astro", "neuron"]
    assert "z-scored per plate and well" in seen["kwargs"]["title"]
    assert feature_clustermap_figures(tables, "culture", None, paths) == []


def test_row_classes_draw_a_strip_in_the_heatmaps_row_order() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(9, 4))
    classes = np.array(["b", "a", "c"] * 3)
    fig = clustermap_figure(values, None, row_classes=classes, zscore=False, value_limit=3.0)
    strip = fig.row_class_axes.get_images()[0].get_array()[:, 0]
    shown = classes[fig.row_order[::-1]]  # the heatmap's top row first
    np.testing.assert_array_equal(strip, [["a", "b", "c"].index(c) for c in shown])
    heat = fig.heatmap_axes.get_images()[0]
    assert heat.get_clim() == (-3.0, 3.0)
    np.testing.assert_array_equal(np.sort(heat.get_array(), axis=None), np.sort(values, axis=None))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b", "c"]
    assert fig.heatmap_axes.get_yticklabels() == []
    plt.close(fig)
