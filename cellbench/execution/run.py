"""Plan stages, hand their tasks to an executor, and show each task as it ends."""

from __future__ import annotations

import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable

from tqdm import tqdm

from cellbench.config import Config
from cellbench.execution import debug, local
from cellbench.execution.plan import StagePlan, describe, plan
from cellbench.stages import TaskResult

EXECUTORS = ("auto", "slurm", "local", "debug")


def resolve_executor(name: str, config: Config) -> str:
    """Turn ``auto`` into ``slurm`` when `sbatch` is on PATH and a cluster profile is set."""
    if name != "auto":
        return name
    if shutil.which("sbatch") and config.execution.cluster is not None:
        return "slurm"
    return "local"


def execute(
    config: Config,
    stage: str,
    executor: str = "auto",
    force: bool = False,
    dry_run: bool = False,
    only: dict[str, set[str]] | None = None,
    factors=None,
    echo: Callable[[str], None] = print,
    verbose: bool = False,
) -> list[TaskResult] | dict[str, list[str]]:
    """Plan `stage` (a stage or ``all``) and run it, or submit it to SLURM.

    Locally, every stage runs after all tasks of the stage before it have ended, succeeded or
    not; on SLURM, each stage's array waits for the one before with ``afterany``. Tasks whose
    inputs are missing record ``skipped: input missing``.

    Parameters
    ----------
    only : dict of {stage: set of tasks}, optional
        Run just these tasks and what depends on them (``--retry-failed``).
    factors : Factors, optional
        Memory and time multipliers for SLURM jobs.
    verbose : bool
        Print the traceback of a task that failed on a bug or an OS error (always kept in
        its status file).

    Returns
    -------
    list of TaskResult, or dict of {stage: job ids}
        Tasks run locally, or the SLURM arrays submitted.
    """
    executor = resolve_executor(executor, config)
    plans = plan(config, stage, force=force, only=only)
    echo(f"experiment {config.name!r} -> {config.results_root}  (executor: {executor})")
    echo(describe(plans))
    if executor == "slurm":
        from cellbench.execution.slurm import Factors, submit_plans

        return submit_plans(
            config, plans, factors or Factors(), force=force, dry_run=dry_run, echo=echo
        )
    if dry_run:
        echo("dry run: nothing was run")
        return []
    results: list[TaskResult] = []
    for position, stage_plan in enumerate(plans):
        if position > 0 and not force:
            # Re-plan now that the stage before has run: its outputs decide what is done.
            fresh = plan(config, stage_plan.stage)[0]
            todo = [t for t in stage_plan.tasks if t in set(fresh.todo) | set(stage_plan.todo)]
            stage_plan = StagePlan(stage_plan.stage, stage_plan.tasks, todo)
        results += _run_stage(config, stage_plan, executor, force, echo, verbose)
    failed = [r for r in results if r.state == "failed"]
    echo(f"finished: {len(results) - len(failed)} task(s) ok, {len(failed)} failed")
    return results


def _run_stage(
    config: Config,
    stage_plan: StagePlan,
    executor: str,
    force: bool,
    echo: Callable[[str], None],
    verbose: bool = False,
) -> list[TaskResult]:
    """Run one stage's planned tasks (each rechecks its status) and show progress."""
    if not stage_plan.todo:
        echo(f"{stage_plan.stage}: all {len(stage_plan.tasks)} task(s) done, skipped")
        return []
    started = time.time()
    counts = {"done": 0, "skipped": 0, "failed": 0}
    bar = tqdm(
        total=len(stage_plan.todo),
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
        if verbose and result.traceback:
            echo(result.traceback.rstrip())

    runner = debug.run_tasks if executor == "debug" else local.run_tasks
    results = runner(config, stage_plan.stage, stage_plan.todo, force, on_result)
    bar.close()
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    echo(f"{stage_plan.stage}: {summary} in {time.time() - started:.1f} s")
    _echo_class_counts(config, results, echo)
    return results


def _echo_class_counts(config: Config, results: list[TaskResult], echo) -> None:
    """Print the cells per class over a stage's tasks, when its tasks count them."""
    totals: Counter = Counter()
    column = config.data.label_column
    for result in results:
        totals.update(result.details.get("class_counts", {}))
        column = result.details.get("class_column", column)
    if not totals:
        return
    width = max(len(name) for name in totals)
    echo(f"cells per {column} ({sum(totals.values())} in all):")
    for name, count in sorted(totals.items(), key=lambda item: -item[1]):
        echo(f"  {name:<{width}}  {count:>7}")
