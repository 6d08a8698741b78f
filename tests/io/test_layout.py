from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook

from cellbench.errors import CellbenchError
from cellbench.io.layout import (
    check_layout,
    normalise_well,
    read_layout,
    read_layout_csv,
    read_layout_excel,
)

ROWS_96 = list("ABCDEFGH")
CULTURES = ["astro", "SHSY5Y", "co-culture"]


def plate_grid(rows: list[str], columns: int, value) -> pd.DataFrame:
    return pd.DataFrame(
        [[value(r, c) for c in range(1, columns + 1)] for r in rows],
        index=rows,
        columns=list(range(1, columns + 1)),
    )


def write_sheets(path: Path, sheets: dict[str, pd.DataFrame]) -> Path:
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, grid in sheets.items():
            grid.to_excel(writer, sheet_name=name)
    return path


@pytest.fixture
def map_96(tmp_path) -> Path:
    """Culture by column group (4 columns each), density by row, column 12 left empty."""

    def culture(row, column):
        return None if column == 12 else CULTURES[(column - 1) // 4]

    def density(row, column):
        return None if column == 12 else 5000 * (ROWS_96.index(row) % 2 + 1)

    return write_sheets(
        tmp_path / "plate_map.xlsx",
        {"Culture": plate_grid(ROWS_96, 12, culture), "Density": plate_grid(ROWS_96, 12, density)},
    )


def test_read_96_well_map(map_96):
    layout = read_layout_excel(map_96)
    assert list(layout.columns) == ["Culture", "Density"]
    assert layout.index.name == "well"
    assert len(layout) == 8 * 11  # column 12 is empty
    assert layout.index[:3].tolist() == ["A01", "A02", "A03"]
    assert layout.index[-1] == "H11" and "A12" not in layout.index
    assert layout.loc["A01", "Culture"] == "astro"
    assert layout.loc["C06", "Culture"] == "SHSY5Y"
    assert layout.loc["H09", "Culture"] == "co-culture"
    assert layout.loc["A01", "Density"] == "5000" and layout.loc["B01", "Density"] == "10000"
    assert all(isinstance(v, str) for v in layout.to_numpy().ravel())
    assert layout["Culture"].value_counts().to_dict() == {
        "astro": 32,
        "SHSY5Y": 32,
        "co-culture": 24,
    }
    pd.testing.assert_frame_equal(read_layout(map_96), layout)


def test_cells_empty_in_one_sheet_are_nan(tmp_path):
    condition = plate_grid(["A", "B"], 3, lambda r, c: f"{r}{c}")
    dose = plate_grid(["A", "B"], 3, lambda r, c: 0.5 if (r, c) == ("A", 2) else None)
    path = write_sheets(tmp_path / "map.xlsx", {"condition": condition, "dose": dose})
    layout = read_layout_excel(path)
    assert layout.index.tolist() == ["A01", "A02", "A03", "B01", "B02", "B03"]
    assert layout.loc["A02", "dose"] == "0.5"
    assert layout["dose"].isna().sum() == 5
    assert layout.loc["B03", "condition"] == "B3"


def test_read_384_well_map(tmp_path):
    rows = list("ABCDEFGHIJKLMNOP")
    path = write_sheets(
        tmp_path / "map384.xlsx",
        {"condition": plate_grid(rows, 24, lambda r, c: "dmso" if c <= 2 else f"drug{c}")},
    )
    layout = read_layout_excel(path)
    assert len(layout) == 384
    assert layout.index[0] == "A01" and layout.index[-1] == "P24"
    assert layout.loc["P24", "condition"] == "drug24"
    assert layout.loc["K02", "condition"] == "dmso"


def test_hand_written_workbook_with_text_headers_and_blank_lines(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.title = "Culture"
    sheet.append(["", "1", "02", 3])  # headers as text and as a number
    sheet.append(["a", " astro ", None, "SHSY5Y"])  # lower-case row label, padded value
    sheet.append([None, None, None, None])  # blank line in the middle
    sheet.append(["C", None, "co-culture", "   "])
    path = tmp_path / "hand.xlsm"
    book.save(path)
    layout = read_layout(path)
    assert layout["Culture"].to_dict() == {"A01": "astro", "A03": "SHSY5Y", "C02": "co-culture"}


@pytest.mark.parametrize(
    ("grid", "label"),
    [
        (pd.DataFrame([["x"]], index=["Q"], columns=[1]), "'Q'"),
        (pd.DataFrame([["x"]], index=["Row A"], columns=[1]), "'Row A'"),
        (pd.DataFrame([["x"]], index=["A"], columns=[25]), "25"),
        (pd.DataFrame([["x"]], index=["A"], columns=["Col1"]), "'Col1'"),
    ],
)
def test_bad_labels_name_the_file_and_sheet(tmp_path, grid, label):
    good = plate_grid(["A"], 2, lambda r, c: "ok")
    path = write_sheets(tmp_path / "bad.xlsx", {"Culture": good, "Treatment": grid})
    with pytest.raises(CellbenchError) as info:
        read_layout_excel(path)
    message = str(info.value)
    assert str(path) in message and "'Treatment'" in message and f"[{label}]" in message


def test_excel_reader_refusals(tmp_path):
    with pytest.raises(CellbenchError, match="not found"):
        read_layout_excel(tmp_path / "absent.xlsx")
    fake = tmp_path / "fake.xlsx"
    fake.write_text("well,condition\nA01,x\n")
    with pytest.raises(CellbenchError, match="Excel"):
        read_layout_excel(fake)
    with pytest.raises(CellbenchError, match=r"\.csv or Excel"):
        read_layout(tmp_path / "layout.xls")


# --- CSV ----------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["well", "Well", "Metadata_Well"])
def test_csv_well_column_names_and_normalisation(tmp_path, column):
    path = tmp_path / "layout.csv"
    path.write_text(f"{column},condition,dose\nA1,dmso,0\nb02,drug,1.5\nP24,drug,\n,,\n")
    layout = read_layout_csv(path)
    assert layout.index.name == "well"
    assert layout.index.tolist() == ["A01", "B02", "P24"]
    assert list(layout.columns) == ["condition", "dose"]
    assert layout.loc["B02", "dose"] == "1.5" and pd.isna(layout.loc["P24", "dose"])
    pd.testing.assert_frame_equal(read_layout(path), layout)


def test_csv_refusals(tmp_path):
    path = tmp_path / "layout.csv"
    path.write_text("plate_well,condition\nA01,x\n")
    with pytest.raises(CellbenchError, match="'well' column"):
        read_layout_csv(path)
    path.write_text("well,Well,condition\nA01,A01,x\n")
    with pytest.raises(CellbenchError, match="several well columns"):
        read_layout_csv(path)
    path.write_text("well,condition\nA1,x\nA01,y\n")
    with pytest.raises(CellbenchError, match=r"more than once: \['A01'\]"):
        read_layout_csv(path)
    path.write_text("well,condition\nA01,x\n,y\n")
    with pytest.raises(CellbenchError, match=r"line\(s\) \[3\]"):
        read_layout_csv(path)
    with pytest.raises(CellbenchError, match="not found"):
        read_layout_csv(tmp_path / "absent.csv")


def test_csv_keeps_unusual_wells_for_check_layout(tmp_path):
    path = tmp_path / "layout.csv"
    path.write_text("well,condition\nA01,x\nZ99,y\nblank,z\n")
    assert read_layout_csv(path).index.tolist() == ["A01", "Z99", "blank"]


def test_csv_header_only(tmp_path):
    path = tmp_path / "layout.csv"
    path.write_text("well,condition\n")
    layout = read_layout_csv(path)
    assert layout.empty and layout.index.name == "well"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("A1", "A01"), ("a01", "A01"), (" B12 ", "B12"), ("A001", "A01"), ("Z99", "Z99")],
)
def test_normalise_well(given, expected):
    assert normalise_well(given) == expected


# --- check_layout -------------------------------------------------------------------------


def test_check_layout_three_lists():
    layout = pd.DataFrame(
        {"condition": ["a", "b", "c", "d", "e", "f"]},
        index=pd.Index(["A01", "A02", "B01", "Q01", "A25", "C03"], name="well"),
    )
    wells = ["A01", "A2", "B02", "D04", "A01"]  # imaged (one per field: repeats)
    result = check_layout(layout, wells, source="layout.csv")
    assert result == {
        "without_layout": ["B02", "D04"],
        "unknown": ["A25", "Q01"],
        "not_imaged": ["B01", "C03"],
    }


def test_check_layout_all_good(map_96):
    layout = read_layout(map_96)
    imaged = np.array(layout.index)
    assert check_layout(layout, imaged, str(map_96)) == {
        "without_layout": [],
        "unknown": [],
        "not_imaged": [],
    }
