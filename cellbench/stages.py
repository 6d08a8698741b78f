"""The stages: one table of what each stage's tasks are, read, write, and when one is done.

Each stage lists its tasks from the config alone (no image is opened), so a plan is cheap. A
task is done when its status says so with the same settings hash and inputs, and its outputs
are still the files it wrote (`why_task_not_done`). `cellbench.tasks.run_task` runs one task;
`cellbench.runners` holds each stage's work.

=========  ===================  =====================================================
stage      one task is          writes
=========  ===================  =====================================================
segment    a plate              segment/<plate>.h5
crop       a plate              crops/<plate>.h5
features   a plate              features/<plate>.parquet
profiles   a plate              profiles/<plate>.parquet (with ``profiles:`` set)
train      a model x a seed     models/<model>/seed<k>/model.skops or model.pt, split, info
evaluate   a model x a seed     models/<model>/seed<k>/metrics.json, predictions, mmd.csv
aggregate  the experiment       report/
=========  ===================  =====================================================

To add a stage: a row in `STAGE_TABLE` (its runner in `cellbench.runners`), and its name in
`cellbench.config.cluster.StageName` (the cluster profile's per-stage resources).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pandas as pd

from cellbench import runners
from cellbench.config import Config, stable_hash, training_settings
from cellbench.config.cluster import StageName
from cellbench.data.exclude import file_names
from cellbench.data.plates import has_fields, list_plates
from cellbench.errors import CellbenchError
from cellbench.features.cp_tables import export_files
from cellbench.io.digest import file_sha256
from cellbench.paths import ResultsPaths
from cellbench.runners import model_task, model_weights, parse_model_task
from cellbench.status import (
    DIED,
    DONE,
    RUNNING,
    fingerprint,
    process_gone,
    read_status,
    why_not_done,
)

AGGREGATE_TASK = "report"
PLATE, MODEL_SEED, EXPERIMENT = "a plate", "a model x a seed", "the experiment"


@dataclass(frozen=True)
class Stage:
    """One row of the stage table.

    Attributes
    ----------
    name : str
    unit : str
        What one task is: `PLATE` (named after it), `MODEL_SEED` (``rf.seed0``) or
        `EXPERIMENT` (one task, ``report``).
    upstream : tuple of str
        Stages whose outputs its tasks read; planning runs them first.
    sections : tuple of str
        Config sections its settings hash covers (a model stage adds its model and seed).
    tasks, inputs, outputs : callable
        ``tasks(config)`` lists task names; ``inputs(config, task)`` are the files of earlier
        tasks it reads (fingerprinted: a change makes it stale); ``outputs(config, task)`` the
        files it leaves.
    run : callable
        ``run(config, task, settings_hash) -> details`` does the work.
    """

    name: str
    unit: str
    upstream: tuple[str, ...]
    sections: tuple[str, ...]
    tasks: Callable[[Config], list[str]]
    inputs: Callable[[Config, str], list[Path]]
    outputs: Callable[[Config, str], list[Path]]
    run: Callable[[Config, str, str], dict]


# --- task lists -------------------------------------------------------------------------------


def _plate_tasks(config: Config) -> list[str]:
    return list_plates(config)


def _segment_tasks(config: Config) -> list[str]:
    # pre-cut crops: nothing to segment (features are measured on the crops)
    return list_plates(config) if has_fields(config) else []


def _profile_tasks(config: Config) -> list[str]:
    return list_plates(config) if config.profiles is not None else []


def _train_tasks(config: Config) -> list[str]:
    # a model on another model's embeddings is fitted in its evaluate task (see probe.py)
    models = [m for m in config.models if not m.reads_embeddings]
    return [model_task(m.name, seed) for m in models for seed in config.seeds]


def _evaluate_tasks(config: Config) -> list[str]:
    return [model_task(m.name, seed) for m in config.models for seed in config.seeds]


def _aggregate_tasks(config: Config) -> list[str]:
    return [AGGREGATE_TASK]


# --- inputs and outputs -----------------------------------------------------------------------


def _paths(config: Config) -> ResultsPaths:
    return ResultsPaths(config.results_root)


def _crop_inputs(config: Config, plate: str) -> list[Path]:
    return [_paths(config).label_store(plate)] if has_fields(config) else []


def _features_inputs(config: Config, plate: str) -> list[Path]:
    paths = _paths(config)
    if not has_fields(config):
        return [paths.crop_store(plate)]
    read = [paths.label_store(plate)]
    if config.features.source == "cellprofiler":  # a new export makes the features stale
        read += export_files(config.features.tables.path_for(plate))
    return read


def _model_reads(config: Config, task: str) -> list[Path]:
    """The feature tables, crop stores (and embedding model) a model task reads."""
    paths = _paths(config)
    model, seed = parse_model_task(task)
    params, plates = config.model(model), list_plates(config)
    if params.reads_embeddings:  # the embedding model's weights and split
        source = params.embedding_model
        stores = [paths.crop_store(p) for p in plates]
        return [*stores, model_weights(config, paths, source, seed), paths.split_file(source, seed)]
    read = [paths.feature_table(p) for p in plates] if params.reads_features else []
    if params.reads_crops:
        read += [paths.crop_store(p) for p in plates]
    return read


def _evaluate_inputs(config: Config, task: str) -> list[Path]:
    model, seed = parse_model_task(task)
    read = _model_reads(config, task)
    if config.model(model).reads_embeddings:
        return read
    paths = _paths(config)
    return [*read, model_weights(config, paths, model, seed), paths.split_file(model, seed)]


def _train_outputs(config: Config, task: str) -> list[Path]:
    model, seed = parse_model_task(task)
    paths = _paths(config)
    weights = model_weights(config, paths, model, seed)
    return [weights, paths.split_file(model, seed), paths.model_info(model, seed)]


def _evaluate_outputs(config: Config, task: str) -> list[Path]:
    model, seed = parse_model_task(task)
    paths = _paths(config)
    written = [paths.metrics(model, seed), paths.predictions(model, seed)]
    if _writes_mmd(config, model):
        written.append(paths.mmd_table(model, seed))
    return written


def _writes_mmd(config: Config, model: str) -> bool:
    """Whether a model's evaluate task writes MMD^2 between groups (its embeddings)."""
    return config.evaluate.mmd is not None and config.model(model).gives_embeddings


def _aggregate_inputs(config: Config, task: str) -> list[Path]:
    paths = _paths(config)
    return [
        paths.status_file(stage.name, other)
        for stage in STAGE_TABLE
        if stage.unit != EXPERIMENT
        for other in stage.tasks(config)
    ]


def _run_aggregate(config: Config, task: str, settings_hash: str) -> dict:
    """The report, with every task that did not finish and every task's time."""
    from cellbench.report.aggregate import build_report
    from cellbench.report.exclusions import exclusion_note

    paths = _paths(config)
    earlier = [s for s in STAGE_TABLE if s.unit != EXPERIMENT]
    missing = [
        f"{stage.name}/{name}"
        for stage in earlier
        for name in stage.tasks(config)
        if task_state(config, stage.name, name) != DONE
    ]
    timings, excluded = [], {}
    counted_in = "segment" if has_fields(config) else "crop"  # the task that opens the plate
    for stage in earlier:
        for name in stage.tasks(config):
            status = read_status(paths.status_file(stage.name, name)) or {}
            if stage.name == "segment":  # fields that failed alone, their plate done
                errors = status.get("details", {}).get("field_errors") or {}
                missing += [f"segment/{name} field {f}: {e}" for f, e in errors.items()]
            if stage.name == counted_in and status.get("details", {}).get("excluded"):
                excluded[name] = status["details"]["excluded"]
            timings.append(
                {
                    "stage": stage.name,
                    "task": name,
                    "state": status.get("state", "not run"),
                    "seconds": status.get("seconds"),
                }
            )
    note = exclusion_note(excluded)
    return build_report(config, missing, pd.DataFrame(timings), notes=[note] if note else [])


_FIELDS = ("data", "segmentation")
STAGE_TABLE: tuple[Stage, ...] = (
    Stage(
        "segment",
        PLATE,
        (),
        _FIELDS,
        _segment_tasks,
        lambda config, plate: [],
        lambda config, plate: [_paths(config).label_store(plate)],
        runners.run_segment,
    ),
    Stage(
        "crop",
        PLATE,
        ("segment",),
        (*_FIELDS, "crops", "ground_truth"),
        _plate_tasks,
        _crop_inputs,
        lambda config, plate: [_paths(config).crop_store(plate)],
        runners.run_crop,
    ),
    Stage(
        "features",
        PLATE,
        ("segment", "crop"),  # pre-cut crops are measured from the crop store
        (*_FIELDS, "features", "ground_truth"),
        _plate_tasks,
        _features_inputs,
        lambda config, plate: [_paths(config).feature_table(plate)],
        runners.run_features,
    ),
    Stage(
        "profiles",
        PLATE,
        ("features",),
        (*_FIELDS, "features", "ground_truth", "profiles"),
        _profile_tasks,
        lambda config, plate: [_paths(config).feature_table(plate)],
        lambda config, plate: [_paths(config).profile_table(plate)],
        runners.run_profiles,
    ),
    Stage(
        "train",
        MODEL_SEED,
        ("segment", "crop", "features"),
        (*_FIELDS, "features", "ground_truth", "split"),
        _train_tasks,
        _model_reads,
        _train_outputs,
        runners.run_train,
    ),
    Stage(
        "evaluate",
        MODEL_SEED,
        ("segment", "crop", "features", "train"),
        (*_FIELDS, "features", "ground_truth", "split"),
        _evaluate_tasks,
        _evaluate_inputs,
        _evaluate_outputs,
        runners.run_evaluate,
    ),
    Stage(
        "aggregate",
        EXPERIMENT,
        ("segment", "crop", "features", "profiles", "train", "evaluate"),
        (
            *_FIELDS,
            "features",
            "ground_truth",
            "crops",
            "profiles",
            "split",
            "models",
            "seeds",
            "report",
        ),
        _aggregate_tasks,
        _aggregate_inputs,
        lambda config, task: [_paths(config).report_file("index.html")],
        _run_aggregate,
    ),
)
STAGES = tuple(stage.name for stage in STAGE_TABLE)
PLATE_STAGES = tuple(stage.name for stage in STAGE_TABLE if stage.unit == PLATE)
_BY_NAME = {stage.name: stage for stage in STAGE_TABLE}
if STAGES != get_args(StageName):  # the cluster profile's vocabulary must follow the table
    raise RuntimeError(f"config.cluster.StageName {get_args(StageName)} != stages {STAGES}")


def stage(name: str) -> Stage:
    """The row of stage `name`; a `CellbenchError` naming the stages for an unknown one."""
    if name not in _BY_NAME:
        raise CellbenchError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    return _BY_NAME[name]


# --- queries of the table ---------------------------------------------------------------------


def list_tasks(config: Config, name: str) -> list[str]:
    """Names of the tasks of a stage, from the config alone."""
    return stage(name).tasks(config)


def reads_crop_stores(config: Config, name: str) -> bool:
    """Whether a stage's tasks read crop stores: the aggregate, pre-cut features, crop models."""
    if name == "features":
        return not has_fields(config)
    if stage(name).unit == MODEL_SEED:
        return any(m.reads_crops or m.reads_embeddings for m in config.models)
    return stage(name).unit == EXPERIMENT


def task_hash(config: Config, name: str, task: str) -> str:
    """Hash of the settings a task's result depends on (execution settings excluded).

    ``results_root`` is left out: a results tree copied elsewhere keeps its finished tasks.
    The names listed in ``data.exclude.file`` count, not only its path: editing the list
    makes every task stale.
    """
    row = stage(name)
    dumped = config.model_dump(mode="json")
    sections = list(row.sections)
    if row.unit == MODEL_SEED and reads_crop_stores(config, name):
        sections.append("crops")
    payload = {key: dumped[key] for key in sections}
    if "data" in sections and config.data.exclude.file is not None:
        payload["data_exclude_file_names"] = file_names(config.data.exclude)
    if row.unit == MODEL_SEED:
        model, seed = parse_model_task(task)
        settings = training_settings if name == "train" else _all_settings
        payload["model"] = settings(config.model(model))
        source = getattr(config.model(model), "embedding_model", None)
        if source is not None:  # its embeddings come from its training
            payload["embedding_model"] = training_settings(config.model(source))
        payload["seed"] = seed
        weights = getattr(config.model(model), "weights", None)
        if weights is not None:  # a changed file retrains, whatever its name
            payload["weights_sha256"] = file_sha256(Path(weights))
        if name == "evaluate" and config.model(model).gives_embeddings:
            payload["evaluate"] = dumped["evaluate"]  # MMD of its embeddings
    return stable_hash(payload)


def _all_settings(model) -> dict:
    """Every setting of a model entry (the evaluate stage reads them all)."""
    return model.model_dump(mode="json")


def task_outputs(config: Config, name: str, task: str) -> list[Path]:
    """Files a finished task leaves behind."""
    return stage(name).outputs(config, task)


def task_inputs(config: Config, name: str, task: str) -> list[Path]:
    """Files a task reads that earlier tasks wrote (raw images are not tracked).

    Their fingerprint is recorded when the task runs; a change makes the task stale.
    """
    return stage(name).inputs(config, task)


def is_task_done(config: Config, name: str, task: str) -> bool:
    """Whether a task is done with the current settings and inputs, its outputs as it left them."""
    return why_task_not_done(config, name, task) is None


def why_task_not_done(config: Config, name: str, task: str) -> str | None:
    """Why a task has to run (``never ran``, ``output crops/P1.h5 changed ...``), or None."""
    root = config.results_root
    return why_not_done(
        read_status(ResultsPaths(root).status_file(name, task)),
        task_hash(config, name, task),
        fingerprint(task_outputs(config, name, task), root),
        fingerprint(task_inputs(config, name, task), root),
    )


def task_state(config: Config, name: str, task: str) -> str:
    """The recorded state of a task: done, failed, skipped, running, died, stale or missing."""
    status = read_status(ResultsPaths(config.results_root).status_file(name, task))
    if status is None:
        return "missing"
    if status.get("state") == DONE and not is_task_done(config, name, task):
        return "stale"
    if status.get("state") == RUNNING and process_gone(status):
        return DIED
    return status.get("state", "missing")
