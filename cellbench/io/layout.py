"""Plate layouts: which condition (and other metadata) each well holds.

A layout is a frame indexed by well (``A01`` style, index name ``well``) with one column per
variable (e.g. ``condition``), values as strings. It is read from a CSV with a well column
(`read_layout_csv`) or from a lab's Excel plate map, one sheet per variable (`read_layout_excel`).
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from cellbench.errors import CellbenchError
from cellbench.io.naming import PLATE_COLUMNS, PLATE_ROWS

log = logging.getLogger(__name__)

WELL_COLUMNS = ("well", "Well", "Metadata_Well")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_WELL_LIKE = re.compile(r"^(?P<row>[A-Za-z])0*(?P<column>\d{1,2})$")


def normalise_well(well: str) -> str:
    """Normalise a well name: ``A1``, ``a01`` or ``A001`` -> ``A01``.

    Anything that is not a letter and a number is returned as given (stripped), so that
    `check_layout` can report it.
    """
    text = str(well).strip()
    match = _WELL_LIKE.match(text)
    if match is None:
        return text
    return f"{match['row'].upper()}{int(match['column']):02d}"


def is_well(well: str) -> bool:
    """Whether `well` is a valid ``A01``-style well name of a 96- or 384-well plate."""
    text = str(well)
    return (
        len(text) == 3
        and text[0] in PLATE_ROWS
        and text[1:].isdigit()
        and 1 <= int(text[1:]) <= PLATE_COLUMNS
    )


def read_layout_csv(path: Path) -> pd.DataFrame:
    """Read a layout CSV with a well column (``A01`` style) and one column per variable.

    The well column may be called ``well``, ``Well`` or ``Metadata_Well``; well names are
    normalised (``A1`` -> ``A01``). Lines without any value are skipped.

    Returns
    -------
    DataFrame
        Indexed by well (index name ``well``), one column per variable (e.g. ``condition``),
        values as strings.

    Raises
    ------
    CellbenchError
        The file is missing, has no (or more than one) well column, has values on a line
        without a well, or lists a well twice.
    """
    try:
        layout = pd.read_csv(path, dtype=str)
    except FileNotFoundError:
        raise CellbenchError(f"{path}: plate layout not found") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CellbenchError(f"{path}: cannot read the plate layout: {exc}") from None
    found = [column for column in WELL_COLUMNS if column in layout.columns]
    if not found:
        raise CellbenchError(
            f"{path}: layout needs a 'well' column (or 'Well', 'Metadata_Well'); "
            f"found {list(layout.columns)}"
        )
    if len(found) > 1:
        raise CellbenchError(f"{path}: layout has several well columns: {found}; keep one")
    layout = layout.rename(columns={found[0]: "well"})
    layout = layout.dropna(how="all")
    no_well = layout["well"].isna() | (layout["well"].str.strip() == "")
    if no_well.any():
        lines = [int(i) + 2 for i in layout.index[no_well]]
        raise CellbenchError(f"{path}: line(s) {lines} have values but no well")
    layout["well"] = layout["well"].map(normalise_well)
    duplicated = sorted(layout.loc[layout["well"].duplicated(), "well"].unique())
    if duplicated:
        raise CellbenchError(f"{path}: wells listed more than once: {duplicated}")
    return layout.set_index("well")


def _row_label(label) -> str | None:
    """A plate-map row label (``A``-``P``, any case) as an upper-case letter, else None."""
    if isinstance(label, str) and len(label.strip()) == 1 and label.strip().upper() in PLATE_ROWS:
        return label.strip().upper()
    return None


def _column_label(label) -> int | None:
    """A plate-map column header (``1``-``24`` as a number or text) as an int, else None."""
    if isinstance(label, bool):
        return None
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    text = str(label).strip()
    if text.isdigit() and 1 <= int(text) <= PLATE_COLUMNS:
        return int(text)
    return None


def _sheet_wells(path: Path, sheet: str, grid: pd.DataFrame) -> pd.Series:
    """The filled cells of one plate-map sheet as a Series indexed by well."""
    grid = grid.map(lambda v: v.strip() if isinstance(v, str) else v)
    grid = grid.mask(grid == "")
    grid = grid.dropna(how="all").dropna(axis=1, how="all")
    rows = {label: _row_label(label) for label in grid.index}
    bad_rows = [label for label, row in rows.items() if row is None]
    if bad_rows:
        raise CellbenchError(
            f"{path}, sheet {sheet!r}: row label(s) {bad_rows} are not plate rows A-P "
            "(the first column must hold the row letters)"
        )
    columns = {label: _column_label(label) for label in grid.columns}
    bad_columns = [label for label, column in columns.items() if column is None]
    if bad_columns:
        raise CellbenchError(
            f"{path}, sheet {sheet!r}: column header(s) {bad_columns} are not plate columns "
            "1-24 (the first row must hold the column numbers)"
        )
    grid.index = [rows[label] for label in grid.index]
    grid.columns = [columns[label] for label in grid.columns]
    for axis, labels in (("row", grid.index), ("column", grid.columns)):
        repeated = sorted(set(labels[labels.duplicated()]))
        if repeated:
            raise CellbenchError(f"{path}, sheet {sheet!r}: {axis}(s) {repeated} appear twice")
    values = grid.stack().dropna()
    values.index = [f"{row}{column:02d}" for row, column in values.index]
    return values.astype(str)


def _well_order(well: str) -> tuple[int, int]:
    return PLATE_ROWS.index(well[0]), int(well[1:])


def read_layout_excel(path: Path) -> pd.DataFrame:
    """Read a lab plate map: one sheet per variable, each sheet a plate grid.

    Each sheet (its name is the variable, e.g. ``Culture`` or ``condition``) has the row
    letters A-P down its first column and the column numbers 1-24 across its first row (a 96-
    or 384-well plate); each cell holds the well's value. Empty rows and columns are ignored.

    Returns
    -------
    DataFrame
        Indexed by well (``A01``, index name ``well``, in plate order), one column per sheet,
        values as strings; wells empty in every sheet are left out, cells empty in one sheet
        are NaN.

    Raises
    ------
    CellbenchError
        The file is missing or not an Excel workbook; a row label or column header is not a
        plate row or column (the message names the file, the sheet and the label).
    """
    path = Path(path)
    try:
        sheets = pd.read_excel(path, sheet_name=None, engine="openpyxl", index_col=0, dtype=str)
    except FileNotFoundError:
        raise CellbenchError(f"{path}: plate layout not found") from None
    except (zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise CellbenchError(f"{path}: cannot read the plate map as Excel: {exc}") from None
    columns = {str(sheet): _sheet_wells(path, str(sheet), grid) for sheet, grid in sheets.items()}
    wells = sorted(set().union(*(values.index for values in columns.values())), key=_well_order)
    layout = pd.DataFrame(
        {sheet: values.reindex(wells) for sheet, values in columns.items()},
        index=pd.Index(wells, name="well", dtype=str),
    )
    return layout


def read_layout(path: Path) -> pd.DataFrame:
    """Read a plate layout: a CSV (`read_layout_csv`) or an Excel map (`read_layout_excel`).

    Raises
    ------
    CellbenchError
        The suffix is neither ``.csv`` nor ``.xlsx``/``.xlsm``, or the reader refuses the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_layout_csv(path)
    if suffix in EXCEL_SUFFIXES:
        return read_layout_excel(path)
    raise CellbenchError(
        f"{path}: plate layouts are .csv or Excel ({', '.join(EXCEL_SUFFIXES)}) files"
    )


def check_layout(layout: pd.DataFrame, wells: Iterable[str], source: str) -> dict[str, list[str]]:
    """Compare a layout with the wells that have images.

    Parameters
    ----------
    layout : DataFrame
        Indexed by well, as `read_layout` returns it.
    wells : iterable of str
        The wells with at least one image (normalised: ``A1`` counts as ``A01``).
    source : str
        Where the layout comes from (e.g. its path), for the log line.

    Returns
    -------
    dict
        ``without_layout``: wells imaged but not in the layout; ``unknown``: layout wells
        that are not valid well names (A-P, 1-24); ``not_imaged``: valid layout wells with no
        image. Each list is sorted. Duplicated wells are refused by the readers already.
    """
    imaged = {normalise_well(well) for well in wells}
    listed = {normalise_well(well) for well in layout.index}
    unknown = {well for well in listed if not is_well(well)}
    result = {
        "without_layout": sorted(imaged - listed),
        "unknown": sorted(unknown),
        "not_imaged": sorted(listed - unknown - imaged),
    }
    if any(result.values()):
        log.info(
            "%s: %d imaged well(s) without layout, %d unknown, %d not imaged",
            source,
            *(len(v) for v in result.values()),
        )
    return result


def warn_wells_without_layout(
    logger: logging.Logger, plate: str, report: dict[str, list[str]], columns: Iterable[str]
) -> list[str]:
    """Log, once, the imaged wells that the layout does not list; return them.

    Their cells get an explicit missing value in every layout column (an empty string in a
    crop store's ``/cells``, null in a feature table) and are left out of training.

    Parameters
    ----------
    logger : Logger
        The calling stage's logger, so the line shows where the executors show the stage's.
    plate : str
    report : dict
        From `check_layout` (``without_layout``); empty when the plate has no layout at all.
    columns : iterable of str
        The layout's columns, named in the message (e.g. ``condition``).

    Examples
    --------
    ``plate P1: 2 well(s) imaged but not in the layout (A03, B05): their cells have no
    condition``
    """
    wells = list(report.get("without_layout") or [])
    if wells:
        logger.warning(
            "plate %s: %d well(s) imaged but not in the layout (%s): their cells have no %s",
            plate,
            len(wells),
            ", ".join(wells),
            ", ".join(columns) or "layout values",
        )
    return wells
