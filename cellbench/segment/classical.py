"""Classical segmentation with scikit-image: no weights, no GPU.

Nuclei: smooth the DNA channel, threshold it (Otsu), split touching nuclei with a watershed on
the distance transform. Cells: give every foreground pixel of the cytoplasm signal to the
nearest nucleus (a watershed on the distance to the nuclei, CellProfiler's "Distance"
propagation), so a cell keeps its nucleus's label and touching cells split half-way.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import feature, filters, measure, segmentation

from cellbench.config import ClassicalCells, ClassicalNuclei

BATCH_FIELDS = 1  # fields per call: one at a time, so a task holds one field's images


def load_model(params: ClassicalNuclei | ClassicalCells) -> None:
    """Classical methods have no model to load."""
    return None


def find_nuclei(model: None, images: list[np.ndarray], params: ClassicalNuclei) -> list[np.ndarray]:
    """Label the nuclei of each (Y, X) image (normalised to about [0, 1])."""
    return [_nuclei(image, params) for image in images]


def find_cells(
    model: None,
    signals: list[np.ndarray],
    nuclei_signals: list[np.ndarray],
    nuclei: list[np.ndarray],
    params: ClassicalCells,
) -> list[np.ndarray]:
    """Grow cells from labelled nuclei over each (Y, X) cytoplasm signal."""
    return [_cells(signal, labels, params) for signal, labels in zip(signals, nuclei, strict=True)]


def _nuclei(image: np.ndarray, params: ClassicalNuclei) -> np.ndarray:
    smoothed = filters.gaussian(image.astype(np.float32), sigma=params.smoothing_sigma_px)
    if smoothed.max() - smoothed.min() < 1e-6:
        return np.zeros(image.shape, np.int32)
    mask = smoothed > params.threshold_factor * filters.threshold_otsu(smoothed)
    mask = ndi.binary_fill_holes(mask)
    distance = filters.gaussian(ndi.distance_transform_edt(mask), sigma=1.0)
    peaks = feature.peak_local_max(
        distance,
        min_distance=params.min_distance_px,
        labels=measure.label(mask),
        exclude_border=False,
    )
    markers = np.zeros(image.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return segmentation.watershed(-distance, markers, mask=mask).astype(np.int32)


def _cells(signal: np.ndarray, nuclei: np.ndarray, params: ClassicalCells) -> np.ndarray:
    if nuclei.max() == 0:
        return np.zeros(nuclei.shape, np.int32)
    smoothed = filters.gaussian(signal.astype(np.float32), sigma=params.smoothing_sigma_px)
    spread = smoothed.max() - smoothed.min()
    threshold = filters.threshold_otsu(smoothed) if spread > 1e-6 else np.inf
    foreground = (smoothed > params.threshold_factor * threshold) | (nuclei > 0)
    distance = ndi.distance_transform_edt(nuclei == 0)
    return segmentation.watershed(distance, markers=nuclei, mask=foreground).astype(np.int32)
