"""The SLURM executor on a real single-node SLURM (slurm/start.sh), not a mock."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from cellbench.config import config_from_dict
from cellbench.data.plates import open_plate
from cellbench.execution.run import execute
from cellbench.execution.submissions import read_submissions
from cellbench.paths import ResultsPaths
from tests.execution.slurm_helpers import (
    START_SH,
    TEST_PROFILE,
    cancel_jobs,
    queued_jobs,
    require_root,
    require_slurm,
    sacct_column,
    sbatch,
    squeue_dependencies,
    submitted_arrays,
    wait_until,
)
from tests.helpers import REPO, experiment_dict, write_config

SUBMIT = str(REPO / "jobs" / "submit.py")


@pytest.fixture(autouse=True)
def slurm(tmp_path):
    """Skip without SLURM; at teardown, even after a failure, cancel the test's jobs.

    Those are the arrays recorded under tmp_path/**/_submissions/ and the job ids a test
    appends to the list this fixture yields (its own sbatch jobs).
    """
    require_slurm()
    submitted: list[str] = []
    yield submitted
    cancel_jobs(submitted_arrays(tmp_path) | set(submitted))


def slurm_experiment(root, **overrides):
    raw = experiment_dict(root / "results", **overrides)
    raw["execution"] = {"cluster": str(TEST_PROFILE), "local_workers": 2}
    return raw


def submit(config_path, *args, timeout=600):
    return subprocess.run(
        [sys.executable, SUBMIT, "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_all_stages_as_dependent_arrays_match_a_local_run(tmp_path):
    raw = slurm_experiment(tmp_path / "slurm", seeds=[0, 1])
    raw["data"]["input"]["plates"] = 2
    config_path = write_config(tmp_path / "slurm.yaml", raw)

    run = submit(config_path, "--stage", "all", "--executor", "slurm")
    assert run.returncode == 0, run.stdout + run.stderr
    config = config_from_dict(raw)
    expected_tasks = {
        "segment": 2,
        "crop": 2,
        "features": 2,
        "train": 2,
        "evaluate": 2,
        "aggregate": 1,
    }
    arrays = {}
    jobs = set()  # the test profile runs a stage's short tasks in shared jobs
    for stage, count in expected_tasks.items():
        record = read_submissions(config, stage)
        assert len(record) == count
        arrays[stage] = {entry["job_id"].split("_")[0] for entry in record.values()}
        assert len(arrays[stage]) == 1  # one array per stage
        jobs |= {entry["job_id"] for entry in record.values()}
    assert len(jobs) == sum(expected_tasks.values()) - 2  # train: 1 job of 2 tasks; evaluate too
    # Later stages wait for the array before them, with afterany.
    dependencies = squeue_dependencies()
    crop_job = next(iter(arrays["crop"]))
    waiting = [dep for job, dep in dependencies.items() if job.startswith(crop_job)]
    assert waiting and all(f"afterany:{next(iter(arrays['segment']))}" in d for d in waiting)

    def all_done():
        status = submit(config_path, "--status")
        return (
            status.returncode == 0
            and "not run" not in status.stdout
            and ("aggregate  1 done" in status.stdout)
        )

    wait_until(all_done, 300, "the SLURM run to finish", poll_s=2)

    def final_states() -> dict[str, str] | None:
        # slurmdbd records a finished job a moment after slurmctld: poll until all are there
        states = sacct_column([next(iter(ids)) for ids in arrays.values()])
        finished = len(states) == len(jobs) and all(
            state not in ("PENDING", "RUNNING") for state in states.values()
        )
        return states if finished else None

    states = wait_until(final_states, 60, "sacct to record every task", poll_s=1)
    assert set(states.values()) == {"COMPLETED"}

    # The same experiment run locally gives the same results.
    local = dict(raw, results_root=str(tmp_path / "local" / "results"))
    local["execution"] = {"local_workers": 2}
    execute(config_from_dict(local), "all", "local", echo=lambda line: None)
    for seed in (0, 1):
        name = f"models/rf/seed{seed}/predictions.parquet"
        on_slurm = pd.read_parquet(tmp_path / "slurm" / "results" / name)
        on_laptop = pd.read_parquet(tmp_path / "local" / "results" / name)
        pd.testing.assert_frame_equal(on_slurm, on_laptop)


def test_failed_plate_is_reported_and_retried_after_repair(tmp_path):
    raw = slurm_experiment(tmp_path)
    raw["data"]["input"]["plates"] = 2
    config_path = write_config(tmp_path / "c.yaml", raw)
    config = config_from_dict(raw)
    plate = open_plate(config, "P2")
    broken = plate.folder / "layout.csv"
    original = broken.read_bytes()
    broken.write_text("well,condition\nA01,x\nA01,y\n")  # a well listed twice

    run = submit(
        config_path, "--stage", "all", "--executor", "slurm", "--wait", "--wait-timeout", "300"
    )
    assert run.returncode == 1, run.stdout + run.stderr  # the status after waiting shows a failure
    assert "segment/P2: failed" in run.stdout and "listed more than once" in run.stdout
    assert "crop/P2: skipped" in run.stdout
    summary = (tmp_path / "results" / "report" / "accuracy.md").read_text()
    assert "- segment/P2" in summary and "| rf |" in summary  # P1 finished, P2 reported missing

    broken.write_bytes(original)
    retry = submit(
        config_path, "--retry-failed", "--executor", "slurm", "--wait", "--wait-timeout", "300"
    )
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert "segment: submitted 1 task(s)" in retry.stdout  # only the failed plate
    status = submit(config_path, "--status").stdout
    assert "segment    2 done" in status and "aggregate  1 done" in status
    summary = (tmp_path / "results" / "report" / "accuracy.md").read_text()
    assert "None: every task finished" in summary
    info = json.loads(
        (tmp_path / "results" / "models" / "rf" / "seed0" / "model_info.json").read_text()
    )
    assert sum(info["cells_per_split"].values()) > 0
    plates = pd.read_parquet(
        tmp_path / "results" / "models" / "rf" / "seed0" / "predictions.parquet"
    )
    assert set(plates["Metadata_Plate"]) == {"P1", "P2"}  # the retried plate reached the model


def three_plates_with_profile(tmp_path, input_updates=None, **profile_updates):
    """An experiment of 3 plates on a copy of the test profile with `profile_updates`."""
    profile = yaml.safe_load(TEST_PROFILE.read_text())
    profile.update(profile_updates)
    profile_path = tmp_path / "profile.yaml"
    profile_path.write_text(yaml.safe_dump(profile))
    raw = slurm_experiment(tmp_path)
    raw["execution"]["cluster"] = str(profile_path)
    raw["data"]["input"].update(plates=3, **(input_updates or {}))
    return raw, write_config(tmp_path / "c.yaml", raw)


def test_tasks_sharing_a_job_run_on_after_one_fails(tmp_path):
    raw, config_path = three_plates_with_profile(tmp_path, stages={"segment": {"tasks_per_job": 2}})
    config = config_from_dict(raw)
    broken = open_plate(config, "P1").folder / "layout.csv"
    original = broken.read_bytes()
    broken.write_text("well,condition\nA01,x\nA01,y\n")  # a well listed twice

    run = submit(
        config_path, "--stage", "segment", "--executor", "slurm", "--wait", "--wait-timeout", "300"
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "submitted 3 task(s) in 2 job(s)" in run.stdout
    record = read_submissions(config, "segment")
    assert record["P1"]["job_id"] == record["P2"]["job_id"] != record["P3"]["job_id"]
    assert [record[p]["tasks_before"] for p in ("P1", "P2", "P3")] == [0, 1, 0]
    status = submit(config_path, "--status").stdout
    # P2 ran after P1 failed in the same job; the job is FAILED for SLURM, P2 is done.
    assert "segment    2 done, 1 failed" in status and "segment/P1: failed" in status
    assert ResultsPaths(config.results_root).label_store("P2").exists()

    def job_states():
        jobs = {record[p]["job_id"] for p in ("P1", "P3")}
        states = {job: state for job, state in sacct_column(jobs).items() if job in jobs}
        return states if len(states) == 2 and "RUNNING" not in states.values() else None

    states = wait_until(job_states, 60, "sacct to record both jobs", poll_s=1)
    assert states == {record["P1"]["job_id"]: "FAILED", record["P3"]["job_id"]: "COMPLETED"}

    broken.write_bytes(original)
    retry = submit(
        config_path, "--retry-failed", "--executor", "slurm", "--wait", "--wait-timeout", "300"
    )
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert "segment: submitted 1 task(s) in 1 job(s)" in retry.stdout  # P1 alone
    assert "segment    3 done" in submit(config_path, "--status").stdout


def test_cancelled_task_is_reported_died_with_its_log(tmp_path):
    raw = slurm_experiment(tmp_path)
    # 288 fields: segmenting takes longer than KillWait (5 s), the grace that scancel leaves a
    # task after SIGTERM (which submitit ignores), so the cancelled task cannot finish.
    raw["data"]["input"].update(rows="ABCD", sites=12, field_shape_px=[256, 256])
    config_path = write_config(tmp_path / "c.yaml", raw)
    config = config_from_dict(raw)
    open_plate(config, "P1")
    run = submit(config_path, "--stage", "segment", "--executor", "slurm")
    assert run.returncode == 0, run.stderr
    entry = read_submissions(config, "segment")["P1"]
    status_file = ResultsPaths(config.results_root).status_file("segment", "P1")
    wait_until(lambda: status_file.exists(), 60, "the task to start")
    subprocess.run(["scancel", entry["job_id"]], check=True)

    def reported_died():  # its status still says running; SLURM says the job has ended
        status = submit(config_path, "--status", timeout=60)
        return "segment/P1: died" in status.stdout and status.stdout

    text = wait_until(reported_died, 60, "--status to report the cancelled task", poll_s=1)
    assert "SLURM state CANCELLED" in text and entry["stdout"] in text
    assert not ResultsPaths(config.results_root).label_store("P1").exists()


def test_requeued_training_resumes_from_its_checkpoint(tmp_path):
    raw = slurm_experiment(
        tmp_path,
        models=[
            {
                "name": "mlp",
                "type": "mlp",
                "epochs": 400,
                "hidden": [512, 512],
                "batch_size": 32,
                "patience": None,
            }
        ],
    )
    config = config_from_dict(raw)
    config_path = write_config(tmp_path / "c.yaml", raw)
    execute(config, "segment", "debug", echo=lambda line: None)  # features ready, locally
    execute(config, "features", "debug", echo=lambda line: None)
    paths = ResultsPaths(config.results_root)
    run = submit(config_path, "--stage", "train", "--executor", "slurm")
    assert run.returncode == 0, run.stderr
    job = read_submissions(config, "train")["mlp.seed0"]["job_id"]

    def epochs_saved():
        try:
            saved = torch.load(paths.checkpoint("mlp", 0), weights_only=True)
        except (FileNotFoundError, RuntimeError, EOFError):
            return 0
        return saved["state"]["epoch"]

    at_signal = wait_until(lambda: epochs_saved() >= 5 and epochs_saved(), 120, "epoch 5")
    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # as before preemption

    def finished_after_release():
        # SLURM holds a requeued job for about two minutes; release it to keep the test short.
        shown = subprocess.run(
            ["scontrol", "-o", "show", "job", job], capture_output=True, text=True
        ).stdout
        if "JobState=PENDING" in shown and "Reason=BeginTime" in shown:
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
        return paths.history("mlp", 0).exists()

    wait_until(finished_after_release, 300, "the requeued training to finish", poll_s=1)
    history = json.loads(paths.history("mlp", 0).read_text())
    assert history["resumed_from"][0] == 0
    assert len(history["resumed_from"]) >= 2  # started, then resumed after the requeue
    assert history["resumed_from"][1] >= at_signal
    assert [e["epoch"] for e in history["epochs"]] == list(range(1, 401))
    log = Path(read_submissions(config, "train")["mlp.seed0"]["stderr"]).read_text()
    assert "Caught signal SIGUSR2" in log


def test_long_stages_split_into_arrays_and_gpus_are_requested(tmp_path):
    raw, config_path = three_plates_with_profile(
        tmp_path,
        {"rows": "A", "columns": [1, 2, 3], "sites": 1},
        max_array_size=2,
        stages={"segment": {"gpus": 1}},
    )
    run = submit(
        config_path, "--stage", "segment", "--executor", "slurm", "--wait", "--wait-timeout", "300"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    record = read_submissions(config_from_dict(raw), "segment")
    arrays = sorted({entry["job_id"].split("_")[0] for entry in record.values()})
    assert len(record) == 3 and len(arrays) == 2  # 3 tasks, at most 2 per array

    job_ids = {entry["job_id"] for entry in record.values()}  # a 1-task chunk is a plain job

    def accounted():  # slurmdbd records array elements a moment after they end
        tres = sacct_column(arrays, "AllocTRES")
        lines = [f"{job}|{value}" for job, value in tres.items() if job in job_ids]
        return lines if len(lines) == 3 else None

    lines = wait_until(accounted, 60, "sacct to list the three array elements", poll_s=1)
    tres = "\n".join(lines)
    assert len(lines) == 3 and all("gres/gpu=1" in line for line in lines), tres
    assert "segment    3 done" in submit(config_path, "--status").stdout


def run_start_sh() -> str:
    done = subprocess.run(["bash", str(START_SH)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def hold_the_node(submitted: list[str], seconds: int) -> list[str]:
    """A job on every core and an array queued behind it, as an interrupted run leaves them."""
    jobs = [
        sbatch("--exclusive", "--wrap", f"sleep {seconds}"),
        sbatch("--array=0-29", "--wrap", f"sleep {seconds}"),
    ]
    submitted.extend(jobs)
    wait_until(lambda: f"{jobs[0]} R" in squeue_states(), 30, "the long job to start")
    return jobs


def squeue_states() -> str:
    return subprocess.run(
        ["squeue", "-h", "-o", "%i %t"], capture_output=True, text=True, timeout=20
    ).stdout


def sleeping(seconds: int) -> bool:
    """Whether some process still runs `sleep <seconds>`."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes() == f"sleep\0{seconds}\0".encode():
                return True
        except OSError:
            continue
    return False


def fresh_job_runs() -> None:
    done = subprocess.run(
        ["sbatch", "--wait", "--output=/dev/null", "--wrap", "true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# These two restart or clean the test SLURM itself: every job on it is cancelled.


def test_start_sh_cancels_the_jobs_left_on_a_running_slurm(slurm):
    require_root()
    hold_the_node(slurm, 611)
    out = run_start_sh()
    assert "cancelling job(s) left" in out and "already running" in out
    assert queued_jobs() == []
    wait_until(lambda: not sleeping(611), 30, "the cancelled job's process to end")
    fresh_job_runs()


def test_start_sh_recovers_no_job_after_an_interrupted_run(slurm):
    require_root()
    jobs = hold_the_node(slurm, 612)
    # The controller and node daemon go, as when a machine stops: slurmctld saves its state,
    # with both jobs in it.
    subprocess.run(["scontrol", "shutdown"], check=True, timeout=30)

    def controller_gone() -> bool:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, timeout=30)
        return ping.returncode != 0

    wait_until(controller_gone, 30, "slurmctld to shut down")
    out = run_start_sh()
    assert "SLURM up" in out
    assert queued_jobs() == []  # slurmctld -c recovered nothing
    wait_until(lambda: not sleeping(612), 30, "the orphaned job's process to end")
    fresh_job_runs()

    def accounted() -> dict[str, str] | None:  # the old jobs are closed in accounting too
        states = sacct_column(jobs)
        return states if states and "RUNNING" not in states.values() else None

    states = wait_until(accounted, 30, "sacct to close the old jobs", poll_s=1)
    assert "PENDING" not in states.values(), states
