"""The work of each stage: one function per stage, from the config and a task name to files.

Each runner reads its inputs through `ResultsPaths`, calls the stage's own module (segment,
crops, features, models, evaluate), and returns the details recorded in the task's status. The
stage table (`cellbench.stages`) says which runner a stage has, and `cellbench.tasks.run_task`
calls it; a runner never writes a status and never decides whether its task is done.
"""

from __future__ import annotations

from pathlib import Path

from cellbench.config import CLASSICAL_TYPES, Config
from cellbench.config.crop_kinds import PRECUT
from cellbench.data.plates import has_fields, list_plates, open_plate
from cellbench.errors import CellbenchError, InputMissing
from cellbench.paths import ResultsPaths


def model_task(model: str, seed: int) -> str:
    """Task name of a model and seed, e.g. ``rf.seed0``."""
    return f"{model}.seed{seed}"


def parse_model_task(task: str) -> tuple[str, int]:
    """Split ``rf.seed0`` into (``rf``, 0)."""
    model, _, seed = task.rpartition(".seed")
    if not model or not seed.isdigit():
        raise CellbenchError(f"task {task!r} is not of the form <model>.seed<k>")
    return model, int(seed)


def run_segment(config: Config, plate: str, settings_hash: str) -> dict:
    """Segment every field of a plate into its label store."""
    from cellbench.segment.plate import segment_plate

    paths = ResultsPaths(config.results_root)
    opened = open_plate(config, plate)
    details = segment_plate(
        opened,
        config.data.channels,
        config.segmentation,
        paths.label_store(plate),
        nonfinite=config.data.nonfinite,
    )
    return {**details, "excluded": opened.excluded} if opened.excluded else details


def run_crop(config: Config, plate: str, settings_hash: str) -> dict:
    """Cut every cell of a plate into its crop store (or ingest its pre-cut crops)."""
    from cellbench.crops.extract import crop_spec
    from cellbench.crops.plate import crop_plate

    paths = ResultsPaths(config.results_root)
    if not has_fields(config):
        return _ingest_precut(config, plate, settings_hash)
    labels = _require(paths.label_store(plate))
    specs = [
        crop_spec(s.cut_kind(name), s.size_px, s.masked, config.crops.border, name=name)
        for name, s in config.crops.kinds.items()
    ]
    return crop_plate(
        open_plate(config, plate),
        labels,
        config.data.channels,
        specs,
        paths.crop_store(plate),
        config_hash=settings_hash,
        compression=config.crops.compression,
        background=config.crops.background,
        label_column=config.data.label_column,
        ground_truth=_marker_setup(config),
        nonfinite=config.data.nonfinite,
    )


def _ingest_precut(config: Config, plate: str, settings_hash: str) -> dict:
    from cellbench.crops.precut import ingest_precut_plate
    from cellbench.data.precut import plate_crops

    rows = plate_crops(config.data.input, config.data.exclude, plate)
    details = ingest_precut_plate(
        rows,
        plate,
        config.data.input.axes,
        config.data.channels,
        config.data.label_column,
        ResultsPaths(config.results_root).crop_store(plate),
        config_hash=settings_hash,
        compression=config.crops.compression,
    )
    excluded = rows.attrs["excluded"]
    return {**details, "excluded": excluded} if excluded else details


def run_features(config: Config, plate: str, settings_hash: str) -> dict:
    """Measure every cell of a plate (or each pre-cut crop's centre cell) into Parquet."""
    paths = ResultsPaths(config.results_root)
    if not has_fields(config):  # pre-cut crops: measure each crop's centre cell
        from cellbench.features.crops import measure_store_crops

        seg = config.segmentation
        return measure_store_crops(
            _require(paths.crop_store(plate)),
            PRECUT,
            config.data.channels,
            config.features,
            seg.nucleus_channel,
            [c for c in (seg.cell_channels or []) if c in config.data.channels],
            config.data.label_column,
            paths.feature_table(plate),
        )
    from cellbench.features.plate import measure_plate

    labels = _require(paths.label_store(plate))
    opened = open_plate(config, plate)
    imported = None
    if config.features.source == "cellprofiler":
        from cellbench.features.cp_import import PlateExport

        settings = config.features
        imported = PlateExport(settings.tables, plate, opened.fields, settings.regions)
    return measure_plate(
        opened,
        labels,
        config.data.channels,
        config.features,
        paths.feature_table(plate),
        ground_truth=_marker_setup(config),
        nonfinite=config.data.nonfinite,
        imported=imported,
    )


def _marker_setup(config: Config):
    """Ground-truth settings with the channels they read, or None."""
    if config.ground_truth is None:
        return None
    from cellbench.ground_truth import MarkerSetup

    return MarkerSetup(
        config.ground_truth, config.data.marker_channels, config.segmentation.nucleus_channel
    )


def run_profiles(config: Config, plate: str, settings_hash: str) -> dict:
    """A plate's per-well profiles: its cells aggregated per well, normalised to controls."""
    from cellbench.features.profiles import write_well_profiles

    paths = ResultsPaths(config.results_root)
    return write_well_profiles(
        _require(paths.feature_table(plate)), paths.profile_table(plate), config.profiles
    )


def run_train(config: Config, task: str, settings_hash: str) -> dict:
    """Train one model with one seed on the plates whose inputs exist."""
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
        settings_hash=settings_hash,
    )
    return {**details, "plates_missing": missing}


def run_evaluate(config: Config, task: str, settings_hash: str) -> dict:
    """Evaluate one trained model (or fit and evaluate a model on its embeddings)."""
    from cellbench.evaluate.run import evaluate_model

    paths = ResultsPaths(config.results_root)
    model, seed = parse_model_task(task)
    params = config.model(model)
    source = config.model(params.embedding_model) if params.reads_embeddings else None
    _require(model_weights(config, paths, source.name if source else model, seed))
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
        mmd=config.evaluate.mmd,
        kmeans_clusters=config.evaluate.kmeans_clusters,
        split=(source or params).split or config.split,
    )


def model_weights(config: Config, paths: ResultsPaths, model: str, seed: int) -> Path:
    """The file holding a trained model: scikit-learn pipeline or PyTorch weights."""
    if config.model(model).type in CLASSICAL_TYPES:
        return paths.model_file(model, seed)
    return paths.torch_model_file(model, seed)


def _model_inputs(config: Config, params) -> tuple[list[Path], list[Path], list[str]]:
    """Feature tables and crop stores a model reads, of the plates that have them.

    A plate whose file is missing (its task failed) is left out and named, so the other
    plates still train; with no file at all the task fails.
    """
    paths = ResultsPaths(config.results_root)
    plates = list_plates(config)
    wanted = {"features": params.reads_features, "crops": params.reads_crops}
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
