"""Register a ground-truth (GT) staining round onto its Cell Painting (CP) round.

In the nucleocentric workflow the GT markers are imaged after the CP round, so the GT field is
shifted relative to the CP field. This module estimates that translation by subpixel phase
cross-correlation, shifts the GT image onto the CP image, crops both to the area where both
have data, and flags cells that fall outside that area or lost most of their GT signal.

Sign convention (used everywhere here): ``Alignment.shift_yx`` is the shift, in pixels along
(Y, X), that moves the GT image onto the CP image, ``aligned = ndi.shift(gt, shift_yx)``. If
``gt = ndi.shift(cp, (dy, dx))`` then ``estimate_shift(cp, gt).shift_yx ≈ (-dy, -dx)``.

Compared with the published code: Y and X are handled separately (it used the image width
for both axes), images are paired by the caller rather than by file index, and the common area
is derived from the fractional shift so that interpolated edge pixels are never kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.registration import phase_cross_correlation


@dataclass(frozen=True)
class Alignment:
    """A translation registering a GT image onto a CP image.

    Attributes
    ----------
    shift_yx : tuple of float
        Shift (px, along Y then X) that moves the GT image onto the CP image:
        ``aligned = scipy.ndimage.shift(gt, shift_yx)``.
    error : float
        Translation-invariant normalised RMS error (0 = identical, ~1 = unrelated) from
        ``skimage.registration.phase_cross_correlation(..., normalization=None)``. It also
        grows with the part of the field lost to the shift (about 0.35 for a good match
        shifted by ~15 px on a 300 x 420 field, > 0.9 for unrelated images).
    common : tuple of slice
        (Y, X) region, in CP coordinates, where both the CP image and the shifted GT image
        hold measured (not padded) data.
    """

    shift_yx: tuple[float, float]
    error: float
    common: tuple[slice, slice]


def _projection(image: np.ndarray, channels: Sequence[int] | None = None) -> np.ndarray:
    """Return a float64 (Y, X) image: `image` itself, or the max over (selected) channels."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ValueError(f"expected a (Y, X) or (C, Y, X) image, got shape {image.shape}")
    if channels is not None:
        channels = list(channels)
        if not channels:
            raise ValueError("channels must name at least one channel")
        image = image[channels]
    return image.max(axis=0).astype(np.float64)


def _standardise(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation (a constant image becomes all zeros)."""
    sd = image.std()
    return (image - image.mean()) / (sd if sd > 0 else 1.0)


def _common_slice(shift: float, size: int) -> slice:
    """Pixels i of an axis of `size` px where the shifted image samples inside [0, size - 1].

    ``ndi.shift`` reads output pixel i from input position ``i - shift``, so the valid range is
    ``ceil(shift) <= i <= floor(size - 1 + shift)``.
    """
    start = min(size, max(0, math.ceil(shift)))
    stop = max(start, min(size, size + math.floor(shift)))
    return slice(start, stop)


def estimate_shift(
    reference: np.ndarray, moving: np.ndarray, upsample_factor: int = 20
) -> Alignment:
    """Estimate the translation that registers `moving` (GT) onto `reference` (CP).

    Parameters
    ----------
    reference : np.ndarray
        CP image, (Y, X) or (C, Y, X); a (C, Y, X) image is max-projected over channels.
    moving : np.ndarray
        GT image, (Y, X) or (C, Y, X), with the same (Y, X) as `reference`.
    upsample_factor : int
        Subpixel precision is ``1 / upsample_factor`` px.

    Returns
    -------
    Alignment
        ``shift_yx`` (px) such that ``ndi.shift(moving, shift_yx) ≈ reference``: if
        ``moving = ndi.shift(reference, (dy, dx))`` then ``shift_yx ≈ (-dy, -dx)``. Y and X
        are estimated and bounded independently, so non-square images are fine.

    Notes
    -----
    The shift comes from phase correlation (skimage's default ``normalization="phase"``,
    robust to intensity differences between rounds) of the images standardised to zero mean
    and unit SD; the error from a second, un-normalised cross-correlation.
    """
    ref = _projection(reference)
    mov = _projection(moving)
    if ref.shape != mov.shape:
        raise ValueError(f"reference (Y, X) {ref.shape} and moving (Y, X) {mov.shape} differ")
    ref, mov = _standardise(ref), _standardise(mov)
    shift, _, _ = phase_cross_correlation(ref, mov, upsample_factor=upsample_factor)
    # With the default phase normalisation skimage's error is always ~1 (scikit-image
    # issues #6376, #7078); the un-normalised cross-correlation gives a usable one.
    _, error, _ = phase_cross_correlation(
        ref, mov, upsample_factor=upsample_factor, normalization=None
    )
    shift_yx = (float(shift[0]), float(shift[1]))
    common = (_common_slice(shift_yx[0], ref.shape[0]), _common_slice(shift_yx[1], ref.shape[1]))
    return Alignment(shift_yx=shift_yx, error=float(error), common=common)


def _cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast float `values` back to `dtype`, rounding and clipping for integers."""
    if dtype == np.bool_:
        return values >= 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)


def apply_shift(moving: np.ndarray, alignment: Alignment, order: int = 1) -> np.ndarray:
    """Shift a GT image onto its CP image.

    Parameters
    ----------
    moving : np.ndarray
        GT image, (Y, X) or (C, Y, X); each channel is shifted alone.
    alignment : Alignment
        From `estimate_shift`; ``alignment.shift_yx`` (px) is applied as is.
    order : int
        Spline order of ``scipy.ndimage.shift`` (0 nearest, 1 linear, 3 cubic).

    Returns
    -------
    np.ndarray
        Same shape and dtype as `moving`; pixels with no source data are 0 (integers are
        rounded and clipped, booleans thresholded at 0.5).
    """
    moving = np.asarray(moving)
    if moving.ndim not in (2, 3):
        raise ValueError(f"expected a (Y, X) or (C, Y, X) image, got shape {moving.shape}")
    planes = moving[None] if moving.ndim == 2 else moving
    out = np.empty(planes.shape, dtype=moving.dtype)
    for c, plane in enumerate(planes):
        shifted = ndi.shift(
            plane.astype(np.float64), alignment.shift_yx, order=order, mode="constant", cval=0.0
        )
        out[c] = _cast_like(shifted, moving.dtype)
    return out[0] if moving.ndim == 2 else out


def crop_to_common(image: np.ndarray, alignment: Alignment) -> np.ndarray:
    """Crop an (..., Y, X) image to ``alignment.common``; returns a view."""
    return np.asarray(image)[(..., *alignment.common)]


def common_mask(alignment: Alignment, shape_yx: tuple[int, int]) -> np.ndarray:
    """Bool (Y, X) mask of `shape_yx`, True inside ``alignment.common``."""
    mask = np.zeros(shape_yx, dtype=bool)
    mask[alignment.common] = True
    return mask


def align_pair(
    cp: np.ndarray,
    gt: np.ndarray,
    cp_channels: Sequence[int] | None = None,
    gt_channels: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, Alignment]:
    """Register a GT field onto its CP field and crop both to their common area.

    Parameters
    ----------
    cp : np.ndarray
        CP field, (C1, Y, X) (or (Y, X)).
    gt : np.ndarray
        GT field of the same well and site, (C2, Y, X) (or (Y, X)).
    cp_channels, gt_channels : sequence of int, optional
        Channels max-projected for registration (e.g. the DNA channel of each round);
        default all channels.

    Returns
    -------
    cp_crop : np.ndarray
        (C1, Y', X') CP field cropped to the common area.
    gt_crop : np.ndarray
        (C2, Y', X') GT field shifted onto the CP field (linear interpolation) and cropped.
    alignment : Alignment
        ``Y' ≈ Y - |shift_y|`` and ``X' ≈ X - |shift_x|`` (rounded up to whole pixels).

    Raises
    ------
    ValueError
        If the (Y, X) shapes of `cp` and `gt` differ.
    """
    cp = np.asarray(cp)
    gt = np.asarray(gt)
    if cp.shape[-2:] != gt.shape[-2:] or cp.ndim not in (2, 3) or gt.ndim not in (2, 3):
        raise ValueError(
            f"cp shape {cp.shape} and gt shape {gt.shape} must be (C, Y, X) with equal (Y, X)"
        )
    alignment = estimate_shift(_projection(cp, cp_channels), _projection(gt, gt_channels))
    gt_aligned = apply_shift(gt, alignment)
    return crop_to_common(cp, alignment), crop_to_common(gt_aligned, alignment), alignment


def foreground(image: np.ndarray) -> np.ndarray:
    """Bool (Y, X) foreground: pixels above the Otsu threshold (of the max projection if 3-D).

    A constant image has no foreground.
    """
    projection = _projection(image)
    if projection.size == 0 or projection.min() == projection.max():
        return np.zeros(projection.shape, dtype=bool)
    return projection > threshold_otsu(projection)


def qc_cells(
    cp_cells: np.ndarray,
    gt_foreground: np.ndarray,
    cp_foreground: np.ndarray,
    common_mask: np.ndarray,
    min_area_ratio: float = 0.2,
) -> pd.DataFrame:
    """Flag cells that left the common area or lost their GT signal.

    Work in full CP coordinates (before `crop_to_common`): CP labels and foreground, the
    foreground of ``apply_shift(gt, alignment)``, and ``common_mask(alignment, shape)``.

    Parameters
    ----------
    cp_cells : np.ndarray
        (Y, X) integer cell labels in CP coordinates, 0 = background.
    gt_foreground, cp_foreground : np.ndarray
        (Y, X) bool foregrounds (see `foreground`) of the aligned GT and of the CP image.
    common_mask : np.ndarray
        (Y, X) bool, True where both images hold data (see `common_mask`).
    min_area_ratio : float
        Smallest GT / CP foreground ratio of a kept cell (the published workflow uses 0.2).

    Returns
    -------
    pd.DataFrame
        One row per label, sorted: ``label``; ``inside_common`` (every pixel of the cell is in
        `common_mask`); ``area_ratio`` (GT foreground px / CP foreground px within the cell,
        NaN when the cell has no CP foreground); ``keep`` (inside and ratio >= minimum).
    """
    cp_cells = np.asarray(cp_cells)
    named = (("gt_foreground", gt_foreground), ("cp_foreground", cp_foreground))
    for name, mask in (*named, ("common_mask", common_mask)):
        if np.shape(mask) != cp_cells.shape:
            raise ValueError(f"{name} shape {np.shape(mask)} != cp_cells shape {cp_cells.shape}")
    labels, index = np.unique(cp_cells.ravel(), return_inverse=True)
    n = labels.size

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=np.asarray(mask, dtype=bool).ravel(), minlength=n)

    area = np.bincount(index, minlength=n)
    inside = count(common_mask) == area
    cp_px = count(cp_foreground)
    gt_px = count(gt_foreground)
    ratio = np.full(n, np.nan)
    np.divide(gt_px, cp_px, out=ratio, where=cp_px > 0)
    cells = labels != 0
    columns = {"label": labels, "inside_common": inside, "area_ratio": ratio}
    table = pd.DataFrame({name: values[cells] for name, values in columns.items()})
    table["keep"] = table["inside_common"] & (table["area_ratio"] >= min_area_ratio)
    return table
