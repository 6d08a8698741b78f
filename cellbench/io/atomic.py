"""Write files so that a reader never sees half of one.

A task writes to a hidden temporary name in the destination folder and renames it into place
only when the file is complete (`os.replace` is atomic on one filesystem). A task killed midway
leaves at most a `.name.tmp-*` file, which never looks like a finished output.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_MARKER = ".tmp-"


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


def write_json(path: str | Path, value: Any) -> None:
    """Write `value` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
