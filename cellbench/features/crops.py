"""Handcrafted features of pre-cut single-cell crops, which come without fields or label images.

Each crop is centred on its cell of interest; neighbours may be partly visible. The cell and
its nucleus are found in every crop (`cellbench.segment.crop_centre`), then the crops are tiled
into one mosaic per chunk, one pixel of background between tiles so that no two objects touch,
and the mosaic is measured by `measure_field` like any field: the same columns, the same
definitions, and all cells measured at once. A crop in which no nucleus is found gets NaN
features and ``Metadata_NucleusFound`` 0.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pandas as pd

from cellbench.crops.extract import MASK_CELL, MASK_NUCLEUS
from cellbench.crops.store import read_cells, read_crops
from cellbench.errors import CellbenchError
from cellbench.features.measure import COUNT_COLUMN, measure_field, metadata_column
from cellbench.io.atomic import atomic_path
from cellbench.segment.crop_centre import segment_crop_centres

if TYPE_CHECKING:
    from cellbench.config import FeaturesConfig

__all__ = ["FOUND_COLUMN", "measure_crops", "measure_store_crops"]

log = logging.getLogger(__name__)

FOUND_COLUMN = "Metadata_NucleusFound"
CHUNK_CROPS = 1024  # crops per mosaic (about 30 MB of 68 x 68 x 3 uint16 crops)


def measure_crops(
    crops: np.ndarray,
    channel_names: list[str],
    features: FeaturesConfig,
    nucleus_channel: str,
    cell_channels: list[str],
    cells: np.ndarray | None = None,
    nuclei: np.ndarray | None = None,
    *,
    chunk_crops: int = CHUNK_CROPS,
) -> pd.DataFrame:
    """Measure the centre cell of every crop, all crops of a chunk in one `measure_field` call.

    Parameters
    ----------
    crops : (N, C, H, W) ndarray
        Raw intensities.
    channel_names : list of str
        Names of the C channels, used in column names.
    features : FeaturesConfig
        The regions to measure and the texture settings (``texture=None``: no texture columns).
    nucleus_channel : str
        Name of the DNA channel.
    cell_channels : list of str
        Names of the channels that outline the cell; may be empty (the cell is the nucleus).
    cells, nuclei : (N, H, W) ndarray of int, optional
        Masks to measure instead of segmenting (any non-zero pixel is the object; the nucleus
        is clipped to the cell). Give both or neither.
    chunk_crops : int
        Crops per mosaic, to bound memory.

    Returns
    -------
    DataFrame
        One row per crop in input order: ``Metadata_NucleusFound`` (1.0 or 0.0), then the columns
        of `measure_field` (without ``label`` and ``Image_Count_Cells``) as float64; NaN where
        no nucleus was found.
    """
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[1] != len(channel_names):
        raise ValueError(
            f"crops of shape {crops.shape} do not hold the {len(channel_names)} channels "
            f"{channel_names} as (N, C, H, W)"
        )
    if (cells is None) != (nuclei is None):
        raise ValueError("give both cells and nuclei masks, or neither")
    if cells is not None:
        cells, nuclei = np.asarray(cells) > 0, np.asarray(nuclei) > 0
        if cells.shape != crops.shape[:1] + crops.shape[2:] or nuclei.shape != cells.shape:
            raise ValueError(
                f"cells {cells.shape} and nuclei {nuclei.shape} must be (N, H, W) of the "
                f"crops {crops.shape}"
            )
    nucleus_index, cell_indices = _channel_indices(channel_names, nucleus_channel, cell_channels)
    tables = []
    for start in range(0, max(len(crops), 1), chunk_crops):
        chunk = slice(start, start + chunk_crops)
        if cells is None:
            chunk_cells, chunk_nuclei = segment_crop_centres(
                crops[chunk], nucleus_index, cell_indices
            )
        else:
            chunk_cells, chunk_nuclei = cells[chunk], nuclei[chunk]
        tables.append(
            _measure_mosaic(crops[chunk], chunk_cells, chunk_nuclei, channel_names, features)
        )
    return pd.concat(tables, ignore_index=True)


def _channel_indices(
    channel_names: list[str], nucleus_channel: str, cell_channels: list[str]
) -> tuple[int, list[int]]:
    """Positions of the nucleus and cell channels among `channel_names`."""
    unknown = [name for name in [nucleus_channel, *cell_channels] if name not in channel_names]
    if unknown:
        raise ValueError(
            f"channels {unknown} are not among the crop channels {channel_names}; name the "
            "nucleus and cell channels by one of those"
        )
    return channel_names.index(nucleus_channel), [channel_names.index(c) for c in cell_channels]


def _measure_mosaic(
    crops: np.ndarray,
    cells: np.ndarray,
    nuclei: np.ndarray,
    channel_names: list[str],
    features: FeaturesConfig,
) -> pd.DataFrame:
    """One `measure_field` call on the crops tiled in a grid; rows in crop order."""
    image, cell_labels, nucleus_labels = tile_mosaic(crops, cells > 0, (nuclei > 0) & (cells > 0))
    table = measure_field(image, cell_labels, nucleus_labels, channel_names, features)
    table = table.drop(columns=COUNT_COLUMN).set_index("label")
    table = table.reindex(np.arange(1, len(crops) + 1)).astype(np.float64)
    found = ((nuclei > 0) & (cells > 0)).any(axis=(1, 2))
    table.insert(0, FOUND_COLUMN, found.astype(np.float64))
    return table.reset_index(drop=True)


def tile_mosaic(
    crops: np.ndarray, cells: np.ndarray, nuclei: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tile (N, C, H, W) crops and their (N, H, W) bool masks into one near-square grid.

    Every tile is followed by one background row and column, so objects of neighbouring tiles
    never touch; crop k's object carries label k + 1.

    Returns
    -------
    image : (C, R (H + 1), K (W + 1)) ndarray
        Crops in row-major grid order, 0 in the gaps and unused tiles.
    cells, nuclei : (R (H + 1), K (W + 1)) ndarray of int32
    """
    n, n_channels, height, width = crops.shape
    grid_cols = max(int(np.ceil(np.sqrt(n))), 1)
    grid_rows = max(int(np.ceil(n / grid_cols)), 1)
    pad = ((0, grid_rows * grid_cols - n), (0, 1), (0, 1))
    labels = np.arange(1, n + 1, dtype=np.int32)[:, None, None]

    def tile(planes: np.ndarray) -> np.ndarray:  # (M, H, W) -> (R (H + 1), K (W + 1))
        padded = np.pad(planes, pad).reshape(grid_rows, grid_cols, height + 1, width + 1)
        return padded.transpose(0, 2, 1, 3).reshape(grid_rows * (height + 1), -1)

    image = np.stack([tile(crops[:, c]) for c in range(n_channels)])
    return image, tile(np.where(cells, labels, 0)), tile(np.where(nuclei, labels, 0))


def measure_store_crops(
    store: Path,
    kind: str,
    channels: list[str],
    features: FeaturesConfig,
    nucleus_channel: str,
    cell_channels: list[str],
    label_column: str,
    out: Path,
    *,
    chunk_crops: int = CHUNK_CROPS,
) -> dict:
    """Measure every crop of one kind of a crop store and write one Parquet row per crop.

    Crops whose stored mask has a cell (bit 1) are measured within it (bit 2: its nucleus);
    the others (pre-cut crops have empty masks) are segmented with `segment_crop_centres`.
    The table holds a ``Metadata_`` column per `/cells` column (``cell_id`` ->
    ``Metadata_CellId``, `label_column` e.g. ``moa`` -> ``Metadata_Moa``), then the columns of
    `measure_crops` under `features` (the config's ``features`` section).

    Returns
    -------
    dict
        ``cells`` (crops measured) and ``nucleus_found`` (crops with a nucleus), for the status.

    Raises
    ------
    CellbenchError
        The store lacks `kind`, one of `channels`, or `label_column` in `/cells`.
    """
    stored_channels, n_crops = _store_layout(store, kind)
    missing = [name for name in channels if name not in stored_channels]
    if missing:
        raise CellbenchError(f"{store}: channels {missing} not stored; it holds {stored_channels}")
    planes = [stored_channels.index(name) for name in channels]
    metadata = read_cells(store)
    if label_column not in metadata.columns:
        raise CellbenchError(
            f"{store}: label column {label_column!r} not in /cells {list(metadata.columns)}"
        )
    if len(metadata) != n_crops:
        raise CellbenchError(f"{store}: /cells has {len(metadata)} rows, {kind} {n_crops} crops")
    started = time.perf_counter()
    tables = []
    for start in range(0, max(n_crops, 1), chunk_crops):  # an empty store: one empty chunk
        crops, masks = read_crops(store, kind, slice(start, start + chunk_crops))
        crops = crops[:, planes]
        cells, nuclei = _cells_of(crops, masks, channels, nucleus_channel, cell_channels)
        tables.append(
            measure_crops(crops, channels, features, nucleus_channel, cell_channels, cells, nuclei)
        )
        done = start + len(crops)
        seconds = time.perf_counter() - started
        log.info("features %s/%s: %d/%d crops (%.1f s)", store.stem, kind, done, n_crops, seconds)
    measured = pd.concat(tables, ignore_index=True)
    table = pd.concat([metadata.rename(columns=metadata_column), measured], axis=1)
    with atomic_path(out) as tmp:
        table.to_parquet(tmp, index=False)
    found = int(table[FOUND_COLUMN].sum())
    log.info(
        "features %s/%s: %d crops x %d columns, nucleus found in %d, into %s",
        store.stem,
        kind,
        len(table),
        table.shape[1],
        found,
        out,
    )
    return {"cells": len(table), "nucleus_found": found}


def _store_layout(store: Path, kind: str) -> tuple[list[str], int]:
    """Channel names and number of crops of `kind` in a crop store."""
    with h5py.File(store, "r") as handle:
        if kind not in handle or "images" not in handle[kind]:
            kinds = sorted(k for k in handle if k != "cells")
            raise CellbenchError(f"{store}: no crop kind {kind!r}; it holds {kinds}")
        return [str(name) for name in handle.attrs["channel_names"]], len(handle[kind]["images"])


def _cells_of(
    crops: np.ndarray,
    masks: np.ndarray,
    channels: list[str],
    nucleus_channel: str,
    cell_channels: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Cell and nucleus masks: the stored ones where a crop has a cell, else segmented."""
    stored_cells = (masks & MASK_CELL) > 0
    has_mask = stored_cells.reshape(len(masks), -1).any(axis=1)
    stored_nuclei = ((masks & MASK_NUCLEUS) > 0) & stored_cells
    if has_mask.all():
        return stored_cells, stored_nuclei
    nucleus_index, cell_indices = _channel_indices(channels, nucleus_channel, cell_channels)
    cells, nuclei = segment_crop_centres(crops, nucleus_index, cell_indices)
    cells = np.where(has_mask[:, None, None], stored_cells, cells > 0)
    nuclei = np.where(has_mask[:, None, None], stored_nuclei, nuclei > 0)
    return cells, nuclei
