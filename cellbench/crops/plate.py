"""Cut every cell of a plate into its crop store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cellbench.config import BackgroundConfig
from cellbench.crops.background import cell_free_windows
from cellbench.crops.experiments import experiment_kinds, original_spec
from cellbench.crops.extract import CropSpec, crop_cells, fits_in_field, measure_cells
from cellbench.crops.store import write_crop_store
from cellbench.data.plates import Plate, read_field
from cellbench.ground_truth import MarkerSetup
from cellbench.io.layout import warn_wells_without_layout
from cellbench.names import cell_ids
from cellbench.segment.store import read_labels, stored_fields

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
    background: BackgroundConfig | None = None,
    label_column: str = "condition",
    ground_truth: MarkerSetup | None = None,
    nonfinite: Literal["fail", "zero"] = "fail",
) -> dict:
    """Crop every cell of every field (each field read once) into the store at `path`.

    With `background`, also the background-confound experiments of the plate; with
    `ground_truth`, each cell's class from the marker channels goes into ``/cells``. Only
    the fields in the label store are read (a field the segment stage failed has no cell);
    `nonfinite` is ``data.nonfinite`` (see `read_field`). Cells of a well the layout does
    not list get an empty value in each layout column (logged once).

    Returns
    -------
    dict
        ``fields`` and ``cells`` counts (and cells dropped at the border, NaN or infinite
        pixels set to 0), for the status.
    """
    all_specs = specs + ([original_spec(background)] if background else [])
    originals: list[np.ndarray] = []
    original_masks: list[np.ndarray] = []
    free_windows: list[np.ndarray] = []
    free_origins: list[str] = []
    rng = np.random.default_rng(background.seed if background else 0)
    counts = {"fields": len(plate.fields), "dropped_at_border": 0}
    zeroed: dict[str, int] = {}
    warn_wells_without_layout(log, plate.name, plate.layout_report, plate.layout.columns)

    segmented = set(stored_fields(label_store))

    def field_batches() -> Iterator[tuple[pd.DataFrame, dict]]:
        for field in (f for f in plate.fields if f.name in segmented):
            markers = ground_truth.markers if ground_truth else []
            everything = read_field(plate, field, [*channels, *markers], nonfinite, zeroed)
            image = everything[: len(channels)]
            cells, nuclei = read_labels(label_store, field.name)
            table = measure_cells(cells, nuclei)
            if ground_truth:
                classes = ground_truth.classify(everything, channels, cells, nuclei)
                column = ground_truth.settings.column
                table[column] = classes.set_index("label").loc[table["label"], column].to_numpy()
            keep = np.ones(len(table), bool)
            for spec in all_specs:
                if spec.border == "drop":
                    keep &= fits_in_field(table, spec, cells.shape)
            counts["dropped_at_border"] += int((~keep).sum())
            table = table[keep].reset_index(drop=True)
            crops = {spec.kind: crop_cells(image, cells, nuclei, table, spec) for spec in all_specs}
            if background:
                originals.append(crops[original_spec(background).kind][0])
                original_masks.append(crops[original_spec(background).kind][1])
                _collect_free_windows(
                    image, cells, background, rng, field.name, free_windows, free_origins
                )
            yield _describe_cells(table, plate, field), crops

    def derived(table: pd.DataFrame) -> list:
        if not background:
            return []
        return experiment_kinds(
            background,
            table,
            np.concatenate(originals),
            np.concatenate(original_masks),
            np.stack(free_windows) if free_windows else np.zeros((0,)),
            free_origins,
            label_column,
        )

    table = write_crop_store(
        path,
        plate=plate.name,
        channel_names=channels,
        specs=all_specs,
        batches=field_batches(),
        config_hash=config_hash,
        compression=compression,
        derived=derived,
    )
    log.info("crop %s: %d cells into %s", plate.name, len(table), path)
    return {**counts, "cells": len(table), "nonfinite_pixels_zeroed": sum(zeroed.values())}


def _collect_free_windows(image, cells, background, rng, field_name, windows, origins) -> None:
    """Keep a few cell-free windows of a field (for the ``cell_free`` experiment)."""
    if "cell_free" not in background.experiments:
        return
    size = background.size_px
    for top, left in cell_free_windows(cells, size, background.windows_per_field, rng):
        windows.append(image[:, top : top + size, left : left + size])
        origins.append(f"{field_name}@({top},{left})")


def _describe_cells(table: pd.DataFrame, plate: Plate, field) -> pd.DataFrame:
    """Add identifiers and the well's layout metadata to a field's cell table."""
    described = table.copy()
    described.insert(0, "cell_id", cell_ids(plate.name, field.name, table["label"]))
    described.insert(1, "plate", plate.name)
    described.insert(2, "well", field.well)
    described.insert(3, "site", field.site)
    described.insert(4, "field", field.name)
    metadata = plate.well_metadata(field.well)
    for key in dict.fromkeys([*plate.layout.columns, *metadata]):
        described[key] = metadata.get(key)  # None: the layout has no value for this well
    return described
