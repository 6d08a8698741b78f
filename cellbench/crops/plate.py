"""Cut every cell of a plate into its crop store."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

import h5py
import numpy as np
import pandas as pd

from cellbench.config import BackgroundConfig
from cellbench.crops.background import cell_free_windows
from cellbench.crops.experiments import experiment_kinds, original_spec
from cellbench.crops.extract import CropSpec, crop_kinds, fits_in_field, measure_cells
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

    The background experiments are a second pass over the store being written
    (`cellbench.crops.experiments`): memory holds one field, or one block of rows, at a time,
    never the whole plate; their cell-free windows wait in an unnamed temporary file beside
    `path` (removed when the function returns).

    Returns
    -------
    dict
        ``fields`` and ``cells`` counts (and cells dropped at the border, NaN or infinite
        pixels set to 0), for the status.
    """
    all_specs = specs + ([original_spec(background)] if background else [])
    counts = {"fields": len(plate.fields), "dropped_at_border": 0}
    zeroed: dict[str, int] = {}
    warn_wells_without_layout(log, plate.name, plate.layout_report, plate.layout.columns)

    segmented = set(stored_fields(label_store))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=path.parent, prefix=f".{path.stem}-windows-") as scratch:
        collected = _BackgroundCollection(background, scratch) if background else None

        def field_batches() -> Iterator[tuple[pd.DataFrame, dict]]:
            for field in (f for f in plate.fields if f.name in segmented):
                image, cells, nuclei, table = _read_field_cells(
                    plate, field, label_store, channels, ground_truth, nonfinite, zeroed
                )
                table, dropped = _drop_at_border(table, all_specs, cells.shape)
                counts["dropped_at_border"] += dropped
                crops = crop_kinds(image, cells, nuclei, table, all_specs)
                if collected is not None:
                    collected.add_field(image, cells, crops, field.name)
                yield _describe_cells(table, plate, field), crops

        def derived(table: pd.DataFrame, store: h5py.File) -> Iterator:
            return collected.experiments(table, store, label_column) if collected else iter(())

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
    """What the background-confound experiments keep from every field, gathered field by field.

    Per cell one flag (whether its ``bg_original`` crop has background pixels to lend) and,
    for ``cell_free``, where each cell-free window comes from. The windows themselves go to
    `scratch` (an unnamed temporary file, W x (C, S, S) raw values one after another) and the
    crops stay in the store: `experiments` reads both back in blocks once the cell table is
    complete, so memory does not grow with the plate.
    """

    def __init__(self, background: BackgroundConfig, scratch: BinaryIO) -> None:
        self.background = background
        self.rng = np.random.default_rng(background.seed)
        self.eligible: list[np.ndarray] = []
        self.scratch = scratch
        self.window: np.ndarray | None = None  # (C, S, S) empty array: shape and dtype only
        self.free_origins: list[str] = []

    def add_field(self, image: np.ndarray, cells: np.ndarray, crops: dict, field_name: str) -> None:
        """Keep which cells of a field may be donors, and the field's cell-free windows."""
        masks = crops[original_spec(self.background).kind][1]
        self.eligible.append((masks == 0).any(axis=(1, 2)))
        if "cell_free" not in self.background.experiments:
            return
        size, per_field = self.background.size_px, self.background.windows_per_field
        for top, left in cell_free_windows(cells, size, per_field, self.rng):
            window = np.ascontiguousarray(image[:, top : top + size, left : left + size])
            if self.window is None:
                self.window = np.empty_like(window)
            self.scratch.write(window.tobytes())
            self.free_origins.append(f"{field_name}@({top},{left})")

    def read_windows(self, indices: np.ndarray) -> np.ndarray:
        """The cell-free windows of `indices` (K,), in that order: (K, C, S, S)."""
        self.scratch.flush()
        shape, dtype = self.window.shape, self.window.dtype
        out = np.empty((len(indices), *shape), dtype)
        descriptor = self.scratch.fileno()
        for row, index in enumerate(indices):
            raw = os.pread(descriptor, self.window.nbytes, int(index) * self.window.nbytes)
            out[row] = np.frombuffer(raw, dtype).reshape(shape)
        return out

    def experiments(self, table: pd.DataFrame, store: h5py.File, label_column: str) -> Iterator:
        """The derived kinds, as `write_crop_store`'s `derived` returns (see `experiment_kinds`)."""
        return experiment_kinds(
            self.background,
            table,
            store,
            np.concatenate(self.eligible) if self.eligible else np.zeros(0, bool),
            self.read_windows,
            self.free_origins,
            label_column,
        )


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
