"""Write files so that a reader never sees half of one.

A task writes to a hidden temporary name in the destination folder and renames it into place
only when the file is complete (`os.replace` is atomic on one filesystem). A task killed midway
leaves at most a `.name.tmp-*` file, which never looks like a finished output.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_MARKER = ".tmp-"
# HDF5 may hold this much in its caches and write it later, at flush or close.
HDF5_MARGIN_BYTES = 16 * 2**20


def temporary_path(path: Path) -> Path:
    """Return a hidden temporary name beside `path` that keeps its suffix.

    The suffix is kept because some writers (matplotlib, pandas) choose the format from it.
    """
    return path.with_name(f".{path.stem}{TEMP_MARKER}{uuid.uuid4().hex[:8]}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write to; rename it to `path` when the block succeeds.

    Examples
    --------
    >>> with atomic_path(out_dir / "table.parquet") as tmp:  # doctest: +SKIP
    ...     frame.to_parquet(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def ensure_free_space(path: Path, nbytes: int, margin: int = HDF5_MARGIN_BYTES) -> None:
    """Raise ENOSPC before writing `nbytes` (uncompressed) to `path` when they would not fit.

    HDF5 cannot fail cleanly on a full disk: after a failed write, h5py crashes the process
    (a segmentation fault, h5py issues 914 and 2160), taking every other task of the worker
    with it. So HDF5 writers check the free space first and fail the task with an ordinary
    `OSError`, before HDF5 writes anything that could fail. Quotas that `statvfs` does not
    see are not covered.
    """
    folder = Path(path).parent
    free = shutil.disk_usage(folder).free
    if free < nbytes + margin:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device ({free / 2**20:.1f} MiB free, "
            f"{(nbytes + margin) / 2**20:.1f} MiB needed to write safely)",
            str(path),
        )


def remove_leftovers(path: Path) -> list[Path]:
    """Remove the temporary files (or folders) a killed writer of `path` left; return them.

    A task calls this for each of its outputs when it starts again, so a crash leaves no
    ``.name.tmp-*`` behind once the task has run.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return _remove(path.parent.glob(f".{path.stem}{TEMP_MARKER}*{path.suffix}"))


def remove_leftovers_under(folder: Path) -> list[Path]:
    """Remove every temporary file or folder a killed writer left anywhere under `folder`.

    For folders that belong to one task alone (a model's seed folder, the report).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return _remove(sorted(folder.rglob(f".*{TEMP_MARKER}*"), reverse=True))


def _remove(leftovers) -> list[Path]:
    """Delete each file or folder (deepest first when sorted so); return those deleted."""
    removed = []
    for leftover in leftovers:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def write_json(path: str | Path, value: Any) -> None:
    """Write `value` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
