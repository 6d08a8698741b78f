"""Where every task stands, from its status file and from SLURM's view of its job.

A task's own status file is the truth for tasks that ended on their own terms; SLURM is asked
about the rest, since a job that SLURM killed (scancel, time limit, out of memory) never got
to write its end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cellbench.config import Config
from cellbench.execution.slurm import read_submissions
from cellbench.execution.slurm_state import FAILED_STATES, UNKNOWN, query_states
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
    """The state of every task of `stages` (default: all), and which command SLURM answered."""
    stages = stages or list(STAGES)
    submissions = {stage: read_submissions(config, stage) for stage in stages}
    job_ids = [entry["job_id"] for stage in stages for entry in submissions[stage].values()]
    slurm = query_states(job_ids)
    views = []
    for stage in stages:
        for task in list_tasks(config, stage):
            entry = submissions[stage].get(task)
            slurm_state = slurm.states.get(entry["job_id"], UNKNOWN) if entry else None
            views.append(_view(config, stage, task, entry, slurm_state))
    return views, slurm.source


def _view(config: Config, stage: str, task: str, entry: dict | None, slurm_state: str | None):
    status = read_status(ResultsPaths(config.results_root).status_file(stage, task)) or {}
    state = status.get("state")
    log = f"log {entry['stdout']}" if entry else ""
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
        if slurm_state not in ("PENDING", "RUNNING", "REQUEUED"):
            return TaskView(stage, task, "stale", "settings or inputs changed since it ran")
    if state == RUNNING and process_gone(status) is False:  # alive on this host
        where = f"pid {status.get('pid')} on {status.get('host')}"
        return TaskView(stage, task, RUNNING, f"since {status.get('written_at', '?')}; {where}")
    if slurm_state in ("PENDING", "REQUEUED", "CONFIGURING"):
        return TaskView(stage, task, PENDING, f"job {entry['job_id']}")
    if slurm_state in ("RUNNING", "COMPLETING"):
        return TaskView(stage, task, RUNNING, f"job {entry['job_id']}; {log}")
    if state == FAILED:
        return TaskView(stage, task, FAILED, f"{status.get('error', '')}; {log}".strip("; "))
    if state == SKIPPED:
        return TaskView(stage, task, SKIPPED, status.get("message", ""))
    if slurm_state in FAILED_STATES or (slurm_state == "COMPLETED" and state != DONE):
        why = f"SLURM state {slurm_state}" + (" before the task recorded its end" if state else "")
        shown = DIED if state == RUNNING else FAILED
        return TaskView(stage, task, shown, f"{why}; job {entry['job_id']}; {log}")
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
    lines.append(f"(SLURM view from {source})")
    return "\n".join(lines)
