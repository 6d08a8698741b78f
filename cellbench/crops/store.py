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

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import blosc
import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc2 filter for reading and writing)
import numpy as np
import pandas as pd

import cellbench
from cellbench.allocation import task_cpus
from cellbench.crops.extract import CropSpec
from cellbench.io.atomic import atomic_path, ensure_free_space

SCHEMA = "cellbench.crops/1"
STATS_PERCENTILES = (1.0, 99.0)
_STATS_SAMPLE = 50_000  # pixels per channel kept for the plate statistics
_CROPS_SAMPLED = 8  # crops of each written batch that contribute pixels
_BLOSC_FILTER_ID = "32001"  # hdf5plugin.Blosc
_BLOSC_LZ4_LEVEL5_SHUFFLE = (5, 1, 1)  # its cd_values[4:7]: clevel, shuffle, compressor
_ROWS_PER_TASK = 32  # rows a compressing thread takes at a time (amortises the hand-over)


def write_crop_store(
    path: Path,
    *,
    plate: str,
    channel_names: list[str],
    specs: list[CropSpec],
    batches: Iterable[tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]],
    config_hash: str,
    compression: str | None = "blosc-lz4",
    derived: Callable[[pd.DataFrame, h5py.File], Iterable[tuple[CropSpec, Iterable]]] | None = None,
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
        A second pass: called as ``derived(table, store)`` with the whole `/cells` table and
        the open store once every batch is written (it may read the kinds of `specs` back
        from `store`, and add columns to the table, e.g. the donor of a background swap);
        returns more kinds as (spec, blocks), each block (B, C, S, S) crops and (B, S, S)
        masks, the blocks in the table's row order and covering every row. Each kind's
        blocks are written as they come, before the next kind is asked for, so memory holds
        one block, never a whole kind.

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
        for spec, blocks in derived(table, store) if derived else []:
            kind_datasets = _create_kind(store, spec, n_channels, compression)
            samples[spec.kind] = _PixelSample(n_channels)
            n_derived = 0
            for crops, masks in blocks:
                ensure_free_space(tmp, crops.nbytes + masks.nbytes)
                _append(kind_datasets, n_derived, len(crops), crops, masks)
                samples[spec.kind].add(crops, masks)
                n_derived += len(crops)
            if n_derived != len(table):
                raise ValueError(f"derived kind {spec.kind!r}: {n_derived} rows for {len(table)}")
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
    """Append every batch's crops to their kinds' datasets; return the concatenated cells.

    A batch's chunks are compressed by the threads of `_blosc_threads` while the next batch
    is made (the caller's iterator: reading and cutting a field, in this thread: HDF5 calls,
    the caller's included, stay in one thread) and sampled; they are written once it is.
    Memory holds two batches at most.
    """
    tables = []
    n_written = 0
    pending: list[Callable[[], None]] = []
    with _blosc_threads(task_cpus()) as pool_map:
        for cells, crops_by_kind in batches:
            ensure_free_space(tmp, sum(c.nbytes + m.nbytes for c, m in crops_by_kind.values()))
            for write in pending:
                write()
            pending = [
                _start_append(datasets[kind], n_written, len(cells), crops, masks, pool_map)
                for kind, (crops, masks) in crops_by_kind.items()
            ]
            for kind, (crops, masks) in crops_by_kind.items():
                samples[kind].add(crops, masks)
            tables.append(cells)
            n_written += len(cells)
        for write in pending:
            write()
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _append(
    datasets: tuple[h5py.Dataset, h5py.Dataset],
    start: int,
    n_rows: int,
    crops: np.ndarray,
    masks: np.ndarray,
) -> None:
    """Grow a kind's datasets by `n_rows` and write `crops` and `masks` at rows ``start:``."""
    with _blosc_threads(task_cpus()) as pool_map:
        _start_append(datasets, start, n_rows, crops, masks, pool_map)()


def _start_append(
    datasets: tuple[h5py.Dataset, h5py.Dataset],
    start: int,
    n_rows: int,
    crops: np.ndarray,
    masks: np.ndarray,
    pool_map: Callable,
) -> Callable[[], None]:
    """`_append`, returning what is left to do: the function that writes the chunks.

    Blosc-LZ4 datasets fed their own dtypes get pre-compressed chunks (`_submit_chunks`,
    compressed from now on by `pool_map`); every other codec or dtype goes through the HDF5
    filter pipeline, written here.
    """
    images_ds, masks_ds = datasets
    images_ds.resize(start + n_rows, axis=0)
    masks_ds.resize(start + n_rows, axis=0)
    direct = []
    for dataset, values in ((images_ds, crops), (masks_ds, masks)):
        if _takes_direct_chunks(dataset, values):
            direct.append((dataset, values))
        else:
            dataset[start:] = values
    return _submit_chunks(direct, start, pool_map)


def _takes_direct_chunks(dataset: h5py.Dataset, values: np.ndarray) -> bool:
    """Whether `values` can be written as chunks compressed here, bypassing the filter.

    Only for the ``blosc-lz4`` filter (`compression_options`), one row per chunk, and values
    already of the dataset's dtype (HDF5 would otherwise convert them).
    """
    return (
        values.dtype == dataset.dtype
        and dataset.chunks == (1, *dataset.shape[1:])
        and tuple(dataset._filters.get(_BLOSC_FILTER_ID, ())[4:7]) == _BLOSC_LZ4_LEVEL5_SHUFFLE
    )


def _write_chunks(targets: list[tuple[h5py.Dataset, np.ndarray]], start: int) -> None:
    """Write each row of every (dataset, (N, ...) values) as one Blosc-LZ4 chunk at ``start:``.

    The buffer is what the hdf5plugin Blosc filter itself stores (typesize = item size,
    clevel 5, byte shuffle, LZ4): readers decompress it with the ordinary filter
    (`tests/crops/test_store_fast.py` checks both byte for byte).
    """
    with _blosc_threads(task_cpus()) as pool_map:
        _submit_chunks(targets, start, pool_map)()


def _submit_chunks(
    targets: list[tuple[h5py.Dataset, np.ndarray]], start: int, pool_map: Callable
) -> Callable[[], None]:
    """Hand blocks of rows of every target to `pool_map` (`_blosc_threads`) to compress.

    Returns the function that writes the compressed blocks, in order, as chunks at rows
    ``start:`` (`_write_chunks`), from the calling thread: HDF5 takes one call at a time.
    """
    blocks = []
    for dataset, values in targets:
        values = np.ascontiguousarray(values)
        blocks += [
            (dataset, i, values[i : i + _ROWS_PER_TASK])
            for i in range(0, len(values), _ROWS_PER_TASK)
        ]
    compressed = pool_map(_compress_rows, [rows for _, _, rows in blocks])

    def write() -> None:
        for (dataset, first, rows), buffers in zip(blocks, compressed, strict=True):
            write_chunk, tail = dataset.id.write_direct_chunk, (0,) * (rows.ndim - 1)
            for i, buffer in enumerate(buffers):
                write_chunk((start + first + i, *tail), buffer)

    return write


def _compress_rows(rows: np.ndarray) -> list[bytes]:
    """Each row of a C-contiguous (B, ...) array as one Blosc-LZ4 buffer (`_write_chunks`)."""
    return [
        blosc.compress(row, typesize=rows.itemsize, cname="lz4", clevel=5, shuffle=blosc.SHUFFLE)
        for row in rows
    ]


@contextmanager
def _blosc_threads(workers: int) -> Iterator[Callable]:
    """An ordered ``map`` over `workers` threads (the lazy builtin ``map`` for one).

    The threads' ``map`` submits every call at once and yields the results in order.
    Meanwhile Blosc releases the GIL and compresses each buffer in its caller's thread
    (internal threads off: the pool is the parallelism; the bytes do not depend on it).
    Blosc's process-wide settings are restored after.
    """
    released, internal = blosc.set_releasegil(workers > 1), blosc.set_nthreads(1)
    try:
        if workers <= 1:
            yield map
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                yield pool.map
    finally:
        blosc.set_releasegil(released)
        blosc.set_nthreads(internal)


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
        if crops.dtype.kind == "f":  # fields are finite (read_field); pre-cut crops may not be
            pixels = np.moveaxis(crops, 1, -1)[inside]  # (P, C)
            pixels = pixels[np.isfinite(pixels).all(axis=1)]
            keep = min(len(pixels), _STATS_SAMPLE // 8)
            if keep:
                self.parts.append(pixels[self.rng.integers(0, len(pixels), keep)])
        else:
            self._add_drawn(crops, inside)
        if sum(len(p) for p in self.parts) > 2 * _STATS_SAMPLE:
            merged = np.concatenate(self.parts)
            self.parts = [merged[self.rng.integers(0, len(merged), _STATS_SAMPLE)]]

    def _add_drawn(self, crops: np.ndarray, inside: np.ndarray) -> None:
        """Keep pixels drawn among the `inside` (N, S, S) pixels of (N, C, S, S) `crops`.

        The same draw as indexing every inside pixel first (row-major order), without
        copying them: only the drawn pixels are gathered.
        """
        where = np.flatnonzero(inside)
        keep = min(len(where), _STATS_SAMPLE // 8)
        if keep:
            drawn = where[self.rng.integers(0, len(where), keep)]
            row, pixel = np.divmod(drawn, inside[0].size)
            self.parts.append(crops.reshape(*crops.shape[:2], -1)[row, :, pixel])  # (keep, C)

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
