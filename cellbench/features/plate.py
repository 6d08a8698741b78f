"""Measure every cell of a plate into its feature table."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from cellbench.config import TextureConfig
from cellbench.data.plates import Plate, read_field
from cellbench.features.ground_truth import MarkerSetup
from cellbench.features.measure import measure_field, metadata_column
from cellbench.io.atomic import atomic_path
from cellbench.segment.store import read_labels, stored_fields

log = logging.getLogger(__name__)


def measure_plate(
    plate: Plate,
    label_store: Path,
    channels: list[str],
    regions: list[str],
    path: Path,
    texture: TextureConfig | None = None,
    ground_truth: MarkerSetup | None = None,
) -> dict:
    """Measure every cell of `plate` and write one Parquet row per cell at `path`.

    With `ground_truth`, the marker channels are read too, measured, and each cell's class
    (and its marker means) are added as ``Metadata_`` columns; markers never become features.

    Returns
    -------
    dict
        ``fields`` and ``cells`` counts (and cells per class), for the task's status.
    """
    tables = []
    segmented = set(stored_fields(label_store))
    markers = ground_truth.markers if ground_truth else []
    for field in (f for f in plate.fields if f.name in segmented):
        image = read_field(plate, field, [*channels, *markers])
        cells, nuclei = read_labels(label_store, field.name)
        features = measure_field(image[: len(channels)], cells, nuclei, channels, regions, texture)
        labels = features.pop("label")
        metadata = {
            metadata_column("cell_id"): [f"{plate.name}_{field.name}_{v:04d}" for v in labels],
            metadata_column("plate"): plate.name,
            metadata_column("well"): field.well,
            metadata_column("site"): field.site,
            metadata_column("field"): field.name,
            metadata_column("label"): labels,
        }
        for key, value in plate.well_metadata(field.well).items():
            metadata[metadata_column(key)] = value
        if ground_truth:
            classes = ground_truth.classify(image, channels, cells, nuclei).set_index("label")
            column = ground_truth.settings.column
            metadata[metadata_column(column)] = classes.loc[labels, column].to_numpy()
            for marker in markers:
                values = classes.loc[labels, f"{marker}_mean"].to_numpy()
                metadata[metadata_column(f"{marker}_mean")] = values
        tables.append(pd.concat([pd.DataFrame(metadata), features], axis=1))
    table = pd.concat(tables, ignore_index=True)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    log.info("features %s: %d cells x %d columns", plate.name, len(table), table.shape[1])
    details = {"fields": len(plate.fields), "cells": len(table)}
    if ground_truth:
        column = metadata_column(ground_truth.settings.column)
        details["class_counts"] = {str(k): int(v) for k, v in table[column].value_counts().items()}
        details["class_column"] = ground_truth.settings.column
    return details
