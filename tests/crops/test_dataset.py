import pickle

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from cellbench.crops.dataset import ChunkShuffleSampler, CropDataset
from cellbench.crops.extract import crop_spec
from cellbench.crops.plate import crop_plate
from cellbench.crops.store import read_cells, read_crops, write_crop_store
from cellbench.paths import ResultsPaths

CHANNELS = ["dapi", "actin", "marker"]
SIZE = 16
CONDITIONS = ["control", "drug_a", "drug_b"]


def make_crops(rng, n):
    """Random uint16 crops with a bright disc per cell, some special channels."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    disc = (yy - SIZE // 2) ** 2 + (xx - SIZE // 2) ** 2 < (SIZE // 3) ** 2
    crops = rng.integers(0, 400, size=(n, 3, SIZE, SIZE)).astype(np.uint16)
    crops += (disc * rng.integers(500, 20000, size=(n, 3, 1, 1))).astype(np.uint16)
    crops[0, 1] = 0  # an all-zero channel
    crops[1, 2] = 777  # a constant channel
    masks = np.where(disc, 1, 4).astype(np.uint8)[None].repeat(n, axis=0)
    return crops, masks


def write_store(path, plate, n, seed):
    """A store of two kinds with known crops; returns its crops by kind and its cell table."""
    rng = np.random.default_rng(seed)
    crops, masks = make_crops(rng, n)
    small = crops[:, :, 4:12, 4:12].copy()
    table = pd.DataFrame(
        {
            "cell_id": [f"{plate}_cell{i:03d}" for i in range(n)],
            "plate": plate,
            "well": [f"A{1 + i % 4:02d}" for i in range(n)],
            "site": [1 + i % 2 for i in range(n)],
            "field": [f"A-{1 + i % 4:02d}-01" for i in range(n)],
            "label": np.arange(1, n + 1),
            "condition": [CONDITIONS[i % 4 % 3] for i in range(n)],
        }
    )
    half = n // 2
    batches = [
        (
            table.iloc[part].reset_index(drop=True),
            {
                "whole_cell": (crops[part], masks[part]),
                "nuclear": (small[part], masks[part][:, 4:12, 4:12]),
            },
        )
        for part in (slice(0, half), slice(half, n))
    ]
    write_crop_store(
        path,
        plate=plate,
        channel_names=CHANNELS,
        specs=[crop_spec("whole_cell", SIZE), crop_spec("nuclear", 8)],
        batches=batches,
        config_hash="test",
    )
    return {"whole_cell": crops, "nuclear": small}, table


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    p1, p2 = root / "P1.h5", root / "P2.h5"
    crops1, table1 = write_store(p1, "P1", 21, seed=1)
    crops2, table2 = write_store(p2, "P2", 13, seed=2)
    return [p1, p2], [crops1, crops2], [table1, table2]


def plate_stats(path, kind):
    with h5py.File(path, "r") as store:
        return store[kind].attrs["stats_low"], store[kind].attrs["stats_high"]


def by_hand(crop, mode, low_high=None, percentiles=(1.0, 99.0)):
    """Normalise a (C, S, S) uint16 crop per channel, channel by channel with numpy."""
    out = np.zeros(crop.shape, np.float64)
    for c, channel in enumerate(crop.astype(np.float64)):
        if mode == "none":
            out[c] = channel
        elif mode == "max":
            out[c] = channel / channel.max() if channel.max() > 0 else 0.0
        else:
            if mode == "percentile":
                low, high = np.percentile(channel, percentiles)
            else:
                low, high = low_high[0][c], low_high[1][c]
            if high > low:
                out[c] = np.clip((channel - low) / (high - low), 0, 1)
            else:
                out[c] = channel > high
    return out


def test_length_table_and_cell_ids(stores):
    paths, _, tables = stores
    data = CropDataset(paths, "whole_cell")
    assert len(data) == 21 + 13
    assert list(data.cells["store"]) == [0] * 21 + [1] * 13
    assert list(data.cells["row"]) == list(range(21)) + list(range(13))
    expected = pd.concat([read_cells(p) for p in paths], ignore_index=True)
    pd.testing.assert_frame_equal(data.cells.drop(columns=["store", "row"]), expected)
    assert [data[i][2] for i in range(len(data))] == list(expected["cell_id"])
    assert data.channel_names == CHANNELS and data.size == SIZE


@pytest.mark.parametrize("mode", ["none", "max", "percentile", "plate"])
@pytest.mark.parametrize("kind", ["whole_cell", "nuclear"])
def test_items_equal_stored_crops_normalised_by_hand(stores, mode, kind):
    paths, crops, _ = stores
    data = CropDataset(paths, kind, normalise=mode)
    i = 0
    for store, path in enumerate(paths):
        stats = plate_stats(path, kind)
        stored, _ = read_crops(path, kind)
        np.testing.assert_array_equal(stored, crops[store][kind])
        for crop in stored:
            image, _, _ = data[i]
            assert image.dtype == torch.float32 and image.shape == crop.shape
            assert torch.isfinite(image).all()
            np.testing.assert_allclose(image.numpy(), by_hand(crop, mode, stats), atol=1e-6)
            if mode != "none":
                assert image.min() >= 0 and image.max() <= 1
            i += 1
    assert i == len(data)


def test_special_channels(stores):
    paths, _, _ = stores
    image = CropDataset(paths, "whole_cell", normalise="max")[0][0]
    assert torch.all(image[1] == 0)  # all-zero channel: 0, not NaN
    image = CropDataset(paths, "whole_cell", normalise="percentile")[1][0]
    assert torch.all(image[2] == 0)  # constant channel: nothing above its high percentile
    image = CropDataset(paths, "whole_cell", normalise="none")[1][0]
    assert torch.all(image[2] == 777)


def test_other_percentiles(stores):
    paths, crops, _ = stores
    data = CropDataset(paths, "whole_cell", percentiles=(5.0, 95.0))
    expected = by_hand(crops[0]["whole_cell"][3], "percentile", percentiles=(5.0, 95.0))
    np.testing.assert_allclose(data[3][0].numpy(), expected, atol=1e-6)


def test_plate_statistics_are_per_plate(stores):
    paths, _, _ = stores
    high1 = plate_stats(paths[0], "whole_cell")[1]
    low2, high2 = plate_stats(paths[1], "whole_cell")
    assert not np.allclose(high1, high2)
    data = CropDataset(paths, "whole_cell", normalise="plate")
    last = read_crops(paths[1], "whole_cell")[0][-1]
    np.testing.assert_allclose(
        data[len(data) - 1][0].numpy(), by_hand(last, "plate", (low2, high2)), atol=1e-6
    )


def test_labels_map_to_class_indices(stores):
    paths, _, tables = stores
    data = CropDataset(paths, "whole_cell")
    assert data.classes == sorted(CONDITIONS)
    conditions = pd.concat(tables, ignore_index=True)["condition"]
    assert [data[i][1] for i in range(len(data))] == [data.classes.index(c) for c in conditions]

    given = ["drug_b", "control", "drug_a", "unused"]
    data = CropDataset(paths, "whole_cell", classes=given)
    assert data.classes == given
    assert [data[i][1] for i in range(len(data))] == [given.index(c) for c in conditions]

    data = CropDataset(paths, "whole_cell", label_column="well")
    assert data.classes == ["A01", "A02", "A03", "A04"]
    assert data[5][1] == 1  # row 5 is in well A02

    data = CropDataset(paths, "whole_cell", label_column=None)
    assert data.classes == [] and {data[i][1] for i in range(len(data))} == {-1}

    with pytest.raises(ValueError, match="drug_b"):
        CropDataset(paths, "whole_cell", classes=["control", "drug_a"])
    with pytest.raises(ValueError, match="'compound'.*available columns"):
        CropDataset(paths, "whole_cell", label_column="compound")


def test_where_filters_rows(stores):
    paths, crops, _ = stores
    data = CropDataset(paths, "whole_cell", where={"plate": ["P2"]}, normalise="none")
    assert len(data) == 13 and set(data.cells["plate"]) == {"P2"}
    assert list(data.cells["row"]) == list(range(13))
    np.testing.assert_array_equal(data[0][0].numpy(), crops[1]["whole_cell"][0])

    data = CropDataset(paths, "whole_cell", where={"well": ["A02", "A04"], "site": [2]})
    expected = [
        (store, row)
        for store, n in enumerate([21, 13])
        for row in range(n)
        if row % 4 in (1, 3) and row % 2 == 1
    ]
    assert list(zip(data.cells["store"], data.cells["row"], strict=True)) == expected
    assert all(data[i][2] == data.cells["cell_id"][i] for i in range(len(data)))
    # classes come from the selected rows: wells A02 and A04 hold drug_a and control only
    assert data.classes == ["control", "drug_a"]

    assert len(CropDataset(paths, "whole_cell", where={"plate": "P1"})) == 21  # a bare value
    empty = CropDataset(paths, "whole_cell", where={"plate": ["P9"]})
    assert len(empty) == 0 and empty.classes == [] and list(ChunkShuffleSampler(empty)) == []


def test_unknown_where_column_names_it(stores):
    paths, _, _ = stores
    with pytest.raises(ValueError, match="'compound'") as error:
        CropDataset(paths, "whole_cell", where={"compound": ["x"]})
    assert "condition" in str(error.value) and "well" in str(error.value)


def test_missing_kind_names_the_file_and_its_kinds(stores):
    paths, _, _ = stores
    with pytest.raises(ValueError, match="nucleocentric") as error:
        CropDataset(paths, "nucleocentric")
    message = str(error.value)
    assert str(paths[0]) in message and "nuclear" in message and "whole_cell" in message


def test_bad_options(stores):
    paths, _, _ = stores
    with pytest.raises(ValueError, match="normalise"):
        CropDataset(paths, "whole_cell", normalise="zscore")
    with pytest.raises(ValueError, match="percentiles"):
        CropDataset(paths, "whole_cell", percentiles=(99.0, 1.0))
    with pytest.raises(ValueError, match="channels"):
        CropDataset(paths, "whole_cell", channels=[3])
    with pytest.raises(IndexError):
        CropDataset(paths, "whole_cell")[34]


def test_resize_channels_and_transform(stores):
    paths, crops, _ = stores
    data = CropDataset(paths, "whole_cell", normalise="max", size_px=24, channels=[2, 0])
    assert data.channel_names == ["marker", "dapi"]
    image = data[4][0]
    assert image.shape == (2, 24, 24) and image.dtype == torch.float32
    crop = crops[0]["whole_cell"][4][[2, 0]]
    expected = F.interpolate(
        torch.from_numpy(by_hand(crop, "max")).float()[None],
        size=(24, 24),
        mode="bilinear",
        antialias=True,
    )[0]
    torch.testing.assert_close(image, expected)
    assert CropDataset(paths, "whole_cell", size_px=8)[0][0].shape == (3, 8, 8)
    assert CropDataset(paths, "nuclear", size_px=8)[0][0].shape == (3, 8, 8)

    calls = []

    def flip(tensor):
        calls.append(tensor.shape)
        return tensor.flip(-1)

    data = CropDataset(paths, "whole_cell", normalise="none", size_px=8, transform=flip)
    plain = CropDataset(paths, "whole_cell", normalise="none", size_px=8)
    torch.testing.assert_close(data[7][0], plain[7][0].flip(-1))
    assert calls == [(3, 8, 8)]  # applied last, after resizing


def test_stores_of_different_sizes_need_size_px(stores, tmp_path):
    paths, _, _ = stores
    other = tmp_path / "P3.h5"
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 1000, size=(4, 3, 20, 20)).astype(np.uint16)
    table = pd.DataFrame({"cell_id": [f"P3_{i}" for i in range(4)], "condition": "control"})
    write_crop_store(
        other,
        plate="P3",
        channel_names=CHANNELS,
        specs=[crop_spec("whole_cell", 20)],
        batches=[(table, {"whole_cell": (crops, np.ones((4, 20, 20), np.uint8))})],
        config_hash="test",
    )
    with pytest.raises(ValueError, match="size_px"):
        CropDataset([paths[0], other], "whole_cell")
    data = CropDataset([paths[0], other], "whole_cell", size_px=16)
    assert len(data) == 25 and data[24][0].shape == (3, 16, 16)


def test_dataloader_workers_return_the_same_tensors(stores):
    paths, _, _ = stores
    data = CropDataset(paths, "whole_cell", size_px=12)
    data[0]  # open the files in the parent first: workers must not reuse its handles

    def load(workers):
        loader = DataLoader(data, batch_size=5, shuffle=False, num_workers=workers)
        images, labels, ids = zip(*loader, strict=True)
        return torch.cat(images), torch.cat(labels), [i for batch in ids for i in batch]

    serial, parallel = load(0), load(2)
    torch.testing.assert_close(parallel[0], serial[0], rtol=0, atol=0)
    assert parallel[1].tolist() == serial[1].tolist()
    assert parallel[2] == serial[2] == list(data.cells["cell_id"])
    assert serial[0].shape == (34, 3, 12, 12)
    data.close()


def test_dataset_pickles_without_handles(stores):
    paths, _, _ = stores
    data = CropDataset(paths, "nuclear")
    first = data[3][0]
    copy = pickle.loads(pickle.dumps(data))
    torch.testing.assert_close(copy[3][0], first)
    data.close()
    torch.testing.assert_close(data[3][0], first)  # reopens after close


def test_sampler_is_a_deterministic_blockwise_permutation(stores):
    paths, _, _ = stores
    data = CropDataset(paths, "whole_cell", where={"site": [1]})  # rows with gaps
    n = len(data)
    store = data.cells["store"].to_numpy()
    sampler = ChunkShuffleSampler(data, block_size=4, seed=7)
    assert len(sampler) == n
    first = list(sampler)
    assert sorted(first) == list(range(n)) and all(isinstance(i, int) for i in first)
    assert list(sampler) == first
    assert list(ChunkShuffleSampler(data, block_size=4, seed=7)) == first
    assert list(ChunkShuffleSampler(data, block_size=4, seed=8)) != first
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(second) == list(range(n)) and second != first
    sampler.set_epoch(0)
    assert list(sampler) == first

    # blocks: runs of 4 consecutive indices of one store (the last of a store may be shorter)
    blocks = [set(b.tolist()) for b in sampler.blocks]
    assert sorted(i for b in blocks for i in b) == list(range(n))
    for block in blocks:
        assert len({store[i] for i in block}) == 1
        assert max(block) - min(block) == len(block) - 1 and len(block) <= 4
    position = 0
    for block in (blocks[k] for k in _block_order(first, blocks)):
        assert set(first[position : position + len(block)]) == block
        position += len(block)
    assert position == n


def _block_order(order, blocks):
    """The block index of each run in `order`, checking each block is read in one go."""
    found, position = [], 0
    while position < len(order):
        k = next(k for k, b in enumerate(blocks) if order[position] in b)
        found.append(k)
        position += len(blocks[k])
    return found


def test_sampler_with_dataloader_covers_every_crop(stores):
    paths, _, _ = stores
    data = CropDataset(paths, "nuclear")
    sampler = ChunkShuffleSampler(data, block_size=8, seed=1)
    loader = DataLoader(data, batch_size=8, sampler=sampler, num_workers=0)
    ids = [i for _, _, batch in loader for i in batch]
    assert sorted(ids) == sorted(data.cells["cell_id"])
    assert ids == [data.cells["cell_id"][i] for i in sampler]


def test_real_plate_store(segmented_plate, tmp_path):
    config, plate = segmented_plate
    paths = ResultsPaths(config.results_root)
    path = tmp_path / "P1.h5"
    crop_plate(
        plate,
        paths.label_store("P1"),
        config.data.channels,
        [crop_spec("whole_cell", 32)],
        path,
        config_hash="abc",
        compression="lzf",
    )
    cells = read_cells(path)
    stored, _ = read_crops(path, "whole_cell")
    wells = sorted(set(cells["well"]))[:4]
    data = CropDataset([path], "whole_cell", where={"well": wells})
    keep = np.flatnonzero(cells["well"].isin(wells))
    assert len(data) == len(keep) > 0
    assert set(data.classes) <= {"control", "enlarged_nuclei", "textured"}
    for i in (0, len(data) // 2, len(data) - 1):
        image, label, cell_id = data[i]
        row = keep[i]
        assert cell_id == cells["cell_id"][row]
        assert data.classes[label] == cells["condition"][row]
        np.testing.assert_allclose(image.numpy(), by_hand(stored[row], "percentile"), atol=1e-6)
    sampler = ChunkShuffleSampler(data, block_size=16)
    loader = DataLoader(data, batch_size=16, sampler=sampler, num_workers=2)
    batches = list(loader)
    assert sum(len(b[2]) for b in batches) == len(data)
    assert batches[0][0].shape[1:] == (3, 32, 32)


@pytest.mark.parametrize("compression", ["blosc2-lz4", None])
def test_other_compressions_read_the_same(stores, tmp_path, compression):
    paths, crops, tables = stores
    other = tmp_path / "P1.h5"
    masks = np.ones((21, SIZE, SIZE), np.uint8)
    write_crop_store(
        other,
        plate="P1",
        channel_names=CHANNELS,
        specs=[crop_spec("whole_cell", SIZE)],
        batches=[(tables[0], {"whole_cell": (crops[0]["whole_cell"], masks)})],
        config_hash="test",
        compression=compression,
    )
    data = CropDataset([other], "whole_cell", normalise="none")
    reference = CropDataset([paths[0]], "whole_cell", normalise="none")
    loader = DataLoader(data, batch_size=8, num_workers=2)
    images = torch.cat([batch[0] for batch in loader])
    np.testing.assert_array_equal(images.numpy(), crops[0]["whole_cell"])
    torch.testing.assert_close(data[20][0], reference[20][0])
