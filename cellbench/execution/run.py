"""Plan stages, hand their tasks to an executor, and show each task as it ends."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable

from tqdm import tqdm

from cellbench.config import Config
from cellbench.execution import debug, local
from cellbench.execution.plan import StagePlan, describe, plan
from cellbench.stages import TaskResult

EXECUTORS = ("auto", "local", "debug")


def resolve_executor(name: str) -> str:
    """Turn ``auto`` into a concrete executor for this machine."""
    if name != "auto":
        return name
    if shutil.which("sbatch"):
        print(
            "note: sbatch found, but the SLURM executor is not available yet; running locally",
            file=sys.stderr,
        )
    return "local"


def execute(
    config: Config,
    stage: str,
    executor: str = "auto",
    force: bool = False,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> list[TaskResult]:
    """Plan `stage` (a stage or ``all``) and run it stage after stage.

    Every stage runs after all tasks of the stage before it have ended, succeeded or not;
    tasks whose inputs are missing record ``skipped: input missing``.

    Returns
    -------
    list of TaskResult
        Every task that ran (none for a dry run).
    """
    executor = resolve_executor(executor)
    plans = plan(config, stage, force=force)
    echo(f"experiment {config.name!r} -> {config.results_root}  (executor: {executor})")
    echo(describe(plans))
    if dry_run:
        echo("dry run: nothing was run")
        return []
    results: list[TaskResult] = []
    for stage_plan in plans:
        results += _run_stage(config, stage_plan, executor, force, echo)
    failed = [r for r in results if r.state == "failed"]
    echo(f"finished: {len(results) - len(failed)} task(s) ok, {len(failed)} failed")
    return results


def _run_stage(
    config: Config, stage_plan: StagePlan, executor: str, force: bool, echo: Callable[[str], None]
) -> list[TaskResult]:
    """Run one stage's tasks (rechecking each against its status) and show progress."""
    tasks = stage_plan.tasks if force else stage_plan.todo
    if not tasks:
        echo(f"{stage_plan.stage}: all {len(stage_plan.tasks)} task(s) done, skipped")
        return []
    started = time.time()
    counts = {"done": 0, "skipped": 0, "failed": 0}
    bar = tqdm(
        total=len(tasks),
        desc=stage_plan.stage,
        unit="task",
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
    )

    def on_result(result: TaskResult) -> None:
        counts[result.state] = counts.get(result.state, 0) + 1
        bar.update(1)
        line = f"  {result.stage}/{result.task}: {result.state} ({result.seconds:.1f} s)"
        echo(f"{line} {result.message}".rstrip())

    runner = debug.run_tasks if executor == "debug" else local.run_tasks
    results = runner(config, stage_plan.stage, tasks, force, on_result)
    bar.close()
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    echo(f"{stage_plan.stage}: {summary} in {time.time() - started:.1f} s")
    return results
