"""The debug executor: every task in this process, one after the other (pdb works)."""

from __future__ import annotations

from collections.abc import Callable

from cellbench.config import Config
from cellbench.stages import TaskResult, run_task


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
