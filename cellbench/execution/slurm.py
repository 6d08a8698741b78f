"""The SLURM executor: one submitit job array per stage, chained with `afterany`.

`afterany` rather than `afterok`: with `afterok`, one failed plate would leave every later
stage pending forever. Each task checks its own inputs instead and records ``skipped: input
missing``; the aggregate lists what is missing. Arrays longer than the cluster's MaxArraySize
are split. Short tasks can share an array element (``tasks_per_job``), which runs them one
after another in one interpreter. Every element runs through `TaskRunner`, which submitit can
checkpoint: on preemption or time limit the job is requeued, its done tasks are skipped and
the one cut short resumes (training from its last epoch).

Threads follow the job's ``--cpus-per-task``: the sbatch script exports the thread variables
from ``SLURM_CPUS_PER_TASK`` (`thread_setup`), so every library sizes its pools to the job from
interpreter start, inside a container too (Apptainer passes the environment on), and the task
binds the pools already loaded (`bind_threads`) before it runs.
"""

from __future__ import annotations

import math
import shutil
import time
from typing import Any

import submitit

from cellbench.allocation import bind_threads, thread_variables
from cellbench.config import ClusterProfile, Config, SlurmResources
from cellbench.errors import CellbenchError, TaskFailed
from cellbench.execution.base import (
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_RUNNING,
    JOB_UNKNOWN,
    Factors,
    Job,
    Outcome,
    RunOptions,
)
from cellbench.execution.container import container_python
from cellbench.execution.plan import StagePlan
from cellbench.execution.slurm_state import (
    FAILED_STATES,
    UNKNOWN,
    max_array_size,
    query_states,
    wait_for_jobs,
)
from cellbench.execution.submissions import read_submissions, record_submissions
from cellbench.paths import ResultsPaths
from cellbench.status import FAILED
from cellbench.tasks import TaskResult, run_task


class TaskRunner(submitit.helpers.Checkpointable):
    """Run a group of tasks in one SLURM job, in order; on preemption or timeout, requeue it.

    Most stages give each array element one task. Short tasks can share an element
    (``tasks_per_job`` in the cluster profile), so that their interpreter start and imports
    are paid once. A task that fails does not stop the ones after it; when any failed, the
    job raises `TaskFailed` at the end, so SLURM records it as FAILED too.
    """

    def __call__(
        self, config: Config, stage: str, tasks: list[str], force: bool
    ) -> list[TaskResult]:
        """Run the tasks on the job's CPUs; raise when one of them failed."""
        bind_threads()  # this process is the tasks': SLURM_CPUS_PER_TASK
        results = [run_task(config, stage, task, force=force) for task in tasks]
        failed = [f"{stage}/{r.task}: {r.message}" for r in results if r.state == FAILED]
        if failed:
            raise TaskFailed(f"{len(failed)} of {len(tasks)} task(s) failed: " + "; ".join(failed))
        return results

    def checkpoint(self, config: Config, stage: str, tasks: list[str], force: bool) -> Any:
        """Resubmit the same tasks: done ones skip, the one cut short resumes (never forced)."""
        return submitit.helpers.DelayedSubmission(self, config, stage, tasks, False)


def task_groups(tasks: list[str], tasks_per_job: int) -> list[list[str]]:
    """Consecutive runs of at most `tasks_per_job` tasks: what each array element runs.

    Consecutive, because the plan lists a model's seeds together: they import the same
    libraries, and their times are alike.

    Examples
    --------
    >>> task_groups(["a", "b", "c", "d", "e"], 2)
    [['a', 'b'], ['c', 'd'], ['e']]
    """
    return [tasks[start : start + tasks_per_job] for start in range(0, len(tasks), tasks_per_job)]


def resources_for(profile: ClusterProfile, stage: str, factors: Factors) -> SlurmResources:
    """A stage's resources from the profile, scaled by the retry factors."""
    resources = profile.resources(stage)
    return resources.model_copy(
        update={
            "mem_gb": resources.mem_gb * factors.mem,
            "time_min": int(math.ceil(resources.time_min * factors.time)),
        }
    )


def sbatch_parameters(
    config: Config, stage: str, resources: SlurmResources, dependency: list[str]
) -> dict[str, Any]:
    """The submitit `SlurmExecutor` parameters of a stage's array.

    The time limit is per job: the time of one task times the tasks each job runs.

    Examples
    --------
    >>> sbatch_parameters(config, "train", resources, ["1234"])["dependency"]  # doctest: +SKIP
    'afterany:1234'
    """
    profile = _profile(config)
    parameters: dict[str, Any] = {
        "job_name": f"cellbench-{config.name}-{stage}",
        "time": resources.time_min * resources.tasks_per_job,
        "cpus_per_task": resources.cpus,
        "mem": f"{max(1, math.ceil(resources.mem_gb * 1024))}MB",
        "array_parallelism": profile.array_parallelism,
        "signal_delay_s": profile.signal_delay_s,
        "stderr_to_stdout": False,
        "setup": thread_setup(),
    }
    optional = {
        "partition": resources.partition,
        "account": resources.account,
        "qos": resources.qos,
        "constraint": resources.constraint,
        "gres": resources.gres or (f"gpu:{resources.gpus}" if resources.gpus else None),
        "dependency": "afterany:" + ":".join(dependency) if dependency else None,
        "additional_parameters": dict(resources.extra) or None,
    }
    parameters.update({key: value for key, value in optional.items() if value is not None})
    return parameters


def thread_setup() -> list[str]:
    """Lines of the sbatch script that size every thread pool to the job's CPUs.

    Set before Python starts, they hold for every library and child process of the task,
    whether or not it imports them before `bind_threads` runs.

    Examples
    --------
    >>> thread_setup()[0]
    'export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}'
    """
    return [f"export {name}=${{SLURM_CPUS_PER_TASK:-1}}" for name in thread_variables(1)]


def available(config: Config) -> bool:
    """Whether ``--executor auto`` submits to SLURM: `sbatch` on PATH and a cluster profile."""
    return shutil.which("sbatch") is not None and config.execution.cluster is not None


def execute(config: Config, plans: list[StagePlan], options: RunOptions) -> Outcome:
    """Submit one array per stage that has tasks, each depending on the previous array(s).

    Returns
    -------
    Outcome
        ``submitted``: stage -> the job ids of its arrays (empty for a dry run).
    """
    echo = options.echo
    profile = _profile(config)
    limit = profile.max_array_size or max_array_size()
    submitted: dict[str, list[str]] = {}
    dependency: list[str] = []
    for stage_plan in plans:
        if not stage_plan.todo:
            echo(f"{stage_plan.stage}: nothing to submit ({len(stage_plan.tasks)} task(s) done)")
            continue
        resources = resources_for(profile, stage_plan.stage, options.factors)
        parameters = sbatch_parameters(config, stage_plan.stage, resources, dependency)
        shown = {k: v for k, v in parameters.items() if k != "dependency"}
        if options.dry_run:
            after = " after the previous stage" if dependency or submitted else ""
            jobs = len(task_groups(stage_plan.todo, resources.tasks_per_job))
            echo(
                f"{stage_plan.stage}: would submit {len(stage_plan.todo)} task(s) in {jobs} "
                f"job(s){after}: {shown}"
            )
            submitted[stage_plan.stage] = []
            dependency = ["<previous>"]
            continue
        arrays = _submit_stage(config, stage_plan, parameters, resources, limit, options.force)
        submitted[stage_plan.stage] = arrays
        after = f" after {','.join(dependency)}" if dependency else ""
        jobs = len(task_groups(stage_plan.todo, resources.tasks_per_job))
        echo(
            f"{stage_plan.stage}: submitted {len(stage_plan.todo)} task(s) in {jobs} job(s) "
            f"of array(s) {', '.join(arrays)}{after}"
        )
        dependency = arrays
    return Outcome(submitted=submitted)


def wait(config: Config, outcome: Outcome, timeout_s: float) -> None:
    """Wait until every job of `outcome` has ended; TimeoutError at the deadline."""
    jobs = []
    for stage, arrays in outcome.submitted.items():
        for entry in read_submissions(config, stage).values():
            if entry["job_id"].split("_")[0] in arrays:
                jobs.append(entry["job_id"])
    jobs = list(dict.fromkeys(jobs))  # tasks that share a job name it once
    print(f"waiting for {len(jobs)} job(s) (at most {timeout_s:.0f} s)", flush=True)
    wait_for_jobs(jobs, timeout_s)


def task_jobs(config: Config, stages: list[str]) -> tuple[dict[tuple[str, str], Job], str]:
    """The last SLURM job of every submitted task, with SLURM's state of it, and the source."""
    entries = {
        (stage, task): entry
        for stage in stages
        for task, entry in read_submissions(config, stage).items()
    }
    answer = query_states([entry["job_id"] for entry in entries.values()])
    jobs = {}
    for key, entry in entries.items():
        native = answer.states.get(entry["job_id"], UNKNOWN)
        jobs[key] = Job(
            entry["job_id"],
            _neutral_state(native),
            "SLURM",
            native,
            entry["stdout"],
            tasks_before=entry.get("tasks_before", 0),
        )
    return jobs, answer.source


def _neutral_state(native: str) -> str:
    """SLURM's name of a job state as one of the `JOB_*` states every executor shares."""
    if native in ("PENDING", "REQUEUED", "CONFIGURING"):
        return JOB_PENDING
    if native in ("RUNNING", "COMPLETING"):
        return JOB_RUNNING
    if native == "COMPLETED":
        return JOB_COMPLETED
    if native in FAILED_STATES:
        return JOB_FAILED
    return JOB_UNKNOWN


def _submit_stage(
    config: Config,
    stage_plan: StagePlan,
    parameters: dict[str, Any],
    resources: SlurmResources,
    limit: int,
    force: bool,
) -> list[str]:
    """Submit a stage's task groups as arrays of at most `limit` jobs; record every job id."""
    paths = ResultsPaths(config.results_root)
    executor = submitit.SlurmExecutor(
        folder=paths.log_dir(stage_plan.stage) / "%j",
        max_num_timeout=_profile(config).max_requeues,
        python=container_python(config, stage_plan.stage, resources.gpus),
    )
    executor.update_parameters(**parameters)
    runner = TaskRunner()
    record = {}
    arrays = []
    groups = task_groups(stage_plan.todo, resources.tasks_per_job)
    for start in range(0, len(groups), limit):
        chunk = groups[start : start + limit]
        n = len(chunk)
        jobs = executor.map_array(runner, [config] * n, [stage_plan.stage] * n, chunk, [force] * n)
        arrays.append(jobs[0].job_id.split("_")[0])
        for group, job in zip(chunk, jobs, strict=True):
            for position, task in enumerate(group):
                record[task] = {
                    "executor": "slurm",
                    "job_id": job.job_id,
                    "tasks_in_job": len(group),
                    "tasks_before": position,
                    "stdout": str(job.paths.stdout),
                    "stderr": str(job.paths.stderr),
                    "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "parameters": {k: v for k, v in parameters.items() if k != "dependency"},
                }
    record_submissions(config, stage_plan.stage, record)
    return arrays


def _profile(config: Config) -> ClusterProfile:
    if config.execution.cluster is None:
        raise CellbenchError(
            "the SLURM executor needs a cluster profile: set execution.cluster to a file such "
            "as configs/clusters/example.yaml"
        )
    return config.execution.cluster
