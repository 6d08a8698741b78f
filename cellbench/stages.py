"""The stages: which tasks exist, how one task runs, and when it is done.

Each stage lists its tasks from the config alone (no image is opened), so a plan is cheap;
`run_task` runs one of them wherever it is called (a local process, a SLURM array element, a
container) and records the outcome in `_status/<stage>/<task>.json`. A task whose status says
done with the same settings hash, and whose outputs exist, is skipped unless forced.

=========  ===================  =====================================================
stage      one task is          writes
=========  ===================  =====================================================
segment    a plate              segment/<plate>.h5
crop       a plate              crops/<plate>.h5
features   a plate              features/<plate>.parquet
train      a model x a seed     models/<model>/seed<k>/model.skops or model.pt, split, info
evaluate   a model x a seed     models/<model>/seed<k>/metrics.json, predictions
aggregate  the experiment       report/
=========  ===================  =====================================================
"""

from __future__ import annotations

import errno
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import filelock
import pandas as pd

from cellbench.config import CLASSICAL_TYPES, Config, stable_hash
from cellbench.data.plates import has_fields, list_plates, open_plate
from cellbench.errors import CellbenchError, InputMissing
from cellbench.io.atomic import remove_leftovers, remove_leftovers_under
from cellbench.paths import ResultsPaths
from cellbench.status import (
    DIED,
    DONE,
    FAILED,
    RUNNING,
    SKIPPED,
    fingerprint,
    process_gone,
    read_status,
    why_not_done,
    write_status,
)

log = logging.getLogger(__name__)

STAGES = ("segment", "crop", "features", "train", "evaluate", "aggregate")
PLATE_STAGES = ("segment", "crop", "features")  # one task per plate, named after it
AGGREGATE_TASK = "report"


@dataclass(frozen=True)
class TaskResult:
    """How one task ended: ``done``, ``skipped`` (already done, or input missing) or ``failed``."""

    stage: str
    task: str
    state: str
    message: str = ""
    seconds: float = 0.0
    details: dict = field(default_factory=dict)
    traceback: str = ""  # of a bug or an OS error; shown with -v, always in the status file

    @property
    def ok(self) -> bool:
        """Whether the task did not fail."""
        return self.state != FAILED


# --- task lists -------------------------------------------------------------------------------


def list_tasks(config: Config, stage: str) -> list[str]:
    """Names of the tasks of a stage, from the config alone."""
    _check_stage(stage)
    if stage in PLATE_STAGES:
        if stage == "segment" and not has_fields(config):
            return []  # pre-cut crops: nothing to segment (features are measured on the crops)
        return list_plates(config)
    if stage in ("train", "evaluate"):
        # a model on another model's embeddings is fitted in its evaluate task (see probe.py)
        models = [m for m in config.models if stage == "evaluate" or m.input != "embeddings"]
        return [model_task(m.name, seed) for m in models for seed in config.seeds]
    return [AGGREGATE_TASK]


def reads_crop_stores(config: Config, stage: str) -> bool:
    """Whether a stage's tasks read crop stores: the aggregate, pre-cut features, crop models."""
    if stage == "features":
        return not has_fields(config)
    if stage in ("train", "evaluate"):
        return any(m.input in ("crops", "fusion", "embeddings") for m in config.models)
    return stage == "aggregate"


def model_task(model: str, seed: int) -> str:
    """Task name of a model and seed, e.g. ``rf.seed0``."""
    return f"{model}.seed{seed}"


def parse_model_task(task: str) -> tuple[str, int]:
    """Split ``rf.seed0`` into (``rf``, 0)."""
    model, _, seed = task.rpartition(".seed")
    if not model or not seed.isdigit():
        raise CellbenchError(f"task {task!r} is not of the form <model>.seed<k>")
    return model, int(seed)


# --- settings each stage depends on ------------------------------------------------------------


def task_hash(config: Config, stage: str, task: str) -> str:
    """Hash of the settings a task's result depends on (execution settings excluded)."""
    dumped = config.model_dump(mode="json")
    sections = {
        "segment": ["data", "segmentation"],
        "crop": ["data", "segmentation", "crops", "ground_truth"],
        "features": ["data", "segmentation", "features", "ground_truth"],
        "aggregate": [
            "data",
            "segmentation",
            "features",
            "ground_truth",
            "crops",
            "split",
            "models",
            "seeds",
            "report",
        ],
    }
    if stage in ("train", "evaluate"):
        model, seed = parse_model_task(task)
        sections = ["data", "segmentation", "features", "ground_truth", "split"]
        if reads_crop_stores(config, stage):
            sections.append("crops")
        payload = {k: dumped[k] for k in sections}
        payload["model"] = config.model(model).model_dump(mode="json")
        source = getattr(config.model(model), "embedding_model", None)
        if source is not None:
            payload["embedding_model"] = config.model(source).model_dump(mode="json")
        payload["seed"] = seed
    else:
        payload = {k: dumped[k] for k in sections[stage]}
    # results_root is left out: a results tree copied elsewhere keeps its finished tasks
    return stable_hash(payload)


def task_outputs(config: Config, stage: str, task: str) -> list[Path]:
    """Files a finished task leaves behind."""
    paths = ResultsPaths(config.results_root)
    if stage == "segment":
        return [paths.label_store(task)]
    if stage == "crop":
        return [paths.crop_store(task)]
    if stage == "features":
        return [paths.feature_table(task)]
    if stage == "train":
        model, seed = parse_model_task(task)
        return [
            _model_weights(config, paths, model, seed),
            paths.split_file(model, seed),
            paths.model_info(model, seed),
        ]
    if stage == "evaluate":
        model, seed = parse_model_task(task)
        return [paths.metrics(model, seed), paths.predictions(model, seed)]
    return [paths.report_file("index.html")]


def task_inputs(config: Config, stage: str, task: str) -> list[Path]:
    """Files a task reads that earlier tasks wrote (raw images are not tracked).

    Their fingerprint is recorded when the task runs; a change makes the task stale.
    """
    paths = ResultsPaths(config.results_root)
    if stage == "segment":
        return []
    if stage in ("crop", "features"):
        if has_fields(config):
            return [paths.label_store(task)]
        return [paths.crop_store(task)] if stage == "features" else []
    model, seed = parse_model_task(task) if stage in ("train", "evaluate") else ("", 0)
    if stage in ("train", "evaluate"):
        params = config.model(model)
        plates = list_plates(config)
        if params.input == "embeddings":  # the embedding model's weights and split
            source = params.embedding_model
            weights = _model_weights(config, paths, source, seed)
            stores = [paths.crop_store(p) for p in plates]
            return [*stores, weights, paths.split_file(source, seed)]
        read = [paths.feature_table(p) for p in plates] if params.input != "crops" else []
        if params.input in ("crops", "fusion"):
            read += [paths.crop_store(p) for p in plates]
        if stage == "train":
            return read
        return [*read, _model_weights(config, paths, model, seed), paths.split_file(model, seed)]
    return [
        paths.status_file(name, other) for name in STAGES[:-1] for other in list_tasks(config, name)
    ]


def is_task_done(config: Config, stage: str, task: str) -> bool:
    """Whether a task is done with the current settings and inputs, its outputs as it left them."""
    return why_task_not_done(config, stage, task) is None


def why_task_not_done(config: Config, stage: str, task: str) -> str | None:
    """Why a task has to run (``never ran``, ``output crops/P1.h5 changed ...``), or None."""
    root = config.results_root
    return why_not_done(
        read_status(ResultsPaths(root).status_file(stage, task)),
        task_hash(config, stage, task),
        fingerprint(task_outputs(config, stage, task), root),
        fingerprint(task_inputs(config, stage, task), root),
    )


# --- running one task -------------------------------------------------------------------------


def run_task(config: Config, stage: str, task: str, force: bool = False) -> TaskResult:
    """Run one task, record its status, and never raise for the task's own failure.

    A failure of the input (a `CellbenchError`) is recorded with its one-line message, an OS
    error (disk full, read-only folder) with the path and the error, a bug with its
    traceback. Either way the caller gets a `TaskResult` and other tasks go on. A task runs
    at most once at a time: a second caller (another array element, a second submit) finds
    its lock held and skips it.
    """
    _check_stage(stage)
    if task not in list_tasks(config, stage):
        raise CellbenchError(
            f"stage {stage!r} has no task {task!r}; tasks: {list_tasks(config, stage)}"
        )
    paths = ResultsPaths(config.results_root)
    status_path = paths.status_file(stage, task)
    if not force and is_task_done(config, stage, task):
        return TaskResult(stage, task, SKIPPED, "already done")
    lock = filelock.FileLock(paths.task_lock(stage, task))
    started = time.time()
    try:
        status_path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except filelock.Timeout:
        holder = read_status(status_path) or {}
        where = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
        return TaskResult(stage, task, SKIPPED, f"running elsewhere ({where})")
    except OSError as exc:
        return _failed_to_record(stage, task, exc, started)
    try:
        if not force and is_task_done(config, stage, task):  # done while we waited
            return TaskResult(stage, task, SKIPPED, "already done")
        return _run_locked(config, stage, task, status_path, started)
    finally:
        lock.release()


def _run_locked(
    config: Config, stage: str, task: str, status_path: Path, started: float
) -> TaskResult:
    """Run a task whose lock this process holds; record how it ended."""
    outputs = task_outputs(config, stage, task)
    common = {
        "stage": stage,
        "task": task,
        "config_hash": task_hash(config, stage, task),
        "inputs": fingerprint(task_inputs(config, stage, task), config.results_root),
        "started": started,
    }
    try:
        write_status(status_path, state=RUNNING, **common)
        for leftover in _remove_leftovers(config, stage, task, outputs):
            log.info("%s/%s: removed %s left by an earlier run", stage, task, leftover)
        details = _RUNNERS[stage](config, task)
    except InputMissing as exc:
        message = f"input missing: {exc}"
        log.warning("%s/%s skipped: %s", stage, task, message)
        return _record_end(status_path, common, SKIPPED, message, message=message)
    except Exception as exc:  # the task failed; record why and let the others go on
        message, trace = describe_failure(exc)
        log.error("%s/%s failed: %s", stage, task, message)
        return _record_end(
            status_path, common, FAILED, message, error=message, traceback=trace or None
        )
    root = config.results_root
    return _record_end(
        status_path,
        common,
        DONE,
        _summary(details),
        outputs=fingerprint(outputs, root),
        details=details,
    )


def _record_end(status_path: Path, common: dict, state: str, summary: str, **fields) -> TaskResult:
    """Write a task's final status and return its result (failed when it cannot be written)."""
    stage, task = common["stage"], common["task"]
    seconds = time.time() - common["started"]
    trace = fields.get("traceback") or ""
    try:
        write_status(status_path, state=state, seconds=seconds, **common, **fields)
    except OSError as exc:
        return _failed_to_record(stage, task, exc, common["started"])
    details = fields.get("details") or {}
    return TaskResult(stage, task, state, summary, seconds, details, trace)


def _failed_to_record(stage: str, task: str, exc: OSError, started: float) -> TaskResult:
    """The result of a task whose status could not be written (full disk, read-only root)."""
    message, trace = describe_failure(exc)
    message = f"cannot record its status: {message}"
    log.error("%s/%s failed: %s", stage, task, message)
    return TaskResult(stage, task, FAILED, message, time.time() - started, {}, trace)


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """One line for a task's failure, and the traceback where one helps.

    A `CellbenchError` is bad input: its message alone. An OS error names the error and
    the path (``No space left on device: /r/crops/.P1.tmp-1a2b.h5``). Anything else is a
    bug: its type, message and traceback.
    """
    if isinstance(exc, CellbenchError):
        return str(exc), ""
    trace = "".join(traceback.format_exception(exc))
    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, "OSError")
        where = exc.filename or _oserror_path(exc)
        text = exc.strerror or str(exc)
        return f"{name}: {text}" + (f": {where}" if where else ""), trace
    return f"{type(exc).__name__}: {exc}", trace


def _oserror_path(exc: OSError) -> str:
    """The file an OS error came from, when only its cause or message says (h5py, pandas)."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.filename:
        return str(cause.filename)
    return ""


def _remove_leftovers(config: Config, stage: str, task: str, outputs: list[Path]) -> list[Path]:
    """Remove what a killed earlier run of the task left: temporary files of its outputs."""
    paths = ResultsPaths(config.results_root)
    removed = [leftover for output in outputs for leftover in remove_leftovers(output)]
    if stage in ("train", "evaluate"):  # a seed folder belongs to its model's tasks alone
        model, seed = parse_model_task(task)
        removed += remove_leftovers_under(paths.model_dir(model, seed))
    elif stage == "aggregate":
        removed += remove_leftovers_under(paths.report_dir)
    elif stage == "segment":  # a synthetic plate half-written by a killed run
        removed += remove_leftovers(paths.input_plate(task))
    return removed


def task_state(config: Config, stage: str, task: str) -> str:
    """The recorded state of a task: done, failed, skipped, running, died, stale or missing."""
    status = read_status(ResultsPaths(config.results_root).status_file(stage, task))
    if status is None:
        return "missing"
    if status.get("state") == DONE and not is_task_done(config, stage, task):
        return "stale"
    if status.get("state") == RUNNING and process_gone(status):
        return DIED
    return status.get("state", "missing")


def _summary(details: dict) -> str:
    """A short line of a task's scalar results, e.g. ``cells 478, fields 36``."""

    def show(value: int | float | str) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    return ", ".join(
        f"{k} {show(v)}" for k, v in details.items() if isinstance(v, int | float | str)
    )


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise CellbenchError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")


# --- the stages' work -------------------------------------------------------------------------


def _run_segment(config: Config, plate: str) -> dict:
    from cellbench.segment.plate import segment_plate

    paths = ResultsPaths(config.results_root)
    opened = open_plate(config, plate)
    return segment_plate(
        opened,
        config.data.channels,
        config.segmentation,
        paths.label_store(plate),
        nonfinite=config.data.nonfinite,
    )


def _run_crop(config: Config, plate: str) -> dict:
    from cellbench.crops.extract import crop_spec
    from cellbench.crops.plate import crop_plate

    paths = ResultsPaths(config.results_root)
    if not has_fields(config):
        return _ingest_precut(config, plate)
    labels = _require(paths.label_store(plate))
    specs = [
        crop_spec(kind, s.size_px, s.masked, config.crops.border)
        for kind, s in config.crops.kinds.items()
    ]
    return crop_plate(
        open_plate(config, plate),
        labels,
        config.data.channels,
        specs,
        paths.crop_store(plate),
        config_hash=task_hash(config, "crop", plate),
        compression=config.crops.compression,
        background=config.crops.background,
        label_column=config.data.label_column,
        ground_truth=_marker_setup(config),
        nonfinite=config.data.nonfinite,
    )


def _ingest_precut(config: Config, plate: str) -> dict:
    from cellbench.crops.precut import ingest_precut_plate
    from cellbench.data.precut import index_crops

    return ingest_precut_plate(
        index_crops(config.data.input),
        plate,
        config.data.input.axes,
        config.data.channels,
        config.data.label_column,
        ResultsPaths(config.results_root).crop_store(plate),
        config_hash=task_hash(config, "crop", plate),
        compression=config.crops.compression,
    )


def _run_features(config: Config, plate: str) -> dict:
    paths = ResultsPaths(config.results_root)
    if not has_fields(config):  # pre-cut crops: measure each crop's centre cell
        from cellbench.features.crops import measure_store_crops

        seg = config.segmentation
        return measure_store_crops(
            _require(paths.crop_store(plate)),
            "precut",
            config.data.channels,
            config.features.regions,
            config.features.texture,
            seg.nucleus_channel,
            [c for c in (seg.cell_channels or []) if c in config.data.channels],
            config.data.label_column,
            paths.feature_table(plate),
        )
    from cellbench.features.plate import measure_plate

    labels = _require(paths.label_store(plate))
    return measure_plate(
        open_plate(config, plate),
        labels,
        config.data.channels,
        config.features.regions,
        paths.feature_table(plate),
        config.features.texture,
        _marker_setup(config),
        nonfinite=config.data.nonfinite,
    )


def _marker_setup(config: Config):
    """Ground-truth settings with the channels they read, or None."""
    if config.ground_truth is None:
        return None
    from cellbench.features.ground_truth import MarkerSetup

    return MarkerSetup(
        config.ground_truth, config.data.marker_channels, config.segmentation.nucleus_channel
    )


def _run_train(config: Config, task: str) -> dict:
    from cellbench.models.train import train_model

    model, seed = parse_model_task(task)
    tables, stores, missing = _model_inputs(config, config.model(model))
    details = train_model(
        config.model(model),
        config.model(model).split or config.split,
        config.data.label_column,
        seed,
        ResultsPaths(config.results_root),
        feature_tables=tables,
        crop_stores=stores,
        settings_hash=task_hash(config, "train", task),
    )
    return {**details, "plates_missing": missing}


def _run_evaluate(config: Config, task: str) -> dict:
    from cellbench.evaluate.run import evaluate_model

    paths = ResultsPaths(config.results_root)
    model, seed = parse_model_task(task)
    params = config.model(model)
    source = config.model(params.embedding_model) if params.input == "embeddings" else None
    _require(_model_weights(config, paths, source.name if source else model, seed))
    tables, stores, _ = _model_inputs(config, source or params)
    return evaluate_model(
        params,
        config.data.label_column,
        seed,
        paths,
        feature_tables=tables,
        crop_stores=stores,
        channels=config.data.channels,
        source=source,
    )


def _model_weights(config: Config, paths: ResultsPaths, model: str, seed: int) -> Path:
    """The file holding a trained model: scikit-learn pipeline or PyTorch weights."""
    if config.model(model).type in CLASSICAL_TYPES:
        return paths.model_file(model, seed)
    return paths.torch_model_file(model, seed)


def _run_aggregate(config: Config, task: str) -> dict:
    from cellbench.report.aggregate import build_report

    paths = ResultsPaths(config.results_root)
    missing = [
        f"{stage}/{name}"
        for stage in STAGES[:-1]
        for name in list_tasks(config, stage)
        if task_state(config, stage, name) != DONE
    ]
    for plate in list_tasks(config, "segment"):
        status = read_status(paths.status_file("segment", plate)) or {}
        for name, error in (status.get("details", {}).get("field_errors") or {}).items():
            missing.append(f"segment/{plate} field {name}: {error}")
    timings = []
    for stage in STAGES[:-1]:
        for name in list_tasks(config, stage):
            status = read_status(paths.status_file(stage, name)) or {}
            timings.append(
                {
                    "stage": stage,
                    "task": name,
                    "state": status.get("state", "not run"),
                    "seconds": status.get("seconds"),
                }
            )
    return build_report(config, missing, pd.DataFrame(timings))


def _model_inputs(config: Config, params) -> tuple[list[Path], list[Path], list[str]]:
    """Feature tables and crop stores a model reads, of the plates that have them.

    A plate whose file is missing (its task failed) is left out and named, so the other
    plates still train; with no file at all the task fails.
    """
    paths = ResultsPaths(config.results_root)
    plates = list_plates(config)
    wanted = {"features": params.input in ("features", "fusion")}
    wanted["crops"] = params.input in ("crops", "fusion")
    tables = [paths.feature_table(p) for p in plates] if wanted["features"] else []
    stores = [paths.crop_store(p) for p in plates] if wanted["crops"] else []
    missing = sorted({str(f.stem) for f in [*tables, *stores] if not f.exists()})
    tables = [t for t in tables if t.exists()]
    stores = [s for s in stores if s.exists()]
    if wanted["features"] and not tables:
        raise InputMissing(f"no feature table under {paths.root / 'features'}")
    if wanted["crops"] and not stores:
        raise InputMissing(f"no crop store under {paths.root / 'crops'}")
    return tables, stores, missing


def _require(path: Path) -> Path:
    if not path.exists():
        raise InputMissing(f"{path} does not exist (has the stage before run?)")
    return path


_RUNNERS: dict[str, Callable[[Config, str], dict]] = {
    "segment": _run_segment,
    "crop": _run_crop,
    "features": _run_features,
    "train": _run_train,
    "evaluate": _run_evaluate,
    "aggregate": _run_aggregate,
}
