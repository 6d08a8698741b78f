"""The experiment schema: data, each stage's settings and the models."""

from __future__ import annotations

import importlib.util
import string
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from cellbench.config.analyses import EvaluateConfig, ReportConfig
from cellbench.config.base import StrictModel, name_type
from cellbench.config.cluster import ExecutionConfig
from cellbench.config.crop_kinds import PRECUT, background_kinds
from cellbench.config.crops import CropsConfig
from cellbench.config.data import CropsSource, DataConfig
from cellbench.config.feature_groups import Region
from cellbench.config.models import EMBEDDING_TYPES, PROBABILISTIC_TYPES, ModelConfig
from cellbench.config.rules import parse_rule, rule_columns
from cellbench.config.segmentation import SegmentationConfig
from cellbench.config.split import SplitConfig

ExperimentName = name_type("experiment")

# --- stages -----------------------------------------------------------------------------------


class TextureConfig(StrictModel):
    """Grey-level co-occurrence (GLCM) texture of each region and channel."""

    distances_px: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [1])
    angles_deg: list[float] = Field(default_factory=lambda: [0.0])
    levels: int = Field(32, ge=2, le=256, description="grey levels after per-object scaling")


class CellProfilerTables(StrictModel):
    """CellProfiler's own measurements, read instead of measured (``features.source``).

    `path` is a folder of ExportToSpreadsheet CSVs (``Image.csv`` and one CSV per object,
    any common file prefix such as ``MyExpt_``), an ExportToDatabase SQLite file (``.db``,
    ``.sqlite``) or a CytoTable / pycytominer single-cell Parquet file. ``{plate}`` in the path
    stands for the plate's name (one export per plate); without it, every plate reads the same
    tables and takes the images whose file names are among its fields' files.
    """

    path: str = Field(description="the export: folder, SQLite or Parquet file; may hold {plate}")
    objects: dict[Region, str] = Field(
        default_factory=lambda: {region: region for region in ("Nuclei", "Cytoplasm", "Cells")},
        min_length=1,
        description="cellbench region -> CellProfiler object name (e.g. Cells: Cells)",
    )
    match: Literal["centroid", "label"] = Field(
        "centroid",
        description="centroid: each CellProfiler cell joins the nearest segmented cell within "
        "tolerance_px; label: CellProfiler's object number is the cell's label (the export "
        "measured cellbench's own masks)",
    )
    tolerance_px: float = Field(5.0, gt=0, description="largest centroid distance of a match")
    image_features: bool = Field(
        True, description="join per-image measurements (Image_Count_*, Image_Texture_*...)"
    )

    @field_validator("path")
    @classmethod
    def _one_placeholder(cls, path: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(path) if name is not None}
        if names - {"plate"}:
            raise ValueError(f"path {path!r}: only {{plate}} may stand in braces")
        return path

    def path_for(self, plate: str) -> Path:
        """The export of `plate`."""
        return Path(self.path.replace("{plate}", plate))


class FeaturesConfig(StrictModel):
    """Handcrafted features per cell: measured here, or read from CellProfiler's tables."""

    source: Literal["measure", "cellprofiler"] = Field(
        "measure",
        description="measure: features measured by `backend`; cellprofiler: read from "
        "CellProfiler's exported tables (`tables`) and joined to the segmented cells",
    )
    tables: CellProfilerTables | None = Field(None, description="with source: cellprofiler")

    regions: list[Region] = Field(
        default_factory=lambda: ["Nuclei", "Cytoplasm", "Cells"], min_length=1
    )
    texture: TextureConfig | None = Field(
        default_factory=TextureConfig, description="null: no texture features"
    )
    backend: Literal["cellbench", "cellprofiler"] = Field(
        "cellbench",
        description="cellbench: the fast native features; cellprofiler: CellProfiler's full "
        "set measured with cp_measure (pip install cellbench[cellprofiler])",
    )

    @model_validator(mode="after")
    def _tables_with_source(self) -> FeaturesConfig:
        """`tables` given exactly when the source is CellProfiler's tables."""
        if self.source == "cellprofiler" and self.tables is None:
            raise ValueError("source: cellprofiler needs tables: {path: ...}")
        if self.source == "measure" and self.tables is not None:
            raise ValueError("tables is read only with source: cellprofiler")
        return self

    @model_validator(mode="after")
    def _backend_installed(self) -> FeaturesConfig:
        """A config error naming the pip extra when cp_measure is chosen but not installed."""
        if self.backend == "cellprofiler" and importlib.util.find_spec("cp_measure") is None:
            raise ValueError(
                "backend: cellprofiler needs cp_measure, which is not installed: "
                "pip install cellbench[cellprofiler]"
            )
        return self


class AutoThreshold(StrictModel):
    """Two classes split by Otsu's threshold on the per-cell mean of one marker."""

    marker: str
    classes: tuple[str, str] = Field(description="(below the threshold, above it)")


class GroundTruthConfig(StrictModel):
    """Per-cell classes from marker channels, measured in each cell's nucleus (or cell).

    A rule is an expression over ``<marker>_mean``, ``<marker>_median``, ``<marker>_max`` (for
    each of ``data.marker_channels``), ``nucleus_area`` and ``dna_mean``, e.g.
    ``"EdU_mean > 600 and BrdU_mean < 300"``. A cell that matches no rule, or more than one, or
    fails the quality filters, is ``undefined``.

    Rules are checked when the config is loaded and are never run as Python code
    (`cellbench.config.rules`). A rule may hold only column names, numbers (int or float),
    ``+ - * /``, unary ``-``/``+``, parentheses, comparisons ``< <= > >= == !=`` (chained too,
    ``100 < EdU_mean <= 600``), and ``and``, ``or``, ``not``; it must be a condition. Anything
    else (attributes, calls, subscripts, strings, ``**``, ``&``, unknown names) is a config
    error naming the rule and the part. NaN is unknown, as NULL in SQL: a comparison with a NaN
    measurement is neither true nor false (``not`` keeps it so), and a cell matches only where
    its rule is known to be true; division by zero gives inf or NaN.
    """

    region: Literal["Nuclei", "Cells"] = "Nuclei"
    rules: dict[str, str] = Field(default_factory=dict, description="class -> expression")
    auto: AutoThreshold | None = Field(None, description="instead of rules: Otsu on one marker")
    min_nucleus_area_px: float = Field(0, ge=0, description="quality filter")
    min_dna_mean: float = Field(0, ge=0, description="quality filter on the DNA channel")
    column: str = Field("ground_truth", description="name of the class column")
    align_channel: str | None = Field(
        None,
        description="markers from a second staining round: this marker-round channel (its own "
        "DNA stain, in data.marker_channels) is registered onto segmentation.nucleus_channel "
        "and the markers are shifted with it before measuring",
    )
    min_signal_ratio: float = Field(
        0.2, ge=0, le=1, description="after alignment: a cell keeping less is undefined"
    )

    @model_validator(mode="after")
    def _rules_or_auto(self) -> GroundTruthConfig:
        if bool(self.rules) == (self.auto is not None):
            raise ValueError("give either rules or auto, not both or neither")
        return self


class ControlWells(StrictModel):
    """The negative-control wells of each plate: a metadata column and its value."""

    column: str = Field("Metadata_Compound", pattern=r"^Metadata_\w+$")
    value: str = Field("DMSO", description="e.g. DMSO; letters, digits, space and ._+- only")


class ProfilesConfig(StrictModel):
    """Per-well profiles with pycytominer: aggregate, normalise to controls, select features."""

    control: ControlWells = Field(default_factory=ControlWells)
    aggregate: Literal["median", "mean"] = "median"
    normalize: Literal["standardize", "robustize", "mad_robustize", "spherize"] = Field(
        "mad_robustize", description="pycytominer's method, fitted on each plate's control wells"
    )
    feature_select: list[
        Literal[
            "variance_threshold",
            "correlation_threshold",
            "drop_na_columns",
            "blocklist",
            "drop_outliers",
        ]
    ] = Field(
        default_factory=lambda: [
            "variance_threshold",
            "correlation_threshold",
            "drop_na_columns",
            "blocklist",
        ],
        description="pycytominer's operations, over all plates at once (aggregate stage)",
    )
    normalize_per: Literal["plate", "experiment"] = Field(
        "plate",
        description="plate: each plate against its own control wells (the profiles stage); "
        "experiment: all plates against all control wells at once (the aggregate stage), for "
        "data with plates that hold no control well",
    )
    min_control_wells: int = Field(
        2, ge=1, description="fewer on a plate (or in the experiment): its task fails"
    )


class Config(StrictModel):
    """One experiment: data, every stage's settings, models, seeds and where results go."""

    name: ExperimentName = Field(description="the experiment's name (see cellbench.names)")
    results_root: Path
    data: DataConfig = Field(default_factory=DataConfig)
    segmentation: SegmentationConfig = Field(default_factory=SegmentationConfig)
    crops: CropsConfig = Field(default_factory=CropsConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    ground_truth: GroundTruthConfig | None = Field(
        None, description="classes from the marker channels (data.marker_channels)"
    )
    split: SplitConfig = Field(default_factory=SplitConfig)
    models: list[ModelConfig] = Field(
        default_factory=list, description="none: an experiment that only segments and measures"
    )
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    profiles: ProfilesConfig | None = Field(
        None, description="per-well profiles (the profiles stage); null: none"
    )
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    def _check_seeds_name_folds(self) -> None:
        """With ``split.folds``, each seed names a fold: seeds must lie in 0..folds-1."""
        splits = [("split", self.split)] + [
            (f"models.{i}.split", m.split) for i, m in enumerate(self.models) if m.split
        ]
        for key, split in splits:
            if split.folds is None:
                continue
            outside = [s for s in self.seeds if not 0 <= s < split.folds]
            if outside or len(self.seeds) > split.folds:
                raise ValueError(
                    f"seeds: with {key}.folds: {split.folds} each seed is the test fold, one of "
                    f"0..{split.folds - 1}; seeds {outside or self.seeds} are not (e.g. seeds: "
                    f"{list(range(split.folds))})"
                )

    @model_validator(mode="after")
    def _check_cross_references(self) -> Config:
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"models: duplicate model names {duplicates}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: duplicate seeds")
        self._check_seeds_name_folds()
        channels = self.data.channels
        seg = self.segmentation
        if self.ground_truth is not None:
            markers = self.data.marker_channels
            if self.ground_truth.auto and self.ground_truth.auto.marker not in markers:
                raise ValueError(
                    f"ground_truth.auto.marker: {self.ground_truth.auto.marker!r} is not in "
                    f"data.marker_channels {markers}"
                )
            align = self.ground_truth.align_channel
            if align is not None and align not in markers:
                raise ValueError(
                    f"ground_truth.align_channel: {align!r} is not in data.marker_channels "
                    f"{markers}"
                )
            for name, rule in self.ground_truth.rules.items():
                parse_rule(rule, rule_columns(markers), key=f"ground_truth.rules.{name}")
        for i, pair in enumerate(self.report.kl_pairs):
            for key in ("original", "masked"):
                name = getattr(pair, key)
                if name not in names:
                    raise ValueError(f"report.kl_pairs.{i}.{key}: no model named {name!r}")
                if self.model(name).type not in PROBABILISTIC_TYPES:
                    raise ValueError(
                        f"report.kl_pairs.{i}.{key}: {name!r} gives no class probabilities; "
                        f"use one of the types {list(PROBABILISTIC_TYPES)}"
                    )
        for i, sweep in enumerate(self.report.sweeps):
            for j, name in enumerate(sweep.models):
                key = f"report.sweeps.{i}.models.{j}"
                if name not in names:
                    raise ValueError(f"{key}: no model named {name!r}")
                value = getattr(self.model(name), sweep.parameter, None)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(
                        f"{key}: model {name!r} has no number under "
                        f"{sweep.parameter!r} (report.sweeps.{i}.parameter)"
                    )
        for i, published in enumerate(self.report.published):
            if published.model not in names:
                raise ValueError(f"report.published.{i}.model: no model named {published.model!r}")
        for i, model in enumerate(self.models):
            source = getattr(model, "embedding_model", None)
            if source is not None and (
                source not in names or self.model(source).type not in EMBEDDING_TYPES
            ):
                raise ValueError(
                    f"models.{i}.embedding_model: {source!r} is not a "
                    f"{' or '.join(EMBEDDING_TYPES)} model of this experiment"
                )
        kinds = self.crop_kinds()
        for i, model in enumerate(self.models):
            kind = getattr(model, "crop_kind", None)
            if kind is not None and kind not in kinds:
                raise ValueError(
                    f"models.{i}.crop_kind: {kind!r} is not a crop kind of this experiment {kinds}"
                )
        if isinstance(self.data.input, CropsSource):
            if self.features.source == "cellprofiler":
                raise ValueError(
                    "features.source: cellprofiler joins CellProfiler's objects to segmented "
                    "fields by position; pre-cut crops (data.input.source: crops) have none"
                )
            return self  # pre-cut crops are not segmented
        for key, wanted in [
            ("segmentation.nucleus_channel", [seg.nucleus_channel]),
            ("segmentation.cell_channels", seg.cell_channels or []),
        ]:
            unknown = [c for c in wanted if c not in channels]
            if unknown:
                raise ValueError(f"{key}: channel(s) {unknown} not in data.channels {channels}")
        return self

    def crop_kinds(self) -> list[str]:
        """Kinds the crop stores of this experiment hold (``precut`` for pre-cut crops)."""
        if isinstance(self.data.input, CropsSource):
            return [PRECUT]
        kinds = list(self.crops.kinds)
        if self.crops.background is not None:
            kinds += background_kinds(self.crops.background.experiments)
        return kinds

    def model(self, name: str) -> ModelConfig:
        """Return the model config called `name`."""
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(f"no model named {name!r}; models: {[m.name for m in self.models]}")
