"""How many CPUs this task may use, from its allocation, and the thread pools bound to them.

A task runs under SLURM (``SLURM_CPUS_PER_TASK``), in a worker of the local executor (which
gives each worker its share of the cores in ``CELLBENCH_TASK_CPUS``), or alone; in every case
it never uses more CPUs than the process may run on (``os.sched_getaffinity``).

Numerical libraries size their thread pools from the whole machine unless told otherwise, so
two tasks on a 2-core node each start 2 threads per pool and fight (a ResNet-18 training task
ran 6.4x slower under SLURM than in the local executor). `threads_bound` fits every pool to the
allocation for the duration of one task and restores the process afterwards; `bind_threads`
does the same for good, for a process that belongs to one task. Both set

- the environment variables that pools read when they start (``OMP_NUM_THREADS``,
  ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, and ``LOKY_MAX_CPU_COUNT``, which caps
  joblib's ``cpu_count``): for libraries loaded later and for child processes (DataLoader
  workers, joblib's loky workers);
- the limits of the BLAS and OpenMP pools already loaded (`threadpoolctl`): numpy's OpenBLAS
  is loaded before any task starts, so variables alone would come too late;
- PyTorch's intra-op threads (`torch.set_num_threads`), when torch is imported.

`threads_bound` also stops, on exit, the joblib (loky) worker processes that the task
started: they were sized to its allocation, so no later task may reuse them, and a worker
process of the local executor that left them idle would wait their 300 s idle timeout before
it could exit (multiprocessing joins a process's children before its exit handlers run).

Examples
--------
>>> with threads_bound(2) as cpus:  # doctest: +SKIP
...     torch.get_num_threads()
2
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from threadpoolctl import threadpool_info, threadpool_limits

LOCAL_SHARE = "CELLBENCH_TASK_CPUS"  # set by the local executor for each of its workers

# Read by thread pools when they start, and inherited by child processes.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
JOBLIB_CPUS = "LOKY_MAX_CPU_COUNT"  # joblib.cpu_count() returns at most this


def task_cpus() -> int:
    """CPUs of this task's allocation (at least 1).

    The local executor's share when set (the most specific: a local run inside a SLURM job
    shares that job's CPUs), else ``SLURM_CPUS_PER_TASK``, else the CPUs this process may run
    on; always capped by the latter.
    """
    usable = usable_cpus()
    for variable in (LOCAL_SHARE, "SLURM_CPUS_PER_TASK"):
        value = os.environ.get(variable, "")
        if value.strip().isdigit() and int(value) > 0:
            return min(int(value), usable)
    return usable


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; the CPU count without one), >= 1."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, usable or 1)


def thread_variables(cpus: int) -> dict[str, str]:
    """The environment variables that size thread pools and joblib to `cpus` CPUs.

    Examples
    --------
    >>> thread_variables(2)["OMP_NUM_THREADS"]
    '2'
    """
    return {name: str(cpus) for name in (*THREAD_VARIABLES, JOBLIB_CPUS)}


@dataclass(frozen=True)
class Binding:
    """What a process's thread pools were set to: the CPUs, torch's threads, the BLAS pools'.

    ``torch_threads`` is None when torch was not imported (it then reads
    ``OMP_NUM_THREADS`` when it is); ``pool_threads`` maps each loaded pool
    (``openblas``, ``openmp``, ``mkl``) to its largest thread count.
    """

    cpus: int
    torch_threads: int | None
    pool_threads: dict[str, int]

    def as_dict(self) -> dict:
        """The binding as a status-file entry."""
        return {"cpus": self.cpus, "torch": self.torch_threads, "pools": self.pool_threads}


def bind_threads(cpus: int | None = None) -> int:
    """Fit this process's thread pools to `cpus` (default: `task_cpus`) for good.

    For a process that belongs to one task: a SLURM job, a worker of the local executor.
    Also sets torch's inter-op threads where that is still allowed (once, before any
    inter-op work). To bind for one task and restore afterwards, use `threads_bound`.

    Returns
    -------
    int
        The CPUs bound to.
    """
    cpus = _checked(cpus)
    os.environ.update(thread_variables(cpus))
    threadpool_limits(limits=cpus)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(cpus)
        _set_interop_threads(torch, cpus)
    return cpus


@contextmanager
def threads_bound(cpus: int | None = None) -> Iterator[int]:
    """Fit the thread pools to `cpus` (default: `task_cpus`) inside the block, then restore.

    Restores the environment variables, the limits of the pools loaded on entry and torch's
    intra-op threads, and stops joblib's worker processes (`stop_joblib_workers`), so that a
    process running tasks one after the other (the debug executor, a local worker) is left
    as it was. A library first imported inside the block keeps the size it
    read then (torch's intra-op threads: the allocation). Inter-op threads are never touched:
    torch allows setting them once only.

    Yields
    ------
    int
        The CPUs bound to.
    """
    cpus = _checked(cpus)
    saved_env = {name: os.environ.get(name) for name in thread_variables(cpus)}
    torch = sys.modules.get("torch")
    saved_torch = torch.get_num_threads() if torch is not None else None
    limits = threadpool_limits(limits=cpus)
    os.environ.update(thread_variables(cpus))
    if torch is not None:
        torch.set_num_threads(cpus)
    try:
        yield cpus
    finally:
        stop_joblib_workers()
        limits.restore_original_limits()
        _restore_env(saved_env)
        if torch is not None and saved_torch is not None:
            torch.set_num_threads(saved_torch)


def stop_joblib_workers() -> None:
    """Stop joblib's reusable loky worker processes, if any were started; wait for them.

    joblib keeps them for reuse, idle for up to 300 s. The next `Parallel` call starts fresh
    ones, sized by the environment of that moment.
    """
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)


def current_binding(cpus: int) -> Binding:
    """The thread counts in effect now, for a task's status file (a few milliseconds)."""
    torch = sys.modules.get("torch")
    pools: dict[str, int] = {}
    for pool in threadpool_info():
        name = pool.get("internal_api", "?")
        pools[name] = max(pools.get(name, 0), int(pool.get("num_threads") or 0))
    return Binding(cpus, torch.get_num_threads() if torch is not None else None, pools)


def _checked(cpus: int | None) -> int:
    """`cpus`, or the allocation's when None; a ValueError for fewer than 1."""
    if cpus is None:
        return task_cpus()
    if cpus < 1:
        raise ValueError(f"cpus must be at least 1; got {cpus}")
    return int(cpus)


def _set_interop_threads(torch, cpus: int) -> None:
    """Set the inter-op pool of torch to `cpus` threads, unless torch no longer allows it."""
    if torch.get_num_interop_threads() == cpus:
        return
    try:
        torch.set_num_interop_threads(cpus)
    except RuntimeError:  # set already, or inter-op work has started: keep what it has
        return


def _restore_env(saved: dict[str, str | None]) -> None:
    """Put environment variables back as saved (None: was not set)."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
