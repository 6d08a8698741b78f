"""Read crops of one kind from several plate stores as a PyTorch dataset.

A `CropDataset` is an experiment-level reader over per-plate crop stores (see
`cellbench.crops.store`): it builds one table of the selected cells from each store's `/cells`
and reads one crop per item, without copying the stores. Raw uint16 stays in the stores;
normalisation, channel selection and resizing happen when an item is read. A batch of items
(`CropDataset.__getitems__`, which a ``DataLoader`` with a batch sampler calls) is read with
one HDF5 call per run of neighbouring rows and normalised at once, into one batch tensor that
`cellbench.models.loaders.collate_crops` passes on without a copy; its items equal those read
one by one.

HDF5 files are opened lazily, once per process, on first access, so the dataset works with a
``DataLoader(num_workers > 0)`` under both ``fork`` and ``spawn``: a forked worker never uses
a handle opened by its parent, and pickling drops the handles.

`ChunkShuffleSampler` shuffles blocks of consecutive rows of a store instead of single rows,
which keeps reads close together in a file while still mixing the data every epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (registers blosc, zstd... filters, to read stores using them)
import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset, Sampler

from cellbench.crops.normalise import (
    NORMALISE_MODES,
    Normalise,
    normalise_crop,
    normalise_crops,
)
from cellbench.crops.store import read_cells

__all__ = ["NORMALISE_MODES", "ChunkShuffleSampler", "CropDataset", "Normalise", "normalise_crop"]


class CropDataset(Dataset):
    """Crops of one kind from one or more crop stores, as (image, class index, cell id).

    Parameters
    ----------
    stores : sequence of Path
        Crop stores (``crops/<plate>.h5``), concatenated in this order.
    kind : str
        Crop kind to read, e.g. ``"whole_cell"``. Every store must hold it.
    label_column : str or None
        Column of `/cells` giving the class of a cell. None: every label is -1.
    classes : sequence of str, optional
        Class names, in index order. Default: the sorted unique labels of the selected rows.
        Pass them explicitly to give several splits the same indices. A selected row whose
        label is not among them is an error.
    where : dict of column -> sequence of values, optional
        Keep only rows whose value in each column is among the given values, e.g.
        ``{"plate": ["P1"], "well": ["A01", "B02"]}``.
    normalise : {"none", "max", "minmax", "percentile", "plate"}
        Per crop and channel, when reading: "none" gives raw values as float32; "max" divides
        by the crop's channel maximum (an all-zero channel stays 0); "minmax" maps the crop's
        channel minimum and maximum to 0 and 1 (the BBBC021 VAE study's); "percentile" maps the
        crop's `percentiles` to 0..1 and clips; "plate" does the same with the store's plate
        statistics ``stats_low`` / ``stats_high`` of this kind. Where the high value is not
        above the low one, pixels above it read 1 and the others 0.
    percentiles : (float, float)
        Low and high percentiles for ``normalise="percentile"``.
    size_px : int, optional
        Side of the returned crops; crops of another stored size are resized (bilinear,
        antialiased). Default: the stored size, which must then be the same in every store.
    channels : sequence of int, optional
        Indices of the channels to return, in this order. Default: all.
    transform : callable, optional
        Applied last to the (C, S, S) float32 tensor, e.g. an augmentation.

    Attributes
    ----------
    cells : DataFrame
        The selected rows of every store's `/cells`, in item order, with two more columns:
        ``store`` (index into `stores`) and ``row`` (row in that store). Read it; changing
        it does not change the items.
    classes : list of str
    stores : list of Path
    kind : str
    channel_names : list of str
        Names of the returned channels.
    stored_size : int
        Side of the stored crops (the largest, if stores differ and `size_px` is set).
    size : int
        Side of the returned crops.

    Raises
    ------
    ValueError
        On a store without `kind`, stores with different channels (or sizes, without
        `size_px`), an unknown `where` or `label_column` column, a label outside `classes`, or
        invalid options.
    """

    def __init__(
        self,
        stores: Sequence[Path],
        kind: str,
        *,
        label_column: str | None = "condition",
        classes: Sequence[str] | None = None,
        where: dict[str, Sequence] | None = None,
        normalise: Normalise = "percentile",
        percentiles: tuple[float, float] = (1.0, 99.0),
        size_px: int | None = None,
        channels: Sequence[int] | None = None,
        transform: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        low, high = _check_options(normalise, percentiles, size_px)
        self.stores = [Path(p) for p in stores]
        if not self.stores:
            raise ValueError("CropDataset needs at least one store")
        self.kind = kind
        self.normalise = normalise
        self.percentiles = (low, high)
        self.transform = transform
        self.label_column = label_column

        infos = [_store_info(path, kind) for path in self.stores]
        names, sizes = _check_stores(self.stores, infos, kind, size_px)
        self.channels, self.channel_names = _select_channels(channels, names)
        self.stored_size = sizes[-1]
        self.size = int(size_px) if size_px is not None else self.stored_size
        self._plate_range = [self._select(info["low"], info["high"]) for info in infos]

        self.cells = self._build_table(infos, where)
        self._store_index = self.cells["store"].to_numpy(dtype=np.intp)
        self._row = self.cells["row"].to_numpy(dtype=np.int64)
        self._cell_id = self.cells["cell_id"].astype(str).to_numpy(dtype=object)
        self.classes, self._label = self._build_labels(classes)
        self._handles: dict[int, dict[int, tuple[h5py.File, h5py.Dataset]]] = {}

    # --- construction ---------------------------------------------------------------------

    def _select(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Plate statistics of the returned channels."""
        if self.channels is not None:
            return low[self.channels], high[self.channels]
        return low, high

    def _build_table(self, infos: list[dict], where: dict[str, Sequence] | None) -> pd.DataFrame:
        """Concatenate the `/cells` tables, tagged with store and row, and apply `where`."""
        tables = []
        for index, (path, info) in enumerate(zip(self.stores, infos, strict=True)):
            table = read_cells(path)
            if len(table) != info["n"]:
                raise ValueError(
                    f"{path}: /cells has {len(table)} rows but /{self.kind}/images {info['n']}"
                )
            for extra in ("store", "row"):
                if extra in table.columns:
                    raise ValueError(f"{path}: /cells has a column {extra!r}, reserved here")
            if "cell_id" not in table.columns:
                raise ValueError(f"{path}: /cells has no cell_id column")
            table["store"] = index
            table["row"] = np.arange(len(table), dtype=np.int64)
            tables.append(table)
        cells = pd.concat(tables, ignore_index=True)
        for column, values in (where or {}).items():
            if column not in cells.columns:
                raise ValueError(
                    f"where: unknown column {column!r}; available columns: {list(cells.columns)}"
                )
            if isinstance(values, str | bytes) or not isinstance(values, Iterable):
                values = [values]
            cells = cells[cells[column].isin(list(values))]
        return cells.reset_index(drop=True)

    def _build_labels(self, classes: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
        """Class names and the class index of every selected row (-1 without a label)."""
        if self.label_column is None:
            return ([str(c) for c in classes] if classes is not None else []), np.full(
                len(self.cells), -1, dtype=np.int64
            )
        if self.label_column not in self.cells.columns:
            raise ValueError(
                f"unknown label column {self.label_column!r}; "
                f"available columns: {list(self.cells.columns)}"
            )
        labels = self.cells[self.label_column].astype(str)
        names = sorted(labels.unique()) if classes is None else [str(c) for c in classes]
        if len(set(names)) != len(names):
            raise ValueError(f"classes are not unique: {names}")
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(
                f"labels {unknown} of column {self.label_column!r} are not among classes {names}"
            )
        return names, labels.map(index).to_numpy(dtype=np.int64)

    # --- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.cells)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        """Return (float32 tensor C x S x S, class index or -1, cell id) of item `i`."""
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} crops")
        store = int(self._store_index[i])
        crop = self._images(store)[self._row[i]]
        if self.channels is not None:
            crop = crop[self.channels]
        image = torch.from_numpy(
            normalise_crop(
                crop,
                self.normalise,
                percentiles=self.percentiles,
                plate_range=self._plate_range[store],
            )
        )
        if image.shape[-1] != self.size or image.shape[-2] != self.size:
            image = F.interpolate(
                image[None], size=(self.size, self.size), mode="bilinear", antialias=True
            )[0]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self._label[i]), str(self._cell_id[i])

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, int, str]]:
        """Items `indices` as `__getitem__` gives them one by one, read a batch at a time.

        PyTorch's batched fetch (a ``DataLoader`` with a batch sampler calls it). Per store,
        the rows are sorted and each run of consecutive rows is read with one HDF5 call, then
        the batch is normalised at once, straight into one (N, C, S, S) float32 tensor in the
        requested order (in shared memory inside a worker process, so that sending it to the
        training process copies nothing). Without a `transform`, the images are the rows of
        that tensor: `cellbench.models.loaders.collate_crops` returns it without a copy.
        """
        positions = self._positions(indices)
        images = _new_batch((len(positions), len(self.channel_names), self.size, self.size))
        out = images.numpy()
        stores = self._store_index[positions]
        for store in np.unique(stores):
            where = np.flatnonzero(stores == store)
            self._read_into(int(store), self._row[positions[where]], where, out)
        items = list(images) if self.transform is None else [self.transform(x) for x in images]
        labels, cell_ids = self._label[positions], self._cell_id[positions]
        return [
            (image, int(label), str(cell_id))
            for image, label, cell_id in zip(items, labels, cell_ids, strict=True)
        ]

    def _positions(self, indices: Sequence[int]) -> np.ndarray:
        """`indices` as an intp array of items, negative ones counted from the end."""
        given = np.asarray([int(i) for i in indices], dtype=np.intp)
        positions = np.where(given < 0, given + len(self), given)
        bad = given[(positions < 0) | (positions >= len(self))]
        if bad.size:
            raise IndexError(f"index {int(bad[0])} out of range for {len(self)} crops")
        return positions

    def _read_into(self, store: int, rows: np.ndarray, where: np.ndarray, out: np.ndarray) -> None:
        """Read `rows` of `store` and write them, normalised, into ``out[where]``."""
        unique, inverse = np.unique(rows, return_inverse=True)
        raw = _read_rows(self._images(store), unique)
        if self.channels is not None:
            raw = raw[:, self.channels]
        options = {"percentiles": self.percentiles, "plate_range": self._plate_range[store]}
        if raw.shape[-1] == self.size:
            take = np.full(len(out), -1, dtype=np.intp)
            take[where] = inverse
            normalise_crops(raw, self.normalise, out=out, take=take, **options)
            return
        image = torch.from_numpy(normalise_crops(raw, self.normalise, take=inverse, **options))
        size = (self.size, self.size)
        out[where] = F.interpolate(image, size=size, mode="bilinear", antialias=True).numpy()

    def _images(self, store: int) -> h5py.Dataset:
        """The images dataset of a store, opened once in this process."""
        handles = self._handles.setdefault(os.getpid(), {})
        if store not in handles:
            file = h5py.File(self.stores[store], "r")
            handles[store] = (file, file[self.kind]["images"])
        return handles[store][1]

    def close(self) -> None:
        """Close the files opened by this process (they reopen on the next read)."""
        for file, _ in self._handles.pop(os.getpid(), {}).values():
            file.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def __repr__(self) -> str:
        return (
            f"CropDataset({len(self)} {self.kind} crops from {len(self.stores)} stores, "
            f"{len(self.channel_names)} x {self.size} x {self.size}, "
            f"normalise={self.normalise!r}, classes={self.classes})"
        )


def _new_batch(shape: tuple[int, ...]) -> torch.Tensor:
    """An empty float32 tensor of `shape`; in shared memory inside a DataLoader worker.

    As ``default_collate`` allocates its batches, so that the worker's result reaches the
    training process without being copied into shared memory first.
    """
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=torch.float32)
    numel = int(np.prod(shape))
    like = torch.empty(0, dtype=torch.float32)
    storage = like._typed_storage()._new_shared(numel, device=like.device)
    return like.new(storage).resize_(*shape)


def _read_rows(images: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """(len(rows), ...) array of sorted unique `rows` of `images`, one HDF5 call per run.

    A run of consecutive rows is read straight into its place in the result (one hyperslab);
    a lone row goes through h5py's fast path for one index.
    """
    raw = np.empty((len(rows), *images.shape[1:]), dtype=images.dtype)
    starts = np.flatnonzero(np.r_[True, np.diff(rows) != 1])
    ends = np.r_[starts[1:], len(rows)]
    space = images.id.get_space()
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if end - start == 1:
            raw[start] = images[int(rows[start])]
            continue
        shape = (end - start, *images.shape[1:])
        space.select_hyperslab((int(rows[start]),) + (0,) * (len(shape) - 1), shape)
        images.id.read(h5py.h5s.create_simple(shape), space, raw[start:end])
    return raw


def _check_options(
    normalise: str, percentiles: tuple[float, float], size_px: int | None
) -> tuple[float, float]:
    """Refuse an unknown `normalise`, percentiles out of order or a non-positive `size_px`."""
    if normalise not in NORMALISE_MODES:
        raise ValueError(f"normalise must be one of {NORMALISE_MODES}, not {normalise!r}")
    low, high = (float(p) for p in percentiles)
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, not {percentiles}")
    if size_px is not None and int(size_px) < 1:
        raise ValueError(f"size_px must be positive, not {size_px}")
    return low, high


def _check_stores(
    stores: list[Path], infos: list[dict[str, Any]], kind: str, size_px: int | None
) -> tuple[list[str], list[int]]:
    """The stores' common channel names and their sorted crop sizes (one, without `size_px`)."""
    names = infos[0]["channel_names"]
    for path, info in zip(stores, infos, strict=True):
        if info["channel_names"] != names:
            raise ValueError(
                f"{path}: channels {info['channel_names']} differ from {names} of {stores[0]}"
            )
    sizes = sorted({info["size"] for info in infos})
    if size_px is None and len(sizes) > 1:
        raise ValueError(f"stores hold {kind!r} crops of sizes {sizes}; pass size_px")
    return names, sizes


def _select_channels(
    channels: Sequence[int] | None, names: list[str]
) -> tuple[np.ndarray | None, list[str]]:
    """Indices of the returned channels (None: all) and their names."""
    if channels is None:
        return None, list(names)
    n_channels = len(names)
    selected = np.asarray([int(c) for c in channels], dtype=np.intp)
    bad = [int(c) for c in selected if not 0 <= c < n_channels]
    if bad or len(selected) == 0:
        raise ValueError(f"channels {list(channels)} not in 0..{n_channels - 1}")
    return selected, [names[c] for c in selected]


def _store_info(path: Path, kind: str) -> dict[str, Any]:
    """Shape, channel names and plate statistics of one kind in a store."""
    with h5py.File(path, "r") as store:
        kinds = sorted(
            name
            for name, item in store.items()
            if isinstance(item, h5py.Group) and "images" in item
        )
        if kind not in kinds:
            raise ValueError(f"{path}: no crop kind {kind!r}; the store has kinds {kinds}")
        group = store[kind]
        n, n_channels, height, width = group["images"].shape
        if height != width:
            raise ValueError(f"{path}: /{kind}/images are not square ({height} x {width})")
        names = [str(name) for name in store.attrs.get("channel_names", range(n_channels))]
        if len(names) != n_channels:
            raise ValueError(f"{path}: {len(names)} channel names for {n_channels} channels")
        nan = np.full(n_channels, np.nan)
        low = np.asarray(group.attrs.get("stats_low", nan), dtype=np.float64)
        high = np.asarray(group.attrs.get("stats_high", nan), dtype=np.float64)
    return {"n": n, "size": height, "channel_names": names, "low": low, "high": high}


class ChunkShuffleSampler(Sampler[int]):
    """Shuffle blocks of consecutive rows of a store, then the rows inside each block.

    Reading rows that lie close together in one file is much faster than reading random rows
    across files; this keeps most of the mixing of a full shuffle. Every index comes exactly
    once per epoch, in an order fixed by (seed, epoch). Call `set_epoch` before each epoch.

    Parameters
    ----------
    dataset : CropDataset
    block_size : int
        Rows per block; blocks never span two stores (the last block of a store may be
        shorter). A multiple of the batch size keeps a batch within one or two blocks.
    seed : int
    """

    def __init__(self, dataset: CropDataset, block_size: int = 64, seed: int = 0) -> None:
        if int(block_size) < 1:
            raise ValueError(f"block_size must be positive, not {block_size}")
        self.block_size = int(block_size)
        self.seed = int(seed)
        self.epoch = 0
        stores = dataset.cells["store"].to_numpy()
        starts = np.flatnonzero(np.r_[True, stores[1:] != stores[:-1]]) if len(stores) else []
        ends = [*starts[1:], len(stores)] if len(stores) else []
        self.blocks = [
            np.arange(first, min(first + self.block_size, end))
            for start, end in zip(starts, ends, strict=True)
            for first in range(start, end, self.block_size)
        ]
        self.n = len(stores)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that, with the seed, fixes the next order."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = [rng.permutation(self.blocks[b]) for b in rng.permutation(len(self.blocks))]
        if not order:
            return iter([])
        return iter(np.concatenate(order).tolist())

    def __len__(self) -> int:
        return self.n
