"""Nuclei segmentation of single-channel images, for scoring against ground truth."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cellbench.config import SegmentationConfig
from cellbench.segment import Segmenter

_NUCLEI_SETTINGS = {
    "classical": {},
    "stardist": {"model": "2D_versatile_fluo", "prob_thresh": None, "nms_thresh": None},
    "cellpose": {"model": "nuclei"},
}


def nuclei_segmenter(
    method: str,
    model: str | None = None,
    min_area_px: int = 10,
    pmin: float = 1.0,
    pmax: float = 99.8,
) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a (Y, X) image to nucleus labels, its model loaded once.

    Objects touching the border are kept (ground-truth masks keep them too); nuclei are not
    paired with cells.
    """
    nuclei = {"method": method, **_NUCLEI_SETTINGS[method]}
    if model is not None:
        nuclei["model"] = model
    params = SegmentationConfig.model_validate(
        {
            "nucleus_channel": "nuclei",
            "nuclei": nuclei,
            "cells": {"method": "none"},
            "remove_border_objects": False,
            "min_nucleus_area_px": min_area_px,
            "pmin": pmin,
            "pmax": pmax,
        }
    )
    segmenter = Segmenter(params)

    def predict(image: np.ndarray) -> np.ndarray:
        _, nuclei_labels = segmenter.segment_fields([image[np.newaxis]], ["nuclei"])[0]
        return nuclei_labels

    return predict
