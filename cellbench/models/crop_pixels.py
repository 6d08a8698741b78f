"""Crops as pixel rows: the input of a classical model that reads crops.

`flatten_crops` resizes each crop to a common side where needed and lays its pixels out as one
row per cell, for scikit-learn models (`cellbench.models.classical`) and the background study.
"""

from __future__ import annotations

import numbers

import numpy as np
from skimage.transform import resize


def flatten_crops(crops: np.ndarray, size_px: int) -> np.ndarray:
    """Crops as one row of pixels per cell, resized to ``size_px`` square where needed.

    Parameters
    ----------
    crops : (N, C, H, W) ndarray
        Cell crops, channels first, any numeric dtype.
    size_px : int
        Side of the resized crops. Crops already ``size_px`` square are not resampled; others are
        resized per channel with `skimage.transform.resize` (bilinear, anti-aliased when
        shrinking, intensities kept: ``preserve_range=True``, so uint16 values are not rescaled
        to [0, 1]).

    Returns
    -------
    (N, C * size_px * size_px) ndarray of float32
        Pixels in (channel, row, column) order.

    Examples
    --------
    >>> flatten_crops(np.zeros((4, 3, 64, 64), np.uint16), size_px=32).shape
    (4, 3072)
    """
    crops = np.asarray(crops)
    if crops.ndim != 4:
        raise ValueError(f"crops must be (N, C, H, W); got an array of shape {crops.shape}.")
    if isinstance(size_px, bool) or not isinstance(size_px, numbers.Integral) or size_px < 1:
        raise ValueError(f"size_px must be a positive int; got {size_px!r}.")
    n, channels, height, width = crops.shape
    if (height, width) == (size_px, size_px):
        return crops.reshape(n, -1).astype(np.float32)
    out = np.empty((n, channels * size_px * size_px), dtype=np.float32)
    for i, crop in enumerate(crops):
        # (H, W, C) with a 2-D output shape: skimage keeps the channel axis and never mixes it.
        resized = resize(
            np.moveaxis(crop, 0, -1).astype(np.float64),
            (size_px, size_px),
            order=1,
            anti_aliasing=True,
            preserve_range=True,
        )
        out[i] = np.moveaxis(resized, -1, 0).reshape(-1)
    return out
