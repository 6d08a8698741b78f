"""CellProfiler exports of a segmented synthetic plate, in CellProfiler's three layouts.

No CellProfiler output of a plate with known classes is in ``$CELLBENCH_DATA``, so these
fixtures are written here in CellProfiler's exact column layout (ExportToSpreadsheet,
ExportToDatabase to SQLite with one table per object or one object table, and CytoTable's
single-cell Parquet), from the plate's own segmentation and native features. The truth is known
exactly: each object's features are those of one segmented cell, whose number CellProfiler
would give differently (object numbers are shuffled, Nuclei and Cytoplasm have their own,
linked by ``Parent_*``), with centroids moved by under 1 px, two cells of each field missing
from CellProfiler's objects and one object of each field that is no cell of ours.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.data.plates import Plate, read_field
from cellbench.features.measure import measure_field
from cellbench.segment.store import read_labels

OBJECTS = ("Nuclei", "Cells", "Cytoplasm")
MISSING_PER_FIELD = 2  # segmented cells CellProfiler did not find
EXTRA_PER_FIELD = 1  # CellProfiler objects that are no segmented cell


@dataclass
class Truth:
    """What CellProfiler "measured": per object, its table with prefixed names (DB layout).

    ``objects[name]`` has ``ImageNumber``, ``<name>_Number_Object_Number``, the object's
    features ``<name>_*``, centroid and parent links; ``images`` has ``ImageNumber`` and
    ``Image_*`` columns; ``cells`` maps (field, label) to (ImageNumber, Cells object number).
    """

    images: pd.DataFrame
    objects: dict[str, pd.DataFrame]
    cells: dict[tuple[str, int], tuple[int, int]]
    native: pd.DataFrame  # the native features of every segmented cell, with field and label


def cellprofiler_truth(config, plate: Plate, label_store: Path, seed: int = 0) -> Truth:
    """Measure the segmented plate natively and lay it out as CellProfiler would."""
    rng = np.random.default_rng(seed)
    channels = list(config.data.channels)
    image_rows, native_rows, cells_of = [], [], {}
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in OBJECTS}
    order = rng.permutation(len(plate.fields))  # ImageNumbers in another order than fields
    for image_number, index in enumerate(order, start=1):
        item = plate.fields[index]
        cells, nuclei = read_labels(label_store, item.name)
        image = read_field(plate, item, channels)
        measured = measure_field(image, cells, nuclei, channels, config.features)
        native_rows.append(measured.assign(field=item.name))
        kept = measured.iloc[MISSING_PER_FIELD:].reset_index(drop=True)
        centres = _centres(cells, kept["label"].to_numpy())
        centres += rng.uniform(-0.7, 0.7, centres.shape)
        extra = pd.DataFrame({c: [np.nan] for c in measured.columns})
        extra["label"] = 0
        kept = pd.concat([kept, extra], ignore_index=True)
        far = np.array([[-50.0, -50.0]] * EXTRA_PER_FIELD)
        centres = np.vstack([centres, far])
        n = len(kept)
        numbers = {name: rng.permutation(n) + 1 for name in OBJECTS}
        for row, label in enumerate(kept["label"]):
            if label:
                cells_of[(item.name, int(label))] = (image_number, int(numbers["Cells"][row]))
        for name in OBJECTS:
            columns = {c: kept[c].to_numpy() for c in kept.columns if c.startswith(f"{name}_")}
            table = pd.DataFrame(
                {
                    "ImageNumber": image_number,
                    f"{name}_Number_Object_Number": numbers[name],
                    **columns,
                    f"{name}_Location_Center_X": centres[:, 0],
                    f"{name}_Location_Center_Y": centres[:, 1],
                }
            )
            if name == "Cells":
                table["Cells_Parent_Nuclei"] = numbers["Nuclei"]
                table["Cells_Children_Cytoplasm_Count"] = 1
            if name == "Cytoplasm":
                table["Cytoplasm_Parent_Cells"] = numbers["Cells"]
                table["Cytoplasm_Parent_Nuclei"] = numbers["Nuclei"]
            parts[name].append(table.sort_values(f"{name}_Number_Object_Number"))
        row = {"ImageNumber": image_number}
        for channel, path in zip(channels, _files(item, channels), strict=True):
            row[f"Image_FileName_{channel}"] = path.name
            row[f"Image_PathName_{channel}"] = str(path.parent)
            row[f"Image_Height_{channel}"] = image.shape[1]
            row[f"Image_Intensity_MeanIntensity_{channel}"] = float(
                image[channels.index(channel)].mean()
            )
        row["Image_Count_Cells"] = n
        row["Image_Count_Nuclei"] = n
        row["Image_Metadata_Well"] = item.well
        row["Image_Metadata_Site"] = int(item.site)
        row["Image_ExecutionTime_01Images"] = 0.01
        image_rows.append(row)
    objects = {name: pd.concat(tables, ignore_index=True) for name, tables in parts.items()}
    images = pd.DataFrame(image_rows).sort_values("ImageNumber", ignore_index=True)
    return Truth(images, objects, cells_of, pd.concat(native_rows, ignore_index=True))


def write_spreadsheets(truth: Truth, folder: Path, prefix: str = "MyExpt_") -> Path:
    """ExportToSpreadsheet: ``<prefix>Image.csv`` and one CSV per object, names unprefixed."""
    folder.mkdir(parents=True, exist_ok=True)
    images = truth.images.rename(columns=lambda c: c.removeprefix("Image_"))
    images.to_csv(folder / f"{prefix}Image.csv", index=False, na_rep="nan")
    for name, table in truth.objects.items():
        table = table.rename(columns={f"{name}_Number_Object_Number": "ObjectNumber"})
        table = table.rename(columns=lambda c, n=name: c.removeprefix(f"{n}_"))
        table.insert(2, "Number_Object_Number", table["ObjectNumber"])
        table.to_csv(folder / f"{prefix}{name}.csv", index=False, na_rep="nan")
    return folder


def write_sqlite(truth: Truth, path: Path, single_object_table: bool = False) -> Path:
    """ExportToDatabase to SQLite: ``Per_Image`` and ``Per_<Object>`` (or one ``Per_Object``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        truth.images.to_sql("MyExpt_Per_Image", connection, index=False)
        if not single_object_table:
            for name, table in truth.objects.items():
                table.to_sql(f"MyExpt_Per_{name}", connection, index=False)
        else:  # one row per object number, each object's columns side by side
            keys = ["ImageNumber", "ObjectNumber"]
            joined = None
            for name, table in truth.objects.items():
                table = table.rename(columns={f"{name}_Number_Object_Number": "ObjectNumber"})
                table[f"{name}_Number_Object_Number"] = table["ObjectNumber"]
                joined = table if joined is None else joined.merge(table, on=keys, how="outer")
            joined.to_sql("MyExpt_Per_Object", connection, index=False)
    return path


def write_single_cells(truth: Truth, path: Path) -> Path:
    """CytoTable's single-cell Parquet (its cellprofiler_sqlite join): one row per cytoplasm."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Cytoplasm_Parent_Cells", "Cytoplasm_Parent_Nuclei"}
    cytoplasm = truth.objects["Cytoplasm"].rename(columns={c: f"Metadata_{c}" for c in meta})
    cells = truth.objects["Cells"].rename(
        columns={"Cells_Number_Object_Number": "Metadata_Cells_Number_Object_Number"}
    )
    nuclei = truth.objects["Nuclei"].rename(
        columns={"Nuclei_Number_Object_Number": "Metadata_Nuclei_Number_Object_Number"}
    )
    image = truth.images[["ImageNumber", "Image_Metadata_Well", "Image_Metadata_Site"]]
    joined = image.merge(cytoplasm, on="ImageNumber")
    joined = joined.merge(
        cells,
        left_on=["ImageNumber", "Metadata_Cytoplasm_Parent_Cells"],
        right_on=["ImageNumber", "Metadata_Cells_Number_Object_Number"],
    )
    joined = joined.merge(
        nuclei,
        left_on=["ImageNumber", "Metadata_Cytoplasm_Parent_Nuclei"],
        right_on=["ImageNumber", "Metadata_Nuclei_Number_Object_Number"],
    )
    joined = joined.rename(columns={"ImageNumber": "Metadata_ImageNumber"})
    joined.to_parquet(path, index=False)
    return path


def _centres(cells: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Centroids (x, y) of the given labels, in px from the first pixel's centre."""
    out = np.zeros((len(labels), 2))
    for i, label in enumerate(labels):
        ys, xs = np.nonzero(cells == label)
        out[i] = xs.mean(), ys.mean()
    return out


def _files(item, channels: list[str]) -> list[Path]:
    """The file of each channel: one per channel, or the one multi-channel file for all."""
    if len(item.files) == len(channels):
        return list(item.files)
    return [item.files[0]] * len(channels)
