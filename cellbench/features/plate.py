"""Measure every cell of a plate into its feature table."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from cellbench.config import TextureConfig
from cellbench.data.plates import Plate, read_field
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
) -> dict:
    """Measure every cell of `plate` and write one Parquet row per cell at `path`.

    Returns
    -------
    dict
        ``fields`` and ``cells`` counts, for the task's status.
    """
    tables = []
    segmented = set(stored_fields(label_store))
    for field in (f for f in plate.fields if f.name in segmented):
        image = read_field(plate, field, channels)
        cells, nuclei = read_labels(label_store, field.name)
        features = measure_field(image, cells, nuclei, channels, regions, texture)
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
        tables.append(pd.concat([pd.DataFrame(metadata), features], axis=1))
    table = pd.concat(tables, ignore_index=True)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    log.info("features %s: %d cells x %d columns", plate.name, len(table), table.shape[1])
    return {"fields": len(plate.fields), "cells": len(table)}
