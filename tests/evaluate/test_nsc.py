import json

import numpy as np
import pandas as pd
import pytest

from cellbench.config.data import default_data_root
from cellbench.errors import CellbenchError
from cellbench.evaluate.nsc import nsc_accuracy, nsc_command, read_profiles, treatment_profiles

PROFILES = (
    default_data_root() / "bbbc021" / "profiles" / "BBBC021_feature_selected_mad_robustize.csv"
)
needs_profiles = pytest.mark.skipif(
    not PROFILES.is_file(), reason=f"BBBC021 profiles not found at {PROFILES} (set CELLBENCH_DATA)"
)


def well_table(rows):
    """A per-well profile table from (compound, concentration, moa, x, y) rows."""
    frame = pd.DataFrame(rows, columns=["compound", "conc", "moa", "f_x", "f_y"])
    return pd.DataFrame(
        {
            "Metadata_Plate": "P1",
            "Metadata_Well": [f"W{i:02d}" for i in range(len(frame))],
            "Metadata_Compound": frame["compound"],
            "Metadata_Concentration": frame["conc"],
            "Metadata_moa": frame["moa"],
            "f_x": frame["f_x"],
            "f_y": frame["f_y"],
        }
    )


def known_neighbours_table():
    """Four compounds on the unit circle; neighbours worked out by hand in the test."""
    return well_table(
        [
            ("A", 1.0, "X", 1.0, 0.0),
            ("A", 2.0, "X", 1.0, 0.01),  # same compound as A@1: never its neighbour
            ("B", 1.0, "X", 0.9, 0.1),
            ("C", 1.0, "Y", 0.0, 1.0),
            ("D", 1.0, "Y", 0.8, 0.6),  # nearest other compound is B (MOA X): wrong
            ("dmso", 0.0, "DMSO", 1.0, 0.0),  # would be A's neighbour if kept
            ("DMSO", 0.0, "DMSO", 0.0, 1.0),
        ]
    )


def test_neighbours_by_hand():
    result = nsc_accuracy(known_neighbours_table())
    table = result.neighbours.set_index(["compound", "concentration"])
    assert table.loc[("A", 1.0), "neighbour_compound"] == "B"
    assert table.loc[("A", 2.0), "neighbour_compound"] == "B"
    assert table.loc[("B", 1.0), "neighbour_compound"] == "A"
    assert table.loc[("C", 1.0), "neighbour_compound"] == "D"
    assert table.loc[("D", 1.0), "neighbour_compound"] == "B"
    assert result.n_treatments == 5
    assert (result.n_compounds, result.n_moas) == (4, 2)
    assert result.accuracy == pytest.approx(4 / 5)


def test_mean_per_well_then_median_per_treatment():
    cells = pd.DataFrame(
        {
            "Metadata_Plate": "P1",
            "Metadata_Well": ["W1", "W1", "W1", "W2", "W3", "W3"],
            "Metadata_Compound": "A",
            "Metadata_Concentration": 1.0,
            "Metadata_moa": "X",
            "f": [0.0, 1.0, 2.0, 5.0, 6.0, 100.0],
        }
    )
    # well means 1, 5, 53 -> median 5 (the median of cells would be 3.5, the mean 19)
    profiles = treatment_profiles(cells)
    assert profiles["f"].tolist() == [5.0]
    assert profiles["n_wells"].tolist() == [3]
    # without plate and well columns, each row is one well
    assert treatment_profiles(cells.drop(columns=["Metadata_Well"]))["f"].tolist() == [3.5]


def test_errors_name_the_columns():
    table = known_neighbours_table()
    with pytest.raises(CellbenchError, match="Metadata_moa"):
        nsc_accuracy(table.drop(columns=["Metadata_moa"]))
    with pytest.raises(CellbenchError, match="not numeric"):
        nsc_accuracy(table.assign(f_z="text"))
    with pytest.raises(CellbenchError, match="more than one MOA"):
        nsc_accuracy(pd.concat([table, table.iloc[[0]].assign(Metadata_moa="Z")]))


def test_command_rejects_bad_files(tmp_path, capsys):
    missing = tmp_path / "absent.csv"
    assert nsc_command(["--profiles", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err

    no_moa = tmp_path / "no_moa.csv"
    known_neighbours_table().drop(columns=["Metadata_moa"]).to_csv(no_moa, index=False)
    assert nsc_command(["--profiles", str(no_moa)]) == 2
    err = capsys.readouterr().err
    assert str(no_moa) in err and "Metadata_moa" in err

    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 100)
    assert nsc_command(["--profiles", str(binary)]) == 2
    assert str(binary) in capsys.readouterr().err


def test_command_writes_json(tmp_path, capsys):
    profiles, out = tmp_path / "wells.csv", tmp_path / "out" / "nsc.json"
    known_neighbours_table().to_csv(profiles, index=False)
    assert nsc_command(["--profiles", str(profiles), "--json", str(out)]) == 0
    assert "NSC accuracy 0.800 over 5 treatments (4 compounds, 2 MOAs)" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert written["n_treatments"] == 5 and len(written["neighbours"]) == 5


def chance_accuracy(treatments: pd.DataFrame) -> float:
    """Expected NSC accuracy if each treatment's neighbour were a random other-compound one."""
    compound = treatments["Metadata_Compound"].to_numpy()
    moa = treatments["Metadata_moa"].to_numpy()
    other = compound[:, None] != compound[None, :]
    same_moa = (moa[:, None] == moa[None, :]) & other
    return float(np.mean(same_moa.sum(axis=1) / other.sum(axis=1)))


@needs_profiles
def test_real_bbbc021_profiles(capsys):
    table = read_profiles(PROFILES)
    result = nsc_accuracy(table)
    treated = table[table["Metadata_Compound"].str.upper() != "DMSO"]
    treatments = treated.drop_duplicates(["Metadata_Compound", "Metadata_Concentration"])
    chance = chance_accuracy(treatments)
    with capsys.disabled():
        print(
            f"\nBBBC021 NSC accuracy {result.accuracy:.3f} over {result.n_treatments} treatments "
            f"({result.n_compounds} compounds, {result.n_moas} MOAs); chance {chance:.3f}"
        )
    assert result.n_treatments == len(treatments)
    assert result.n_compounds == treatments["Metadata_Compound"].nunique()
    assert result.n_moas == treatments["Metadata_moa"].nunique()
    assert result.accuracy > chance + 0.5
    neighbours = result.neighbours
    assert (neighbours["compound"] != neighbours["neighbour_compound"]).all()
    assert neighbours["correct"].mean() == result.accuracy


@needs_profiles
def test_cellbench_nsc_command_line(tmp_path, capsys):
    from cellbench.cli import main

    out = tmp_path / "nsc.json"
    assert main(["nsc", "--profiles", str(PROFILES), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "NSC accuracy" in printed and "103 treatments" in printed
    assert json.loads(out.read_text())["n_treatments"] == 103
