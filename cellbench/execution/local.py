"""The local executor: tasks of a stage in parallel processes on this machine, bounded.

submitit's LocalExecutor starts every job at once; here a process pool runs at most
`execution.local_workers` tasks at a time, each through the same `run_task` as on a cluster.
Each worker gets an even share of the submitting process's CPUs (`task_cpus`: the machine's,
or the SLURM job's when the local executor runs inside one) in ``CELLBENCH_TASK_CPUS``, which
the task's `run_task` binds its thread pools to, and its thread variables from the start.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from cellbench.allocation import LOCAL_SHARE, bind_threads, task_cpus
from cellbench.config import Config
from cellbench.execution.base import Job, Outcome, RunOptions
from cellbench.execution.plan import StagePlan
from cellbench.execution.stagewise import run_stages
from cellbench.paths import ResultsPaths
from cellbench.stages import task_hash
from cellbench.status import FAILED, read_status, write_status
from cellbench.tasks import TaskResult, run_task

_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def run_tasks(
    config: Config,
    stage: str,
    tasks: list[str],
    force: bool,
    on_result: Callable[[TaskResult], None],
) -> list[TaskResult]:
    """Run `tasks` of `stage` in at most `config.execution.local_workers` processes.

    A worker that dies (killed, out of memory, a crash in a C library) fails the tasks that
    were running; the tasks it had not started yet run in a fresh pool.
    """
    if not tasks:
        return []
    workers = min(config.execution.local_workers, len(tasks))
    env = {LOCAL_SHARE: str(worker_share(workers))}
    results: list[TaskResult] = []
    pending = list(tasks)
    while pending:
        pending = _run_pool(config, stage, pending, force, workers, env, on_result, results)
    return results


def _run_pool(
    config: Config,
    stage: str,
    tasks: list[str],
    force: bool,
    workers: int,
    env: dict[str, str],
    on_result: Callable[[TaskResult], None],
    results: list[TaskResult],
) -> list[str]:
    """Run `tasks` in one process pool; return those a dead worker kept from starting."""
    opened = time.time()
    not_started = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(env,)
    ) as pool:
        futures = {pool.submit(run_task, config, stage, task, force): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                result = future.result()
            except BrokenProcessPool as exc:  # a worker died; the pool is gone
                if not _started_since(config, stage, task, opened):
                    not_started.append(task)
                    continue
                result = _worker_died(config, stage, task, exc)
            except Exception as exc:  # the task's result could not come back
                result = _worker_died(config, stage, task, exc)
            on_result(result)
            results.append(result)
    if len(not_started) == len(tasks):  # no task could start at all: do not try forever
        for task in not_started:
            result = _worker_died(config, stage, task, BrokenProcessPool("no worker started"))
            on_result(result)
            results.append(result)
        return []
    return not_started


def _started_since(config: Config, stage: str, task: str, since: float) -> bool:
    """Whether a task recorded its start after `since` (its worker got to run it)."""
    status = read_status(ResultsPaths(config.results_root).status_file(stage, task)) or {}
    return float(status.get("started") or 0) >= since


def worker_share(workers: int) -> int:
    """CPUs of each of `workers` workers: an even share of this process's, at least 1."""
    return max(1, task_cpus() // workers)


def _init_worker(env: dict[str, str]) -> None:
    """Set the worker's CPU share, thread pools and logging; die with the parent."""
    os.environ.update(env)
    bind_threads()  # the worker is the task's: its pools, and its children's, from the start
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _die_with_parent()


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the submit that started it dies (``kill -9``).

    Without it a killed submit leaves its workers running on, unseen, still writing.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: workers end when their current task does
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _worker_died(config: Config, stage: str, task: str, exc: BaseException) -> TaskResult:
    """Record a task whose process died before it could record anything itself."""
    message = f"worker process died: {type(exc).__name__}: {exc}"
    try:
        write_status(
            ResultsPaths(config.results_root).status_file(stage, task),
            stage=stage,
            task=task,
            state=FAILED,
            error=message,
            config_hash=task_hash(config, stage, task),
        )
    except OSError as error:  # a full disk or a read-only root: say so, go on
        message += f" (and its status could not be written: {error})"
    return TaskResult(stage, task, FAILED, message)


# --- the executor protocol (cellbench.execution.base) ------------------------------------------


def available(config: Config) -> bool:
    """Whether ``--executor auto`` may choose this executor."""
    return True  # always possible


def execute(config: Config, plans: list[StagePlan], options: RunOptions) -> Outcome:
    """Run the plan here, stage after stage (`run_stages`)."""
    return run_stages(config, plans, options, run_tasks)


def wait(config: Config, outcome: Outcome, timeout_s: float) -> None:
    """Nothing to wait for: the tasks ran before `execute` returned."""


def task_jobs(config: Config, stages: list[str]) -> tuple[dict[tuple[str, str], Job], str]:
    """No queue, no jobs: a task's status file says it all."""
    return {}, "none"
