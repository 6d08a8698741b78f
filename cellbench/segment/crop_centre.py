"""The cell and nucleus at the centre of each pre-cut single-cell crop, all crops at once.

Pre-cut crops come without fields or label images: each is centred on its cell of interest,
and neighbours may be partly visible. `segment_crop_centres` thresholds a whole (N, C, H, W)
stack with one Otsu threshold per crop (`otsu_thresholds`, batched) and keeps, per crop, the
component nearest its centre. `cellbench.features.crops` measures what it finds.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["otsu_thresholds", "segment_crop_centres"]

_OTSU_BINS = 256  # as skimage.filters.threshold_otsu
_NORM_PERCENTILES = (1.0, 99.0)  # per-crop normalisation of each cell channel
# 4-connectivity within a crop and none across the crops of a (N, H, W) stack
_PLANE = np.zeros((3, 3, 3), bool)
_PLANE[1] = ndi.generate_binary_structure(2, 1)


def segment_crop_centres(
    crops: np.ndarray,
    nucleus_channel: int,
    cell_channels: list[int],
    *,
    sigma_px: float = 1.0,
    min_nucleus_area_px: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """The cell and nucleus at the centre of every crop.

    The nucleus is the 4-connected component of Otsu's threshold of the Gaussian-smoothed
    nucleus channel that contains the crop centre or, if none does, the one nearest to it
    (components under `min_nucleus_area_px` are noise and never chosen); its holes are filled.
    The cell is the component containing the nucleus of Otsu's threshold of the smoothed sum of
    the cell channels (each scaled per crop between its 1st and 99th percentile) OR the
    nucleus, holes filled. Thresholds follow ``skimage.filters.threshold_otsu`` (256 bins over
    each crop's range; foreground is above the threshold). Without cell channels the cell is
    the nucleus.

    Parameters
    ----------
    crops : (N, C, H, W) ndarray
        Raw intensities.
    nucleus_channel : int
        Index of the DNA channel.
    cell_channels : list of int
        Indices of the channels that outline the cell (e.g. tubulin, actin); may be empty.
    sigma_px : float
        Standard deviation of the smoothing Gaussian, in pixels.
    min_nucleus_area_px : int
        Smallest nucleus candidate, in pixels (after smoothing and thresholding).

    Returns
    -------
    cells, nuclei : (N, H, W) ndarray of int32
        Label 1 on the object of each crop, 0 elsewhere; all 0 where no nucleus is found.

    Examples
    --------
    >>> crops = np.zeros((1, 1, 9, 9), np.uint16)
    >>> crops[0, 0, 3:6, 3:7] = 500
    >>> cells, nuclei = segment_crop_centres(crops, 0, [], min_nucleus_area_px=1)
    >>> int(nuclei.sum()), bool((cells == nuclei).all())
    (12, True)
    """
    crops = np.asarray(crops)
    if crops.ndim != 4:
        raise ValueError(f"crops must be (N, C, H, W), got shape {crops.shape}")
    for index in [nucleus_channel, *cell_channels]:
        if not 0 <= index < crops.shape[1]:
            raise ValueError(f"channel index {index} is not one of the {crops.shape[1]} channels")
    if len(crops) == 0:
        empty = np.zeros((0, *crops.shape[2:]), np.int32)
        return empty, empty.copy()
    nuclei = _central_nuclei(_smooth(crops[:, nucleus_channel], sigma_px), min_nucleus_area_px)
    if not cell_channels:
        return nuclei.astype(np.int32), nuclei.astype(np.int32)
    outline = _smooth(_normalised_sum(crops[:, cell_channels]), sigma_px)
    cells = _component_holding(_above_otsu(outline) | nuclei, nuclei)
    nuclei &= cells
    return cells.astype(np.int32), nuclei.astype(np.int32)


def _smooth(planes: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian-smoothed (N, H, W) planes as float64, each crop on its own."""
    return ndi.gaussian_filter(planes.astype(np.float64), (0, sigma_px, sigma_px), mode="nearest")


def _normalised_sum(planes: np.ndarray) -> np.ndarray:
    """Sum over channels of (N, K, H, W) planes, each scaled per crop to its percentiles."""
    planes = planes.astype(np.float64)
    low, high = np.percentile(planes, _NORM_PERCENTILES, axis=(-2, -1), keepdims=True)
    spread = high - low
    scaled = (planes - low) / np.where(spread > 0, spread, 1.0)
    return np.clip(scaled, 0.0, 1.0).sum(axis=1)


def otsu_thresholds(planes: np.ndarray) -> np.ndarray:
    """``skimage.filters.threshold_otsu`` of every (H, W) plane of a float stack at once.

    A constant plane's threshold is its value (nothing lies above it).
    """
    n = len(planes)
    flat = planes.reshape(n, int(np.prod(planes.shape[1:]))).astype(np.float64)
    low, high = flat.min(axis=1), flat.max(axis=1)
    constant = low == high
    high = np.where(constant, low + 1.0, high)
    edges = np.linspace(low, high, _OTSU_BINS + 1, axis=1)  # (N, bins + 1), as np.histogram
    index = ((flat - low[:, None]) * (_OTSU_BINS / (high - low))[:, None]).astype(np.intp)
    index = index.clip(0, _OTSU_BINS - 1)
    index -= flat < np.take_along_axis(edges, index, axis=1)  # np.histogram's corrections
    index += (flat >= np.take_along_axis(edges, index + 1, axis=1)) & (index != _OTSU_BINS - 1)
    offsets = np.arange(n)[:, None] * _OTSU_BINS
    counts = np.bincount((index + offsets).ravel(), minlength=n * _OTSU_BINS).reshape(n, -1)
    centres = (edges[:, :-1] + edges[:, 1:]) / 2
    weight1 = np.cumsum(counts, axis=1)
    weight2 = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(invalid="ignore", divide="ignore"):  # empty classes: NaN, never chosen
        mean1 = np.cumsum(counts * centres, axis=1) / weight1
        mean2 = (np.cumsum((counts * centres)[:, ::-1], axis=1) / weight2[:, ::-1])[:, ::-1]
    variance = weight1[:, :-1] * weight2[:, 1:] * (mean1[:, :-1] - mean2[:, 1:]) ** 2
    best = np.argmax(np.nan_to_num(variance, nan=-1.0), axis=1)
    return np.where(constant, low, centres[np.arange(n), best])


def _above_otsu(planes: np.ndarray) -> np.ndarray:
    """Pixels of each plane above its own Otsu threshold."""
    return planes > otsu_thresholds(planes)[:, None, None]


def _central_nuclei(dna: np.ndarray, min_area_px: int) -> np.ndarray:
    """(N, H, W) bool: the component of the thresholded DNA nearest each crop's centre."""
    labels, _ = ndi.label(_above_otsu(dna), structure=_PLANE)
    sizes = np.bincount(labels.ravel())
    candidate = (labels > 0) & (sizes[labels] >= min_area_px)
    height, width = dna.shape[1:]
    rows, cols = np.ogrid[:height, :width]
    distance2 = (rows - (height - 1) / 2) ** 2 + (cols - (width - 1) / 2) ** 2
    score = np.where(candidate, distance2, np.inf).reshape(len(dna), -1)
    nearest = np.argmin(score, axis=1)
    crops = np.arange(len(dna))
    found = np.isfinite(score[crops, nearest])
    chosen = np.where(found, labels.reshape(len(dna), -1)[crops, nearest], -1)
    return ndi.binary_fill_holes(labels == chosen[:, None, None], structure=_PLANE)


def _component_holding(mask: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """(N, H, W) bool: per crop, the component of `mask` that holds `objects`, holes filled.

    Every object lies inside `mask` and is connected, so it lies in exactly one component.
    """
    labels, _ = ndi.label(mask, structure=_PLANE)
    flat = objects.reshape(len(objects), -1)
    first = np.argmax(flat, axis=1)  # any pixel of the object
    crops = np.arange(len(objects))
    chosen = np.where(flat[crops, first], labels.reshape(len(objects), -1)[crops, first], -1)
    return ndi.binary_fill_holes(labels == chosen[:, None, None], structure=_PLANE)
