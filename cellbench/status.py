"""Task status files: `_status/<stage>/<task>.json`, the record of what ran and how it ended.

A status holds the task's state (``running``, ``done``, ``failed``, ``skipped``), the hash of
the settings it ran with, the fingerprints (size, modification time) of its inputs and
outputs keyed by their paths under the results root, timings, host, pid, package versions,
SLURM ids and the error if any. A task is done when its status says so with the current
settings' hash and inputs, and its outputs are still the files it wrote. A ``running`` task
whose process has ended (`process_gone`) died.
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
DIED = "died"  # shown for a running status whose process has ended; never written
_VERSIONED = ("cellbench", "numpy", "scikit-image", "scikit-learn", "h5py", "pandas", "torch")


def read_status(path: Path) -> dict[str, Any] | None:
    """Read a status file, or None when there is none (or it is unreadable)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def fingerprint(paths: list[Path], root: Path) -> dict[str, list[int] | None]:
    """Size (bytes) and modification time (ns) of each path, keyed by its path under `root`.

    A task records the fingerprint of its inputs when it starts and of its outputs when it
    ends; when either differs later (an upstream task ran again, a store was truncated), the
    task is no longer done. Keys are relative to the results root, so a results tree copied
    elsewhere with its times kept (``cp -a``, ``rsync -a``) is still recognised.
    """
    prints: dict[str, list[int] | None] = {}
    for path in paths:
        key = _relative(Path(path), root)
        try:
            stat = Path(path).stat()
        except FileNotFoundError:
            prints[key] = None
        else:
            prints[key] = [stat.st_size, stat.st_mtime_ns]
    return prints


def why_not_done(
    status: dict[str, Any] | None,
    config_hash: str,
    outputs: dict[str, list[int] | None],
    inputs: dict[str, list[int] | None],
) -> str | None:
    """Why a task is not done with these settings, inputs and outputs; None when it is.

    Parameters
    ----------
    status : dict or None
        The task's status (`read_status`).
    config_hash : str
        Hash of the settings the task depends on now.
    outputs, inputs : dict
        `fingerprint` of the task's outputs and inputs now.
    """
    if status is None:
        return "never ran"
    if status.get("state") == RUNNING:
        return _running_reason(status)
    if status.get("state") != DONE:
        return f"its last run ended {status.get('state', 'unrecorded')}"
    if status.get("config_hash") != config_hash:
        return "its settings changed"
    if status.get("inputs") != inputs:
        changed = sorted(
            k
            for k in {*inputs, *(status.get("inputs") or {})}
            if inputs.get(k) != (status.get("inputs") or {}).get(k)
        )
        return f"input {changed[0]} changed since it ran" if changed else "its inputs changed"
    recorded = status.get("outputs")
    if not isinstance(recorded, dict):
        return "its status predates output fingerprints"
    for key, now in outputs.items():
        if now is None:
            return f"output {key} is missing"
        if recorded.get(key) != now:
            then = recorded.get(key)
            size = f" (size {then[0]} -> {now[0]} bytes)" if then and then[0] != now[0] else ""
            return f"output {key} changed since the task finished{size}"
    return None


def is_done(
    status: dict[str, Any] | None,
    config_hash: str,
    outputs: dict[str, list[int] | None],
    inputs: dict[str, list[int] | None],
) -> bool:
    """Whether a task finished with these settings and inputs, its outputs as it left them."""
    return why_not_done(status, config_hash, outputs, inputs) is None


def write_status(path: Path, **fields: Any) -> dict[str, Any]:
    """Write a task's status (atomically) with the run environment added; return it."""
    status = {
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_started": process_start_ticks(os.getpid()),
        "python": platform.python_version(),
        "argv": sys.argv,
        "versions": package_versions(),
        "slurm": slurm_ids(),
        **fields,
    }
    image = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    if image:  # the Apptainer image the task ran in
        status["container"] = image
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


def process_start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot, /proc), or None where unknown.

    Recorded beside the pid, so that a pid reused by a later process is not taken for the
    task's own.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) "
    return None if fields[0] == "Z" else int(fields[19])  # a zombie has ended


def process_gone(status: dict[str, Any]) -> bool | None:
    """Whether the process that wrote a ``running`` status has ended.

    Returns
    -------
    bool or None
        True when the status was written on this host and its process no longer exists
        (or the pid now belongs to another process); False when it still runs; None when
        this cannot be told here (another host: SLURM is asked instead).
    """
    if status.get("host") != socket.gethostname() or not isinstance(status.get("pid"), int):
        return None
    started = process_start_ticks(status["pid"])
    if started is None:
        return True
    recorded = status.get("pid_started")
    return recorded is not None and recorded != started


def _running_reason(status: dict[str, Any]) -> str:
    """Why a task whose status says ``running`` is not done: it died, or still runs."""
    where = f"pid {status.get('pid')} on {status.get('host')}"
    gone = process_gone(status)
    if gone:
        return f"it died ({where} is gone)"
    if gone is None:
        return f"its last run ({where}) recorded no end"
    return f"it is running ({where})"


def _relative(path: Path, root: Path) -> str:
    """`path` under `root` as a POSIX string (the path itself when it lies elsewhere)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
