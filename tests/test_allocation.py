"""The CPUs of a task's allocation, and thread pools bound to them under every executor."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from cellbench import allocation, stages
from cellbench.allocation import (
    LOCAL_SHARE,
    THREAD_VARIABLES,
    bind_threads,
    task_cpus,
    threads_bound,
    usable_cpus,
)
from cellbench.execution import debug, local
from cellbench.paths import ResultsPaths
from cellbench.status import read_status
from tests.helpers import REPO, small_config, write_config

# Two plates of three one-field wells, a few cells each: a segment task takes under a second.
TINY_INPUT = {
    "source": "synthetic",
    "plates": 2,
    "rows": "A",
    "columns": [1, 2, 3],
    "sites": 1,
    "field_shape_px": [96, 96],
    "cells_per_field": 4,
    "seed": 3,
}


def tiny_config(root, **execution):
    """A two-plate experiment whose segment tasks are quick."""
    return small_config(
        root, data={"input": TINY_INPUT}, execution={"local_workers": 2, **execution}
    )


def pool_threads() -> set[int]:
    """The thread counts of every BLAS/OpenMP pool loaded in this process."""
    return {pool["num_threads"] for pool in threadpool_info()}


@pytest.fixture
def clean_env(monkeypatch):
    """No allocation variable set: each test sets what it means."""
    for name in (LOCAL_SHARE, "SLURM_CPUS_PER_TASK", *THREAD_VARIABLES, "LOKY_MAX_CPU_COUNT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- task_cpus: which allocation wins ----------------------------------------------------------


def test_local_share_wins_over_slurm_and_slurm_over_affinity(clean_env):
    clean_env.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert task_cpus() == 8
    clean_env.setenv("SLURM_CPUS_PER_TASK", "4")
    assert task_cpus() == 4
    clean_env.setenv(LOCAL_SHARE, "2")  # a local run inside a SLURM job: the worker's share
    assert task_cpus() == 2


def test_allocation_is_capped_by_the_affinity_mask(clean_env):
    clean_env.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    clean_env.setenv("SLURM_CPUS_PER_TASK", "16")
    assert task_cpus() == 2
    clean_env.setenv(LOCAL_SHARE, "3")
    assert task_cpus() == 2


@pytest.mark.parametrize("value", ["", "0", "-2", "two", " "])
def test_unusable_values_fall_through_to_the_next_source(clean_env, value):
    clean_env.setattr(os, "sched_getaffinity", lambda pid: set(range(6)))
    clean_env.setenv(LOCAL_SHARE, value)
    clean_env.setenv("SLURM_CPUS_PER_TASK", "5")
    assert task_cpus() == 5


def test_fewer_than_one_cpu_is_refused():
    with pytest.raises(ValueError, match="at least 1; got 0"):
        bind_threads(0)


# --- threads_bound: torch, BLAS/OpenMP pools and variables, then restored ----------------------


def test_threads_bound_sets_torch_pools_and_variables_then_restores(clean_env):
    before_torch = torch.get_num_threads()
    torch.set_num_threads(3)  # a value no binding below uses, whatever the machine has
    try:
        with threadpool_limits(limits=3):
            assert pool_threads() == {3}
            with threads_bound(1) as cpus:
                assert cpus == 1
                assert torch.get_num_threads() == 1
                assert pool_threads() == {1}
                assert all(os.environ[name] == "1" for name in THREAD_VARIABLES)
                assert os.environ["LOKY_MAX_CPU_COUNT"] == "1"
            assert torch.get_num_threads() == 3
            assert pool_threads() == {3}
            assert not any(name in os.environ for name in THREAD_VARIABLES)
    finally:
        torch.set_num_threads(before_torch)


def test_threads_bound_defaults_to_the_allocation(clean_env):
    clean_env.setenv("SLURM_CPUS_PER_TASK", "1")
    with threads_bound() as cpus:
        assert cpus == 1
        assert torch.get_num_threads() == 1
        assert pool_threads() == {1}
    assert allocation.current_binding(1).cpus == 1


# --- every executor: the task runs on its allocation ---------------------------------------------


def spy_on_stage(monkeypatch, seen: list[dict]) -> None:
    """Record, from inside each task's runner, the thread counts it runs with."""
    real = stages.stage

    def recording(name):
        row = real(name)

        def run(*args, **kwargs):
            seen.append({"torch": torch.get_num_threads(), "pools": pool_threads()})
            return row.run(*args, **kwargs)

        return dataclasses.replace(row, run=run)

    monkeypatch.setattr(stages, "stage", recording)


def test_run_task_under_slurm_cpus_per_task_1_runs_on_1_thread(clean_env, tmp_path):
    config = tiny_config(tmp_path / "results")
    seen: list[dict] = []
    spy_on_stage(clean_env, seen)
    clean_env.setenv("SLURM_CPUS_PER_TASK", "1")
    torch_before = torch.get_num_threads()
    results = debug.run_tasks(config, "segment", ["P1"], False, lambda result: None)
    assert [r.state for r in results] == ["done"], results
    assert seen == [{"torch": 1, "pools": {1}}]
    status = read_status(ResultsPaths(config.results_root).status_file("segment", "P1"))
    assert status["cpus"] == 1
    assert status["threads"]["torch"] == 1
    assert set(status["threads"]["pools"].values()) == {1}
    # The debug executor's process is left as it was.
    assert torch.get_num_threads() == torch_before
    assert "OMP_NUM_THREADS" not in os.environ


def test_a_slurm_task_process_is_bound_for_good(clean_env, tmp_path):
    """`TaskRunner` (what a SLURM array element runs) binds its process, torch included."""
    config_path = write_config(
        tmp_path / "tiny.yaml",
        {
            "name": "tiny",
            "results_root": str(tmp_path / "results"),
            "data": {"input": TINY_INPUT},
            "crops": {"kinds": {"whole_cell": {"size_px": 48}}},
            "models": [{"name": "rf", "type": "random_forest", "n_estimators": 10}],
            "seeds": [0],
        },
    )
    program = f"""
import json, os, torch
from threadpoolctl import threadpool_info
from cellbench.config import load_config
from cellbench.execution.slurm import TaskRunner
TaskRunner()(load_config({str(config_path)!r}), "segment", ["P1"], False)
print(json.dumps({{
    "torch": torch.get_num_threads(),
    "pools": sorted({{p["num_threads"] for p in threadpool_info()}}),
    "omp": os.environ["OMP_NUM_THREADS"],
}}))
"""
    env = {**os.environ, "SLURM_CPUS_PER_TASK": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {"torch": 1, "pools": [1], "omp": "1"}


def test_local_workers_run_on_their_share(clean_env, tmp_path):
    config = tiny_config(tmp_path / "results")
    results = local.run_tasks(config, "segment", ["P1", "P2"], False, lambda result: None)
    assert sorted(r.state for r in results) == ["done", "done"], results
    share = max(1, usable_cpus() // 2)
    assert local.worker_share(2) == share
    paths = ResultsPaths(config.results_root)
    for plate in ("P1", "P2"):
        status = read_status(paths.status_file("segment", plate))
        assert status["cpus"] == share
        assert set(status["threads"]["pools"].values()) == {share}
        assert status["pid"] != os.getpid()  # it ran in a worker


def test_local_share_divides_the_submitting_allocation(clean_env):
    clean_env.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert local.worker_share(2) == 4
    clean_env.setenv("SLURM_CPUS_PER_TASK", "6")  # a local run inside a 6-CPU SLURM job
    assert local.worker_share(4) == 1
    assert local.worker_share(8) == 1  # never fewer than 1


# --- joblib users: n_jobs follows the allocation unless given ---------------------------------


def test_random_forest_uses_the_allocation_unless_told(clean_env):
    from cellbench.models.classical import build_classifier

    clean_env.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    clean_env.setenv("SLURM_CPUS_PER_TASK", "3")
    forest = build_classifier("random_forest", 0).named_steps["classify"]
    assert forest.n_jobs == 3
    told = build_classifier("random_forest", 0, n_jobs=2).named_steps["classify"]
    assert told.n_jobs == 2


def test_pairwise_svm_scores_pairs_on_the_allocation(clean_env):
    import numpy as np

    from cellbench.evaluate import pairwise

    asked = []
    real = pairwise.Parallel

    def recording(n_jobs=None, **kwargs):
        asked.append(n_jobs)
        return real(n_jobs=1, **kwargs)  # run in this process; only the request is checked

    clean_env.setattr(pairwise, "Parallel", recording)
    clean_env.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    clean_env.setenv("SLURM_CPUS_PER_TASK", "3")
    rng = np.random.default_rng(0)
    features = rng.normal(size=(30, 4))
    labels = np.repeat(["a", "b", "c"], 10)
    table = pairwise.pairwise_svm_accuracy(features, labels, folds=2)
    pairwise.pairwise_svm_accuracy(features, labels, folds=2, n_jobs=2)
    assert asked == [3, 2]
    assert len(table) == 3


def test_umap_threads_follow_the_allocation_only_without_a_seed(clean_env):
    from cellbench.report.figures_embedding import _umap_threads

    clean_env.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    clean_env.setenv("SLURM_CPUS_PER_TASK", "3")
    assert _umap_threads(seed=0, n_jobs=None) == 1  # UMAP allows 1 thread with a seed
    assert _umap_threads(seed=None, n_jobs=None) == 3
    assert _umap_threads(seed=None, n_jobs=2) == 2


# --- joblib's worker processes end with the task -------------------------------------------------


def _loky_workers() -> list:
    """The joblib (loky) worker processes this process has running."""
    import multiprocessing

    return [p for p in multiprocessing.active_children() if "Loky" in p.name]


def _square(x: int) -> int:
    return x * x


def test_joblib_workers_started_in_a_task_are_stopped_when_it_ends(clean_env):
    """Left idle they would be reused by the next task and hold a worker's exit for 300 s."""
    from joblib import Parallel, delayed

    clean_env.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    with threads_bound(2):
        assert Parallel(n_jobs=2)(delayed(_square)(x) for x in range(4)) == [0, 1, 4, 9]
        assert _loky_workers(), "the test needs joblib to have started worker processes"
    assert _loky_workers() == []
    allocation.stop_joblib_workers()  # nothing left to stop: a no-op
