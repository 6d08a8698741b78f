"""Preprocessing shared by every backend: percentile normalisation and a median filter."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import disk


def normalise(channel: np.ndarray, pmin: float = 1.0, pmax: float = 99.0) -> np.ndarray:
    """Map the `pmin` and `pmax` percentiles of a (Y, X) channel to 0 and 1 (float32, clipped).

    NaN pixels are ignored for the percentiles and become 0; a constant channel becomes 0.
    """
    channel = channel.astype(np.float32)
    finite = np.isfinite(channel)
    if not finite.any():
        return np.zeros(channel.shape, np.float32)
    low, high = np.percentile(channel[finite], [pmin, pmax])
    if high <= low:
        return np.zeros(channel.shape, np.float32)
    scaled = (np.where(finite, channel, low) - low) / (high - low)
    return np.clip(scaled, 0, 1).astype(np.float32)


def median_filter(channel: np.ndarray, radius_px: int) -> np.ndarray:
    """Median filter with a disk of `radius_px` (0: unchanged)."""
    if radius_px <= 0:
        return channel
    return ndi.median_filter(channel, footprint=disk(radius_px))
