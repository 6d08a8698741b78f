"""The co-culture split: mono-culture wells train (layout classes), co-culture cells test
(marker classes, undefined ones dropped and counted)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellbench.config import RandomForestModel, SplitConfig
from cellbench.errors import ConfigError
from cellbench.models.inputs import load_model_data
from cellbench.models.train import split_cells
from cellbench.splits import TEST, TRAIN, VAL, coculture_labels, split_coculture

COCULTURE = SplitConfig(by="coculture", val_fraction=0.25)


def _cells(seed: int = 0) -> pd.DataFrame:
    """A feature table of 12 wells: 4 astro, 4 neuron, 4 co-culture; 10 cells each."""
    rng = np.random.default_rng(seed)
    wells = [f"A{k:02d}" for k in range(1, 13)]
    cultures = ["astro", "neuron", "coculture"] * 4
    rows = []
    for well, culture in zip(wells, cultures, strict=True):
        for cell in range(10):
            truth = rng.choice(["astro", "neuron", "undefined"], p=[0.45, 0.45, 0.1])
            rows.append({
                "Metadata_CellId": f"P1_{well}_{cell}", "Metadata_Plate": "P1",
                "Metadata_Well": well, "Metadata_Culture": culture,
                "Metadata_GroundTruth": truth if culture == "coculture" else "undefined",
                "Nuclei_AreaShape_Area": rng.normal(100, 10),
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_coculture_labels_take_the_markers_only_in_mixed_wells() -> None:
    layout = pd.Series(["astro", "neuron", "coculture", "coculture"])
    cultures = pd.Series(["astro", "neuron", "coculture", "coculture"])
    markers = pd.Series(["neuron", "undefined", "astro", "undefined"])
    got = coculture_labels(layout, cultures, markers, "coculture")
    assert got.tolist() == ["astro", "neuron", "astro", "undefined"]


def test_split_coculture_keeps_mixed_cells_out_of_training() -> None:
    cells = _cells()
    mixed = cells["Metadata_Culture"] == "coculture"
    for seed in range(5):
        side = split_coculture(cells["Metadata_Well"], cells["Metadata_Culture"], mixed,
                               val_fraction=0.25, seed=seed)  # fmt: skip
        assert (side[mixed] == TEST).all() and not (side[~mixed] == TEST).any()
        assert set(side[~mixed]) == {TRAIN, VAL}
        per_well = side.groupby(cells["Metadata_Well"]).nunique()
        assert (per_well == 1).all()  # validation takes whole wells
        val_wells = cells.loc[side == VAL].groupby("Metadata_Culture")["Metadata_Well"].nunique()
        assert val_wells.to_dict() == {"astro": 1, "neuron": 1}  # ceil(0.25 x 4) per class
    no_val = split_coculture(cells["Metadata_Well"], cells["Metadata_Culture"], mixed)
    assert set(no_val[~mixed]) == {TRAIN}


def test_load_and_split_label_train_from_layout_and_test_from_markers(tmp_path) -> None:
    table = _cells()
    table.to_parquet(tmp_path / "P1.parquet")
    split = SplitConfig(by="coculture", val_fraction=0.25, test_label_column="ground_truth")
    params = RandomForestModel(name="rf")
    data = load_model_data(params, "culture", [tmp_path / "P1.parquet"], [], split=split)
    mixed = table["Metadata_Culture"] == "coculture"
    undefined = mixed & (table["Metadata_GroundTruth"] == "undefined")
    assert data.undefined_dropped == int(undefined.sum()) > 0
    assert len(data.labels) == len(table) - int(undefined.sum())
    side = split_cells(data, split, seed=0).to_numpy()
    culture = data.cells["Metadata_Culture"].to_numpy()  # the layout's, not overwritten
    assert set(culture) == {"astro", "neuron", "coculture"}
    assert (side == TEST).sum() == int((mixed & ~undefined).sum()) > 0
    assert (culture[side == TEST] == "coculture").all()
    assert not (culture[side != TEST] == "coculture").any()
    assert (data.labels[side != TEST] == culture[side != TEST]).all()  # the layout's class
    truth = data.cells["Metadata_GroundTruth"].to_numpy()
    assert (data.labels[side == TEST] == truth[side == TEST]).all()  # the markers' class
    assert set(data.labels) == {"astro", "neuron"}


def test_a_missing_column_is_a_config_error_naming_the_key(tmp_path) -> None:
    _cells().drop(columns="Metadata_GroundTruth").to_parquet(tmp_path / "P1.parquet")
    params = RandomForestModel(name="rf")
    with pytest.raises(ConfigError, match="split.test_label_column"):
        load_model_data(params, "culture", [tmp_path / "P1.parquet"], [], split=COCULTURE)
