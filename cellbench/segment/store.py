"""The label store: one HDF5 file per plate with the cell and nucleus labels of every field.

::

    / attrs            schema="cellbench.labels/1", plate, method
    /<X-YY-ZZ>/cells   int32 (Y, X), 0 = background
    /<X-YY-ZZ>/nuclei  int32 (Y, X), a nucleus carries its cell's label
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from cellbench.io.atomic import atomic_path, ensure_free_space

SCHEMA = "cellbench.labels/1"


def write_label_store(
    path: Path,
    plate: str,
    method: str,
    labels: Iterator[tuple[str, np.ndarray, np.ndarray]],
) -> int:
    """Write (field name, cells, nuclei) triples into a new label store, atomically.

    Returns
    -------
    int
        The number of fields written.
    """
    with atomic_path(path) as tmp:
        ensure_free_space(tmp, 0)
        with h5py.File(tmp, "w") as store:
            count = _write_labels(store, tmp, plate, method, labels)
    return count


def _write_labels(store: h5py.File, tmp: Path, plate: str, method: str, labels) -> int:
    """Write every field's labels, checking the free space first (see `ensure_free_space`)."""
    store.attrs.update({"schema": SCHEMA, "plate": plate, "method": method})
    count = 0
    for field, cells, nuclei in labels:
        ensure_free_space(tmp, cells.size * 4 * 2)  # int32 cells and nuclei, uncompressed
        group = store.create_group(field)
        for name, image in (("cells", cells), ("nuclei", nuclei)):
            group.create_dataset(name, data=image.astype(np.int32), compression="lzf")
        count += 1
    if count == 0:
        raise ValueError(f"no field to store for plate {plate!r}")
    return count


def read_labels(path: Path, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Read the (cells, nuclei) label images of one field."""
    with h5py.File(path, "r") as store:
        return store[field]["cells"][()], store[field]["nuclei"][()]


def stored_fields(path: Path) -> list[str]:
    """Names of the fields in a label store."""
    with h5py.File(path, "r") as store:
        return sorted(store.keys())
