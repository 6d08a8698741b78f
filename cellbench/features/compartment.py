"""The objects of one compartment of a field, as the feature groups read them.

A `Compartment` holds a label image and the field's intensities; what the groups need of it
(the objects renumbered 1..N, their pixels, pixel counts, intensities and intensity statistics)
is computed on first use and shared, so that e.g. Intensity and Texture sort the pixels once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from cellbench.features.intensity import intensity_stats


def region_labels(cells: np.ndarray, nuclei: np.ndarray) -> dict[str, np.ndarray]:
    """Label images of the three regions; every region of a cell carries the cell's label."""
    return {
        "Nuclei": nuclei,
        "Cytoplasm": np.where(nuclei > 0, 0, cells),
        "Cells": cells,
    }


@dataclass(eq=False)
class Compartment:
    """One compartment (``Image`` or a region) of a field, measured for the field's cells.

    Parameters
    ----------
    name : str
        ``Image`` (per-field values, one per cell) or a region: ``Nuclei``, ``Cytoplasm``,
        ``Cells``.
    label_image : (Y, X) ndarray of int
        The compartment's objects, carrying their cell's label.
    labels : (N,) ndarray of int64
        The field's cell labels, ascending: object k of every compartment is cell ``labels[k]``.
    planes : (C, Y * X) ndarray
        Raw intensities, one flattened plane per channel.
    channels : list of str
        Names of the C channels.
    """

    name: str
    label_image: np.ndarray
    labels: np.ndarray
    planes: np.ndarray
    channels: list[str]

    @property
    def n(self) -> int:
        """Number of objects (the field's cells)."""
        return len(self.labels)

    @cached_property
    def compact(self) -> np.ndarray:
        """(Y, X) label image with object k numbered k + 1, 0 for background and other labels."""
        return _compact(self.label_image, self.labels)

    @cached_property
    def pixels(self) -> np.ndarray:
        """(P,) flat indices of the object pixels, ascending."""
        return np.flatnonzero(self.compact)

    @cached_property
    def owner(self) -> np.ndarray:
        """(P,) object (0-based) of each pixel."""
        return self.compact.reshape(-1)[self.pixels].astype(np.intp) - 1

    @cached_property
    def counts(self) -> np.ndarray:
        """(N,) pixels per object (0: an empty object, whose features are NaN)."""
        return np.bincount(self.owner, minlength=self.n)

    @cached_property
    def values(self) -> np.ndarray:
        """(C, P) intensities of the object pixels."""
        return np.take(self.planes, self.pixels, axis=1)

    @cached_property
    def intensity_stats(self) -> list[dict[str, np.ndarray]]:
        """Per channel, `intensity_stats` of every object (Intensity; Texture's maxima)."""
        return intensity_stats(self.owner, self.counts, self.values)


def labels_of(cells: np.ndarray) -> np.ndarray:
    """Sorted positive labels of a label image."""
    if cells.size == 0:
        return np.zeros(0, np.int64)
    top = int(cells.max())
    if top <= 0:
        return np.zeros(0, np.int64)
    if top <= 4 * cells.size + 1024 and (cells.dtype.kind == "u" or cells.min() >= 0):
        present = np.bincount(cells.reshape(-1).astype(np.intp, copy=False), minlength=top + 1)
        return np.flatnonzero(present[1:]).astype(np.int64) + 1
    return np.unique(cells[cells > 0]).astype(np.int64)


def _compact(label_image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """`label_image` renumbered 1..N by position in `labels`; 0 for background and other labels."""
    top = int(label_image.max()) if label_image.size else 0
    if top <= 0 or len(labels) == 0:
        return np.zeros(label_image.shape, np.int32)
    if labels[-1] == len(labels) and top <= len(labels) and label_image.dtype.kind in "iu":
        if label_image.dtype.kind == "u" or label_image.min() >= 0:  # already 1..N
            return label_image
    if top > 4 * label_image.size + 1024:  # sparse huge labels: look them up instead
        flat = label_image.reshape(-1)
        index = np.searchsorted(labels, flat).clip(0, len(labels) - 1)
        hit = (flat > 0) & (labels[index] == flat)
        return np.where(hit, index + 1, 0).astype(np.int32).reshape(label_image.shape)
    lut = np.zeros(top + 1, np.int32)
    inside = labels <= top
    lut[labels[inside]] = np.flatnonzero(inside) + 1
    if label_image.dtype.kind != "u" and label_image.min() < 0:
        label_image = label_image.clip(0)
    return lut[label_image]
