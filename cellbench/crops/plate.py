"""Cut every cell of a plate into its crop store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from cellbench.crops.extract import CropSpec, crop_cells, measure_cells
from cellbench.crops.store import write_crop_store
from cellbench.data.plates import Plate, read_field
from cellbench.segment.store import read_labels

log = logging.getLogger(__name__)


def crop_plate(
    plate: Plate,
    label_store: Path,
    channels: list[str],
    specs: list[CropSpec],
    path: Path,
    *,
    config_hash: str,
    compression: str | None,
) -> dict:
    """Crop every cell of every field (each field read once) into the store at `path`.

    Returns
    -------
    dict
        ``fields`` and ``cells`` counts, for the task's status.
    """

    def field_batches() -> Iterator[tuple[pd.DataFrame, dict]]:
        for field in plate.fields:
            image = read_field(plate, field, channels)
            cells, nuclei = read_labels(label_store, field.xyyzz)
            table = measure_cells(cells, nuclei)
            crops = {spec.kind: crop_cells(image, cells, nuclei, table, spec) for spec in specs}
            yield _describe_cells(table, plate, field), crops

    table = write_crop_store(
        path,
        plate=plate.name,
        channel_names=channels,
        specs=specs,
        batches=field_batches(),
        config_hash=config_hash,
        compression=compression,
    )
    log.info("crop %s: %d cells into %s", plate.name, len(table), path)
    return {"fields": len(plate.fields), "cells": len(table)}


def _describe_cells(table: pd.DataFrame, plate: Plate, field) -> pd.DataFrame:
    """Add identifiers and the well's layout metadata to a field's cell table."""
    described = table.copy()
    described.insert(
        0, "cell_id", [f"{plate.name}_{field.xyyzz}_{label:04d}" for label in table["label"]]
    )
    described.insert(1, "plate", plate.name)
    described.insert(2, "well", field.well)
    described.insert(3, "site", field.site)
    described.insert(4, "field", field.xyyzz)
    for key, value in plate.well_metadata(field.well).items():
        described[key] = value
    return described
