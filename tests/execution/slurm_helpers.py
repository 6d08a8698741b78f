"""Access to the real single-node SLURM of slurm/start.sh, for the scheduler tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import pytest

from tests.helpers import REPO

TEST_PROFILE = REPO / "configs" / "clusters" / "test-slurm.yaml"
START_SH = REPO / "slurm" / "start.sh"


def slurm_problem() -> str | None:
    """Why the test SLURM cannot be used here, or None when it answers (with accounting)."""
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH (start it with: sudo slurm/start.sh)"
    for command in (["sinfo", "-h"], ["sacct", "-n", "-X", "-S", "now"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            return f"{command[0]} did not answer within 20 s"
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[:200]}"
    return None


def require_slurm() -> None:
    """Skip without SLURM, except in CI (CI=true), where a missing SLURM is a failure."""
    problem = slurm_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs the test SLURM: {problem}")
    pytest.skip(f"no usable SLURM: {problem}")


def require_root() -> None:
    """Skip unless root (slurm/start.sh needs it), except in CI, where that is a failure."""
    if os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI runs the SLURM tests as root, to restart SLURM with slurm/start.sh")
    pytest.skip("restarting the test SLURM (slurm/start.sh) needs root")


def wait_until(condition, timeout_s: float, what: str, poll_s: float = 0.2):
    """Poll `condition()` until it returns something truthy; fail after `timeout_s`."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def squeue_dependencies() -> dict[str, str]:
    """Job id -> dependency text of every queued job."""
    out = subprocess.run(["squeue", "-h", "-o", "%i|%E"], capture_output=True, text=True).stdout
    return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)


def sacct_column(job_ids, column: str = "State") -> dict[str, str]:
    """Job id -> `column` as accounting records it, for the jobs (and array elements) given.

    Empty when sacct fails: callers poll until accounting has caught up.
    """
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", f"JobID,{column}", "-j", ",".join(job_ids)],
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)


def queued_jobs() -> list[str]:
    """Every job id the controller still lists (pending, running or completing)."""
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=20, check=True
    ).stdout
    return out.split()


def sbatch(*args: str) -> str:
    """Submit a batch job; its job id."""
    done = subprocess.run(
        ["sbatch", "--parsable", "--output=/dev/null", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip().split(";")[0]


def submitted_arrays(root: Path) -> set[str]:
    """The array (or plain) job id of every task recorded under root/**/_submissions/*.json."""
    arrays = set()
    for record in root.rglob("_submissions/*.json"):
        try:
            entries = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        for entry in entries.values() if isinstance(entries, dict) else ():
            job_id = entry.get("job_id") if isinstance(entry, dict) else None
            if job_id:
                arrays.add(str(job_id).split("_")[0])
    return arrays


def cancel_jobs(job_ids: set[str], timeout_s: float = 30) -> None:
    """Cancel these jobs (whole arrays for array ids) and wait until they leave the queue.

    For test teardown, so a scancel that hangs or fails is not an exception; a job that
    outlives `timeout_s` is reported with a warning (a teardown error under this suite's
    filterwarnings = error, shown next to the test's own result).
    """
    if not job_ids:
        return
    ids = sorted(job_ids, key=lambda job: (len(job), job))
    end = time.monotonic() + timeout_s
    try:
        # Finished jobs make scancel complain (and exit 1); the others are still cancelled.
        subprocess.run(["scancel", "--full", *ids], capture_output=True, timeout=timeout_s)
        while time.monotonic() < end:
            left = {job.split("_")[0] for job in queued_jobs()} & set(ids)
            if not left:
                return
            time.sleep(0.5)
    except (OSError, subprocess.SubprocessError) as error:
        left = f"({error})"
    warnings.warn(f"SLURM job(s) {left} still queued after the test", stacklevel=2)
