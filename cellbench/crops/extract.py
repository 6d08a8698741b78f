"""Cut fixed-size single-cell crops from a field, for all its cells at once.

A crop is the square window of side S centred on the rounded centroid of the cell or of its
nucleus, zero outside the region its kind keeps (cell, nucleus, cytoplasm, or none: the kinds
are declared in `cellbench.config.crop_kinds`). A window that reaches past the field follows
the border policy: ``pad`` fills the outside with zeros, so the cell stays centred; ``shift``
moves the window inside the field; ``drop`` leaves the cell out (see `fits_in_field`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from skimage import measure

from cellbench.config.crop_kinds import (
    MASK_CELL,
    MASK_NUCLEUS,
    MASK_OTHER_CELL,
    REGION_BITS,
    kind_info,
)


@dataclass(frozen=True)
class CropSpec:
    """How one kind of crop is cut: side in pixels, masked or not, centred on what.

    `region` is what masking keeps (``cell``, ``nucleus`` or ``cytoplasm``); unset, the
    region the crop is centred on. Build specs with `crop_spec`, which reads the registry.
    """

    kind: str
    size_px: int
    masked: bool
    centred_on: str  # "cell" or "nucleus"
    border: str = "pad"  # "pad", "shift" or "drop"
    region: str | None = None

    def __post_init__(self) -> None:
        if self.region is None:
            object.__setattr__(self, "region", self.centred_on)
        if self.region not in REGION_BITS:
            raise ValueError(
                f"CropSpec region: {self.region!r} is not a region; valid: {list(REGION_BITS)}"
            )

    @property
    def kept_region(self) -> str:
        """The region the crop keeps: `region` when masked, else ``none``."""
        return self.region if self.masked else "none"


def crop_spec(
    kind: str, size_px: int | None = None, masked: bool | None = None, border: str = "pad"
) -> CropSpec:
    """Return the spec of a crop kind, with the kind's defaults for unset values.

    Any kind of `cellbench.config.crop_kinds.kind_info`: those of `CROP_KINDS`, the
    background experiments' and ``precut`` (these two need `size_px`).
    """
    info = kind_info(kind)
    size = info.size_px if size_px is None else size_px
    if size is None:
        raise ValueError(f"crop kind {kind!r} has no default size; pass size_px")
    if masked is not None and masked != info.masked and not info.switchable:
        raise ValueError(f"masked: {kind} crops cannot be switched to masked={masked}")
    return CropSpec(
        kind,
        size,
        info.masked if masked is None else masked,
        info.centred_on,
        border,
        info.masked_region,
    )


def region_pixels(masks: np.ndarray, region: str) -> np.ndarray:
    """Which pixels of (..., S, S) uint8 bit masks lie in a region (`REGION_BITS`)."""
    required, excluded = REGION_BITS[region]
    return ((masks & required) == required) & ((masks & excluded) == 0)


def window_corners(
    table: pd.DataFrame, spec: CropSpec, field_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (field coordinates, px) of each row's window.

    Centred on the rounded centroid; with ``border="shift"`` moved to lie inside the field
    (when the field is at least as large as the window).
    """
    y, x = ("centroid_y", "centroid_x") if spec.centred_on == "cell" else ("nucleus_y", "nucleus_x")
    top = np.round(table[y].to_numpy()).astype(int) - spec.size_px // 2
    left = np.round(table[x].to_numpy()).astype(int) - spec.size_px // 2
    if spec.border == "shift":
        height, width = field_shape
        top = np.clip(top, 0, max(height - spec.size_px, 0))
        left = np.clip(left, 0, max(width - spec.size_px, 0))
    return top, left


def fits_in_field(table: pd.DataFrame, spec: CropSpec, field_shape: tuple[int, int]) -> np.ndarray:
    """Whether each row's centred window lies wholly inside the field (for ``border="drop"``)."""
    top, left = window_corners(table, spec, field_shape)
    height, width = field_shape
    return (
        (top >= 0) & (left >= 0) & (top + spec.size_px <= height) & (left + spec.size_px <= width)
    )


def measure_cells(cells: np.ndarray, nuclei: np.ndarray) -> pd.DataFrame:
    """One row per cell with a nucleus: label, centroids, bounding box, area, border contact.

    Cells without a nucleus are left out: nuclear and nucleocentric crops need one.
    """
    props = measure.regionprops_table(cells, properties=("label", "centroid", "bbox", "area"))
    table = pd.DataFrame(props).rename(
        columns={
            "centroid-0": "centroid_y",
            "centroid-1": "centroid_x",
            "bbox-0": "bbox_min_y",
            "bbox-1": "bbox_min_x",
            "bbox-2": "bbox_max_y",
            "bbox-3": "bbox_max_x",
        }
    )
    nucleus_props = pd.DataFrame(
        measure.regionprops_table(nuclei, properties=("label", "centroid"))
    ).rename(
        columns={"label": "nucleus_label", "centroid-0": "nucleus_y", "centroid-1": "nucleus_x"}
    )
    table = table.merge(nucleus_props, left_on="label", right_on="nucleus_label", how="inner")
    height, width = cells.shape
    table["touches_border"] = (
        (table["bbox_min_y"] == 0)
        | (table["bbox_min_x"] == 0)
        | (table["bbox_max_y"] == height)
        | (table["bbox_max_x"] == width)
    )
    return table.reset_index(drop=True)


def crop_cells(
    image: np.ndarray,
    cells: np.ndarray,
    nuclei: np.ndarray,
    table: pd.DataFrame,
    spec: CropSpec,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one crop per row of `table` from a field.

    Parameters
    ----------
    image : (C, Y, X) ndarray
        The field's raw intensities.
    cells, nuclei : (Y, X) ndarray of int
        Label images; a nucleus carries its cell's label.
    table : DataFrame
        From `measure_cells`: ``label``, ``centroid_y/x``, ``nucleus_y/x``.
    spec : CropSpec

    Returns
    -------
    crops : (N, C, S, S) ndarray, image dtype
        Raw intensities; zero outside `spec.region` (cell, nucleus or cytoplasm) when
        `spec.masked`, and outside the field.
    masks : (N, S, S) ndarray of uint8
        Bit 1 = this cell, bit 2 = its nucleus, bit 4 = another cell.
    """
    size = spec.size_px
    n_channels = image.shape[0]
    if table.empty:
        return np.zeros((0, n_channels, size, size), image.dtype), np.zeros(
            (0, size, size), np.uint8
        )
    # Padding the field by `size` on each side keeps every window inside the padded arrays.
    top, left = window_corners(table, spec, cells.shape)
    top, left = top + size, left + size
    labels = table["label"].to_numpy()

    padded_image = np.pad(image, ((0, 0), (size, size), (size, size)))
    padded_cells = np.pad(cells, size)
    padded_nuclei = np.pad(nuclei, size)
    crops = _gather_windows(padded_image, top, left, size)  # (N, C, S, S)
    cell_windows = _gather_windows(padded_cells[np.newaxis], top, left, size)[:, 0]
    nucleus_windows = _gather_windows(padded_nuclei[np.newaxis], top, left, size)[:, 0]

    is_cell = cell_windows == labels[:, None, None]
    is_nucleus = nucleus_windows == labels[:, None, None]
    is_other = (cell_windows > 0) & ~is_cell
    masks = (is_cell * MASK_CELL + is_nucleus * MASK_NUCLEUS + is_other * MASK_OTHER_CELL).astype(
        np.uint8
    )
    if spec.masked:
        keep = region_pixels(masks, spec.region)
        crops = crops * keep[:, np.newaxis].astype(crops.dtype)
    return crops, masks


def _gather_windows(array: np.ndarray, top: np.ndarray, left: np.ndarray, size: int) -> np.ndarray:
    """Gather (N, C, size, size) windows of a (C, Y, X) array at the given top-left corners."""
    windows = np.lib.stride_tricks.sliding_window_view(array, (size, size), axis=(1, 2))
    return np.ascontiguousarray(windows[:, top, left].transpose(1, 0, 2, 3))
