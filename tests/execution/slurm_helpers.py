"""Access to the real single-node SLURM of slurm/start.sh, for the scheduler tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.helpers import REPO

TEST_PROFILE = REPO / "configs" / "clusters" / "test-slurm.yaml"


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
