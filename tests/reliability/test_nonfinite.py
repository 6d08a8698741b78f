"""NaN and infinite pixels (float TIFFs), and infinite features.

Before, an Inf pixel was stored as 65535 in the crop store and made `inf` features that failed
evaluation ("Input X contains infinity"); a NaN patch made every plate statistic NaN. Now
``data.nonfinite: fail`` fails the field alone (naming its file and the count) and ``zero``
sets such pixels to 0 and counts them; models fill an infinite feature like a NaN one.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile

from cellbench.config import Config, config_from_dict
from cellbench.crops.store import _PixelSample, read_cells
from cellbench.data.plates import open_plate, read_field
from cellbench.data.synthetic import CHANNELS, write_plate
from cellbench.errors import CellbenchError
from cellbench.models.classical import CLASSIFIER_KINDS, build_classifier
from cellbench.paths import ResultsPaths
from cellbench.segment.store import stored_fields
from cellbench.tasks import run_task

INF_FIELD, NAN_FIELD = "A-01-01", "A-02-01"
N_INF = 10 * 10  # an Inf block in the first channel
N_NAN = 40 * 128  # a band of rows NaN in the second channel, across cells


def write_float_field(folder: Path, name: str, damage) -> None:
    """Rewrite a field of the plate as float32 with `damage` applied to its pixels."""
    path = folder / "fields" / f"{name}.tif"
    image = tifffile.imread(path).astype(np.float32)
    damage(image)
    meta = {"axes": "CYX", "channel_names": list(CHANNELS)}
    tifffile.imwrite(path, image, metadata=meta, photometric="minisblack")


def add_inf(image: np.ndarray) -> None:
    image[0, 10:20, 10:20] = np.inf


def add_nan(image: np.ndarray) -> None:
    image[1, 40:80, :] = np.nan


@pytest.fixture(scope="module")
def plates_root(tmp_path_factory) -> Path:
    """A 2 x 2-well plate (1 site, 128 px): one field with Inf pixels, one with a NaN band."""
    root = tmp_path_factory.mktemp("nonfinite")
    folder = write_plate(
        root / "plates" / "P1",
        rows="AB",
        columns=(1, 2),
        sites=1,
        field_shape=(128, 128),
        cells_per_field=10,
        conditions=("control", "textured"),
        seed=1,
    )
    write_float_field(folder, INF_FIELD, add_inf)
    write_float_field(folder, NAN_FIELD, add_nan)
    return root / "plates"


def make_config(plates_root: Path, results_root: Path, nonfinite: str) -> Config:
    return config_from_dict(
        {
            "name": "nonfinite",
            "results_root": str(results_root),
            "data": {
                "input": {"source": "fields", "root": str(plates_root)},
                "nonfinite": nonfinite,
            },
            "crops": {"kinds": {"whole_cell": {"size_px": 32}}},
            "models": [{"name": "rf", "type": "random_forest", "n_estimators": 20}],
            "seeds": [0],
        }
    )


@pytest.fixture(scope="module")
def failed_fields(plates_root, tmp_path_factory):
    """Segment, crop and features under ``fail``, through the stages."""
    config = make_config(plates_root, tmp_path_factory.mktemp("fail"), "fail")
    results = {stage: run_task(config, stage, "P1") for stage in ("segment", "crop", "features")}
    return config, results


@pytest.fixture(scope="module")
def zeroed_fields(plates_root, tmp_path_factory):
    """Segment, crop and features under ``zero``, through the stages (details per stage)."""
    config = make_config(plates_root, tmp_path_factory.mktemp("zero"), "zero")
    details = {}
    for stage in ("segment", "crop", "features"):
        result = run_task(config, stage, "P1")
        assert result.state == "done", result.message
        details[stage] = result.details
    return config, details


def test_read_field_fails_naming_the_file_and_the_count(plates_root, tmp_path):
    plate = open_plate(make_config(plates_root, tmp_path, "fail"), "P1")
    field = next(f for f in plate.fields if f.name == INF_FIELD)
    with pytest.raises(CellbenchError, match=rf"{INF_FIELD}\.tif: {N_INF} pixel\(s\) are NaN"):
        read_field(plate, field, ["DNA", "tubulin"])


def test_read_field_zero_sets_them_to_zero_and_counts(plates_root, tmp_path):
    plate = open_plate(make_config(plates_root, tmp_path, "zero"), "P1")
    field = next(f for f in plate.fields if f.name == INF_FIELD)
    zeroed: dict[str, int] = {}
    image = read_field(plate, field, ["DNA", "tubulin"], "zero", zeroed)
    assert np.isfinite(image).all() and (image[0, 10:20, 10:20] == 0).all()
    assert zeroed == {INF_FIELD: N_INF}
    clean = next(f for f in plate.fields if f.name not in (INF_FIELD, NAN_FIELD))
    assert read_field(plate, clean, ["DNA"], "zero", zeroed).dtype == np.uint16
    assert zeroed == {INF_FIELD: N_INF}


def test_fail_fails_those_fields_alone(failed_fields):
    config, results = failed_fields
    assert {stage: r.state for stage, r in results.items()} == dict.fromkeys(results, "done")
    errors = results["segment"].details["field_errors"]
    assert set(errors) == {INF_FIELD, NAN_FIELD}
    assert f"{INF_FIELD}.tif: {N_INF} pixel(s)" in errors[INF_FIELD]
    assert f"{NAN_FIELD}.tif: {N_NAN} pixel(s)" in errors[NAN_FIELD]
    paths = ResultsPaths(config.results_root)
    assert stored_fields(paths.label_store("P1")) == ["B-01-01", "B-02-01"]


def test_fail_leaves_no_cell_of_those_fields(failed_fields):
    config, _ = failed_fields
    paths = ResultsPaths(config.results_root)
    cells = read_cells(paths.crop_store("P1"))
    features = pd.read_parquet(paths.feature_table("P1"))
    assert len(cells) > 0 and len(features) > 0
    assert not cells["field"].isin([INF_FIELD, NAN_FIELD]).any()
    assert not features["Metadata_Field"].isin([INF_FIELD, NAN_FIELD]).any()


def test_zero_processes_the_fields_and_counts_the_pixels(zeroed_fields):
    config, details = zeroed_fields
    assert {stage: d["nonfinite_pixels_zeroed"] for stage, d in details.items()} == dict.fromkeys(
        details, N_INF + N_NAN
    )
    assert details["segment"]["field_errors"] == {}
    assert "set to 0" in details["segment"]["field_warnings"][INF_FIELD]
    paths = ResultsPaths(config.results_root)
    cells = read_cells(paths.crop_store("P1"))
    assert (cells["field"] == INF_FIELD).any() and (cells["field"] == NAN_FIELD).any()


def test_zero_keeps_the_crop_store_and_its_statistics_finite(zeroed_fields):
    config, _ = zeroed_fields
    with h5py.File(ResultsPaths(config.results_root).crop_store("P1"), "r") as store:
        images = store["whole_cell/images"][()]
        attrs = dict(store["whole_cell"].attrs)
    assert images.max() < np.iinfo(np.uint16).max  # an Inf pixel would be 65535
    for key in ("stats_low", "stats_high", "stats_mean", "stats_std"):
        assert np.isfinite(attrs[key]).all(), key


def test_zero_gives_finite_features(zeroed_fields):
    config, _ = zeroed_fields
    table = pd.read_parquet(ResultsPaths(config.results_root).feature_table("P1"))
    intensity = table[[c for c in table.columns if "Intensity" in c]].to_numpy(dtype=float)
    assert intensity.size and np.isfinite(intensity).all()


def test_plate_statistics_ignore_nonfinite_precut_pixels():
    sample = _PixelSample(n_channels=2)
    crops = np.ones((3, 2, 8, 8), np.float32)
    crops[0, 1] = np.nan
    crops[1, 0, :4] = np.inf
    sample.add(crops, np.ones((3, 8, 8), np.uint8))
    stats = sample.statistics()
    assert all(np.isfinite(stats[key]).all() for key in ("stats_low", "stats_mean", "stats_std"))


@pytest.mark.parametrize("kind", CLASSIFIER_KINDS)
def test_classifiers_fill_infinite_features_like_nan(kind):
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b"], 20)
    features = rng.normal(size=(40, 4)) + (labels == "b")[:, None]
    features[3, 1], features[5, 2], features[30, 0] = np.inf, np.nan, -np.inf
    model = build_classifier(kind, seed=0).fit(features, labels)
    assert model.score(features, labels) > 0.6


def test_a_feature_table_with_inf_and_nan_trains_and_evaluates(zeroed_fields):
    config, _ = zeroed_fields  # four wells: two per class, so the test split has cells
    path = ResultsPaths(config.results_root).feature_table("P1")
    table = pd.read_parquet(path)
    features = [c for c in table.columns if table[c].dtype.kind == "f"]
    assert not any(c.startswith("Metadata_") for c in features)
    table.loc[0, features] = np.inf  # e.g. a division by zero
    table.loc[1, features] = np.nan  # e.g. an empty region
    table.to_parquet(path, index=False)
    for stage in ("train", "evaluate"):
        result = run_task(config, stage, "rf.seed0", force=True)
        assert result.state == "done", result.message
