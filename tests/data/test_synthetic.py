"""Tests for the synthetic plate generator: format, truth consistency, realism, learnability."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage as ndi
from skimage import measure
from sklearn.ensemble import RandomForestClassifier

from cellbench.data.synthetic import CHANNELS, DEFAULT_CONDITIONS, write_plate

SMALL = {
    "rows": "A",
    "columns": (1, 2, 3),
    "sites": 2,
    "field_shape": (128, 128),
    "cells_per_field": 8,
}
SMALL_NAMES = [f"A-{col:02d}-{site:02d}" for col in (1, 2, 3) for site in (1, 2)]


@pytest.fixture(scope="module")
def small_plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_plate(tmp_path_factory.mktemp("small") / "plate", **SMALL)


@pytest.fixture(scope="module")
def full_plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Default plate: 2 rows x 6 columns x 3 sites of 256 x 256 px fields."""
    return write_plate(tmp_path_factory.mktemp("full") / "plate")


def _fields(plate: Path):
    """Yield (name, image, cell labels, nucleus labels) for every field of a plate."""
    for path in sorted((plate / "fields").glob("*.tif")):
        cells = tifffile.imread(plate / "truth" / f"{path.stem}_cells.tif")
        nuclei = tifffile.imread(plate / "truth" / f"{path.stem}_nuclei.tif")
        yield path.stem, tifffile.imread(path), cells, nuclei


def _region_means(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Mean of values over labels 1..n; NaN where a label is absent."""
    counts = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    sums = np.bincount(labels.ravel(), weights=values.ravel().astype(float), minlength=n + 1)[1:]
    return np.divide(sums, counts, out=np.full(n, np.nan), where=counts > 0)


def _cell_features(plate: Path) -> pd.DataFrame:
    """Per-cell features from the true masks, merged with the truth table."""
    tables = []
    for name, image, cells, nuclei in _fields(plate):
        n = int(cells.max())
        cyto = np.where(nuclei > 0, 0, cells)
        props = measure.regionprops_table(nuclei, properties=("label", "area", "eccentricity"))
        table = pd.DataFrame(props).assign(field=name)
        table = table.rename(columns={"area": "area_px", "eccentricity": "nucleus_ecc"})
        for c, channel in enumerate(CHANNELS):
            table[f"{channel}_nucleus"] = _region_means(image[c], nuclei, n)
            table[f"{channel}_cytoplasm"] = _region_means(image[c], cyto, n)
        table["tubulin_ratio"] = table["tubulin_nucleus"] / table["tubulin_cytoplasm"]
        tubulin_sq = _region_means(image[1].astype(float) ** 2, cells, n)
        tubulin_mean = _region_means(image[1], cells, n)
        table["tubulin_std"] = np.sqrt(np.maximum(tubulin_sq - tubulin_mean**2, 0))
        tables.append(table)
    truth = pd.read_csv(plate / "truth" / "cells.csv")
    return pd.concat(tables, ignore_index=True).merge(truth, on=["field", "label"], how="outer")


def test_files_names_and_formats(small_plate: Path) -> None:
    fields = sorted(p.name for p in (small_plate / "fields").iterdir())
    assert fields == [f"{name}.tif" for name in SMALL_NAMES]
    truth = sorted(p.name for p in (small_plate / "truth").iterdir())
    expected = [f"{n}_{kind}.tif" for n in SMALL_NAMES for kind in ("cells", "nuclei")]
    assert truth == sorted(expected + ["cells.csv"])
    for name in SMALL_NAMES:
        with tifffile.TiffFile(small_plate / "fields" / f"{name}.tif") as tif:
            image = tif.asarray()
            meta = tif.shaped_metadata[0]
        assert image.shape == (len(CHANNELS), 128, 128) and image.dtype == np.uint16
        assert meta["channel_names"] == list(CHANNELS) and meta["axes"] == "CYX"
        for kind in ("cells", "nuclei"):
            labels = tifffile.imread(small_plate / "truth" / f"{name}_{kind}.tif")
            assert labels.shape == (128, 128) and labels.dtype == np.uint16


def test_layout_and_plate_json(small_plate: Path) -> None:
    layout = pd.read_csv(small_plate / "layout.csv")
    assert list(layout.columns) == ["well", "condition"]
    assert layout["well"].tolist() == ["A01", "A02", "A03"]
    assert layout["condition"].tolist() == list(DEFAULT_CONDITIONS)
    params = json.loads((small_plate / "plate.json").read_text())
    assert params["channel_names"] == list(CHANNELS)
    assert params["field_shape"] == [128, 128] and params["seed"] == 0 and params["plate"] == "P1"
    cells = pd.read_csv(small_plate / "truth" / "cells.csv")
    assert list(cells.columns[:5]) == ["field", "well", "site", "label", "condition"]
    assert {"nucleus_radius_px", "eccentricity", "marker_level"} <= set(cells.columns)
    assert set(cells["field"]) <= set(SMALL_NAMES) and len(cells) > 6


def test_full_layout_balanced_over_columns(full_plate: Path) -> None:
    layout = pd.read_csv(full_plate / "layout.csv")
    assert len(layout) == 12
    assert layout["condition"].value_counts().to_dict() == dict.fromkeys(DEFAULT_CONDITIONS, 4)
    columns_per_condition = layout.groupby("condition")["well"].agg(lambda w: w.str[1:].nunique())
    assert (columns_per_condition > 1).all()


def test_invalid_arguments_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="wells"):
        write_plate(tmp_path / "few", rows="A", columns=(1, 2))
    assert not (tmp_path / "few" / "plate.json").exists()
    for bad in ({"rows": "A1"}, {"columns": (0, 1, 2)}, {"sites": 0}, {"conditions": ()}):
        with pytest.raises(ValueError):
            write_plate(tmp_path / "bad", **(SMALL | bad))


def test_deterministic_and_seed_dependent(tmp_path: Path, small_plate: Path) -> None:
    again = write_plate(tmp_path / "again", **SMALL)
    files = sorted(p.relative_to(small_plate) for p in small_plate.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (small_plate / rel).read_bytes() == (again / rel).read_bytes(), rel
    for other in ({"seed": 1}, {"plate": "P2"}):
        changed = write_plate(tmp_path / "other", **(SMALL | other))
        for name in SMALL_NAMES[:2]:
            a = tifffile.imread(small_plate / "fields" / f"{name}.tif")
            b = tifffile.imread(changed / "fields" / f"{name}.tif")
            assert not np.array_equal(a, b)


def test_every_cell_has_its_nucleus(full_plate: Path) -> None:
    truth = pd.read_csv(full_plate / "truth" / "cells.csv")
    for name, _, cells, nuclei in _fields(full_plate):
        n = int(cells.max())
        assert n > 5
        expected = list(range(1, n + 1))
        assert np.unique(cells[cells > 0]).tolist() == expected
        assert np.unique(nuclei[nuclei > 0]).tolist() == expected
        assert np.array_equal(cells[nuclei > 0], nuclei[nuclei > 0])  # nucleus inside its cell
        assert truth.loc[truth["field"] == name, "label"].tolist() == expected
        # one connected piece per cell and per nucleus
        assert measure.label(cells, connectivity=1).max() == n
        assert measure.label(nuclei, connectivity=1).max() == n
        assert (cells > nuclei).any()  # cells have cytoplasm


def test_cells_touch_and_some_are_cut_by_the_border(full_plate: Path) -> None:
    fields_with_contacts = 0
    for _, _, cells, _ in _fields(full_plate):
        pairs = [(cells[:, 1:], cells[:, :-1]), (cells[1:], cells[:-1])]
        contacts = sum(((a != b) & (a > 0) & (b > 0)).sum() for a, b in pairs)
        fields_with_contacts += contacts > 0
    assert fields_with_contacts >= 30  # of 36
    truth = pd.read_csv(full_plate / "truth" / "cells.csv")
    assert 0.1 < truth["cut_by_border"].mean() < 0.7
    assert 15 < truth.groupby("field").size().mean() < 30  # cells_per_field=25, minus losses


def test_uneven_background_offset_and_noise(small_plate: Path) -> None:
    c = 32
    corners = [np.s_[:c, :c], np.s_[:c, -c:], np.s_[-c:, :c], np.s_[-c:, -c:]]
    sums, counts = np.zeros(4), np.zeros(4)
    for _, image, cells, _ in _fields(small_plate):
        background = ~ndi.binary_dilation(cells > 0, iterations=6)
        assert image.min() >= 100  # camera offset
        dna = image[0].astype(float)
        assert dna[background].std() > 5  # shot noise
        for k, corner in enumerate(corners):
            sums[k] += dna[corner][background[corner]].sum()
            counts[k] += background[corner].sum()
    assert counts.min() > 300
    corner_means = sums / counts
    assert corner_means.max() - corner_means.min() > 8  # counts; the noise SE is ~1


@pytest.fixture(scope="module")
def full_features(full_plate: Path) -> pd.DataFrame:
    return _cell_features(full_plate)


def test_phenotypes_shift_in_the_expected_direction(full_features: pd.DataFrame) -> None:
    assert full_features["area_px"].notna().all() and full_features["condition"].notna().all()
    means = full_features.groupby("condition").mean(numeric_only=True)
    assert means.loc["enlarged_nuclei", "area_px"] > 1.2 * means.loc["control", "area_px"]
    assert means.loc["enlarged_nuclei", "nucleus_ecc"] > means.loc["control", "nucleus_ecc"]
    assert means.loc["enlarged_nuclei", "DNA_nucleus"] < means.loc["control", "DNA_nucleus"]
    assert means.loc["textured", "tubulin_ratio"] > means.loc["control", "tubulin_ratio"]
    # overlapping, not separable: many enlarged nuclei are smaller than the control median
    control_median = full_features.query("condition == 'control'")["area_px"].median()
    enlarged = full_features.query("condition == 'enlarged_nuclei'")["area_px"]
    assert (enlarged < control_median).mean() > 0.05


def test_marker_levels_separate_conditions(full_features: pd.DataFrame) -> None:
    medians = full_features.groupby("condition")["marker_nucleus"].median()
    levels = medians[list(DEFAULT_CONDITIONS)].to_numpy()
    assert np.all(np.diff(levels) > 0) and np.all(levels[1:] / levels[:-1] > 2)
    thresholds = np.sqrt(levels[1:] * levels[:-1])
    predicted = np.asarray(DEFAULT_CONDITIONS)[
        np.digitize(full_features["marker_nucleus"], thresholds)
    ]
    assert (predicted == full_features["condition"]).mean() > 0.95


def test_random_forest_accuracy_is_moderate(full_features: pd.DataFrame) -> None:
    columns = ["area_px", "nucleus_ecc", "tubulin_ratio", "tubulin_std"]  # no marker
    columns += [f"{ch}_{part}" for ch in CHANNELS[:3] for part in ("nucleus", "cytoplasm")]
    features = full_features[columns].fillna(0).to_numpy()
    train = (full_features["well"].str[0] == "A").to_numpy()  # row A trains, row B tests
    conditions = full_features["condition"].to_numpy()
    assert set(conditions[train]) == set(conditions[~train]) == set(DEFAULT_CONDITIONS)
    forest = RandomForestClassifier(n_estimators=100, random_state=0)
    accuracy = forest.fit(features[train], conditions[train]).score(
        features[~train], conditions[~train]
    )
    assert 0.55 < accuracy < 0.95


def test_extra_conditions(tmp_path: Path) -> None:
    conditions = ("control", "enlarged_nuclei", "textured", "drug_x", "drug_y")
    plate = write_plate(
        tmp_path / "extra", **(SMALL | {"columns": range(1, 6), "sites": 1}), conditions=conditions
    )
    truth = pd.read_csv(plate / "truth" / "cells.csv")
    assert set(truth["condition"]) == set(conditions)
    levels = truth.groupby("condition")["marker_level"].median()[list(conditions)]
    assert np.all(np.diff(levels.to_numpy()) > 0)


def test_extra_channels_are_appended_and_leave_the_others_unchanged(
    tmp_path: Path, small_plate: Path
) -> None:
    plate = write_plate(tmp_path / "five", **SMALL, extra_channels=["mito"])
    params = json.loads((plate / "plate.json").read_text())
    assert params["channel_names"] == [*CHANNELS, "mito"]
    truth = pd.read_csv(plate / "truth" / "cells.csv")
    assert (truth["mito_level"] > 0).all()
    for name in SMALL_NAMES:
        with tifffile.TiffFile(plate / "fields" / f"{name}.tif") as tif:
            image, meta = tif.asarray(), tif.shaped_metadata[0]
        assert image.shape == (len(CHANNELS) + 1, 128, 128) and image.dtype == np.uint16
        assert meta["channel_names"] == [*CHANNELS, "mito"]
        before = tifffile.imread(small_plate / "fields" / f"{name}.tif")
        assert np.array_equal(image[: len(CHANNELS)], before)
        cells = tifffile.imread(plate / "truth" / f"{name}_cells.tif")
        if cells.any():  # the stain lies in the cells, brighter than the background
            assert image[-1][cells > 0].mean() > 1.5 * image[-1][cells == 0].mean()
    for bad in (["DNA"], ["mito", "mito"], [""]):
        with pytest.raises(ValueError, match="extra_channels"):
            write_plate(tmp_path / "bad", **SMALL, extra_channels=bad)
