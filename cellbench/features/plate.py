"""Measure every cell of a plate into its feature table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import pandas as pd

from cellbench.config import FeaturesConfig
from cellbench.data.plates import Plate, read_field
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
) -> dict:
    """Measure every cell of `plate` and write one Parquet row per cell at `path`.

    `features` (the config's ``features`` section) names the regions and texture settings.

    With `ground_truth`, the marker channels are read too, measured, and each cell's class
    (and its marker means) are added as ``Metadata_`` columns; markers never become features.
    Only the fields in the label store are read (a field the segment stage failed has no
    cell); `nonfinite` is ``data.nonfinite`` (see `read_field`), so no feature is NaN or
    infinite because of a pixel. Cells of a well the layout does not list are null in each
    layout column (logged once).

    Returns
    -------
    dict
        ``fields`` and ``cells`` counts (cells per class, NaN or infinite pixels set to 0),
        for the task's status.
    """
    tables = []
    zeroed: dict[str, int] = {}
    warn_wells_without_layout(log, plate.name, plate.layout_report, plate.layout.columns)
    segmented = set(stored_fields(label_store))
    markers = ground_truth.markers if ground_truth else []
    for field in (f for f in plate.fields if f.name in segmented):
        image = read_field(plate, field, [*channels, *markers], nonfinite, zeroed)
        cells, nuclei = read_labels(label_store, field.name)
        measured = measure_field(image[: len(channels)], cells, nuclei, channels, features)
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
        tables.append(pd.concat([pd.DataFrame(metadata), measured], axis=1))
    table = pd.concat(tables, ignore_index=True)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    log.info("features %s: %d cells x %d columns", plate.name, len(table), table.shape[1])
    details = {"fields": len(plate.fields), "cells": len(table)}
    details["nonfinite_pixels_zeroed"] = sum(zeroed.values())
    if ground_truth:
        column = metadata_column(ground_truth.settings.column)
        details["class_counts"] = {str(k): int(v) for k, v in table[column].value_counts().items()}
        details["class_column"] = ground_truth.settings.column
    return details
