"""Measure every cell of a plate into its feature table, one field at a time."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cellbench.config import FeaturesConfig
from cellbench.data.plates import Plate, read_field
from cellbench.features.cp_import import PlateExport
from cellbench.features.measure import measure_field, metadata_column
from cellbench.ground_truth import MarkerSetup
from cellbench.io.atomic import atomic_path
from cellbench.io.layout import warn_wells_without_layout
from cellbench.names import cell_ids
from cellbench.segment.store import read_labels, stored_fields

log = logging.getLogger(__name__)


def measure_plate(
    plate: Plate,
    label_store: Path,
    channels: list[str],
    features: FeaturesConfig,
    path: Path,
    ground_truth: MarkerSetup | None = None,
    nonfinite: Literal["fail", "zero"] = "fail",
    imported: PlateExport | None = None,
) -> dict:
    """Measure every cell of `plate` and write one Parquet row per cell at `path`.

    `features` (the config's ``features`` section) names the regions and texture settings.
    With `imported` (``features.source: cellprofiler``), the features are CellProfiler's, read
    from its export and joined to the segmented cells (`cellbench.features.cp_import`); a cell
    without a CellProfiler object has no row, and the counts are returned under
    ``cellprofiler``.

    With `ground_truth`, the marker channels are read too, measured, and each cell's class
    (and its marker means) are added as ``Metadata_`` columns; markers never become features.
    Only the fields in the label store are read (a field the segment stage failed has no
    cell); `nonfinite` is ``data.nonfinite`` (see `read_field`), so no feature is NaN or
    infinite because of a pixel. Cells of a well the layout does not list are null in each
    layout column (logged once).

    Each field's rows are written as they are measured (one Parquet row group per field), so
    memory does not grow with the plate.

    Returns
    -------
    dict
        ``fields`` and ``cells`` counts (cells per class, NaN or infinite pixels set to 0),
        for the task's status.
    """
    zeroed: dict[str, int] = {}
    warn_wells_without_layout(log, plate.name, plate.layout_report, plate.layout.columns)
    segmented = set(stored_fields(label_store))
    layout_types = _layout_types(plate)
    classes: Counter = Counter()
    n_cells, n_columns = 0, 0
    with atomic_path(path) as tmp:
        writer: pq.ParquetWriter | None = None
        empty: pa.Table | None = None
        for field in (f for f in plate.fields if f.name in segmented):
            table = _field_table(
                plate,
                field,
                label_store,
                channels,
                features,
                ground_truth,
                nonfinite,
                zeroed,
                imported,
            )
            rows = _as_arrow(table, layout_types)
            if len(table) == 0:
                empty = empty if empty is not None else rows
                continue
            if writer is None:
                writer = pq.ParquetWriter(tmp, rows.schema)
            writer.write_table(_conformed(rows, writer.schema, plate.name, field.name))
            n_cells, n_columns = n_cells + len(table), table.shape[1]
            if ground_truth:
                classes.update(table[metadata_column(ground_truth.settings.column)].astype(str))
        if writer is None:  # no cell in the whole plate: an empty table with the columns
            pq.write_table(empty if empty is not None else pa.table({}), tmp)
        else:
            writer.close()
        # an import that joined nothing fails here, before the table takes its name
        imported_counts = imported.check_matched(plate.name) if imported is not None else None
    log.info("features %s: %d cells x %d columns", plate.name, n_cells, n_columns)
    details = {"fields": len(plate.fields), "cells": n_cells}
    details["nonfinite_pixels_zeroed"] = sum(zeroed.values())
    if ground_truth:
        details["class_counts"] = {str(k): int(v) for k, v in classes.items()}
        details["class_column"] = ground_truth.settings.column
    if imported_counts is not None:
        details["cellprofiler"] = imported_counts
    return details


def _field_table(
    plate: Plate,
    field,
    label_store: Path,
    channels: list[str],
    features: FeaturesConfig,
    ground_truth: MarkerSetup | None,
    nonfinite: Literal["fail", "zero"],
    zeroed: dict[str, int],
    imported: PlateExport | None,
) -> pd.DataFrame:
    """One field's rows: its metadata columns, then every feature of each of its cells."""
    markers = ground_truth.markers if ground_truth else []
    cells, nuclei = read_labels(label_store, field.name)
    image = None
    if imported is None or ground_truth:
        image = read_field(plate, field, [*channels, *markers], nonfinite, zeroed)
    if imported is not None:
        measured = imported.field_rows(field, cells, nuclei)
    else:
        measure = measure_field
        if features.backend == "cellprofiler":
            from cellbench.features.cellprofiler import measure_field_cellprofiler as measure
        measured = measure(image[: len(channels)], cells, nuclei, channels, features)
    labels = measured.pop("label")
    metadata = {
        metadata_column("cell_id"): cell_ids(plate.name, field.name, labels),
        metadata_column("plate"): plate.name,
        metadata_column("well"): field.well,
        metadata_column("site"): field.site,
        metadata_column("field"): field.name,
        metadata_column("label"): labels,
    }
    values = plate.well_metadata(field.well)
    for key in dict.fromkeys([*plate.layout.columns, *values]):
        metadata[metadata_column(key)] = values.get(key)  # None: null in the table
    if ground_truth:
        classes = ground_truth.classify(image, channels, cells, nuclei).set_index("label")
        column = ground_truth.settings.column
        metadata[metadata_column(column)] = classes.loc[labels, column].to_numpy()
        for marker in markers:
            values = classes.loc[labels, f"{marker}_mean"].to_numpy()
            metadata[metadata_column(f"{marker}_mean")] = values
    return pd.concat([pd.DataFrame(metadata, index=measured.index), measured], axis=1)


def _layout_types(plate: Plate) -> dict[str, pa.DataType]:
    """The Arrow type of each layout column over every well of the plate.

    A field knows only its own well's value (None where the layout has none), so the
    column's type comes from all wells at once: integers with a missing well stay integers.
    """
    wells = list(dict.fromkeys(field.well for field in plate.fields))
    metadata = [plate.well_metadata(well) for well in wells]
    keys = dict.fromkeys([*plate.layout.columns, *(key for m in metadata for key in m)])
    return {metadata_column(key): pa.array([m.get(key) for m in metadata]).type for key in keys}


def _as_arrow(table: pd.DataFrame, layout_types: dict[str, pa.DataType]) -> pa.Table:
    """A field's rows as an Arrow table, layout columns typed for the whole plate."""
    rows = pa.Table.from_pandas(table, preserve_index=False).replace_schema_metadata(None)
    for name, kind in layout_types.items():
        if name in rows.column_names and rows.schema.field(name).type != kind:
            index = rows.column_names.index(name)
            rows = rows.set_column(index, name, rows.column(name).cast(kind))
    return rows


def _conformed(rows: pa.Table, schema: pa.Schema, plate: str, field: str) -> pa.Table:
    """`rows` cast to the plate's `schema` (that of its first field with cells)."""
    if rows.schema.equals(schema, check_metadata=False):
        return rows
    try:
        return rows.select(schema.names).cast(schema)
    except (KeyError, ValueError, pa.ArrowInvalid) as exc:
        raise ValueError(
            f"features of plate {plate}, field {field}: columns or types differ from the "
            f"plate's first field ({exc})"
        ) from exc
