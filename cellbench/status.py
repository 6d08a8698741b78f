"""Task status files: `_status/<stage>/<task>.json`, the record of what ran and how it ended.

A status holds the task's state (``running``, ``done``, ``failed``, ``skipped``), the hash of
the settings it ran with, its inputs and outputs, timings, host, package versions, SLURM ids
and the error if any. A task is done when its status says so with the current settings' hash
and its outputs exist.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from cellbench.io.atomic import write_json

RUNNING, DONE, FAILED, SKIPPED = "running", "done", "failed", "skipped"
_VERSIONED = ("cellbench", "numpy", "scikit-image", "scikit-learn", "h5py", "pandas", "torch")


def read_status(path: Path) -> dict[str, Any] | None:
    """Read a status file, or None when there is none (or it is unreadable)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def fingerprint(paths: list[Path]) -> dict[str, list[int] | None]:
    """Size and modification time (ns) of each path, None for a missing one.

    A task records the fingerprint of its inputs when it starts; when they differ later (an
    upstream task ran again, a missing plate appeared), the task is no longer done.
    """
    prints: dict[str, list[int] | None] = {}
    for path in paths:
        try:
            stat = Path(path).stat()
        except FileNotFoundError:
            prints[str(path)] = None
        else:
            prints[str(path)] = [stat.st_size, stat.st_mtime_ns]
    return prints


def is_done(
    path: Path, config_hash: str, outputs: list[Path], inputs: dict[str, list[int] | None]
) -> bool:
    """Whether a task finished with these settings and inputs, and its outputs still exist.

    Parameters
    ----------
    path : Path
        The task's status file.
    config_hash : str
        Hash of the settings the task depends on now.
    outputs : list of Path
        Files the finished task left.
    inputs : dict
        `fingerprint` of the task's inputs now.
    """
    status = read_status(path)
    return (
        status is not None
        and status.get("state") == DONE
        and status.get("config_hash") == config_hash
        and status.get("inputs") == inputs
        and all(Path(p).exists() for p in outputs)
    )


def write_status(path: Path, **fields: Any) -> dict[str, Any]:
    """Write a task's status (atomically) with the run environment added; return it."""
    status = {
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "argv": sys.argv,
        "versions": package_versions(),
        "slurm": slurm_ids(),
        **fields,
    }
    write_json(path, status)
    return status


def package_versions() -> dict[str, str]:
    """Versions of the packages whose behaviour shapes the results."""
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def slurm_ids() -> dict[str, str]:
    """SLURM job and array ids of the current process (empty outside SLURM)."""
    keys = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_PARTITION")
    return {key: os.environ[key] for key in keys if key in os.environ}
