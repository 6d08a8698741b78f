"""The crops a model reads, as a lazy list of rows: read when a batch needs them, never all.

`CropRows` names a model's crops without reading them: the crop stores, the kind, the side
and the running row of each cell (stores concatenated, as `CropDataset` numbers them). It
knows its `shape` (N, C, S, S) from the stores' metadata, selects cells with `subset` (or
indexing, ``crops[mask]``, as `by_split` does) and gives a PyTorch dataset (`dataset`) whose
items are read from the stores through `CropDataset` (``normalise="plate"``: scaled to [0, 1]
per plate and channel by the store's plate statistics) when a `DataLoader` asks for them, in
any worker process (the stores open lazily per process, under ``fork`` and ``spawn``).

`to_array` reads the selected crops into one float32 array. Only consumers that need every
crop at once call it, and they hold the whole set in memory: the scikit-learn models on
flattened crops (`cellbench.models.classical`), the few cells of a Grad-CAM panel, one chunk
of test cells scored for reconstruction (`cellbench.evaluate.run`) and the VAE's sample for
its Bernoulli scaling.

A `CropRows` can also wrap crops already in memory (``CropRows(array)``): generated crops
and tests use it; its dataset is then a plain `TensorDataset`, as before streaming existed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from cellbench.crops.dataset import CropDataset

READ_BATCH = 256  # crops per DataLoader batch in `to_array`


class CropRows:
    """Crops of N cells, each a (C, S, S) float32 image, read only when asked for.

    Parameters
    ----------
    source : CropDataset or (M, C, S, S) float32 ndarray
        Where the crops come from: crop stores (read lazily) or an array in memory.
    rows : (N,) int array, optional
        Items of `source`, in this order. Default: all of them.

    Examples
    --------
    >>> crops = CropRows(np.zeros((4, 2, 8, 8), np.float32))
    >>> crops[np.array([True, False, True, False])].shape
    (2, 2, 8, 8)
    """

    def __init__(self, source: CropDataset | np.ndarray, rows: np.ndarray | None = None):
        if not isinstance(source, CropDataset):
            source = np.ascontiguousarray(source, dtype=np.float32)
            if source.ndim != 4:
                raise ValueError(f"crops must be (N, C, S, S), got shape {source.shape}")
        self.source = source
        self.rows = np.arange(len(source), dtype=np.int64) if rows is None else rows
        self.rows = np.asarray(self.rows, dtype=np.int64)

    @classmethod
    def from_stores(
        cls,
        stores: list[Path],
        kind: str,
        size_px: int,
        rows: np.ndarray,
        normalise: str = "plate",
    ) -> CropRows:
        """Crops of `kind`, resized to `size_px`, normalised so, at running rows `rows` of `stores`.

        Reads the stores' ``/cells`` tables and metadata, never a crop.
        """
        dataset = CropDataset(stores, kind, label_column=None, normalise=normalise, size_px=size_px)
        return cls(dataset, rows)

    @property
    def reads_files(self) -> bool:
        """Whether the crops are read from crop stores (else they are in memory)."""
        return isinstance(self.source, CropDataset)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(N, C, S, S): cells, channels and side of the crops, known without reading them."""
        if isinstance(self.source, CropDataset):
            size = self.source.size
            return (len(self.rows), len(self.source.channel_names), size, size)
        return (len(self.rows), *self.source.shape[1:])

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, cells: np.ndarray) -> CropRows:
        """The crops of `cells`: an (N,) bool mask or positions in these N crops."""
        cells = np.asarray(cells)
        if cells.dtype == bool:
            if cells.shape != (len(self),):
                raise ValueError(f"a mask of {len(self)} cells is needed, got shape {cells.shape}")
            cells = np.flatnonzero(cells)
        return CropRows(self.source, self.rows[cells.astype(np.int64)])

    def __getitem__(self, cells: np.ndarray) -> CropRows:
        """``crops[mask]`` or ``crops[positions]``: `subset`, still unread."""
        return self.subset(cells)

    def dataset(self, targets: torch.Tensor | np.ndarray | None = None) -> Dataset:
        """A PyTorch dataset of ``(image,)`` or ``(image, target)`` items, one per cell.

        Parameters
        ----------
        targets : (N, ...) Tensor or ndarray, optional
            One target per cell, e.g. class indices.

        Returns
        -------
        Dataset
            Store-backed crops: a `StreamedCrops` (each item read when fetched). Crops in
            memory: a `TensorDataset` over them.
        """
        if targets is not None:
            targets = torch.as_tensor(targets)
            if len(targets) != len(self):
                raise ValueError(f"{len(targets)} targets for {len(self)} crops")
        if isinstance(self.source, CropDataset):
            return StreamedCrops(self.source, self.rows, targets)
        images = torch.from_numpy(self._in_memory())
        return TensorDataset(images) if targets is None else TensorDataset(images, targets)

    def to_array(self, workers: int = 0) -> np.ndarray:
        """All N crops in memory, as one (N, C, S, S) float32 ndarray.

        Memory grows with N (N * C * S * S * 4 bytes): for the consumers that need every
        crop at once (see the module docstring), never for training a PyTorch model.
        """
        if not isinstance(self.source, CropDataset):
            return self._in_memory()
        out = np.empty(self.shape, dtype=np.float32)
        loader = DataLoader(self.dataset(), batch_size=READ_BATCH, num_workers=workers)
        start = 0
        for (images,) in loader:
            out[start : start + len(images)] = images.numpy()
            start += len(images)
        return out

    def _in_memory(self) -> np.ndarray:
        """The selected crops of an in-memory source (the array itself when all, in order)."""
        whole = len(self.rows) == len(self.source) and np.array_equal(
            self.rows, np.arange(len(self.source))
        )
        return self.source if whole else np.ascontiguousarray(self.source[self.rows])

    def __repr__(self) -> str:
        where = "crop stores" if self.reads_files else "memory"
        return f"CropRows({' x '.join(map(str, self.shape))} float32 crops, in {where})"


def as_crop_rows(crops: CropRows | np.ndarray, name: str = "crops") -> CropRows:
    """`crops` as a `CropRows` (an array is wrapped), or a ValueError naming `name`."""
    if isinstance(crops, CropRows):
        return crops
    crops = np.asarray(crops)
    if crops.ndim != 4:
        raise ValueError(f"{name} must be (N, C, H, W), got shape {crops.shape}")
    return CropRows(crops)


class StreamedCrops(Dataset):
    """Items ``(image,)`` or ``(image, target)`` read from a `CropDataset` when fetched.

    Pickles without open files (the `CropDataset` drops its handles), so it works in
    DataLoader workers started by ``fork`` or ``spawn``. ``reads_files`` tells the loaders
    (`cellbench.models.loaders`) to read it with worker processes.

    Parameters
    ----------
    crops : CropDataset
    rows : (N,) int array
        Items of `crops`, in this order.
    targets : (N, ...) Tensor, optional
    """

    reads_files = True

    def __init__(self, crops: CropDataset, rows: np.ndarray, targets: torch.Tensor | None):
        self.crops = crops
        self.rows = np.asarray(rows, dtype=np.int64)
        self.targets = targets

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        image = self.crops[int(self.rows[i])][0]
        return (image,) if self.targets is None else (image, self.targets[i])

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, ...]]:
        """Items of a batch; one batched read where the `CropDataset` offers one."""
        rows = [int(self.rows[i]) for i in indices]
        batched = getattr(self.crops, "__getitems__", None)
        items = batched(rows) if batched is not None else [self.crops[r] for r in rows]
        images = [item[0] for item in items]
        if self.targets is None:
            return [(image,) for image in images]
        return [(image, self.targets[i]) for image, i in zip(images, indices, strict=True)]
