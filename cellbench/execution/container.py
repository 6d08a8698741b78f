"""Apptainer command lines: how a task's Python is started inside an image.

The command is built as a list of arguments and joined with `shlex.join`, so a path with
spaces or shell characters in the config can never become shell code.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from cellbench.config import Config, ContainerConfig, CropsSource, FieldsSource


def bind_paths(config: Config, container: ContainerConfig) -> list[Path]:
    """Folders the container must see: the results root, the input data, extra binds."""
    paths = [config.results_root]
    if isinstance(config.data.input, FieldsSource | CropsSource):
        paths.append(config.data.input.root)
    if isinstance(config.data.input, CropsSource):
        paths += [join.table.resolve().parent for join in config.data.input.joins]
    paths += [Path(p).resolve() for p in container.binds]
    unique: list[Path] = []
    for path in paths:
        if path not in unique:
            unique.append(path)
    return unique


def container_command(config: Config, stage: str, gpus: int, program: list[str]) -> list[str]:
    """``apptainer exec [--nv] --bind ... <image> <program...>`` as an argument list.

    Parameters
    ----------
    config : Config
        Its ``execution.container`` must be set.
    stage : str
        Picks the stage's image.
    gpus : int
        ``--nv`` (NVIDIA libraries in the container) when the job asks for GPUs.
    program : list of str
        What to run inside, e.g. ``["python"]``.
    """
    container = config.execution.container
    if container is None:
        raise ValueError("execution.container is not set")
    command = [container.apptainer, "exec"]
    if gpus > 0:
        command.append("--nv")
    for path in bind_paths(config, container):
        command += ["--bind", str(path)]
    image = container.image_for(stage)
    # read-only, so that the report written inside can record the image's SHA-256
    command += ["--bind", f"{image.parent}:{image.parent}:ro"]
    return [*command, str(image), *program]


def container_python(config: Config, stage: str, gpus: int) -> str | None:
    """The shell-quoted command submitit uses as `python`, or None without a container."""
    if config.execution.container is None:
        return None
    return shlex.join(container_command(config, stage, gpus, ["python"]))
