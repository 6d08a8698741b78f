"""The experiment schema: one validated object, loaded from YAML.

Every setting of an experiment lives in one `Config`, validated when it is loaded, so that a typo
or a missing folder fails before any task runs. Only this module reads YAML.

Paths in the YAML may hold `${VAR}` environment variables; `${CELLBENCH_DATA}` defaults to
`../shared/data` beside the repository. Relative paths are taken from the current directory.

Examples
--------
>>> config = load_config("configs/demo.yaml")  # doctest: +SKIP
>>> config.results_root
PosixPath('/.../results/demo')
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from cellbench.errors import ConfigError

DATA_ENV_VAR = "CELLBENCH_DATA"
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def default_data_root() -> Path:
    """Return the folder of shared real data: `$CELLBENCH_DATA`, else `../shared/data`."""
    if os.environ.get(DATA_ENV_VAR):
        return Path(os.environ[DATA_ENV_VAR])
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _tag(key: str, default: str | None = None):
    """A union discriminator that reads `key` from a dict or a model, with a default."""

    def read(value: Any) -> str | None:
        if isinstance(value, dict):
            return value.get(key, default)
        return getattr(value, key, default)

    return Discriminator(read)


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


# --- data sources -----------------------------------------------------------------------------


class SyntheticSource(StrictModel):
    """A synthetic plate made from a seed (`cellbench.data.synthetic`): known cells and classes."""

    source: Literal["synthetic"] = "synthetic"
    plates: int = Field(2, ge=1, description="number of plates, named P1, P2, ...")
    rows: str = Field("AB", pattern=r"^[A-P]+$", description="row letters of each plate")
    columns: list[Annotated[int, Field(ge=1, le=24)]] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5, 6], min_length=1
    )
    sites: int = Field(3, ge=1, le=99, description="fields per well")
    field_shape_px: tuple[int, int] = (256, 256)
    cells_per_field: int = Field(25, ge=1)
    conditions: list[str] = Field(
        default_factory=lambda: ["control", "enlarged_nuclei", "textured"], min_length=2
    )
    seed: int = 0

    @property
    def plate_names(self) -> list[str]:
        """Names of the plates, `P1` ... `Pn`."""
        return [f"P{i + 1}" for i in range(self.plates)]


class FieldsSource(StrictModel):
    """A folder of plates: `<root>/<plate>/fields/X-YY-ZZ.tif` and `<root>/<plate>/layout.csv`."""

    source: Literal["fields"] = "fields"
    root: Path = Field(description="folder with one subfolder per plate")
    plates: list[str] | None = Field(None, description="plates to use; default: every subfolder")

    @field_validator("root")
    @classmethod
    def _root_exists(cls, root: Path) -> Path:
        if not root.is_dir():
            raise ValueError(f"input folder {str(root)!r} does not exist")
        return root


DataSource = Annotated[
    Annotated[SyntheticSource, Tag("synthetic")] | Annotated[FieldsSource, Tag("fields")],
    _tag("source", default="synthetic"),
]


class DataConfig(StrictModel):
    """Where the fields come from and which channels they hold."""

    input: DataSource = Field(default_factory=SyntheticSource)
    channels: list[str] = Field(
        default_factory=lambda: ["DNA", "tubulin", "actin"],
        min_length=1,
        description="stain channels fed to segmentation, crops, features and models, by name",
    )
    marker_channels: list[str] = Field(
        default_factory=lambda: ["marker"],
        description="ground-truth marker channels: measured for labels, never fed to models",
    )
    label_column: str = Field("condition", description="the per-cell class that models predict")


# --- stages -----------------------------------------------------------------------------------


class ClassicalSegmentation(StrictModel):
    """Threshold + watershed segmentation with scikit-image; needs no weights."""

    method: Literal["classical"] = "classical"
    nucleus_channel: str = "DNA"
    cell_channels: list[str] | None = Field(
        None, description="channels whose mean outlines the cells; default: all but the nucleus"
    )
    smoothing_sigma_px: float = Field(1.5, ge=0)
    min_nucleus_distance_px: int = Field(5, ge=1, description="closest two nucleus seeds")
    min_nucleus_area_px: int = Field(30, ge=0)
    max_nucleus_area_px: int | None = Field(None, ge=1)
    cell_threshold_factor: float = Field(
        0.5, gt=0, description="cell foreground = cell signal > factor * Otsu threshold"
    )
    remove_border_objects: bool = True


Segmentation = Annotated[
    Annotated[ClassicalSegmentation, Tag("classical")], _tag("method", default="classical")
]

CropKindName = Literal["whole_cell", "nuclear", "nucleocentric"]


class CropKind(StrictModel):
    """One kind of single-cell crop; unset values take the kind's defaults."""

    size_px: int | None = Field(None, ge=4, description="side of the square crop")
    masked: bool | None = Field(None, description="zero the pixels outside the cell / nucleus")


class CropsConfig(StrictModel):
    """Which crops to cut into the per-plate HDF5 crop store."""

    kinds: dict[CropKindName, CropKind] = Field(
        default_factory=lambda: {"whole_cell": CropKind()}, min_length=1
    )
    compression: Literal["lzf", "gzip", "none"] = "lzf"


class FeaturesConfig(StrictModel):
    """Handcrafted features per cell."""

    regions: list[Literal["Nucleus", "Cytoplasm", "Cell"]] = Field(
        default_factory=lambda: ["Nucleus", "Cytoplasm", "Cell"], min_length=1
    )


class SplitConfig(StrictModel):
    """How cells are divided into train / validation / test, by whole groups."""

    by: Literal["plate", "well", "field"] = "well"
    test_fraction: float = Field(0.3, gt=0, lt=1)
    val_fraction: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _fractions_leave_training(self) -> SplitConfig:
        if self.test_fraction + self.val_fraction >= 1:
            raise ValueError("test_fraction + val_fraction must leave cells for training")
        return self


class RandomForestModel(StrictModel):
    """scikit-learn random forest on the handcrafted features (scaled)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="letters, digits, _ and -")
    type: Literal["random_forest"] = "random_forest"
    input: Literal["features"] = "features"
    n_estimators: int = Field(200, ge=1)
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(1, ge=1)
    class_weight: Literal["balanced"] | None = "balanced"


class MLPModel(StrictModel):
    """A PyTorch multilayer perceptron on the handcrafted features, trained epoch by epoch."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="letters, digits, _ and -")
    type: Literal["mlp"] = "mlp"
    input: Literal["features"] = "features"
    hidden: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [128, 64])
    dropout: float = Field(0.2, ge=0, lt=1)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    optimizer: Literal["adam", "adamw"] = "adamw"
    patience: int | None = Field(10, ge=1, description="early stopping; null: never")


ModelConfig = Annotated[
    Annotated[RandomForestModel, Tag("random_forest")] | Annotated[MLPModel, Tag("mlp")],
    _tag("type"),
]


StageName = Literal["segment", "crop", "features", "train", "evaluate", "aggregate"]


class SlurmResourceOverride(StrictModel):
    """Resources of one stage's jobs; unset values come from the profile's `default`."""

    partition: str | None = None
    cpus: int | None = Field(None, ge=1, description="CPUs per task")
    mem_gb: float | None = Field(None, gt=0, description="memory per task, GB")
    time_min: int | None = Field(None, ge=1, description="time limit per task, minutes")
    gpus: int | None = Field(None, ge=0, description="GPUs per task (gres gpu:N)")
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
            return _read_yaml(Path(value), what="cluster profile")
        return value


class Config(StrictModel):
    """One experiment: data, every stage's settings, models, seeds and where results go."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    results_root: Path
    data: DataConfig = Field(default_factory=DataConfig)
    segmentation: Segmentation = Field(default_factory=ClassicalSegmentation)
    crops: CropsConfig = Field(default_factory=CropsConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    models: list[ModelConfig] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    @model_validator(mode="after")
    def _check_cross_references(self) -> Config:
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"models: duplicate model names {duplicates}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: duplicate seeds")
        channels = self.data.channels
        seg = self.segmentation
        for key, wanted in [
            ("segmentation.nucleus_channel", [seg.nucleus_channel]),
            ("segmentation.cell_channels", seg.cell_channels or []),
        ]:
            unknown = [c for c in wanted if c not in channels]
            if unknown:
                raise ValueError(f"{key}: channel(s) {unknown} not in data.channels {channels}")
        return self

    def model(self, name: str) -> ModelConfig:
        """Return the model config called `name`."""
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(f"no model named {name!r}; models: {[m.name for m in self.models]}")


# --- loading ----------------------------------------------------------------------------------


def load_config(path: str | Path) -> Config:
    """Read, expand and validate an experiment config.

    Parameters
    ----------
    path : str or Path
        A YAML file.

    Returns
    -------
    Config
        The validated experiment, with absolute paths.

    Raises
    ------
    ConfigError
        The file is missing or not YAML, a `${VAR}` is unset, or a value is invalid; the message
        names the file, the key path and the problem, one line per problem.
    """
    path = Path(path)
    try:
        raw = _read_yaml(path, what="config file")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return config_from_dict(raw, source=str(path))


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    """Read a YAML mapping; ValueError names the file and the problem."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: {what} not found") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of keys at the top level")
    return raw


def config_from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a config given as a dict (environment variables expanded, paths absolutised)."""
    expanded = _expand_env(raw, key_path=(), source=source)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        lines = [f"{source}: {_describe(error, expanded)}" for error in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    config.results_root = config.results_root.resolve()
    if isinstance(config.data.input, FieldsSource):
        config.data.input.root = config.data.input.root.resolve()
    return config


def _expand_env(value: Any, key_path: tuple, source: str) -> Any:
    """Replace `${VAR}` in every string of a nested YAML value."""
    if isinstance(value, dict):
        return {k: _expand_env(v, (*key_path, k), source) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*key_path, i), source) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name == DATA_ENV_VAR:
            return str(default_data_root())
        if name not in os.environ:
            key = ".".join(str(k) for k in key_path)
            raise ConfigError(f"{source}: {key}: environment variable ${{{name}}} is not set")
        return os.environ[name]

    return _ENV_PATTERN.sub(substitute, value)


def _describe(error: dict, raw: dict) -> str:
    """Turn one pydantic error into `key.path: problem`, with a suggestion for typos."""
    loc = [str(part) for part in error["loc"] if not str(part).startswith("function-")]
    # Drop the union tags pydantic inserts into the path (e.g. "synthetic", "random_forest").
    key_path = ".".join(_strip_union_tags(error["loc"]))
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        suggestion = _suggest(error["loc"], raw)
        if suggestion:
            message += f"; did you mean {suggestion!r}?"
    elif error["type"] == "union_tag_invalid":
        ctx = error.get("ctx", {})
        message = f"unknown value {ctx.get('tag')!r}; expected one of: {ctx.get('expected_tags')}"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif "input" in error and not isinstance(error["input"], dict | list):
        message += f" (got {error['input']!r})"
    return f"{key_path or '<top level>'}: {message}"


def _strip_union_tags(loc: tuple) -> list[str]:
    tags = {"synthetic", "fields", "classical", "random_forest", "mlp"}
    parts = [str(p) for p in loc]
    return [p for i, p in enumerate(parts) if not (p in tags and i + 1 < len(parts))]


def _suggest(loc: tuple, raw: dict) -> str | None:
    """Suggest the valid key closest to an unknown one, from the schema of its section."""
    model: type[BaseModel] | None = Config
    for part in loc[:-1]:
        if model is None:
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            continue
        model = _model_of(field.annotation, raw_tag=str(part))
    if model is None:
        return None
    matches = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return matches[0] if matches else None


def _model_of(annotation: Any, raw_tag: str) -> type[BaseModel] | None:
    """Find the pydantic model inside an annotation (unwrapping Annotated, list, union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg, raw_tag)
        if found is not None:
            return found
    metadata_origin = getattr(annotation, "__origin__", None)
    if metadata_origin is not None:
        return _model_of(metadata_origin, raw_tag)
    return None


def stable_hash(value: Any) -> str:
    """Hash a JSON-able value (e.g. a few config sections) into 16 hex characters.

    A task is redone when the hash of the settings it depends on changes, and only then.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
