"""The debug executor: every task in this process, one after the other (pdb works).

Threads: each task's `run_task` binds the thread pools to the CPUs of this process's
allocation (`cellbench.allocation.task_cpus`: the affinity mask, or the SLURM job's
``--cpus-per-task`` inside one) and restores them when the task ends: the thread variables,
the BLAS/OpenMP limits and torch's intra-op threads are as before. So a debug run inside a
SLURM job uses the job's CPUs, and the calling process (a notebook, pytest) is not left
shrunk; a library first imported during a task keeps the size it read then (the allocation),
and torch's inter-op threads are never changed here (torch allows setting them only once).
"""

from __future__ import annotations

from collections.abc import Callable

from cellbench.config import Config
from cellbench.execution.base import Job, Outcome, RunOptions
from cellbench.execution.plan import StagePlan
from cellbench.execution.stagewise import run_stages
from cellbench.tasks import TaskResult, run_task


def run_tasks(
    config: Config,
    stage: str,
    tasks: list[str],
    force: bool,
    on_result: Callable[[TaskResult], None],
) -> list[TaskResult]:
    """Run `tasks` of `stage` in order, reporting each result as it ends."""
    results = []
    for task in tasks:
        result = run_task(config, stage, task, force=force)
        on_result(result)
        results.append(result)
    return results


# --- the executor protocol (cellbench.execution.base) ------------------------------------------


def available(config: Config) -> bool:
    """Whether ``--executor auto`` may choose this executor."""
    return False  # only when asked for


def execute(config: Config, plans: list[StagePlan], options: RunOptions) -> Outcome:
    """Run the plan here, stage after stage (`run_stages`)."""
    return run_stages(config, plans, options, run_tasks)


def wait(config: Config, outcome: Outcome, timeout_s: float) -> None:
    """Nothing to wait for: the tasks ran before `execute` returned."""


def task_jobs(config: Config, stages: list[str]) -> tuple[dict[tuple[str, str], Job], str]:
    """No queue, no jobs: a task's status file says it all."""
    return {}, "none"
