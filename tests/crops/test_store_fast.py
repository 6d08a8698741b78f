"""The direct-chunk path of the crop store gives what the HDF5 Blosc filter gives."""

import blosc
import h5py
import hdf5plugin
import numpy as np
import pandas as pd
import pytest

from cellbench.crops import store as store_module
from cellbench.crops.extract import crop_spec
from cellbench.crops.store import _takes_direct_chunks, compression_options, write_crop_store


def _crops(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    crops = rng.poisson(300, (n, 3, size, size)).astype(np.uint16)
    crops[:, :, : size // 4] = 0  # a compressible zero band, as masked crops have
    masks = rng.integers(0, 8, (n, size, size), dtype=np.uint8)
    return crops, masks


def _write(path, crops, masks, compression):
    spec = crop_spec("nucleocentric", crops.shape[-1])
    half = len(crops) // 2
    batches = [
        (
            pd.DataFrame({"cell_id": [f"c{i}" for i in rows]}),
            {spec.kind: (crops[rows], masks[rows])},
        )
        for rows in (np.arange(half), np.arange(half, len(crops)))
    ]
    write_crop_store(
        path,
        plate="P1",
        channel_names=["a", "b", "c"],
        specs=[spec],
        batches=batches,
        config_hash="x",
        compression=compression,
    )
    return spec.kind


def test_direct_chunks_equal_filter_chunks(tmp_path):
    crops, masks = _crops(9, 24)
    path = tmp_path / "fast.h5"
    kind = _write(path, crops, masks, "blosc-lz4")
    filtered = tmp_path / "filtered.h5"
    with h5py.File(filtered, "w") as store:  # the same data through the HDF5 filter
        options = compression_options("blosc-lz4")
        store.create_dataset("images", data=crops, chunks=(1, *crops.shape[1:]), **options)
        store.create_dataset("masks", data=masks, chunks=(1, *masks.shape[1:]), **options)
    with h5py.File(path, "r") as fast, h5py.File(filtered, "r") as slow:
        for name, values in (("images", crops), ("masks", masks)):
            assert _takes_direct_chunks(fast[kind][name], values)
            np.testing.assert_array_equal(fast[kind][name][()], values)
            np.testing.assert_array_equal(fast[kind][name][()], slow[name][()])
            assert fast[kind][name].dtype == values.dtype
            for row in range(len(values)):
                offset = (row,) + (0,) * (values.ndim - 1)
                fast_mask, fast_chunk = fast[kind][name].id.read_direct_chunk(offset)
                slow_mask, slow_chunk = slow[name].id.read_direct_chunk(offset)
                assert fast_mask == 0
                if slow_mask == 0:  # the filter skips (mask 1) a chunk it cannot shrink
                    assert fast_chunk == slow_chunk


def test_fast_store_opens_with_plain_h5py_and_hdf5plugin(tmp_path):
    crops, masks = _crops(5, 16, seed=1)
    path = tmp_path / "fast.h5"
    kind = _write(path, crops, masks, "blosc-lz4")
    assert hdf5plugin.get_filters  # the reader's only dependency besides h5py
    with h5py.File(path, "r") as store:
        assert "32001" in store[kind]["images"]._filters
        np.testing.assert_array_equal(store[kind]["images"][2], crops[2])
        np.testing.assert_array_equal(store[kind]["masks"][-1], masks[-1])


@pytest.mark.parametrize("compression", ["lzf", "gzip", "none", "blosc2-lz4"])
def test_other_codecs_keep_the_filter_path(tmp_path, compression):
    crops, masks = _crops(4, 16, seed=2)
    path = tmp_path / "s.h5"
    kind = _write(path, crops, masks, compression)
    with h5py.File(path, "r") as store:
        assert not _takes_direct_chunks(store[kind]["images"], crops)
        np.testing.assert_array_equal(store[kind]["images"][()], crops)
        np.testing.assert_array_equal(store[kind]["masks"][()], masks)


def test_other_dtypes_keep_the_filter_path(tmp_path):
    crops, masks = _crops(4, 16, seed=3)
    path = tmp_path / "s.h5"
    kind = _write(path, crops.astype(np.float32), masks, "blosc-lz4")
    with h5py.File(path, "r") as store:
        assert not _takes_direct_chunks(store[kind]["images"], crops.astype(np.float32))
        np.testing.assert_array_equal(store[kind]["images"][()], crops)


@pytest.mark.parametrize("cpus", [1, 3])
def test_threaded_chunks_land_in_order_and_equal_serial_ones(tmp_path, monkeypatch, cpus):
    # More rows than one thread's block, so several threads' blocks interleave.
    monkeypatch.setattr(store_module, "task_cpus", lambda: cpus)
    crops, masks = _crops(2 * store_module._ROWS_PER_TASK + 7, 12, seed=4)
    path = tmp_path / f"threads{cpus}.h5"
    released, internal = blosc.set_releasegil(False), blosc.set_nthreads(2)
    try:
        kind = _write(path, crops, masks, "blosc-lz4")
        assert not blosc.set_releasegil(False)  # the process-wide settings come back
        assert blosc.set_nthreads(2) == 2
    finally:
        blosc.set_releasegil(released)
        blosc.set_nthreads(internal)
    with h5py.File(path, "r") as store:
        for name, values in (("images", crops), ("masks", masks)):
            dataset = store[kind][name]
            np.testing.assert_array_equal(dataset[()], values)
            for row in (0, store_module._ROWS_PER_TASK, len(values) - 1):
                offset = (row,) + (0,) * (values.ndim - 1)
                serial = blosc.compress(
                    np.ascontiguousarray(values[row]),
                    typesize=values.itemsize,
                    cname="lz4",
                    clevel=5,
                    shuffle=blosc.SHUFFLE,
                )
                assert dataset.id.read_direct_chunk(offset)[1] == serial


def test_a_failing_batch_leaves_no_store(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "task_cpus", lambda: 2)  # compressing threads
    crops, masks = _crops(3, 8)
    spec = crop_spec("nucleocentric", 8)

    def batches():
        yield pd.DataFrame({"cell_id": ["a", "b", "c"]}), {spec.kind: (crops, masks)}
        raise OSError("field A-01-02 unreadable")

    path = tmp_path / "P1.h5"
    with pytest.raises(OSError, match="A-01-02"):
        write_crop_store(
            path,
            plate="P1",
            channel_names=["a", "b", "c"],
            specs=[spec],
            batches=batches(),
            config_hash="x",
        )
    assert not any(tmp_path.iterdir())  # neither the store nor its temporary file
