"""The command lines the SLURM executor builds: sbatch scripts and apptainer calls."""

import shlex

import pytest
from submitit.slurm.slurm import _make_sbatch_string

from cellbench.config import config_from_dict
from cellbench.execution.base import Factors
from cellbench.execution.container import container_command, container_python
from cellbench.execution.slurm import resources_for, sbatch_parameters, task_groups
from tests.helpers import REPO, experiment_dict

REFERENCE = REPO / "tests" / "execution" / "data" / "train.sbatch"


def cluster_config(tmp_path, **execution):
    raw = experiment_dict(tmp_path / "results")
    raw["execution"] = {"cluster": str(REPO / "configs" / "clusters" / "example.yaml"), **execution}
    return config_from_dict(raw)


def test_stage_resources_override_the_default(tmp_path):
    profile = cluster_config(tmp_path).execution.cluster
    train = profile.resources("train")
    assert (train.partition, train.gpus, train.time_min, train.mem_gb) == ("gpu", 1, 720, 32)
    crop = profile.resources("crop")
    assert (crop.partition, crop.cpus, crop.time_min) == ("cpu", 4, 120)
    scaled = resources_for(profile, "train", Factors(mem=2, time=1.5))
    assert (scaled.mem_gb, scaled.time_min) == (64, 1080)


def test_sbatch_script_matches_the_saved_reference(tmp_path):
    config = cluster_config(tmp_path)
    resources = config.execution.cluster.resources("train")
    parameters = sbatch_parameters(config, "train", resources, ["101", "102"])
    assert parameters["dependency"] == "afterany:101:102"
    assert parameters["time"] == 720  # always explicit: submitit's default is 5 minutes
    script = _make_sbatch_string(
        command="python -u -m submitit.core._submit /logs/%j",
        folder="/logs/%j",
        map_count=5,
        **parameters,
    )
    assert script == REFERENCE.read_text()


def test_short_tasks_share_a_job_whose_time_limit_covers_them_all(tmp_path):
    profile = cluster_config(tmp_path).execution.cluster
    evaluate = profile.resources("evaluate")
    assert (evaluate.tasks_per_job, evaluate.time_min) == (2, 60)  # example.yaml
    assert profile.resources("train").tasks_per_job == 1  # the default
    grouped = evaluate.model_copy(update={"tasks_per_job": 4})
    assert sbatch_parameters(cluster_config(tmp_path), "evaluate", grouped, [])["time"] == 240
    tasks = [f"m/seed{k}" for k in range(10)]
    groups = task_groups(tasks, 4)
    assert [len(g) for g in groups] == [4, 4, 2]
    assert sum(groups, []) == tasks  # every task once, in the plan's order


def test_container_command_is_an_argument_list(tmp_path):
    image = tmp_path / "my image;rm -rf ~.sif"
    image.write_bytes(b"")
    config = cluster_config(tmp_path, container={"image": str(image), "binds": ["/scratch/$USER"]})
    command = container_command(config, "train", gpus=1, program=["python"])
    assert command == [
        "apptainer",
        "exec",
        "--nv",
        "--bind",
        str(tmp_path / "results"),
        "--bind",
        "/scratch/$USER",
        "--bind",
        f"{tmp_path}:{tmp_path}:ro",  # the image's folder, for its digest in the report
        str(image),
        "python",
    ]
    assert "--nv" not in container_command(config, "crop", gpus=0, program=["python"])
    python = container_python(config, "train", gpus=1)
    assert shlex.split(python) == command  # quoted: the shell sees the same arguments


def test_missing_image_is_a_config_error(tmp_path):
    from cellbench.errors import ConfigError

    with pytest.raises(ConfigError, match="execution.container.image"):
        cluster_config(tmp_path, container={"image": str(tmp_path / "none.sif")})
