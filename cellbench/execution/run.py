"""Plan stages and hand them to an executor: what `jobs/submit.py` calls."""

from __future__ import annotations

from collections.abc import Callable

from cellbench.config import Config
from cellbench.data.plates import check_exclusions
from cellbench.execution import EXECUTORS, executor, executor_names
from cellbench.execution.base import Factors, Outcome, RunOptions
from cellbench.execution.plan import describe, plan

__all__ = ["EXECUTORS", "execute", "resolve_executor"]


def resolve_executor(name: str, config: Config) -> str:
    """Turn ``auto`` into the first executor available here (SLURM, else local)."""
    if name != "auto":
        return name
    return next(n for n in executor_names() if executor(n).available(config))


def execute(
    config: Config,
    stage: str,
    executor_name: str = "auto",
    force: bool = False,
    dry_run: bool = False,
    only: dict[str, set[str]] | None = None,
    factors: Factors | None = None,
    echo: Callable[[str], None] = print,
    verbose: bool = False,
) -> Outcome:
    """Plan `stage` (a stage or ``all``) and run it, or submit it, with an executor.

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
    Outcome
        The tasks run here, or the jobs submitted.

    Names of ``data.exclude`` that match nothing in any plate are warned about here, once.
    """
    name = resolve_executor(executor_name, config)
    check_exclusions(config)
    plans = plan(config, stage, force=force, only=only)
    echo(f"experiment {config.name!r} -> {config.results_root}  (executor: {name})")
    echo(describe(plans))
    options = RunOptions(force, dry_run, factors or Factors(), echo, verbose)
    return executor(name).execute(config, plans, options)
