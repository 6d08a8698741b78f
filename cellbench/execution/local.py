"""The local executor: tasks of a stage in parallel processes on this machine, bounded.

submitit's LocalExecutor starts every job at once; here a process pool runs at most
`execution.local_workers` tasks at a time, each through the same `run_task` as on a cluster.
Each worker gets an even share of the cores for its numerical libraries.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

from cellbench.config import Config
from cellbench.paths import ResultsPaths
from cellbench.stages import TaskResult, run_task, task_hash
from cellbench.status import FAILED, write_status

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run_tasks(
    config: Config,
    stage: str,
    tasks: list[str],
    force: bool,
    on_result: Callable[[TaskResult], None],
) -> list[TaskResult]:
    """Run `tasks` of `stage` in at most `config.execution.local_workers` processes.

    A worker that dies (killed, out of memory) fails its task with a status saying so; the
    other tasks go on.
    """
    if not tasks:
        return []
    workers = min(config.execution.local_workers, len(tasks))
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {name: os.environ.get(name, threads) for name in _THREAD_VARIABLES}
    results = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(env,)
    ) as pool:
        futures = {pool.submit(run_task, config, stage, task, force): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the worker process itself died
                result = _worker_died(config, stage, task, exc)
            on_result(result)
            results.append(result)
    return results


def _init_worker(env: dict[str, str]) -> None:
    """Set thread counts and logging in a fresh worker process."""
    os.environ.update(env)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _worker_died(config: Config, stage: str, task: str, exc: BaseException) -> TaskResult:
    """Record a task whose process died before it could record anything itself."""
    message = f"worker process died: {type(exc).__name__}: {exc}"
    write_status(
        ResultsPaths(config.results_root).status_file(stage, task),
        stage=stage,
        task=task,
        state=FAILED,
        error=message,
        config_hash=task_hash(config, stage, task),
    )
    return TaskResult(stage, task, FAILED, message)
