"""Where every task stands, from its status file and from its scheduler's view of its job.

A task's own status file is the truth for tasks that ended on their own terms; the executor
that submitted it is asked about the rest, since a job that the scheduler killed (scancel, time
limit, out of memory) never got to write its end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cellbench.config import Config
from cellbench.execution import executor, executor_names
from cellbench.execution.base import JOB_COMPLETED, JOB_FAILED, JOB_PENDING, JOB_RUNNING, Job
from cellbench.paths import ResultsPaths
from cellbench.stages import STAGES, is_task_done, list_tasks
from cellbench.status import DIED, DONE, FAILED, RUNNING, SKIPPED, process_gone, read_status

PENDING = "pending"
NOT_RUN = "not run"
PARTIAL = "partial"  # done, but some fields of the plate failed


@dataclass(frozen=True)
class TaskView:
    """One task's state (done, failed, died, skipped, running, pending, stale, not run) and why."""

    stage: str
    task: str
    state: str
    detail: str = ""


def collect(config: Config, stages: list[str] | None = None) -> tuple[list[TaskView], str]:
    """The state of every task of `stages` (default: all), and who answered for the jobs."""
    stages = stages or list(STAGES)
    jobs: dict[tuple[str, str], Job] = {}
    sources = []
    for name in executor_names():
        known, source = executor(name).task_jobs(config, stages)
        jobs.update(known)
        if known:
            sources.append(f"{name}: {source}")
    views = [
        _view(config, stage, task, jobs.get((stage, task)))
        for stage in stages
        for task in list_tasks(config, stage)
    ]
    return views, "; ".join(sources) or "none"


def _view(config: Config, stage: str, task: str, job: Job | None) -> TaskView:
    status = read_status(ResultsPaths(config.results_root).status_file(stage, task)) or {}
    state = status.get("state")
    job_state = job.state if job else None
    log = f"log {job.log}" if job else ""
    if state == DONE:
        if is_task_done(config, stage, task):
            field_errors = status.get("details", {}).get("field_errors") or {}
            if field_errors:
                first = next(iter(field_errors.items()))
                return TaskView(
                    stage,
                    task,
                    PARTIAL,
                    f"{len(field_errors)} field(s) failed, e.g. {first[0]}: {first[1]}",
                )
            return TaskView(stage, task, DONE)
        if job_state not in (JOB_PENDING, JOB_RUNNING):
            return TaskView(stage, task, "stale", "settings or inputs changed since it ran")
    if state == RUNNING and process_gone(status) is False:  # alive on this host
        where = f"pid {status.get('pid')} on {status.get('host')}"
        return TaskView(stage, task, RUNNING, f"since {status.get('written_at', '?')}; {where}")
    if job_state == JOB_PENDING:
        return TaskView(stage, task, PENDING, f"job {job.job_id}")
    if job_state == JOB_RUNNING and job.tasks_before and state != RUNNING:
        detail = f"job {job.job_id} runs {job.tasks_before} task(s) before this one"
        return TaskView(stage, task, PENDING, detail)
    if job_state == JOB_RUNNING:
        return TaskView(stage, task, RUNNING, f"job {job.job_id}; {log}")
    if state == FAILED:
        return TaskView(stage, task, FAILED, f"{status.get('error', '')}; {log}".strip("; "))
    if state == SKIPPED:
        return TaskView(stage, task, SKIPPED, status.get("message", ""))
    if job_state == JOB_FAILED or (job_state == JOB_COMPLETED and state != DONE):
        why = f"{job.scheduler} state {job.native_state}"
        why += " before the task recorded its end" if state else ""
        shown = DIED if state == RUNNING else FAILED
        return TaskView(stage, task, shown, f"{why}; job {job.job_id}; {log}")
    if state == RUNNING:
        where = f"pid {status.get('pid')} on {status.get('host')}"
        if process_gone(status):
            return TaskView(stage, task, DIED, f"{where} ended without recording an end")
        return TaskView(stage, task, RUNNING, f"since {status.get('written_at', '?')}; {where}")
    return TaskView(stage, task, NOT_RUN)


def failed_tasks(views: list[TaskView]) -> dict[str, set[str]]:
    """Tasks to resubmit with ``--retry-failed``: failed, died, partial, skipped for input."""
    chosen: dict[str, set[str]] = {}
    for view in views:
        if view.state in (FAILED, DIED, SKIPPED, PARTIAL):
            chosen.setdefault(view.stage, set()).add(view.task)
    return chosen


def format_status(views: list[TaskView], source: str) -> str:
    """Counts per stage, then one line per task that is not done or pending."""
    lines = []
    for stage in dict.fromkeys(v.stage for v in views):
        counts = Counter(v.state for v in views if v.stage == stage)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        lines.append(f"{stage:<10} {summary}")
    details = [v for v in views if v.state not in (DONE, PENDING, NOT_RUN)]
    if details:
        lines.append("")
        lines += [f"  {v.stage}/{v.task}: {v.state}  {v.detail}".rstrip() for v in details]
    lines.append(f"(jobs as seen by {source})")
    return "\n".join(lines)
