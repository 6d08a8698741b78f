"""Where tasks run: a SLURM cluster profile, an Apptainer image, local workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from cellbench.config.base import StrictModel
from cellbench.config.yaml_file import read_yaml

StageName = Literal["segment", "crop", "features", "profiles", "train", "evaluate", "aggregate"]


class SlurmResourceOverride(StrictModel):
    """Resources of one stage's jobs; unset values come from the profile's `default`."""

    partition: str | None = None
    cpus: int | None = Field(None, ge=1, description="CPUs per task")
    mem_gb: float | None = Field(None, gt=0, description="memory per task, GB")
    time_min: int | None = Field(None, ge=1, description="time limit per task, minutes")
    gpus: int | None = Field(None, ge=0, description="GPUs per task (gres gpu:N)")
    tasks_per_job: int | None = Field(
        None,
        ge=1,
        description="tasks one array element runs one after another, for short tasks whose "
        "interpreter start (a few seconds) would outweigh their work; the job's time limit "
        "is time_min times this",
    )
    gres: str | None = Field(None, description="explicit --gres, e.g. 'gpu:a100:1'")
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    extra: dict[str, str | int | bool] | None = Field(
        None, description="further sbatch options, e.g. {'mail-type': 'FAIL'}"
    )


class SlurmResources(SlurmResourceOverride):
    """Resources of a job; a time limit is always set (submitit's default is 5 minutes)."""

    cpus: int = Field(1, ge=1)
    mem_gb: float = Field(4.0, gt=0)
    time_min: int = Field(60, ge=1)
    gpus: int = Field(0, ge=0)
    tasks_per_job: int = Field(1, ge=1)
    extra: dict[str, str | int | bool] = Field(default_factory=dict)


class ClusterProfile(StrictModel):
    """A cluster: SLURM resources per stage and array settings (configs/clusters/*.yaml)."""

    name: str = "cluster"
    array_parallelism: int = Field(64, ge=1, description="array tasks running at once")
    max_array_size: int | None = Field(
        None, ge=1, description="largest array; default: MaxArraySize from scontrol"
    )
    signal_delay_s: int = Field(
        120, ge=0, description="seconds before the time limit when jobs are told to checkpoint"
    )
    max_requeues: int = Field(3, ge=0, description="times a timed-out job is requeued")
    default: SlurmResources = Field(default_factory=SlurmResources)
    stages: dict[StageName, SlurmResourceOverride] = Field(default_factory=dict)

    def resources(self, stage: str) -> SlurmResources:
        """The resources of `stage`: its overrides on top of the default."""
        override = self.stages.get(stage)
        if override is None:
            return self.default
        merged = self.default.model_dump()
        merged.update(override.model_dump(exclude_none=True))
        return SlurmResources.model_validate(merged)


class ContainerConfig(StrictModel):
    """Run tasks inside an Apptainer image (the results root is always bound)."""

    image: Path = Field(description="the .sif image every stage runs in")
    stage_images: dict[StageName, Path] = Field(
        default_factory=dict, description="other images for some stages, e.g. StarDist"
    )
    binds: list[Path] = Field(default_factory=list, description="more folders to bind")
    apptainer: str = Field("apptainer", description="the apptainer (or singularity) command")

    @field_validator("image")
    @classmethod
    def _image_exists(cls, image: Path) -> Path:
        if not image.is_file():
            raise ValueError(f"container image {str(image)!r} does not exist")
        return image.resolve()

    def image_for(self, stage: str) -> Path:
        """The image a stage runs in."""
        return self.stage_images.get(stage, self.image)


class ExecutionConfig(StrictModel):
    """How tasks run: locally, or on a SLURM cluster described by a profile."""

    local_workers: int = Field(2, ge=1, description="tasks run at once by the local executor")
    cluster: ClusterProfile | None = Field(
        None, description="a cluster profile, or the path of one (configs/clusters/*.yaml)"
    )
    container: ContainerConfig | None = None

    @field_validator("cluster", mode="before")
    @classmethod
    def _load_profile(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            return read_yaml(Path(value), what="cluster profile")
        return value
