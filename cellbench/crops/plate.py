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
    collected = _BackgroundCollection(background) if background else None
    counts = {"fields": len(plate.fields), "dropped_at_border": 0}
    zeroed: dict[str, int] = {}
    warn_wells_without_layout(log, plate.name, plate.layout_report, plate.layout.columns)

    segmented = set(stored_fields(label_store))

    def field_batches() -> Iterator[tuple[pd.DataFrame, dict]]:
        for field in (f for f in plate.fields if f.name in segmented):
            image, cells, nuclei, table = _read_field_cells(
                plate, field, label_store, channels, ground_truth, nonfinite, zeroed
            )
            table, dropped = _drop_at_border(table, all_specs, cells.shape)
            counts["dropped_at_border"] += dropped
            crops = {spec.kind: crop_cells(image, cells, nuclei, table, spec) for spec in all_specs}
            if collected is not None:
                collected.add_field(image, cells, crops, field.name)
            yield _describe_cells(table, plate, field), crops

    def derived(table: pd.DataFrame) -> list:
        return collected.experiments(table, label_column) if collected is not None else []

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


def _read_field_cells(
    plate: Plate,
    field,
    label_store: Path,
    channels: list[str],
    ground_truth: MarkerSetup | None,
    nonfinite: Literal["fail", "zero"],
    zeroed: dict[str, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Read a field's `channels` (C, Y, X), its cell and nucleus labels and its cell table.

    With `ground_truth`, the marker channels are read too and each cell's class goes into
    the table's ground-truth column.
    """
    markers = ground_truth.markers if ground_truth else []
    everything = read_field(plate, field, [*channels, *markers], nonfinite, zeroed)
    image = everything[: len(channels)]
    cells, nuclei = read_labels(label_store, field.name)
    table = measure_cells(cells, nuclei)
    if ground_truth:
        classes = ground_truth.classify(everything, channels, cells, nuclei)
        column = ground_truth.settings.column
        table[column] = classes.set_index("label").loc[table["label"], column].to_numpy()
    return image, cells, nuclei, table


def _drop_at_border(
    table: pd.DataFrame, specs: list[CropSpec], shape: tuple[int, ...]
) -> tuple[pd.DataFrame, int]:
    """Drop the cells whose crop of a ``border="drop"`` kind leaves the field; count them."""
    keep = np.ones(len(table), bool)
    for spec in specs:
        if spec.border == "drop":
            keep &= fits_in_field(table, spec, shape)
    return table[keep].reset_index(drop=True), int((~keep).sum())


class _BackgroundCollection:
    """What the background-confound experiments need from every field, gathered field by field.

    The original crops and masks of each field and (for ``cell_free``) a few cell-free
    windows; `experiments` turns them into the derived kinds once the cell table is complete.
    """

    def __init__(self, background: BackgroundConfig) -> None:
        self.background = background
        self.rng = np.random.default_rng(background.seed)
        self.originals: list[np.ndarray] = []
        self.original_masks: list[np.ndarray] = []
        self.free_windows: list[np.ndarray] = []
        self.free_origins: list[str] = []

    def add_field(self, image: np.ndarray, cells: np.ndarray, crops: dict, field_name: str) -> None:
        """Keep a field's original crops and masks and its cell-free windows."""
        kind = original_spec(self.background).kind
        self.originals.append(crops[kind][0])
        self.original_masks.append(crops[kind][1])
        _collect_free_windows(
            image,
            cells,
            self.background,
            self.rng,
            field_name,
            self.free_windows,
            self.free_origins,
        )

    def experiments(self, table: pd.DataFrame, label_column: str) -> list:
        """The derived kinds of the experiments, as `write_crop_store`'s `derived` returns."""
        return experiment_kinds(
            self.background,
            table,
            np.concatenate(self.originals),
            np.concatenate(self.original_masks),
            np.stack(self.free_windows) if self.free_windows else np.zeros((0,)),
            self.free_origins,
            label_column,
        )


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
