"""What every executor shares: the options of a run, its outcome, the retry factors.

An executor is a module of `cellbench.execution` (``local``, ``debug``, ``slurm``) with the
same four functions, looked up by name in `cellbench.execution.executor`:

- ``available(config) -> bool``: whether ``--executor auto`` may choose it here;
- ``execute(config, plans, options) -> Outcome``: run or submit the planned tasks;
- ``wait(config, outcome, timeout_s) -> None``: wait for what it submitted (TimeoutError at
  the deadline); nothing to do for executors that ran the tasks already;
- ``task_jobs(config, stages) -> (dict of (stage, task) -> Job, source)``: the jobs it knows
  of each task, for ``--status``; empty for executors without a queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cellbench.tasks import TaskResult


@dataclass(frozen=True)
class Factors:
    """Memory and time multipliers for resubmitted tasks (--mem-factor, --time-factor)."""

    mem: float = 1.0
    time: float = 1.0


@dataclass(frozen=True)
class RunOptions:
    """How to run a plan: redo done tasks, only show it, scale resources, where to print."""

    force: bool = False
    dry_run: bool = False
    factors: Factors = Factors()
    echo: Callable[[str], None] = print
    verbose: bool = False  # print the traceback of a task that failed on a bug or OS error


@dataclass
class Outcome:
    """What a run did: the tasks run here, and the jobs submitted (stage -> job ids)."""

    results: list[TaskResult] = field(default_factory=list)
    submitted: dict[str, list[str]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Whether a task run here failed."""
        return any(result.state == "failed" for result in self.results)


# What a scheduler's job state means, whatever the scheduler calls it.
JOB_PENDING, JOB_RUNNING, JOB_COMPLETED, JOB_FAILED, JOB_UNKNOWN = (
    "pending",
    "running",
    "completed",
    "failed",
    "unknown",
)


@dataclass(frozen=True)
class Job:
    """A scheduler's job of one task.

    Its id, its state as every executor names it (``JOB_*``), the scheduler and its own name
    for that state (SLURM, ``CANCELLED``), the job's log, and how many tasks the job runs
    before this one (a job can run several short tasks in turn).
    """

    job_id: str
    state: str
    scheduler: str = ""
    native_state: str = ""
    log: str = ""
    tasks_before: int = 0  # tasks the same job runs before this one (SLURM tasks_per_job)
