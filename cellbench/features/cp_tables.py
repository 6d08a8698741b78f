"""Read CellProfiler's exported measurements, in any of its three layouts, into one form.

CellProfiler writes the same measurements three ways, all read here:

- ExportToSpreadsheet: a folder with ``<prefix>Image.csv`` and one ``<prefix><Object>.csv`` per
  object (``MyExpt_`` is the module's default prefix). Object columns carry no object name:
  ``ImageNumber``, ``ObjectNumber``, ``AreaShape_Area``, ``Parent_Nuclei``...; image columns read
  ``FileName_DNA``, ``Count_Cells``, ``Metadata_Well``...
- ExportToDatabase to SQLite (``.db``, ``.sqlite``, ``.sqlite3``): ``<prefix>Per_Image``
  (``Image_FileName_DNA``, ``Image_Count_Cells``...) and either one ``<prefix>Per_<Object>``
  table per object (rows numbered by ``<Object>_Number_Object_Number``) or one
  ``<prefix>Per_Object`` table of every object, its rows keyed by ``ObjectNumber``.
- A CytoTable or pycytominer single-cell Parquet file: one row per cell with the objects already
  joined, ``Metadata_ImageNumber`` (or ``ImageNumber``), ``Image_*`` and ``<Object>_*`` columns.

The one form, `CellProfilerExport`, has a table of image sets and a table of cells. A cell is
one object of the anchor object, ``Cells`` (else ``Nuclei``); the other regions' objects join it
by CellProfiler's parent links (``Cells.Parent_Nuclei``, ``Cytoplasm.Parent_Cells``), else by
equal object numbers, which is how CellProfiler numbers objects made from one another.
Bookkeeping columns (`IMAGE_BOOKKEEPING`, `OBJECT_BOOKKEEPING`) are never features: absolute
positions in the field (``Location_*``, ``AreaShape_Center_*``, bounding-box corners), object
numbers, parent and child links, file names, execution times.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.errors import CellbenchError, InputMissing

log = logging.getLogger(__name__)

IMAGE_BOOKKEEPING = (
    "ImageNumber", "TableNumber", "ImageSet_", "FileName_", "PathName_", "URL_", "MD5Digest_",
    "Height_", "Width_", "Scaling_", "Series_", "Frame_", "Channel_", "ExecutionTime_",
    "ModuleError_", "Group_", "Metadata_", "ObjectsFileName_", "ObjectsPathName_",
    "ObjectsURL_", "ObjectsSeries_", "ObjectsFrame_", "ObjectsChannel_", "ProcessingStatus",
)  # fmt: skip
# ExportToDatabase's per-image summaries of object measurements (Image_Mean_Cells_...): the
# objects' own values are the features, their means are not measured again
IMAGE_SUMMARIES = ("Mean_", "Median_", "StDev_")
OBJECT_BOOKKEEPING = (
    "ImageNumber", "TableNumber", "ObjectNumber", "Number_", "Parent_", "Children_",
    "Location_", "AreaShape_Center_", "AreaShape_BoundingBoxMinimum_",
    "AreaShape_BoundingBoxMaximum_", "Metadata_",
)  # fmt: skip
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_CENTERS = ("Location_Center", "AreaShape_Center")  # where CellProfiler puts an object's centroid


@dataclass
class CellProfilerExport:
    """One CellProfiler export: its image sets and its cells.

    Attributes
    ----------
    images : DataFrame
        One row per image set, indexed by ``ImageNumber``: CellProfiler's ``FileName_<image>``,
        ``Series_<image>`` and ``Metadata_<key>`` columns (to find the field), then
        ``Image_<measurement>`` features such as ``Image_Count_Cells``.
    cells : DataFrame
        One row per cell: ``ImageNumber``, ``ObjectNumber`` (of the anchor object), ``Center_X``
        and ``Center_Y`` (its centroid in px, x along columns, from 0 at the first pixel's
        centre, as CellProfiler writes it), then ``<Region>_<measurement>`` features of each
        cellbench region.
    path : Path
        The file or folder read.
    anchor : str
        The cellbench region whose CellProfiler object each cell is (``Cells``, else
        ``Nuclei``).
    """

    images: pd.DataFrame
    cells: pd.DataFrame
    path: Path
    anchor: str

    @property
    def feature_columns(self) -> list[str]:
        """The cells' feature columns (every column after the centroid)."""
        return list(self.cells.columns[4:])


def read_export(path: Path, objects: dict[str, str]) -> CellProfilerExport:
    """Read a CellProfiler export: an ExportToSpreadsheet folder, a SQLite or a Parquet file.

    Parameters
    ----------
    path : Path
        The folder of CSVs, or the ``.db``/``.sqlite``/``.sqlite3`` or ``.parquet`` file.
    objects : dict
        cellbench region (``Nuclei``, ``Cytoplasm``, ``Cells``) -> CellProfiler object name.

    Raises
    ------
    InputMissing
        The path does not exist.
    CellbenchError
        It holds no image table, none of the objects or no centroid; the message names the
        path and what it holds.
    """
    if not path.exists():
        raise InputMissing(f"features.tables.path: {path} does not exist")
    if path.is_dir():
        images, tables = _read_spreadsheets(path, objects)
    elif path.suffix.lower() in SQLITE_SUFFIXES:
        images, tables = _read_sqlite(path, objects)
    elif path.suffix.lower() == ".parquet":
        images, cells, anchor = _read_single_cells(path, objects)
        return CellProfilerExport(_image_table(images), cells, path, _region_of(anchor, objects))
    else:
        raise CellbenchError(
            f"features.tables.path: {path} is neither a folder of ExportToSpreadsheet CSVs "
            f"nor a SQLite ({', '.join(SQLITE_SUFFIXES)}) or Parquet file"
        )
    anchor = _anchor(objects, list(tables), path)
    cells = _join_objects(tables, anchor, objects, path)
    return CellProfilerExport(_image_table(images), cells, path, _region_of(anchor, objects))


def export_files(path: Path) -> list[Path]:
    """The files of an export (the CSVs of a folder), whose changes make features stale."""
    return sorted(path.glob("*.csv")) if path.is_dir() else [path]


# --- the three layouts ------------------------------------------------------------------------


def _read_spreadsheets(
    folder: Path, objects: dict[str, str]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """ExportToSpreadsheet: ``<prefix>Image.csv`` and ``<prefix><Object>.csv``."""
    candidates = sorted(folder.glob("*Image.csv"))
    if len(candidates) != 1:
        found = [p.name for p in sorted(folder.glob("*.csv"))]
        raise CellbenchError(
            f"features.tables.path: {folder} must hold one <prefix>Image.csv of "
            f"ExportToSpreadsheet; found {len(candidates)} among {found[:10]}"
        )
    prefix = candidates[0].name[: -len("Image.csv")]
    images = _read_csv(candidates[0])
    tables = {}
    for name in dict.fromkeys(objects.values()):
        path = folder / f"{prefix}{name}.csv"
        if path.exists():
            tables[name] = _read_csv(path)
    return images, tables


def _read_csv(path: Path) -> pd.DataFrame:
    """One CSV of CellProfiler (``nan`` and empty cells are NaN)."""
    try:
        return pd.read_csv(path, engine="pyarrow")
    except Exception as error:  # pyarrow's parse errors have no common base class
        raise CellbenchError(f"features.tables: cannot read {path}: {error}") from error


def _read_sqlite(
    path: Path, objects: dict[str, str]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """ExportToDatabase's SQLite: ``Per_Image`` and ``Per_<Object>`` or one ``Per_Object``."""
    uri = f"file:{path.resolve()}?mode=ro"
    with sqlite3.connect(uri, uri=True) as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
        image_tables = [n for n in names if n.endswith("Per_Image")]
        if len(image_tables) != 1:
            raise CellbenchError(
                f"features.tables.path: {path} must hold one <prefix>Per_Image table of "
                f"ExportToDatabase; it holds {sorted(names)[:10]}"
            )
        prefix = image_tables[0][: -len("Per_Image")]
        images = _strip(_read_table(connection, image_tables[0]), "Image_", keep=("ImageNumber",))
        tables = {}
        for name in dict.fromkeys(objects.values()):
            if f"{prefix}Per_{name}" in names:
                table = _read_table(connection, f"{prefix}Per_{name}")
                table = table.rename(columns={f"{name}_Number_Object_Number": "ObjectNumber"})
                tables[name] = _strip(table, f"{name}_", keep=("ImageNumber", "ObjectNumber"))
        if not tables and f"{prefix}Per_Object" in names:
            tables = _split_object_table(_read_table(connection, f"{prefix}Per_Object"), objects)
    return images, tables


def _read_table(connection: sqlite3.Connection, table: str) -> pd.DataFrame:
    return pd.read_sql_query(f'SELECT * FROM "{table}"', connection)  # names from sqlite_master


def _split_object_table(table: pd.DataFrame, objects: dict[str, str]) -> dict[str, pd.DataFrame]:
    """ExportToDatabase's single object table, one table per object (its rows that exist)."""
    keys = ["ImageNumber", "ObjectNumber"]
    tables = {}
    for name in dict.fromkeys(objects.values()):
        columns = [c for c in table.columns if c.startswith(f"{name}_")]
        if columns:
            part = table.loc[table[columns].notna().any(axis=1), keys + columns]
            tables[name] = _strip(part, f"{name}_", keep=keys)
    return tables


def _read_single_cells(
    path: Path, objects: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """A CytoTable / pycytominer single-cell Parquet file: objects already joined per row."""
    table = pd.read_parquet(path)
    table = table.rename(columns={"Metadata_ImageNumber": "ImageNumber"})
    if "ImageNumber" not in table.columns:
        raise CellbenchError(f"features.tables.path: {path} has no Metadata_ImageNumber column")
    anchor = _anchor(objects, [n for n in objects.values() if _has_prefix(table, n)], path)
    number = _first_column(
        table,
        [
            f"Metadata_{anchor}_Number_Object_Number",
            f"{anchor}_Number_Object_Number",
            f"Metadata_{anchor}_ObjectNumber",
            "Metadata_ObjectNumber",
            "ObjectNumber",
        ],
    )
    centre = _centre_columns(table, [f"{anchor}_", f"Metadata_{anchor}_"], path)
    cells = pd.DataFrame(
        {
            "ImageNumber": table["ImageNumber"].to_numpy(),
            "ObjectNumber": table[number].to_numpy() if number else np.arange(len(table)) + 1,
            "Center_X": table[centre[0]].to_numpy(np.float64),
            "Center_Y": table[centre[1]].to_numpy(np.float64),
        }
    )
    features = {}
    for region, name in objects.items():
        part = _strip(table[[c for c in table.columns if c.startswith(f"{name}_")]], f"{name}_")
        features.update(_features(part, region))
    cells = pd.concat([cells, pd.DataFrame(features, index=cells.index)], axis=1)
    per_object = tuple(f"Metadata_{n}_" for n in objects.values())
    image_columns = [
        c
        for c in table.columns
        if c.startswith("Image_")
        or (c.startswith("Metadata_") and not c.startswith(per_object) and "Object" not in c)
    ]
    images = table[["ImageNumber", *image_columns]].drop_duplicates("ImageNumber")
    images = images.rename(columns=lambda c: c[len("Image_") :] if c.startswith("Image_") else c)
    return images.loc[:, ~images.columns.duplicated()], cells, anchor


# --- one form ---------------------------------------------------------------------------------


def _join_objects(
    tables: dict[str, pd.DataFrame], anchor: str, objects: dict[str, str], path: Path
) -> pd.DataFrame:
    """One row per `anchor` object with every region's features, joined by parent links."""
    rows = tables[anchor]
    centre = _centre_columns(rows, [""], path)
    keys = ["ImageNumber", "ObjectNumber"]
    cells = pd.DataFrame(
        {
            "ImageNumber": rows["ImageNumber"].to_numpy(),
            "ObjectNumber": rows["ObjectNumber"].to_numpy(),
            "Center_X": rows[centre[0]].to_numpy(np.float64),
            "Center_Y": rows[centre[1]].to_numpy(np.float64),
        }
    )
    parts = [cells]
    for region, name in objects.items():
        if name not in tables:
            continue
        table = tables[name]
        if name == anchor:
            link = rows["ObjectNumber"]
        elif f"Parent_{name}" in rows.columns:  # Cells.Parent_Nuclei
            link = rows[f"Parent_{name}"]
        elif f"Parent_{anchor}" in table.columns:  # Cytoplasm.Parent_Cells
            table = table.drop(columns="ObjectNumber").rename(
                columns={f"Parent_{anchor}": "ObjectNumber"}
            )
            link = rows["ObjectNumber"]
        else:  # objects made from one another share their numbers
            link = rows["ObjectNumber"]
        duplicated = table.duplicated(keys)
        if duplicated.any():
            count = int(duplicated.sum())
            log.warning("%s: %d %s object(s) share a cell; first kept", path, count, name)
            table = table[~duplicated]
        index = pd.MultiIndex.from_frame(table[keys])
        wanted = pd.MultiIndex.from_arrays([rows["ImageNumber"].to_numpy(), link.to_numpy()])
        features = pd.DataFrame(_features(table.drop(columns=keys), region), index=index)
        parts.append(features.reindex(wanted).reset_index(drop=True))
    return pd.concat(parts, axis=1)


def _image_table(images: pd.DataFrame) -> pd.DataFrame:
    """Image sets by ``ImageNumber``: file names and metadata, then ``Image_*`` features."""
    images = images.drop_duplicates("ImageNumber").set_index("ImageNumber")
    lookup = [c for c in images.columns if c.startswith(("FileName_", "Series_", "Metadata_"))]
    features = _numeric(images.drop(columns=lookup), IMAGE_BOOKKEEPING + IMAGE_SUMMARIES)
    features.columns = [f"Image_{c}" for c in features.columns]
    return pd.concat([images[lookup], features], axis=1)


def _features(table: pd.DataFrame, region: str) -> dict[str, np.ndarray]:
    """The numeric measurement columns of one object's table, named ``<Region>_<measurement>``."""
    numeric = _numeric(table, OBJECT_BOOKKEEPING)
    return {f"{region}_{c}": numeric[c].to_numpy(np.float64) for c in numeric.columns}


def _numeric(table: pd.DataFrame, bookkeeping: tuple[str, ...]) -> pd.DataFrame:
    kept = [c for c in table.columns if not str(c).startswith(bookkeeping)]
    return table[kept].select_dtypes(include=["number", "bool"])


def _anchor(objects: dict[str, str], present: list[str], path: Path) -> str:
    """The object each cell is: ``Cells``'s CellProfiler object, else ``Nuclei``'s."""
    for region in ("Cells", "Nuclei"):
        if region in objects and objects[region] in present:
            return objects[region]
    raise CellbenchError(
        f"features.tables.path: {path} holds neither the Cells nor the Nuclei objects named in "
        f"features.tables.objects {objects} (found: {present or 'none'})"
    )


def _region_of(name: str, objects: dict[str, str]) -> str:
    return next(region for region, object_name in objects.items() if object_name == name)


def _centre_columns(table: pd.DataFrame, prefixes: list[str], path: Path) -> tuple[str, str]:
    """The anchor object's centroid columns (``Location_Center_X``/``Y`` or AreaShape's)."""
    for prefix in prefixes:
        for centre in _CENTERS:
            x, y = f"{prefix}{centre}_X", f"{prefix}{centre}_Y"
            if x in table.columns and y in table.columns:
                return x, y
    raise CellbenchError(
        f"features.tables.path: {path} gives no object centroid (Location_Center_X/Y from "
        "MeasureObjectSizeShape or an Identify module): add it to the export"
    )


def _strip(table: pd.DataFrame, prefix: str, keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """`table` with `prefix` removed from its column names (the `keep` columns untouched)."""
    renamed = {c: c[len(prefix) :] for c in table.columns if c.startswith(prefix) and c not in keep}
    return table.rename(columns=renamed)


def _has_prefix(table: pd.DataFrame, name: str) -> bool:
    return any(str(c).startswith(f"{name}_") for c in table.columns)


def _first_column(table: pd.DataFrame, names: list[str]) -> str | None:
    return next((n for n in names if n in table.columns), None)
