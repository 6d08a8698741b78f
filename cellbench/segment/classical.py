"""Classical segmentation with scikit-image: no weights, no GPU.

Nuclei: smooth the DNA channel, threshold it (Otsu), split touching nuclei with a watershed on
the distance transform. Cells: grow each nucleus by a watershed over the cytoplasm signal,
within a foreground thresholded on the cell channels. A cell keeps its nucleus's label.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import feature, filters, measure, segmentation

from cellbench.config import ClassicalSegmentation


def segment_nuclei(dna: np.ndarray, params: ClassicalSegmentation) -> np.ndarray:
    """Label the nuclei of one field.

    Parameters
    ----------
    dna : (Y, X) ndarray
        The DNA channel, any dtype.
    params : ClassicalSegmentation

    Returns
    -------
    (Y, X) ndarray of int32
        0 for background, 1..N for nuclei.
    """
    smoothed = filters.gaussian(dna.astype(np.float32), sigma=params.smoothing_sigma_px)
    if smoothed.max() == smoothed.min():
        return np.zeros(dna.shape, np.int32)
    mask = smoothed > filters.threshold_otsu(smoothed)
    mask = ndi.binary_fill_holes(mask)
    distance = ndi.distance_transform_edt(mask)
    distance = filters.gaussian(distance, sigma=1.0)
    peaks = feature.peak_local_max(
        distance,
        min_distance=params.min_nucleus_distance_px,
        labels=measure.label(mask),
        exclude_border=False,
    )
    markers = np.zeros(dna.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    nuclei = segmentation.watershed(-distance, markers, mask=mask)
    return _filter_by_area(nuclei, params.min_nucleus_area_px, params.max_nucleus_area_px)


def segment_cells(
    cell_signal: np.ndarray, nuclei: np.ndarray, params: ClassicalSegmentation
) -> np.ndarray:
    """Grow cells from labelled nuclei within the cytoplasm foreground.

    Each foreground pixel goes to the nearest nucleus (a watershed on the distance to the
    nuclei, CellProfiler's "Distance" propagation), so touching cells are split half-way
    between their nuclei.

    Parameters
    ----------
    cell_signal : (Y, X) ndarray of float
        Mean of the normalised cell channels.
    nuclei : (Y, X) ndarray of int
        Nucleus labels; each cell gets the label of the nucleus it grows from.
    params : ClassicalSegmentation

    Returns
    -------
    (Y, X) ndarray of int32
        Cell labels; every cell contains its nucleus.
    """
    if nuclei.max() == 0:
        return np.zeros(nuclei.shape, np.int32)
    smoothed = filters.gaussian(cell_signal.astype(np.float32), sigma=params.smoothing_sigma_px)
    threshold = filters.threshold_otsu(smoothed) if smoothed.max() > smoothed.min() else np.inf
    foreground = (smoothed > params.cell_threshold_factor * threshold) | (nuclei > 0)
    distance = ndi.distance_transform_edt(nuclei == 0)
    cells = segmentation.watershed(distance, markers=nuclei, mask=foreground)
    return cells.astype(np.int32)


def segment(
    image: np.ndarray, channels: list[str], params: ClassicalSegmentation
) -> tuple[np.ndarray, np.ndarray]:
    """Segment cells and nuclei of one (C, Y, X) field whose channels are named `channels`.

    Returns
    -------
    cells, nuclei : (Y, X) ndarray of int32
        Label images; a nucleus has the label of its cell. Objects touching the border are
        removed when `params.remove_border_objects` is set.
    """
    dna = image[channels.index(params.nucleus_channel)]
    cell_channels = params.cell_channels or [c for c in channels if c != params.nucleus_channel]
    if not cell_channels:
        cell_channels = [params.nucleus_channel]
    signal = np.mean([_normalise(image[channels.index(name)]) for name in cell_channels], axis=0)
    nuclei = segment_nuclei(dna, params)
    cells = segment_cells(signal, nuclei, params)
    if params.remove_border_objects:
        cells = segmentation.clear_border(cells)
        nuclei = np.where(np.isin(nuclei, np.unique(cells)), nuclei, 0)
    return cells.astype(np.int32), nuclei.astype(np.int32)


def _normalise(channel: np.ndarray, low: float = 1, high: float = 99) -> np.ndarray:
    """Scale a channel to [0, 1] between its `low` and `high` percentiles."""
    lo, hi = np.percentile(channel, [low, high])
    if hi <= lo:
        return np.zeros(channel.shape, np.float32)
    return np.clip((channel.astype(np.float32) - lo) / (hi - lo), 0, 1)


def _filter_by_area(labels: np.ndarray, min_area: int, max_area: int | None) -> np.ndarray:
    """Remove labelled objects smaller than `min_area` or larger than `max_area` pixels."""
    areas = np.bincount(labels.ravel())
    keep = areas >= min_area
    if max_area is not None:
        keep &= areas <= max_area
    keep[0] = False
    filtered = np.where(keep[labels], labels, 0)
    relabelled, _, _ = segmentation.relabel_sequential(filtered)
    return relabelled.astype(np.int32)
