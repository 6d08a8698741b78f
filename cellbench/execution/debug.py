"""The debug executor: every task in this process, one after the other (pdb works)."""

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
