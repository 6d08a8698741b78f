"""CP2Image's generation grids: the crops read, the generator's output, the interpolation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellbench.config import CP2ImageModel
from cellbench.evaluate.generation import (
    analyse,
    cell_treatments,
    choose_cells,
    generation_analysis,
)
from cellbench.models import generator as cp2image
from cellbench.models.inputs import CELL_ID, ModelData
from cellbench.paths import ResultsPaths

SIZE = 16
COMPOUNDS = ["taxol", "dmso", "aphidicolin"]


def treated_cells(per_well: int = 3) -> tuple[ModelData, np.ndarray, np.ndarray]:
    """Seeded cells of 3 compounds x 2 concentrations, 2 wells each; features describe the crops.

    Returns the data, a train mask (the first well of each treatment) and a test mask (the
    second well).
    """
    rng = np.random.default_rng(0)
    rows = []
    for c, compound in enumerate(COMPOUNDS):
        for concentration in (0.1, 1.0):
            for well in range(2):
                for _ in range(per_well):
                    rows.append((compound, concentration, f"{compound}{concentration}_{well}", c))
    cells = pd.DataFrame(
        rows, columns=["Metadata_Compound", "Metadata_Concentration", "Metadata_Well", "code"]
    )
    n = len(cells)
    codes = cells.pop("code").to_numpy()
    brightness = codes + cells["Metadata_Concentration"].to_numpy()
    crops = rng.uniform(0, 0.1, (n, 2, SIZE, SIZE)).astype(np.float32)
    crops[:, 0, 4:12, 4:12] += 0.2 * brightness[:, None, None].astype(np.float32)
    features = np.stack([brightness, rng.normal(size=n), rng.normal(size=n)], axis=1)
    features[0, 1] = np.nan  # an undefined value: filled with the training median
    cells[CELL_ID] = [f"c{i}" for i in range(n)]
    data = ModelData(
        cells, np.asarray(cells["Metadata_Compound"]), features, ["a", "b", "c"], crops
    )
    test = cells["Metadata_Well"].str.endswith("_1").to_numpy()
    return data, ~test, test


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A generator trained for 2 epochs on the train cells, and its entry and data."""
    params = CP2ImageModel(
        name="gen",
        crop_kind="whole_cell",
        size_px=SIZE,
        epochs=2,
        batch_size=8,
        patience=None,
        analysis_cells=2,
        analysis_treatments=3,
    )
    data, train, test = treated_cells()
    paths = ResultsPaths(tmp_path_factory.mktemp("results"))
    sides = {"train": train, "val": np.zeros_like(train)}
    cp2image.train(params, data, sides, [], seed=0, settings_hash="t", paths=paths)
    return params, data, test, paths


def test_treatments_are_the_treatment_columns_else_the_label():
    cells = pd.DataFrame({"Metadata_Compound": ["a", "b"], "Metadata_Concentration": [1.0, 2]})
    columns = ["Metadata_Compound", "Metadata_Concentration"]
    treatments, by = cell_treatments(columns, cells, np.array(["x", "y"]))
    assert list(treatments) == ["a @ 1.0", "b @ 2.0"] and by == "+".join(columns)
    treatments, by = cell_treatments(["Metadata_Moa"], cells, np.array(["x", "y"]))
    assert list(treatments) == ["x", "y"] and by == "label"


def test_cells_are_drawn_per_treatment_seeded():
    treatments = np.array(["a"] * 5 + ["b"] * 2 + ["c"] * 4 + ["d"] * 4)
    chosen, positions = choose_cells(treatments, 2, 3, seed=0)
    assert positions.shape == (2, 3) and set(chosen) <= {"a", "c", "d"}  # those with 3 cells
    assert all((treatments[row] == t).all() for t, row in zip(chosen, positions, strict=True))
    assert list(chosen) == sorted(chosen) and (np.diff(positions, axis=1) > 0).all()
    again = choose_cells(treatments, 2, 3, seed=0)
    assert np.array_equal(again[1], positions)
    # Too few treatments with 3 cells: the largest are taken, every row as long as the smallest.
    chosen, positions = choose_cells(treatments, 4, 3, seed=0)
    assert list(chosen) == ["a", "b", "c", "d"] and positions.shape == (4, 2)


def test_the_npz_holds_the_crops_read_and_the_trained_generators_output(trained):
    params, data, test, paths = trained
    summary = generation_analysis(params, data, test, seed=0, paths=paths)
    assert summary == {"generation_grid_treatments": 3, "generation_grid_cells": 6}
    grids = np.load(paths.generation_grids("gen", 0))
    assert grids["real"].shape == grids["generated"].shape == (3, 2, 2, SIZE, SIZE)
    assert grids["features"].shape == (3, 2, 3) and str(grids["treatment_by"]) == (
        "Metadata_Compound+Metadata_Concentration"
    )
    row_of = {cell: i for i, cell in enumerate(data.cells[CELL_ID])}
    rows = np.array([row_of[c] for c in grids["cell_ids"].ravel()])
    assert test[rows].all()  # test cells only
    expected = (
        data.cells[["Metadata_Compound", "Metadata_Concentration"]]
        .astype(str)
        .agg(" @ ".join, axis=1)
    )
    shown = expected.to_numpy().astype(str)[rows].reshape(3, 2)
    assert (shown == grids["treatments"][:, None]).all()
    # the real crops are the crops of those cells as read
    np.testing.assert_array_equal(
        grids["real"].reshape(6, 2, SIZE, SIZE), data.crops[rows].to_array()
    )
    # the generated crops are the saved generator's, from those cells' features
    model_path = paths.torch_model_file("gen", 0)
    again = cp2image.generate(model_path, data.features[rows])
    np.testing.assert_allclose(grids["generated"].reshape(again.shape), again, rtol=1e-5, atol=1e-6)
    generator, stats = cp2image.load_generator(model_path)
    first = cp2image.generate_standardised(generator, grids["features"][:1, 0])
    np.testing.assert_allclose(first[0], grids["generated"][0, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        grids["features"].reshape(6, 3), stats.apply(data.features[rows]), rtol=1e-6
    )


def test_the_interpolation_runs_between_two_treatments_mean_features(trained):
    params, data, test, paths = trained
    generation_analysis(params, data, test, seed=0, paths=paths)
    grids = np.load(paths.generation_grids("gen", 0))
    assert list(grids["interpolation_t"]) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert grids["interpolation"].shape == (5, 2, SIZE, SIZE)
    assert list(grids["interpolation_treatments"]) == list(grids["treatments"][:2])
    generator, stats = cp2image.load_generator(paths.torch_model_file("gen", 0))
    treatments, _ = cell_treatments(params.treatment_columns, data.cells, data.labels)
    for end, name in zip(
        grids["interpolation_means"], grids["interpolation_treatments"], strict=True
    ):
        cells = test & (treatments == name)  # every test cell of the treatment, not the grid's
        np.testing.assert_allclose(end, stats.apply(data.features[cells]).mean(axis=0), rtol=1e-5)
    ends = cp2image.generate_standardised(generator, grids["interpolation_means"])
    assert not np.allclose(ends[0], ends[1])  # two treatments, two different crops
    np.testing.assert_allclose(grids["interpolation"][[0, -1]], ends, rtol=1e-5, atol=1e-6)
    middle = cp2image.generate_standardised(generator, grids["interpolation_means"].mean(0)[None])
    np.testing.assert_allclose(grids["interpolation"][2], middle[0], rtol=1e-5, atol=1e-5)


def test_one_treatment_gives_no_interpolation_and_no_cell_no_grids(trained, tmp_path):
    params, data, test, paths = trained
    generator, stats = cp2image.load_generator(paths.torch_model_file("gen", 0))
    z = stats.apply(data.features[test])
    one = np.array(["only"] * len(z))
    grids = analyse(generator, z, one, data.crops[test], n_treatments=3, n_cells=2, seed=0)
    assert grids["real"].shape[:2] == (1, 2) and "interpolation" not in grids
    off = params.model_copy(update={"analysis_cells": 0})
    elsewhere = ResultsPaths(tmp_path)
    assert generation_analysis(off, data, test, seed=0, paths=elsewhere) == {}
    assert not elsewhere.generation_grids("gen", 0).exists()
