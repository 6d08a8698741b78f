"""What SLURM says about jobs: sacct when accounting works, else squeue and scontrol.

submitit reads job states only from `sacct`, which needs SLURM accounting; without it, a job
that SLURM killed is never seen to end. Every query here has a time limit, and every wait a
deadline.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass

FAILED_STATES = {
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
}
FINISHED_STATES = FAILED_STATES | {"COMPLETED"}
UNKNOWN = "UNKNOWN"
_RANGE = re.compile(r"^(?P<job>\d+)_\[(?P<ranges>[^\]]+)\]$")


@dataclass(frozen=True)
class JobStates:
    """States by job id (``123`` or ``123_4``) and which command answered."""

    states: dict[str, str]
    source: str


def query_states(job_ids: list[str], timeout_s: float = 30) -> JobStates:
    """Ask SLURM for the state of each job (array elements as ``<job>_<index>``).

    Returns
    -------
    JobStates
        Jobs SLURM no longer knows are ``UNKNOWN``.
    """
    if not job_ids:
        return JobStates({}, "none")
    states = _from_sacct(job_ids, timeout_s)
    source = "sacct"
    if states is None:
        states, source = {}, "squeue+scontrol (sacct unavailable)"
    unanswered = [job for job in job_ids if job not in states]
    if unanswered:  # accounting lags behind the controller for jobs just submitted
        states.update(_from_squeue(unanswered, timeout_s))
    return JobStates({job: states.get(job, UNKNOWN) for job in job_ids}, source)


def wait_for_jobs(job_ids: list[str], deadline_s: float, poll_s: float = 2.0) -> JobStates:
    """Wait until every job has finished, or raise TimeoutError at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        answer = query_states(job_ids)
        waiting = [j for j, s in answer.states.items() if s not in FINISHED_STATES | {UNKNOWN}]
        if not waiting:
            return answer
        if time.monotonic() > end:
            raise TimeoutError(
                f"{len(waiting)} job(s) still not finished after {deadline_s:.0f} s: {waiting[:10]}"
            )
        time.sleep(poll_s)


def max_array_size(timeout_s: float = 30, default: int = 1001) -> int:
    """The cluster's MaxArraySize (`scontrol show config`): arrays hold at most this many tasks."""
    output = _run(["scontrol", "show", "config"], timeout_s)
    if output is None:
        return default
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", output, re.MULTILINE)
    return int(match.group(1)) if match else default


def _base_ids(job_ids: list[str]) -> list[str]:
    return sorted({job.split("_")[0] for job in job_ids})


def _from_sacct(job_ids: list[str], timeout_s: float) -> dict[str, str] | None:
    """States from accounting, or None when sacct does not answer."""
    command = ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(_base_ids(job_ids))]
    output = _run(command, timeout_s)
    if output is None:
        return None
    states: dict[str, str] = {}
    for line in output.splitlines():
        if "|" not in line:
            continue
        job, state = line.split("|", 1)
        for expanded in _expand(job.strip()):
            states[expanded] = state.split()[0] if state.strip() else UNKNOWN
    return states


def _from_squeue(job_ids: list[str], timeout_s: float) -> dict[str, str]:
    """States of queued jobs from squeue; finished ones from scontrol while it remembers them."""
    states: dict[str, str] = {}
    command = ["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(_base_ids(job_ids))]
    for line in (_run(command, timeout_s) or "").splitlines():
        if "|" in line:
            job, state = line.split("|", 1)
            states[job.strip()] = state.strip()
    for job in job_ids:
        if job in states:
            continue
        output = _run(["scontrol", "-o", "show", "job", job], timeout_s)
        match = re.search(r"JobState=(\S+)", output or "")
        if match:
            states[job] = match.group(1)
    return states


def _expand(job: str) -> list[str]:
    """``123_[0-2,5%2]`` -> ``123_0, 123_1, 123_2, 123_5``; other ids unchanged."""
    match = _RANGE.match(job)
    if not match:
        return [job]
    expanded = []
    for part in match["ranges"].split("%")[0].split(","):
        first, _, last = part.partition("-")
        for index in range(int(first), int(last or first) + 1):
            expanded.append(f"{match['job']}_{index}")
    return expanded


def _run(command: list[str], timeout_s: float) -> str | None:
    """The output of a SLURM command, or None when it is missing, fails or times out."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None
