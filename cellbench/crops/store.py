"""The crop store: one HDF5 file per plate with every crop kind and a table of its cells.

::

    / attrs          schema, plate, channel_names, created_by, config_hash
    /<kind>/images   uint16 (N, C, S, S): raw intensities, never normalised at write time
    /<kind>/masks    uint8 (N, S, S): bit 1 = this cell, bit 2 = its nucleus, 4 = other cells
    /<kind> attrs    size, masked, region (kept: cell, nucleus, cytoplasm or none; see
                     `cellbench.config.crop_kinds`), centred_on, border, and per-channel
                     plate statistics:
                     stats_percentiles (2,), stats_low / stats_high (C,) at those percentiles,
                     stats_mean / stats_std (C,), over the pixels of the cells (bit 1)
    /cells/<column>  one 1-D dataset per column; row i describes crop i of every kind
    /cells attrs     columns (their order), missing (string columns whose "" means missing,
                     e.g. the condition of a well the layout does not list)

Each crop is its own chunk, so reading one cell decompresses one cell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc2 filter for reading and writing)
import numpy as np
import pandas as pd

import cellbench
from cellbench.crops.extract import CropSpec
from cellbench.io.atomic import atomic_path, ensure_free_space

SCHEMA = "cellbench.crops/1"
STATS_PERCENTILES = (1.0, 99.0)
_STATS_SAMPLE = 50_000  # pixels per channel kept for the plate statistics
_CROPS_SAMPLED = 8  # crops of each written batch that contribute pixels


def write_crop_store(
    path: Path,
    *,
    plate: str,
    channel_names: list[str],
    specs: list[CropSpec],
    batches: Iterable[tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]],
    config_hash: str,
    compression: str | None = "blosc-lz4",
    derived: Callable[[pd.DataFrame], list[tuple[CropSpec, np.ndarray, np.ndarray]]] | None = None,
) -> pd.DataFrame:
    """Write a plate's crops, field by field, into a new store (atomically).

    Parameters
    ----------
    path : Path
        Destination ``crops/<plate>.h5``.
    plate : str
    channel_names : list of str
        Names of the C channels of every crop.
    specs : list of CropSpec
        The kinds to store.
    batches : iterable of (cells, {kind: (crops, masks)})
        Per field: its rows of the cell table and, per kind, (N, C, S, S) crops and (N, S, S)
        masks in the same row order.
    config_hash : str
        Hash of the settings that made the store (recorded for provenance).
    compression : {"blosc-lz4", "blosc2-lz4", "lzf", "gzip", "none", None}
        The HDF5 filter of every dataset (see `compression_options`).
    derived : callable, optional
        Called with the whole `/cells` table once every batch is written; returns more kinds
        as (spec, (N, C, S, S) crops, (N, S, S) masks) in the table's row order, and may add
        columns to the table (e.g. the donor of a background swap).

    Returns
    -------
    DataFrame
        The `/cells` table as written.
    """
    n_channels = len(channel_names)
    with atomic_path(path) as tmp, _checked_h5(tmp) as store:
        store.attrs.update(_store_attrs(plate, channel_names, config_hash))
        datasets = {spec.kind: _create_kind(store, spec, n_channels, compression) for spec in specs}
        samples = {spec.kind: _PixelSample(n_channels) for spec in specs}
        table = _write_batches(tmp, batches, datasets, samples)
        _check_table(table, plate)
        for spec, crops, masks in derived(table) if derived else []:
            ensure_free_space(tmp, crops.nbytes + masks.nbytes)
            kind_datasets = _create_kind(store, spec, n_channels, compression)
            _append(kind_datasets, 0, len(crops), crops, masks)
            samples[spec.kind] = _PixelSample(n_channels)
            samples[spec.kind].add(crops, masks)
        for kind, sample in samples.items():
            store[kind].attrs.update(sample.statistics())
        _write_table(store.create_group("cells"), table)
    return table


def _store_attrs(plate: str, channel_names: list[str], config_hash: str) -> dict:
    """The root attributes of a new store (see the module docstring)."""
    return {
        "schema": SCHEMA,
        "plate": plate,
        "channel_names": list(channel_names),
        "created_by": f"cellbench {cellbench.__version__}",
        "config_hash": config_hash,
    }


def _write_batches(
    tmp: Path,
    batches: Iterable[tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]],
    datasets: dict[str, tuple[h5py.Dataset, h5py.Dataset]],
    samples: dict[str, _PixelSample],
) -> pd.DataFrame:
    """Append every batch's crops to their kinds' datasets; return the concatenated cells."""
    tables = []
    n_written = 0
    for cells, crops_by_kind in batches:
        ensure_free_space(tmp, sum(c.nbytes + m.nbytes for c, m in crops_by_kind.values()))
        for kind, (crops, masks) in crops_by_kind.items():
            _append(datasets[kind], n_written, len(cells), crops, masks)
            samples[kind].add(crops, masks)
        tables.append(cells)
        n_written += len(cells)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _append(
    datasets: tuple[h5py.Dataset, h5py.Dataset],
    start: int,
    n_rows: int,
    crops: np.ndarray,
    masks: np.ndarray,
) -> None:
    """Grow a kind's datasets by `n_rows` and write `crops` and `masks` at rows ``start:``."""
    images_ds, masks_ds = datasets
    images_ds.resize(start + n_rows, axis=0)
    masks_ds.resize(start + n_rows, axis=0)
    images_ds[start:] = crops
    masks_ds[start:] = masks


def _checked_h5(tmp: Path) -> h5py.File:
    """A new HDF5 file at `tmp`, opened only when the disk has room (`ensure_free_space`)."""
    ensure_free_space(tmp, 0)
    return h5py.File(tmp, "w")


def _check_table(table: pd.DataFrame, plate: str) -> None:
    """Refuse an empty plate or duplicated cell ids (the store is then never renamed in)."""
    if table.empty:
        raise ValueError(f"plate {plate!r} has no cell to store")
    duplicated = table.loc[table["cell_id"].duplicated(), "cell_id"].unique()
    if len(duplicated):
        raise ValueError(f"plate {plate!r}: duplicated cell ids {list(duplicated[:10])}")


class _PixelSample:
    """A seeded random sample of cell pixels per channel, for plate-level statistics."""

    def __init__(self, n_channels: int) -> None:
        self.parts: list[np.ndarray] = []
        self.n_channels = n_channels
        self.rng = np.random.default_rng(0)

    def add(self, crops: np.ndarray, masks: np.ndarray) -> None:
        """Keep a share of the pixels of `crops` (N, C, S, S) inside their cell (bit 1)."""
        if len(crops) > _CROPS_SAMPLED:  # a few crops per batch describe the plate well enough
            rows = np.sort(self.rng.integers(0, len(crops), _CROPS_SAMPLED))
            crops, masks = crops[rows], masks[rows]
        inside = (masks & 1) > 0
        if not inside.any():
            inside = np.ones(masks.shape, bool)  # no cell mask (pre-cut crops): every pixel
        pixels = np.moveaxis(crops, 1, -1)[inside]  # (P, C)
        if pixels.dtype.kind == "f":  # fields are finite (read_field); pre-cut crops may not be
            pixels = pixels[np.isfinite(pixels).all(axis=1)]
        keep = min(len(pixels), _STATS_SAMPLE // 8)
        if keep:
            self.parts.append(pixels[self.rng.integers(0, len(pixels), keep)])
        if sum(len(p) for p in self.parts) > 2 * _STATS_SAMPLE:
            merged = np.concatenate(self.parts)
            self.parts = [merged[self.rng.integers(0, len(merged), _STATS_SAMPLE)]]

    def statistics(self) -> dict[str, np.ndarray]:
        """Percentiles, mean and SD per channel (NaN when the plate has no pixels)."""
        if not self.parts:
            nan = np.full(self.n_channels, np.nan)
            low = high = mean = std = nan
        else:
            pixels = np.concatenate(self.parts).astype(np.float64)
            low, high = np.percentile(pixels, STATS_PERCENTILES, axis=0)
            mean, std = pixels.mean(axis=0), pixels.std(axis=0)
        return {
            "stats_percentiles": np.asarray(STATS_PERCENTILES),
            "stats_low": low,
            "stats_high": high,
            "stats_mean": mean,
            "stats_std": std,
        }


def _create_kind(
    store: h5py.File, spec: CropSpec, n_channels: int, compression: str | None
) -> tuple[h5py.Dataset, h5py.Dataset]:
    """Create the resizable image and mask datasets of one crop kind."""
    group = store.create_group(spec.kind)
    group.attrs.update(
        {
            "size": spec.size_px,
            "masked": spec.masked,
            "region": spec.kept_region,
            "centred_on": spec.centred_on,
            "border": spec.border,
        }
    )
    size = spec.size_px
    images = group.create_dataset(
        "images",
        shape=(0, n_channels, size, size),
        maxshape=(None, n_channels, size, size),
        chunks=(1, n_channels, size, size),
        dtype=np.uint16,
        **compression_options(compression),
    )
    masks = group.create_dataset(
        "masks",
        shape=(0, size, size),
        maxshape=(None, size, size),
        chunks=(1, size, size),
        dtype=np.uint8,
        **compression_options(compression),
    )
    return images, masks


def compression_options(name: str | None) -> dict:
    """h5py dataset options of a codec name.

    ``blosc-lz4`` (the default, chosen by `tests/benchmarks/bench_crop_write.py`) and
    ``blosc2-lz4`` are Blosc with LZ4 and byte shuffle through `hdf5plugin`: readers need
    ``import hdf5plugin`` (cellbench does it) to decompress.
    """
    if name in (None, "none"):
        return {}
    if name == "blosc-lz4":
        import hdf5plugin

        return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    if name == "blosc2-lz4":
        import hdf5plugin

        return dict(hdf5plugin.Blosc2(cname="lz4", clevel=5, filters=hdf5plugin.Blosc2.SHUFFLE))
    return {"compression": name}


def _write_table(group: h5py.Group, table: pd.DataFrame) -> None:
    """Write a DataFrame as one dataset per column (strings as UTF-8).

    A missing value (None, NaN) of a string column is written as ``""`` and the column is
    listed in the ``missing`` attribute, so that `read_cells` gives it back as missing while
    a real ``""`` elsewhere (a donor-less cell, a well-less field) stays ``""``.
    """
    group.attrs["columns"] = list(table.columns)
    missing = []
    for column in table.columns:
        values = table[column]
        if values.dtype.kind in "biuf":
            group.create_dataset(column, data=values.to_numpy())
            continue
        absent = values.isna().to_numpy()
        if absent.any():
            missing.append(column)
        text = np.where(absent, "", values.astype(str).to_numpy(dtype=object))
        group.create_dataset(column, data=text, dtype=h5py.string_dtype())
    group.attrs["missing"] = missing


def read_cells(path: Path) -> pd.DataFrame:
    """Read the `/cells` table of a crop store.

    In the columns written with missing values (attribute ``missing``), ``""`` comes back
    as missing (NaN), like a null of a feature table: a cell of a well the layout does not
    list has no class, whichever table it is read from.
    """
    with h5py.File(path, "r") as store:
        group = store["cells"]
        columns = list(group.attrs["columns"])
        missing = set(group.attrs.get("missing", []))
        data = {}
        for column in columns:
            dataset = group[column]
            if not h5py.check_string_dtype(dataset.dtype):
                data[column] = dataset[()]
                continue
            text = dataset.asstr()[()]
            data[column] = np.where(text == "", None, text) if column in missing else text
        return pd.DataFrame(data, columns=columns)


def read_crops(
    path: Path, kind: str, rows: slice | np.ndarray = slice(None)
) -> tuple[np.ndarray, np.ndarray]:
    """Read crops and masks of one kind: (N, C, S, S) uint16 and (N, S, S) uint8."""
    with h5py.File(path, "r") as store:
        group = store[kind]
        if isinstance(rows, np.ndarray):
            order = np.argsort(rows)
            images = group["images"][np.sort(rows)]
            masks = group["masks"][np.sort(rows)]
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            return images[inverse], masks[inverse]
        return group["images"][rows], group["masks"][rows]
