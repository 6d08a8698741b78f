"""`CropDataset.__getitems__`: a batch read at once gives the items read one by one."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, get_worker_info

from cellbench.crops.dataset import CropDataset, _read_rows
from cellbench.crops.extract import crop_spec
from cellbench.crops.store import write_crop_store
from cellbench.models.loaders import collate_crops
from tests.crops.test_dataset import CHANNELS, write_store

# shuffled, with a repeat, a negative index, runs of neighbours and both stores (21 + 13 items)
ORDER = [5, 6, 7, 30, 0, 22, 21, 6, -1, 12, 11, 10, 33, 1]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("batched")
    p1, p2, p3 = root / "P1.h5", root / "P2.h5", root / "P3.h5"
    write_store(p1, "P1", 21, seed=1)
    write_store(p2, "P2", 13, seed=2)
    rng = np.random.default_rng(3)  # a third store of another crop size
    crops = rng.integers(0, 3000, size=(6, 3, 20, 20)).astype(np.uint16)
    table = pd.DataFrame({"cell_id": [f"P3_{i}" for i in range(6)], "condition": "control"})
    write_crop_store(
        p3,
        plate="P3",
        channel_names=CHANNELS,
        specs=[crop_spec("whole_cell", 20)],
        batches=[(table, {"whole_cell": (crops, np.ones((6, 20, 20), np.uint8))})],
        config_hash="test",
    )
    return [p1, p2], p3


def assert_same_items(batched, single):
    assert len(batched) == len(single)
    for (image, label, cell_id), (expected, expected_label, expected_id) in zip(
        batched, single, strict=True
    ):
        assert image.dtype == torch.float32 and image.shape == expected.shape
        assert torch.equal(image, expected), cell_id
        assert (label, cell_id) == (expected_label, expected_id)


@pytest.mark.parametrize("mode", ["none", "max", "percentile", "plate"])
@pytest.mark.parametrize("kind", ["whole_cell", "nuclear"])
def test_batch_equals_items_one_by_one(stores, mode, kind):
    paths, _ = stores
    data = CropDataset(paths, kind, normalise=mode)
    batched = data.__getitems__(ORDER)
    assert_same_items(batched, [data[i] for i in ORDER])
    images = collate_crops(batched)[0]
    assert images.shape == (len(ORDER), 3, *data[0][0].shape[1:])
    assert images.data_ptr() == batched[0][0].data_ptr()  # the batch itself, not a copy


def test_batch_with_channels_resize_and_transform(stores):
    paths, other = stores
    data = CropDataset(
        [paths[0], other, paths[1]], "whole_cell", normalise="percentile", size_px=12
    )
    order = [21, 3, 26, 22, 4, 39, 30, 21]  # store 2 (20 px, resized) between the others
    assert_same_items(data.__getitems__(order), [data[i] for i in order])
    data = CropDataset(paths, "whole_cell", channels=[2, 0], transform=lambda x: x.flip(-1))
    batched = data.__getitems__(ORDER)
    assert_same_items(batched, [data[i] for i in ORDER])
    assert batched[0][0].shape[0] == 2


def test_out_of_range_index(stores):
    data = CropDataset(stores[0], "whole_cell")
    with pytest.raises(IndexError, match="index 34 out of range for 34"):
        data.__getitems__([0, 34])
    with pytest.raises(IndexError, match="index -35 out of range"):
        data.__getitems__([-35])
    assert data.__getitems__([]) == []


def test_read_rows_reads_runs_and_single_rows(stores):
    data = CropDataset(stores[0], "whole_cell")
    images = data._images(0)
    rows = np.array([0, 1, 2, 5, 9, 10, 20])
    np.testing.assert_array_equal(_read_rows(images, rows), images[...][rows])
    data.close()


def shared_batch(items):
    """A collate for a worker: the batch and whether it was filled in shared memory."""
    images, labels, ids = collate_crops(items)
    return images, labels, ids, get_worker_info() is not None and images.is_shared()


def test_workers_fill_shared_batches_with_the_same_values(stores):
    data = CropDataset(stores[0], "whole_cell", size_px=12)

    def load(workers):
        batches = BatchSampler(SequentialSampler(data), 8, drop_last=False)
        loader = DataLoader(
            data, batch_sampler=batches, num_workers=workers, collate_fn=shared_batch
        )
        return list(loader)

    serial, parallel = load(0), load(2)
    assert all(shared for *_, shared in parallel) and not any(s for *_, s in serial)
    for (a, la, ia, _), (b, lb, ib, _) in zip(serial, parallel, strict=True):
        assert torch.equal(a, b) and torch.equal(la, lb) and ia == ib
    assert torch.equal(torch.cat([b[0] for b in serial]), torch.stack([x[0] for x in data]))
