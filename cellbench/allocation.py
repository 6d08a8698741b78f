"""How many CPUs this task may use, from its allocation.

A task runs under SLURM (``SLURM_CPUS_PER_TASK``), in a worker of the local executor (which
gives each worker its share of the cores in ``CELLBENCH_TASK_CPUS``), or alone; in every case
it never uses more CPUs than the process may run on (``os.sched_getaffinity``).
"""

from __future__ import annotations

import os

LOCAL_SHARE = "CELLBENCH_TASK_CPUS"  # set by the local executor for each of its workers


def task_cpus() -> int:
    """CPUs of this task's allocation (at least 1).

    The local executor's share when set (the most specific: a local run inside a SLURM job
    shares that job's CPUs), else ``SLURM_CPUS_PER_TASK``, else the CPUs this process may run
    on; always capped by the latter.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    usable = max(1, usable or 1)
    for variable in (LOCAL_SHARE, "SLURM_CPUS_PER_TASK"):
        value = os.environ.get(variable, "")
        if value.strip().isdigit() and int(value) > 0:
            return min(int(value), usable)
    return usable
