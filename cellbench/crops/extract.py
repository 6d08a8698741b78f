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

    kind: str  # the crops' name in the store
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
    kind: str,
    size_px: int | None = None,
    masked: bool | None = None,
    border: str = "pad",
    name: str | None = None,
) -> CropSpec:
    """Return the spec of a crop kind, with the kind's defaults for unset values.

    Any kind of `cellbench.config.crop_kinds.kind_info`: those of `CROP_KINDS`, the
    background experiments' and ``precut`` (these two need `size_px`). `name` is the crops'
    name in the store (a variant such as ``whole_cell_unmasked``); unset, the kind's own.
    """
    info = kind_info(kind)
    size = info.size_px if size_px is None else size_px
    if size is None:
        raise ValueError(f"crop kind {kind!r} has no default size; pass size_px")
    if masked is not None and masked != info.masked and not info.switchable:
        raise ValueError(f"masked: {kind} crops cannot be switched to masked={masked}")
    return CropSpec(
        name or kind,
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
    return crop_kinds(image, cells, nuclei, table, [spec])[spec.kind]


def crop_kinds(
    image: np.ndarray,
    cells: np.ndarray,
    nuclei: np.ndarray,
    table: pd.DataFrame,
    specs: list[CropSpec],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`crop_cells` for several kinds, cutting the windows that kinds share only once.

    Kinds of the same size, centre and border policy (e.g. nuclear and nucleocentric) share
    one gather of the field and of its labels, and one build of the masks.

    Returns
    -------
    dict
        Per kind: (N, C, S, S) crops and (N, S, S) uint8 masks, as `crop_cells` returns
        (each kind its own arrays).
    """
    groups: dict[tuple, list[CropSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.size_px, spec.centred_on, spec.border), []).append(spec)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for group in groups.values():
        raw, masks = _cut_windows(image, cells, nuclei, table, group[0])
        for i, spec in enumerate(group):
            crops = raw if i == len(group) - 1 else raw.copy()  # the last kind takes the gather
            if spec.masked:
                crops *= region_pixels(masks, spec.region)[:, np.newaxis]
            out[spec.kind] = crops, masks if i == 0 else masks.copy()
    return {spec.kind: out[spec.kind] for spec in specs}


def _cut_windows(
    image: np.ndarray, cells: np.ndarray, nuclei: np.ndarray, table: pd.DataFrame, spec: CropSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Raw (N, C, S, S) windows of a field and their (N, S, S) bit masks, zero outside it."""
    size = spec.size_px
    if table.empty:
        empty = np.zeros((0, size, size), np.uint8)
        return np.zeros((0, image.shape[0], size, size), image.dtype), empty
    top, left = window_corners(table, spec, cells.shape)
    crops = _gather_windows(image, top, left, size)
    cell_windows = _gather_windows(cells[np.newaxis], top, left, size)[:, 0]
    nucleus_windows = _gather_windows(nuclei[np.newaxis], top, left, size)[:, 0]
    return crops, _bit_masks(cell_windows, nucleus_windows, table["label"].to_numpy())


def _gather_windows(array: np.ndarray, top: np.ndarray, left: np.ndarray, size: int) -> np.ndarray:
    """The (N, C, size, size) windows of a (C, Y, X) array at top-left corners (N,), in px.

    The windows wholly inside the array come in one gather (fancy indexing of a strided
    view, one copy); the few that cross the border are copied one by one into zeros.
    """
    n_channels, height, width = array.shape
    inside = (top >= 0) & (left >= 0) & (top + size <= height) & (left + size <= width)
    if inside.all():
        return _windows_view(array, size)[top, left]
    out = np.zeros((len(top), n_channels, size, size), array.dtype)
    if inside.any():
        out[inside] = _windows_view(array, size)[top[inside], left[inside]]
    for i in np.flatnonzero(~inside):
        y0, x0 = max(top[i], 0), max(left[i], 0)
        y1, x1 = min(top[i] + size, height), min(left[i] + size, width)
        if y1 > y0 and x1 > x0:
            out[i, :, y0 - top[i] : y1 - top[i], x0 - left[i] : x1 - left[i]] = array[
                :, y0:y1, x0:x1
            ]
    return out


def _windows_view(array: np.ndarray, size: int) -> np.ndarray:
    """Every size x size window of a (C, Y, X) array as a (Y', X', C, size, size) view."""
    windows = np.lib.stride_tricks.sliding_window_view(array, (size, size), axis=(1, 2))
    return windows.transpose(1, 2, 0, 3, 4)


def _bit_masks(
    cell_windows: np.ndarray, nucleus_windows: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """(N, S, S) uint8 bit masks from (N, S, S) label windows and each window's (N,) label.

    The labels are compared in the windows' own dtype (they come from the same label image),
    so the windows are not widened to the labels' int64 first.
    """
    label = labels[:, np.newaxis, np.newaxis]
    dtype = cell_windows.dtype
    if dtype == nucleus_windows.dtype and dtype.kind in "iu" and label.size:
        bounds = np.iinfo(dtype)
        if bounds.min <= label.min() and label.max() <= bounds.max:
            label = label.astype(dtype)
    is_cell = cell_windows == label
    masks = is_cell.view(np.uint8) * np.uint8(MASK_CELL)
    masks |= (nucleus_windows == label).view(np.uint8) * np.uint8(MASK_NUCLEUS)
    masks |= ((cell_windows > 0) & ~is_cell).view(np.uint8) * np.uint8(MASK_OTHER_CELL)
    return masks
