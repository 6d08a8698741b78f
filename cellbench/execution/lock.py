"""One submit per results root at a time: a lock file held while a submit plans and runs.

Two submits of one experiment would each plan the same tasks and run them twice. `submit.py`
holds `_submit.lock` (`filelock`, released by the OS when the process dies, so a killed
submit never leaves it held) while it plans and runs or submits; who holds it is written
beside it, so that a second submit can say whom it waits for. ``--status`` and
``--dry-run`` write nothing and take no lock. A single task has its own lock too
(`cellbench.tasks.run_task`), which keeps two SLURM array elements off one task.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator

import filelock

from cellbench.config import Config
from cellbench.errors import CellbenchError
from cellbench.io.atomic import write_json
from cellbench.paths import ResultsPaths
from cellbench.status import read_status

log = logging.getLogger(__name__)

# A root we may not write to cannot be changed by a second submit either: run unlocked there,
# and let each task fail with its own one-line error.
_UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC}


class SubmitLocked(CellbenchError):
    """Another submit holds the results root; the message names its host, pid and start."""


@contextlib.contextmanager
def submit_lock(config: Config) -> Iterator[None]:
    """Hold the results root's submit lock for the block; raise `SubmitLocked` if taken."""
    paths = ResultsPaths(config.results_root)
    lock = filelock.FileLock(paths.submit_lock)
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise SubmitLocked(_held_by(paths)) from None
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        log.warning("cannot lock %s (%s): running without the submit lock", paths.root, exc)
        yield
        return
    try:
        _record_holder(paths)
        yield
    finally:
        lock.release()


def _record_holder(paths: ResultsPaths) -> None:
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv,
    }
    try:
        write_json(paths.submit_lock_holder, holder)
    except OSError as exc:  # the lock still holds; only the holder's name is unknown
        log.warning("cannot record the submit lock's holder in %s: %s", paths.root, exc)


def _held_by(paths: ResultsPaths) -> str:
    holder = read_status(paths.submit_lock_holder) or {}
    return (
        f"another submit is running on {paths.root}: pid {holder.get('pid', '?')} on host "
        f"{holder.get('host', '?')}, started {holder.get('started', '?')} "
        f"({' '.join(holder.get('argv') or [])}); wait for it to end, or watch it with --status"
    )
