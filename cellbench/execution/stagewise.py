"""Run a plan on this machine, stage after stage: what the local and debug executors share.

Every stage runs after all tasks of the stage before it have ended, succeeded or not; before
each stage the plan is made again, since the stage before decides what is done. Each task is
shown as it ends, with a progress bar on a terminal.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable

from tqdm import tqdm

from cellbench.config import Config
from cellbench.execution.base import Outcome, RunOptions
from cellbench.execution.plan import StagePlan, plan
from cellbench.tasks import TaskResult

# run_tasks(config, stage, tasks, force, on_result) -> results: how one stage's tasks run
TaskRunner = Callable[[Config, str, list[str], bool, Callable[[TaskResult], None]], list]


def run_stages(
    config: Config, plans: list[StagePlan], options: RunOptions, run_tasks: TaskRunner
) -> Outcome:
    """Run every stage of `plans` with `run_tasks`; the results of every task run."""
    echo = options.echo
    if options.dry_run:
        echo("dry run: nothing was run")
        return Outcome()
    results: list[TaskResult] = []
    for position, stage_plan in enumerate(plans):
        if position > 0 and not options.force:
            # Re-plan now that the stage before has run: its outputs decide what is done.
            fresh = plan(config, stage_plan.stage)[0]
            todo = [t for t in stage_plan.tasks if t in set(fresh.todo) | set(stage_plan.todo)]
            stage_plan = StagePlan(stage_plan.stage, stage_plan.tasks, todo)
        results += _run_stage(config, stage_plan, options, run_tasks)
    failed = [r for r in results if r.state == "failed"]
    echo(f"finished: {len(results) - len(failed)} task(s) ok, {len(failed)} failed")
    return Outcome(results=results)


def _run_stage(
    config: Config, stage_plan: StagePlan, options: RunOptions, run_tasks: TaskRunner
) -> list[TaskResult]:
    """Run one stage's planned tasks (each rechecks its status) and show progress."""
    echo = options.echo
    if not stage_plan.tasks:  # e.g. segment for pre-cut crops, profiles when not configured
        echo(f"{stage_plan.stage}: no task in this experiment")
        return []
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
        if options.verbose and result.traceback:
            echo(result.traceback.rstrip())

    results = run_tasks(config, stage_plan.stage, stage_plan.todo, options.force, on_result)
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
