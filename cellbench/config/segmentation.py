"""Segmentation settings: which backend finds the nuclei, which the cells, and shared steps."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Tag, model_validator

from cellbench.config.base import StrictModel, _tag


class ClassicalNuclei(StrictModel):
    """Nuclei by smoothing, Otsu threshold and a distance-transform watershed (scikit-image)."""

    method: Literal["classical"] = "classical"
    smoothing_sigma_px: float = Field(1.5, ge=0)
    min_distance_px: int = Field(5, ge=1, description="closest two nucleus seeds")
    threshold_factor: float = Field(1.0, gt=0, description="foreground > factor * Otsu")


class StarDistNuclei(StrictModel):
    """Nuclei by StarDist 2D: a registered model name or a model folder."""

    method: Literal["stardist"] = "stardist"
    model: str = Field(
        "2D_versatile_fluo",
        description="a pretrained name (needs internet once) or a folder with config.json and "
        "weights_best.h5, e.g. from `cellbench train-segmenter --backend stardist`",
    )
    prob_thresh: float | None = Field(
        0.6, gt=0, lt=1, description="null: the model's own optimised threshold"
    )
    nms_thresh: float | None = Field(0.3, gt=0, lt=1, description="null: the model's own")
    n_tiles: tuple[int, int] | None = Field(None, description="tiles for large fields")


class CellposeNuclei(StrictModel):
    """Nuclei by Cellpose (e.g. its 'nuclei' model) on the nucleus channel alone."""

    method: Literal["cellpose"] = "cellpose"
    model: str = Field("nuclei", description="a pretrained name or a path to weights")
    diameter_px: float | None = Field(None, gt=0, description="None: estimated by Cellpose")
    flow_threshold: float = Field(0.4, ge=0)
    cellprob_threshold: float = 0.0
    batch_size: int = Field(8, ge=1)
    gpu: bool = False


class ClassicalCells(StrictModel):
    """Cells grown from the nuclei over the cytoplasm foreground (distance propagation)."""

    method: Literal["classical"] = "classical"
    smoothing_sigma_px: float = Field(1.5, ge=0)
    threshold_factor: float = Field(
        0.5, gt=0, description="cell foreground = cell signal > factor * Otsu threshold"
    )


class CellposeCells(CellposeNuclei):
    """Cells by Cellpose on (cytoplasm, nucleus) channels, mapped explicitly."""

    model: str = Field("cyto3", description="a pretrained name or a path to weights")


class NoCells(StrictModel):
    """No cell segmentation: every nucleus is its own cell (nuclear and nucleocentric crops)."""

    method: Literal["none"] = "none"


NucleiMethod = Annotated[
    Annotated[ClassicalNuclei, Tag("classical")]
    | Annotated[StarDistNuclei, Tag("stardist")]
    | Annotated[CellposeNuclei, Tag("cellpose")],
    _tag("method", default="classical"),
]
CellsMethod = Annotated[
    Annotated[ClassicalCells, Tag("classical")]
    | Annotated[CellposeCells, Tag("cellpose")]
    | Annotated[NoCells, Tag("none")],
    _tag("method", default="classical"),
]


class SegmentationConfig(StrictModel):
    """How cells and nuclei are found in each field, and what is kept."""

    nucleus_channel: str = "DNA"
    cell_channels: list[str] | None = Field(
        None, description="channels whose mean outlines the cells; default: all but the nucleus"
    )
    nuclei: NucleiMethod = Field(default_factory=ClassicalNuclei)
    cells: CellsMethod = Field(default_factory=ClassicalCells)
    pmin: float = Field(1.0, ge=0, lt=100, description="percentile mapped to 0 before segmenting")
    pmax: float = Field(99.0, gt=0, le=100, description="percentile mapped to 1")
    median_filter_px: int = Field(0, ge=0, description="median filter radius; 0: none")
    remove_border_objects: bool = True
    min_nucleus_area_px: int = Field(30, ge=0)
    max_nucleus_area_px: int | None = Field(None, ge=1)
    min_cell_area_px: int = Field(0, ge=0)
    max_cell_area_px: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _percentiles_in_order(self) -> SegmentationConfig:
        if self.pmin >= self.pmax:
            raise ValueError(f"pmin ({self.pmin}) must be below pmax ({self.pmax})")
        return self

    @property
    def methods(self) -> str:
        """A short name of the backends, e.g. ``stardist+cellpose``."""
        return f"{self.nuclei.method}+{self.cells.method}"
