"""Content digests of files, for settings hashes that must change when a file's bytes do."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str | None:
    """Hex SHA-256 of the file's bytes, read `chunk_bytes` at a time; None when it is missing.

    A missing file hashes as None rather than raising, so that planning still works and the
    task that reads it raises the error naming the file.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(chunk_bytes), b""):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()
