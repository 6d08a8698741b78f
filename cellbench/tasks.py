"""Running one task: its lock, its status file, and how it ended.

`run_task` is what every executor calls (a local worker, the debug loop, a SLURM array
element, `cellbench run` in a container). It skips a task that is done, takes the task's lock
so that no second runner works on it at once, fits the thread pools of PyTorch, BLAS and
OpenMP to the task's CPU allocation (`cellbench.allocation.threads_bound`, restored after the
task), records ``running`` (host, pid, SLURM ids, CPUs), removes what a killed earlier run
left, calls the stage's runner, and records ``done``, ``skipped`` (input missing) or
``failed`` with a one-line reason and the thread counts it ran with. It never raises for the
task's own failure, so the other tasks of a stage go on.
"""

from __future__ import annotations

import errno
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import filelock

from cellbench import stages
from cellbench.allocation import current_binding, threads_bound
from cellbench.config import Config
from cellbench.errors import CellbenchError, InputMissing
from cellbench.io.atomic import remove_leftovers, remove_leftovers_under
from cellbench.paths import ResultsPaths
from cellbench.runners import parse_model_task
from cellbench.stages import is_task_done, list_tasks, task_hash, task_inputs, task_outputs
from cellbench.status import DONE, FAILED, RUNNING, SKIPPED, fingerprint, read_status, write_status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskResult:
    """How one task ended: ``done``, ``skipped`` (already done, or input missing) or ``failed``."""

    stage: str
    task: str
    state: str
    message: str = ""
    seconds: float = 0.0
    details: dict = field(default_factory=dict)
    traceback: str = ""  # of a bug or an OS error; shown with -v, always in the status file

    @property
    def ok(self) -> bool:
        """Whether the task did not fail."""
        return self.state != FAILED


def run_task(config: Config, stage: str, task: str, force: bool = False) -> TaskResult:
    """Run one task, record its status, and never raise for the task's own failure.

    A failure of the input (a `CellbenchError`) is recorded with its one-line message, an OS
    error (disk full, read-only folder) with the path and the error, a bug with its
    traceback. Either way the caller gets a `TaskResult` and other tasks go on. A task runs
    at most once at a time: a second caller (another array element, a second submit) finds
    its lock held and skips it. The task's numerical libraries use the CPUs of its
    allocation (`cellbench.allocation.task_cpus`), whatever the executor; the caller's thread
    settings are restored when it returns.
    """
    if task not in list_tasks(config, stage):
        raise CellbenchError(
            f"stage {stage!r} has no task {task!r}; tasks: {list_tasks(config, stage)}"
        )
    paths = ResultsPaths(config.results_root)
    status_path = paths.status_file(stage, task)
    if not force and is_task_done(config, stage, task):
        return TaskResult(stage, task, SKIPPED, "already done")
    lock = filelock.FileLock(paths.task_lock(stage, task))
    started = time.time()
    try:
        status_path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except filelock.Timeout:
        holder = read_status(status_path) or {}
        where = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
        return TaskResult(stage, task, SKIPPED, f"running elsewhere ({where})")
    except OSError as exc:
        return _failed_to_record(stage, task, exc, started)
    try:
        if not force and is_task_done(config, stage, task):  # done while we waited
            return TaskResult(stage, task, SKIPPED, "already done")
        with threads_bound() as cpus:
            return _run_locked(config, stage, task, status_path, started, cpus)
    finally:
        lock.release()


def _run_locked(
    config: Config, stage: str, task: str, status_path: Path, started: float, cpus: int
) -> TaskResult:
    """Run a task whose lock this process holds, on `cpus` CPUs; record how it ended."""
    outputs = task_outputs(config, stage, task)
    common = {
        "stage": stage,
        "task": task,
        "config_hash": task_hash(config, stage, task),
        "inputs": fingerprint(task_inputs(config, stage, task), config.results_root),
        "started": started,
        "cpus": cpus,
    }
    try:
        write_status(status_path, state=RUNNING, **common)
        for leftover in _remove_leftovers(config, stage, task, outputs):
            log.info("%s/%s: removed %s left by an earlier run", stage, task, leftover)
        details = stages.stage(stage).run(config, task, common["config_hash"])
    except InputMissing as exc:
        message = f"input missing: {exc}"
        log.warning("%s/%s skipped: %s", stage, task, message)
        return _record_end(status_path, common, SKIPPED, message, message=message)
    except Exception as exc:  # the task failed; record why and let the others go on
        message, trace = describe_failure(exc)
        log.error("%s/%s failed: %s", stage, task, message)
        return _record_end(
            status_path, common, FAILED, message, error=message, traceback=trace or None
        )
    root = config.results_root
    return _record_end(
        status_path,
        common,
        DONE,
        _summary(details),
        outputs=fingerprint(outputs, root),
        details=details,
    )


def _record_end(status_path: Path, common: dict, state: str, summary: str, **fields) -> TaskResult:
    """Write a task's final status and return its result (failed when it cannot be written).

    The status records the thread counts the task ended with (``threads``: CPUs, torch's
    intra-op threads, each BLAS/OpenMP pool's).
    """
    stage, task = common["stage"], common["task"]
    seconds = time.time() - common["started"]
    trace = fields.get("traceback") or ""
    threads = current_binding(common["cpus"]).as_dict()
    try:
        write_status(status_path, state=state, seconds=seconds, threads=threads, **common, **fields)
    except OSError as exc:
        return _failed_to_record(stage, task, exc, common["started"])
    details = fields.get("details") or {}
    return TaskResult(stage, task, state, summary, seconds, details, trace)


def _failed_to_record(stage: str, task: str, exc: OSError, started: float) -> TaskResult:
    """The result of a task whose status could not be written (full disk, read-only root)."""
    message, trace = describe_failure(exc)
    message = f"cannot record its status: {message}"
    log.error("%s/%s failed: %s", stage, task, message)
    return TaskResult(stage, task, FAILED, message, time.time() - started, {}, trace)


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """One line for a task's failure, and the traceback where one helps.

    A `CellbenchError` is bad input: its message alone. An OS error names the error and
    the path (``No space left on device: /r/crops/.P1.tmp-1a2b.h5``). Anything else is a
    bug: its type, message and traceback.
    """
    if isinstance(exc, CellbenchError):
        return str(exc), ""
    trace = "".join(traceback.format_exception(exc))
    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, "OSError")
        where = exc.filename or _oserror_path(exc)
        text = exc.strerror or str(exc)
        return f"{name}: {text}" + (f": {where}" if where else ""), trace
    return f"{type(exc).__name__}: {exc}", trace


def _oserror_path(exc: OSError) -> str:
    """The file an OS error came from, when only its cause or message says (h5py, pandas)."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.filename:
        return str(cause.filename)
    return ""


def _remove_leftovers(config: Config, stage: str, task: str, outputs: list[Path]) -> list[Path]:
    """Remove what a killed earlier run of the task left: temporary files of its outputs."""
    paths = ResultsPaths(config.results_root)
    removed = [leftover for output in outputs for leftover in remove_leftovers(output)]
    unit = stages.stage(stage).unit
    if unit == stages.MODEL_SEED:  # a seed folder belongs to its model's tasks alone
        model, seed = parse_model_task(task)
        removed += remove_leftovers_under(paths.model_dir(model, seed))
    elif unit == stages.EXPERIMENT:
        removed += remove_leftovers_under(paths.report_dir)
    elif stage == "segment":  # a synthetic plate half-written by a killed run
        removed += remove_leftovers(paths.input_plate(task))
    return removed


def _summary(details: dict) -> str:
    """A short line of a task's scalar results, e.g. ``cells 478, fields 36``."""

    def show(value: int | float | str) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    return ", ".join(
        f"{k} {show(v)}" for k, v in details.items() if isinstance(v, int | float | str)
    )
