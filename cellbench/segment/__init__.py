"""Segmentation of cells and nuclei behind one interface.

`segment_field(image, channels, params)` dispatches on `params.method`; each backend module
exports a `segment` function with the same signature.
"""

from __future__ import annotations

import numpy as np

from cellbench.config import ClassicalSegmentation


def segment_field(
    image: np.ndarray, channels: list[str], params: ClassicalSegmentation
) -> tuple[np.ndarray, np.ndarray]:
    """Segment one (C, Y, X) field into (cell labels, nucleus labels), each (Y, X) int32."""
    if params.method == "classical":
        from cellbench.segment import classical

        return classical.segment(image, channels, params)
    raise ValueError(f"unknown segmentation method {params.method!r}")
