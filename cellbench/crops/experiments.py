"""The background-confound experiments of a plate, as crop kinds of its store.

From unmasked windows centred on each cell (kind ``bg_original``) this builds ``bg_masked``,
``bg_swap_same``, ``bg_swap_diff`` and ``bg_cell_free`` (see `cellbench.crops.background`),
and records each cell's donor in the ``/cells`` table: the donor cell's id for swaps, the
field and window corner for cell-free backgrounds.

The kinds come from a second pass over the store being written: once every field's
``bg_original`` crops are in it and the ``/cells`` table is complete, donors are chosen from
the table and the originals are read back in blocks of consecutive rows (`block_rows`), each
block with the rows of its donors. Memory holds one block (plus its donors) at a time,
whatever the size of the plate: never every crop of the plate.

One generator (``numpy.random.default_rng(seed)``) draws, in this order, for each experiment
in the order configured: the donors of a swap (`choose_donors`, over the whole table), then
the fill of each donor's removed centre cell in row order (`swap_backgrounds`); the window
of each cell for ``cell_free``. Blocks in row order draw exactly what one pass over every
row draws, so the choice is the same whatever the block size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import h5py
import numpy as np
import pandas as pd

from cellbench.config import BackgroundConfig
from cellbench.config.crop_kinds import BACKGROUND_ORIGINAL, background_kind
from cellbench.crops.background import (
    choose_donors,
    mask_outside,
    paste_on_windows,
    swap_backgrounds,
)
from cellbench.crops.extract import MASK_CELL, CropSpec, crop_spec

ORIGINAL = background_kind(BACKGROUND_ORIGINAL)
BLOCK_ROWS = 1024  # rows of the originals read back at a time ...
BLOCK_BYTES = 32 * 2**20  # ... fewer when 1024 rows of crops and masks would exceed this

Blocks = Iterator[tuple[np.ndarray, np.ndarray]]


def original_spec(settings: BackgroundConfig) -> CropSpec:
    """The unmasked cell-centred windows every experiment starts from."""
    return crop_spec(ORIGINAL, settings.size_px)


def experiment_kinds(
    settings: BackgroundConfig,
    table: pd.DataFrame,
    store: h5py.File,
    eligible: np.ndarray,
    read_windows: Callable[[np.ndarray], np.ndarray],
    free_origins: list[str],
    label_column: str,
) -> Iterator[tuple[CropSpec, Blocks]]:
    """Every configured experiment as (spec, its blocks); the donor columns go into `table`.

    Lazy: a kind's blocks draw from the shared generator (module docstring), so consume
    each kind's blocks, in row order, before asking for the next kind, as
    `cellbench.crops.store.write_crop_store` does. A kind's donor column is added to `table`
    when its first block is asked for.

    Parameters
    ----------
    settings : BackgroundConfig
    table : DataFrame
        The plate's `/cells` table, one row per crop.
    store : h5py.File
        The store being written, whose ``bg_original`` kind holds every row of `table`.
    eligible : (N,) ndarray of bool
        Cells that may lend their background: their ``bg_original`` crop has a pixel with no
        mask bit (a window filled with cells has none).
    read_windows : callable
        ``read_windows(indices)``: the (K, C, S, S) windows of the plate's fields that hold
        no cell, for (K,) increasing indices into `free_origins`.
    free_origins : list of str
        Where each of the W free windows comes from, e.g. ``A-01-02@(10,140)`` (W may be 0).
    label_column : str
        The class that ``swap_same`` / ``swap_diff`` keep or change.

    Yields
    ------
    (CropSpec, iterator of ((B, C, S, S) crops, (B, S, S) masks))
        Blocks of consecutive rows in table order, crops of the store's dtype.
    """
    rng = np.random.default_rng(settings.seed)
    n_rows = len(table)
    if store[ORIGINAL]["images"].shape[0] != n_rows or len(eligible) != n_rows:
        raise ValueError(
            f"{ORIGINAL} holds {store[ORIGINAL]['images'].shape[0]} rows and eligible "
            f"{len(eligible)}, but /cells has {n_rows}"
        )
    rows = block_rows(store[ORIGINAL])
    for experiment in settings.experiments:
        spec = crop_spec(background_kind(experiment), settings.size_px)
        if experiment == "masked":
            yield spec, _masked_blocks(store, n_rows, rows)
        elif experiment in ("swap_same", "swap_diff"):
            if label_column not in table:
                raise ValueError(f"{experiment} needs the class column {label_column!r} in /cells")
            yield spec, _swap_blocks(store, table, experiment, label_column, eligible, rng, rows)
        else:
            yield spec, _cell_free_blocks(store, table, read_windows, free_origins, rng, rows)


def block_rows(group: h5py.Group) -> int:
    """Rows of a kind read back at a time: `BLOCK_ROWS`, fewer past `BLOCK_BYTES` (>= 1)."""
    images, masks = group["images"], group["masks"]
    row_bytes = (
        int(np.prod(images.shape[1:])) * images.dtype.itemsize
        + int(np.prod(masks.shape[1:])) * masks.dtype.itemsize
    )
    return max(1, min(BLOCK_ROWS, BLOCK_BYTES // max(row_bytes, 1)))


def read_originals(store: h5py.File, rows: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``bg_original`` crops (B, C, S, S) and masks (B, S, S) of `rows` (increasing, unique).

    An array of rows is read run by run (one slice per run of consecutive rows): h5py's
    fancy indexing costs about 30 times more for scattered rows such as a block's donors.
    """
    images, masks = store[ORIGINAL]["images"], store[ORIGINAL]["masks"]
    if isinstance(rows, slice):
        return images[rows], masks[rows]
    crops = np.empty((len(rows), *images.shape[1:]), images.dtype)
    crop_masks = np.empty((len(rows), *masks.shape[1:]), masks.dtype)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for first, end in zip([0, *breaks], [*breaks, len(rows)], strict=True):
        if end > first:
            run = slice(int(rows[first]), int(rows[end - 1]) + 1)
            crops[first:end], crop_masks[first:end] = images[run], masks[run]
    return crops, crop_masks


def _row_slices(n_rows: int, rows: int) -> Iterator[slice]:
    """Consecutive blocks of at most `rows` rows covering ``0:n_rows``."""
    for start in range(0, n_rows, rows):
        yield slice(start, min(start + rows, n_rows))


def _masked_blocks(store: h5py.File, n_rows: int, rows: int) -> Blocks:
    """``masked``: each original zeroed outside its cell."""
    for block in _row_slices(n_rows, rows):
        crops, masks = read_originals(store, block)
        yield mask_outside(crops, masks, MASK_CELL), masks


def _swap_blocks(
    store: h5py.File,
    table: pd.DataFrame,
    experiment: str,
    label_column: str,
    eligible: np.ndarray,
    rng: np.random.Generator,
    rows: int,
) -> Blocks:
    """``swap_same`` / ``swap_diff``: each cell on its donor's background (column ``donor_*``).

    The donors of a block are read from the store (sorted, once each) beside the block.
    """
    classes = table[label_column].astype(str).to_numpy()
    donors = choose_donors(classes, experiment == "swap_same", rng, eligible=eligible)
    ids = table["cell_id"].to_numpy()
    table[f"donor_{experiment}"] = np.where(donors >= 0, ids[np.maximum(donors, 0)], "")
    for block in _row_slices(len(table), rows):
        crops, masks = read_originals(store, block)
        mine = donors[block]
        needed = np.unique(mine[mine >= 0])
        donor_crops, donor_masks = read_originals(store, needed)
        local = np.where(mine >= 0, np.searchsorted(needed, mine), -1)
        images = swap_backgrounds(
            crops, masks, local, rng, donor_crops=donor_crops, donor_masks=donor_masks
        )
        yield images.astype(crops.dtype, copy=False), masks


def _cell_free_blocks(
    store: h5py.File,
    table: pd.DataFrame,
    read_windows: Callable[[np.ndarray], np.ndarray],
    free_origins: list[str],
    rng: np.random.Generator,
    rows: int,
) -> Blocks:
    """``cell_free``: each cell on a random cell-free window (column ``donor_cell_free``).

    The windows of a block are read (sorted, once each) beside it. Without any window, every
    row is zeros and its donor ``""``.
    """
    n_rows, n_windows = len(table), len(free_origins)
    assignment = rng.integers(0, n_windows, n_rows) if n_windows else np.full(n_rows, -1)
    table["donor_cell_free"] = np.asarray([*free_origins, ""])[assignment]
    for block in _row_slices(n_rows, rows):
        crops, masks = read_originals(store, block)
        if not n_windows:
            yield np.zeros_like(crops), masks
            continue
        needed = np.unique(assignment[block])
        local = np.searchsorted(needed, assignment[block])
        images = paste_on_windows(crops, masks, read_windows(needed), local)
        yield images.astype(crops.dtype, copy=False), masks
