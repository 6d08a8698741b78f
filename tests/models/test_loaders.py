"""`collate_crops`: the batch of a batched read as it is, anything else as default_collate."""

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from cellbench.models.loaders import EpochBatches, collate_crops, evaluation_batches


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
