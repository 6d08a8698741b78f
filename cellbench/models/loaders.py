"""DataLoaders of the PyTorch models: workers for crops from stores, orders fixed by seed, epoch.

A dataset whose items are read from files (``reads_files``: `StreamedCrops`, crops from the
crop stores) is read by ``task_cpus() - 1`` worker processes (the task's allocation,
`cellbench.allocation`, less the process that trains; 0 on one CPU: then the training
process reads), or as many as ``loader_workers`` of the model entry says. Its training loader
keeps its workers from epoch to epoch (``persistent_workers``); on CUDA its batches are
pinned and copied without blocking; its batches are read a batch at a time where the dataset
offers it (``__getitems__``) and collated by `collate_crops`, which keeps the batch tensor
such a read filled instead of stacking a copy. A dataset in memory (a `TensorDataset`) is
read by the training process.

Both are shuffled alike (`BlockShuffleSampler` with blocks of one row): the permutation a
shuffling ``DataLoader`` drew before streaming existed, from ``epoch_generator(seed, epoch)``,
so a model trained from the stores ends with the weights it had when every crop was read into
memory first. Each crop is its own HDF5 chunk, so a random read costs one chunk; blocks of
`SHUFFLE_BLOCK_ROWS` > 1 neighbouring rows (one short read each) are there for cold file
systems, at a price: consecutive rows are cells of one field, so a batch of few blocks holds
few wells (and often few classes), and the order, hence the model, changes.

A training config with ``batches: one_per_treatment`` gets `OnePerGroupBatches` instead: each
batch at most one cell of each treatment, the treatments used evenly over an epoch.

The batch order of every epoch is a function of (seed, epoch) only, whatever the number of
workers and wherever a run resumed; worker processes draw no random number the training uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    Sampler,
    SequentialSampler,
    default_collate,
)

from cellbench.allocation import task_cpus

# Rows per shuffled block of a store-backed dataset: 1, a full shuffle (see the module docstring).
SHUFFLE_BLOCK_ROWS = 1


def loader_workers(configured: int | None = None) -> int:
    """Worker processes that read a store-backed dataset: `configured`, else CPUs - 1.

    Examples
    --------
    >>> loader_workers(0)
    0
    """
    return int(configured) if configured is not None else max(task_cpus() - 1, 0)


def reads_files(dataset: Dataset) -> bool:
    """Whether the items of `dataset` are read from files (and so are worth workers)."""
    return bool(getattr(dataset, "reads_files", False))


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator seeded from (seed, epoch, stream); stream 0 is the shuffle order."""
    if stream == 0:  # the seed of the shuffle order before augmentation existed
        return torch.Generator().manual_seed(seed * 100_003 + epoch)
    entropy = np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(entropy))


class BlockShuffleSampler(Sampler[int]):
    """Positions 0..N-1 in blocks of consecutive positions, blocks and their rows shuffled.

    Every position comes once per epoch, in an order fixed by (seed, epoch); call
    `set_epoch` before each epoch. Positions of a `StreamedCrops` follow the store rows, so
    a block is a run of neighbouring crops in one file. With blocks of one row the order is
    that of ``DataLoader(shuffle=True, generator=epoch_generator(seed, epoch))``.

    Parameters
    ----------
    n : int
        Items of the dataset.
    seed : int
    block_rows : int
        Positions per block (the last block may be shorter).

    Examples
    --------
    >>> sampler = BlockShuffleSampler(10, seed=0, block_rows=4)
    >>> sampler.set_epoch(1)
    >>> sorted(sampler) == list(range(10))
    True
    """

    def __init__(self, n: int, seed: int, block_rows: int = SHUFFLE_BLOCK_ROWS) -> None:
        if int(block_rows) < 1:
            raise ValueError(f"block_rows must be positive, not {block_rows}")
        self.n, self.seed, self.block_rows = int(n), int(seed), int(block_rows)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that, with the seed, fixes the next order."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        if self.block_rows == 1:
            return iter(_shuffled_order(self.n, epoch_generator(self.seed, self.epoch)))
        rng = np.random.default_rng([self.seed, self.epoch])
        starts = np.arange(0, self.n, self.block_rows)
        blocks = [
            rng.permutation(np.arange(s, min(s + self.block_rows, self.n)))
            for s in rng.permutation(starts)
        ]
        return iter(np.concatenate(blocks).tolist() if blocks else [])

    def __len__(self) -> int:
        return self.n


def _shuffled_order(n: int, generator: torch.Generator) -> list[int]:
    """The order of a shuffling DataLoader given `generator` (base seed, then randperm)."""
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    return torch.randperm(n, generator=generator).tolist()


class OnePerGroupBatches(Sampler[list[int]]):
    """Batches of at most one position per group, groups used evenly, fixed by (seed, epoch).

    CP2Image's batches (S2: one cell per treatment). Each batch holds
    ``k = min(batch_size, groups)`` positions of k different groups: those used least so far
    this epoch, ties broken at random, so over an epoch every group comes equally often (to
    within one). Within a group the positions come in a shuffled order, reshuffled when used
    up, so a group's cells all come before any comes again. An epoch has ``ceil(N / k)``
    batches, about N positions. Call `set_epoch` before each epoch.

    Parameters
    ----------
    groups : (N,) array
        The group (e.g. treatment) of each position; any hashable values.
    batch_size : int
    seed : int

    Examples
    --------
    >>> batches = OnePerGroupBatches(["a", "a", "b", "b", "c"], batch_size=2, seed=0)
    >>> batches.set_epoch(1)
    >>> all(len(b) == 2 and len({"aabbc"[i] for i in b}) == 2 for b in batches)
    True
    """

    def __init__(self, groups, batch_size: int, seed: int) -> None:
        codes, members = _group_members(groups)
        if len(members) < 1 or int(batch_size) < 1:
            raise ValueError(
                f"one batch per treatment needs cells and batch_size >= 1; got {len(codes)} "
                f"cells and batch_size {batch_size}"
            )
        self.members, self.n = members, len(codes)
        self.k = min(int(batch_size), len(members))
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that, with the seed, fixes the next batches."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.n // self.k)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        used = np.zeros(len(self.members), dtype=np.int64)
        queues = [rng.permutation(m) for m in self.members]
        cursors = [0] * len(self.members)
        for _ in range(len(self)):
            chosen = np.lexsort((rng.random(len(used)), used))[: self.k]
            batch = []
            for g in chosen:
                if cursors[g] == len(queues[g]):
                    queues[g], cursors[g] = rng.permutation(self.members[g]), 0
                batch.append(int(queues[g][cursors[g]]))
                cursors[g] += 1
            used[chosen] += 1
            yield batch


def _group_members(groups) -> tuple[np.ndarray, list[np.ndarray]]:
    """(N,) integer codes of `groups` and, per code, the positions that hold it."""
    codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)[1]
    order = np.argsort(codes, kind="stable")
    splits = np.flatnonzero(np.diff(codes[order])) + 1
    members = np.split(order, splits) if len(order) else []
    return codes, members


class EpochBatches:
    """The batches of one dataset, epoch after epoch, in an order fixed by (seed, epoch).

    Parameters
    ----------
    data : Dataset
    batch_size : int
    shuffle : bool
        A new order every epoch (training); else the dataset's order (validation).
    seed : int
    drop_last : bool
        Leave out the last, incomplete batch.
    device : torch.device
        On CUDA, store-backed batches are pinned (see `to_device`).
    workers : int or None
        Worker processes for a store-backed dataset (`loader_workers`); in-memory datasets
        are always read by this process.
    groups : (N,) array, optional
        With `shuffle`, batches of at most one item per group (`OnePerGroupBatches`, e.g.
        one cell per treatment) instead of random batches; `drop_last` is then not read.
    """

    def __init__(
        self,
        data: Dataset,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        device: torch.device,
        workers: int | None = None,
        groups: np.ndarray | None = None,
    ) -> None:
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle
        self.seed, self.drop_last = seed, drop_last
        self.sampler: BlockShuffleSampler | OnePerGroupBatches | None = None
        self.loader: DataLoader | None = None
        if groups is not None and shuffle:
            if len(groups) != len(data):
                raise ValueError(f"{len(groups)} groups for {len(data)} items")
            self.sampler = OnePerGroupBatches(groups, batch_size, seed)
            self.loader = _group_loader(data, self.sampler, device, workers)
        elif reads_files(data):
            self.sampler = BlockShuffleSampler(len(data), seed) if shuffle else None
            order = self.sampler if shuffle else SequentialSampler(data)
            self.loader = _file_loader(
                data, BatchSampler(order, batch_size, drop_last), device, loader_workers(workers)
            )

    def epoch(self, epoch: int) -> Iterable:
        """The batches of `epoch` (epochs count from 1)."""
        if self.loader is None:  # in memory: the order of torch.randperm, as before
            return DataLoader(
                self.data,
                batch_size=self.batch_size,
                shuffle=self.shuffle,
                generator=epoch_generator(self.seed, epoch),
                drop_last=self.drop_last,
            )
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        return self.loader

    def close(self) -> None:
        """Stop the persistent workers (they also stop when this object is collected)."""
        self.loader = None


def _group_loader(
    data: Dataset, batches: OnePerGroupBatches, device: torch.device, workers: int | None
) -> DataLoader:
    """The loader of `batches`: with workers for a store-backed dataset, else in process."""
    if reads_files(data):
        return _file_loader(data, batches, device, loader_workers(workers))
    return DataLoader(data, batch_sampler=batches)


def evaluation_batches(
    data: Dataset, batch_size: int, device: torch.device, workers: int | None = None
) -> DataLoader:
    """One pass over `data` in order, with workers where it is read from files."""
    if not reads_files(data):
        return DataLoader(data, batch_size=batch_size, shuffle=False)
    order = BatchSampler(SequentialSampler(data), batch_size, drop_last=False)
    return _file_loader(data, order, device, loader_workers(workers), persistent=False)


def collate_crops(items: Sequence[Sequence[Any]]) -> list[Any]:
    """Collate a batch of items as ``default_collate`` does, without copying a read batch.

    A batched read (`CropDataset.__getitems__`) returns images that are the rows, in order,
    of one (N, C, S, S) tensor it filled; that tensor is then the batch itself, where
    ``default_collate`` would stack the rows into a new one (7.6 ms per batch of 64 crops of
    3 x 192 x 192). Any other field, or images that are not such rows, are collated by
    ``default_collate``. The result may thus be a view of the tensor the items are views of: use
    it for items made fresh per batch (as the store-backed loaders here do), not for views
    of a tensor that is kept and must not change.

    Parameters
    ----------
    items : sequence of tuples
        N items, each ``(image, ...)`` with the same fields.

    Returns
    -------
    list
        One entry per field: the (N, ...) batch tensor of a tensor field, as
        ``default_collate`` gives it, and its collation of other fields (a tensor of ints, a
        list of strings...).

    Examples
    --------
    >>> batch = torch.arange(6.0).reshape(3, 2)
    >>> images, labels = collate_crops([(row, i) for i, row in enumerate(batch)])
    >>> images.data_ptr() == batch.data_ptr(), images.shape, labels.tolist()
    (True, torch.Size([3, 2]), [0, 1, 2])
    """
    if not items:
        raise ValueError("collate_crops needs at least one item")
    return [_rows_of_one_tensor(field) for field in zip(*items, strict=True)]


def _rows_of_one_tensor(values: Sequence[Any]) -> Any:
    """The (N, ...) view whose rows, in order, are `values`; else ``default_collate(values)``.

    The rows must be C-contiguous tensors of one shape and dtype that follow each other in
    one storage, as the rows of a batch tensor do.
    """
    first = values[0]
    if not isinstance(first, torch.Tensor) or not first.is_contiguous():
        return default_collate(values)
    storage, offset, step = (
        first.untyped_storage().data_ptr(),
        first.storage_offset(),
        first.numel(),
    )
    for i, value in enumerate(values):
        if (
            not isinstance(value, torch.Tensor)
            or value.shape != first.shape
            or value.dtype != first.dtype
            or not value.is_contiguous()
            or value.untyped_storage().data_ptr() != storage
            or value.storage_offset() != offset + i * step
        ):
            return default_collate(values)
    return first.as_strided((len(values), *first.shape), (step, *first.stride()), offset)


def _file_loader(
    data: Dataset,
    batches: BatchSampler | OnePerGroupBatches,
    device: torch.device,
    workers: int,
    persistent: bool = True,
) -> DataLoader:
    """A DataLoader of a store-backed dataset: `workers` processes, pinned memory on CUDA.

    The loader has a generator of its own, so creating its iterator (which draws the
    workers' base seed) never consumes the global random state that dropout and the VAE's
    sampling use: a resumed run keeps drawing the same numbers.
    """
    return DataLoader(
        data,
        batch_sampler=batches,
        collate_fn=collate_crops,
        num_workers=workers,
        persistent_workers=persistent and workers > 0,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),
    )


def to_device(tensor: torch.Tensor | Sequence, device: torch.device) -> torch.Tensor | list:
    """`tensor` on `device`; the copy to CUDA does not block (pinned batches overlap it).

    A list or tuple of tensors (the ``(images, features)`` inputs of `WithFeatures`) gives
    a list of them, each moved.
    """
    if isinstance(tensor, (list, tuple)):
        return [to_device(t, device) for t in tensor]
    return tensor.to(device, non_blocking=device.type == "cuda")


class WithFeatures(Dataset):
    """Items ``((image, features),)`` or ``((image, features), target)``: crops beside features.

    What a late-fusion model reads: the items of an image dataset (``(image,)`` or
    ``(image, target)``, e.g. a `StreamedCrops`) with the cell's row of `features` added to
    its input. Batches collate to ``[[images, features], targets]``; the training loop then
    calls ``model(images, features)`` and augments the images alone.

    Parameters
    ----------
    images : Dataset
    features : (N, F) float32 Tensor
        One row per item of `images`, in its order.
    """

    def __init__(self, images: Dataset, features: torch.Tensor) -> None:
        if len(images) != len(features):
            raise ValueError(f"{len(images)} images but {len(features)} feature rows")
        self.images, self.features = images, features
        self.reads_files = reads_files(images)  # store-backed crops keep their workers

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple:
        return self._fuse(self.images[i], i)

    def __getitems__(self, indices: list[int]) -> list[tuple]:
        """Items of a batch; one batched read where the image dataset offers one."""
        batched = getattr(self.images, "__getitems__", None)
        items = batched(indices) if batched is not None else [self.images[i] for i in indices]
        return [self._fuse(item, i) for item, i in zip(items, indices, strict=True)]

    def _fuse(self, item: tuple, i: int) -> tuple:
        return ((item[0], self.features[i]), *item[1:])
