"""`collate_crops`: the batch of a batched read as it is, anything else as default_collate;
`OnePerGroupBatches`: one cell per treatment, treatments used evenly."""

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from cellbench.models.loaders import (
    EpochBatches,
    OnePerGroupBatches,
    collate_crops,
    evaluation_batches,
)


def assert_like_default(batch, items):
    expected = default_collate(items)
    assert isinstance(batch, list) and len(batch) == len(expected)
    for got, want in zip(batch, expected, strict=True):
        if isinstance(want, torch.Tensor):
            assert torch.equal(got, want) and got.dtype == want.dtype
        else:
            assert got == want


def test_rows_of_one_batch_are_returned_without_a_copy():
    images = torch.arange(4 * 2 * 3 * 3, dtype=torch.float32).reshape(4, 2, 3, 3)
    items = [(image, i % 2, f"cell{i}") for i, image in enumerate(images)]
    batch = collate_crops(items)
    assert batch[0].data_ptr() == images.data_ptr() and batch[0].shape == images.shape
    assert_like_default(batch, items)
    images += 1  # a view of the batch: no copy was made
    assert torch.equal(batch[0], images)
    first_rows = collate_crops([(image,) for image in images[:3]])[0]  # a run of rows
    assert first_rows.data_ptr() == images.data_ptr() and torch.equal(first_rows, images[:3])


@pytest.mark.parametrize(
    "pick",
    [
        lambda images: [images[i] for i in (1, 0, 2, 3)],  # rows out of order
        lambda images: [images[0], images[1], images[2].clone(), images[3]],  # not all views
        lambda images: [x.clone() for x in images],  # no views at all
        lambda images: list(images[:, 0]),  # views with strides of another shape
        lambda images: list(images.transpose(0, 1).contiguous().transpose(0, 1)),  # not C order
    ],
)
def test_anything_else_is_stacked_like_default_collate(pick):
    images = torch.arange(4 * 2 * 3 * 3, dtype=torch.float32).reshape(4, 2, 3, 3)
    picked = pick(images)
    items = [(x, torch.tensor([i, -i])) for i, x in enumerate(picked)]
    batch = collate_crops(items)
    assert_like_default(batch, items)
    stacked = default_collate(items)[0]
    images += 1  # the batch is a copy: it does not change with the source
    assert torch.equal(batch[0], stacked)


def test_empty_batch_is_an_error():
    with pytest.raises(ValueError, match="at least one item"):
        collate_crops([])


class Streamed(torch.utils.data.Dataset):
    """A store-like dataset: read a batch at a time into one fresh tensor."""

    reads_files = True

    def __init__(self, n):
        self.images = torch.from_numpy(np.random.default_rng(0).random((n, 1, 4, 4), np.float32))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return (self.images[i].clone(),)

    def __getitems__(self, indices):
        batch = self.images[torch.as_tensor(indices)]
        return [(image,) for image in batch]


def test_store_backed_loaders_collate_with_collate_crops():
    data = Streamed(10)
    cpu = torch.device("cpu")
    train = EpochBatches(data, 4, shuffle=True, seed=1, drop_last=False, device=cpu, workers=0)
    evaluation = evaluation_batches(data, 4, cpu, workers=0)
    assert train.loader.collate_fn is collate_crops and evaluation.collate_fn is collate_crops
    (images,) = next(iter(evaluation))
    assert torch.equal(images, data.images[:4])
    seen = torch.cat([batch[0] for batch in train.epoch(1)])
    assert torch.equal(seen.sort(0).values, data.images.sort(0).values)


def treatments(sizes) -> np.ndarray:
    """Treatment names, ``sizes[g]`` cells of treatment g, in a seeded shuffled order."""
    names = np.repeat([f"compound{g}+{g / 10}" for g in range(len(sizes))], sizes)
    return np.random.default_rng(3).permutation(names)


def epoch_of(groups, batch_size, seed=0, epoch=1) -> list[list[int]]:
    sampler = OnePerGroupBatches(groups, batch_size, seed)
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize("batch_size", [3, 5, 8, 64])
def test_one_per_treatment_batches_hold_distinct_treatments_used_evenly(batch_size):
    groups = treatments([1, 2, 3, 5, 8, 13, 21, 4])  # 57 cells of 8 treatments
    batches = epoch_of(groups, batch_size)
    k = min(batch_size, 8)
    assert len(batches) == -(-len(groups) // k) and all(len(b) == k for b in batches)
    for batch in batches:
        assert len(set(groups[batch])) == len(batch)  # at most one cell per treatment
    names, counts = np.unique(groups[np.concatenate(batches)], return_counts=True)
    assert len(names) == 8 and counts.max() - counts.min() <= 1


def test_one_per_treatment_uses_a_treatments_cells_before_repeating_any():
    groups = treatments([2, 6, 30])
    positions = np.concatenate(epoch_of(groups, 3))  # every batch: one of each treatment
    for name in np.unique(groups):
        drawn = [p for p in positions if groups[p] == name]
        size = int((groups == name).sum())
        first = drawn[: min(size, len(drawn))]
        assert len(set(first)) == len(first)
        assert set(drawn) <= set(np.flatnonzero(groups == name))
        if size <= len(drawn):  # a small treatment: every cell comes, then again
            assert set(first) == set(np.flatnonzero(groups == name))


def test_one_per_treatment_batches_are_fixed_by_seed_and_epoch():
    groups = treatments([4, 5, 6, 7])
    assert epoch_of(groups, 4, seed=1, epoch=2) == epoch_of(groups, 4, seed=1, epoch=2)
    assert epoch_of(groups, 4, seed=1, epoch=2) != epoch_of(groups, 4, seed=1, epoch=3)
    assert epoch_of(groups, 4, seed=1, epoch=2) != epoch_of(groups, 4, seed=2, epoch=2)


@pytest.mark.parametrize("streamed", [False, True])
def test_epoch_batches_draw_one_per_treatment_in_memory_and_from_stores(streamed):
    groups = treatments([3, 3, 4])
    data = Streamed(10) if streamed else torch.utils.data.TensorDataset(torch.arange(10))
    cpu = torch.device("cpu")
    batches = EpochBatches(
        data, 8, shuffle=True, seed=0, drop_last=False, device=cpu, workers=0, groups=groups
    )
    expected = epoch_of(groups, 8, seed=0, epoch=2)
    got = list(batches.epoch(2))
    assert len(got) == len(expected) == 4
    for batch, rows in zip(got, expected, strict=True):
        want = data.images[rows] if streamed else torch.as_tensor(rows)
        assert torch.equal(batch[0], want)


def test_one_per_treatment_needs_as_many_groups_as_items():
    cpu = torch.device("cpu")
    data = torch.utils.data.TensorDataset(torch.arange(4))
    with pytest.raises(ValueError, match="3 groups for 4 items"):
        EpochBatches(data, 2, shuffle=True, seed=0, drop_last=False, device=cpu, groups=[1, 2, 3])
