"""Segment every field of a plate into its label store, loading the models once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cellbench.config import SegmentationConfig
from cellbench.data.plates import Plate, read_field
from cellbench.errors import CellbenchError
from cellbench.segment import Segmenter
from cellbench.segment.store import write_label_store

log = logging.getLogger(__name__)

BATCH_FIELDS = 8  # fields a backend sees at once (Cellpose batches them)


def segment_plate(
    plate: Plate, channels: list[str], params: SegmentationConfig, path: Path
) -> dict:
    """Segment each field of `plate` and write the label store at `path`.

    A field that cannot be read, or holds no cell, does not stop the plate: it is recorded
    under ``field_errors`` / ``field_warnings`` and left out of (or empty in) the store.

    Returns
    -------
    dict
        ``fields``, ``cells``, ``field_errors`` and ``field_warnings``, for the task's status.

    Raises
    ------
    CellbenchError
        Every field failed.
    """
    segmenter = Segmenter(params)
    errors: dict[str, str] = {}
    warnings: dict[str, str] = {}
    n_cells = 0

    def labelled_fields() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        nonlocal n_cells
        for start in range(0, len(plate.fields), BATCH_FIELDS):
            names, images = [], []
            for field in plate.fields[start : start + BATCH_FIELDS]:
                try:
                    images.append(_checked(read_field(plate, field, channels), field.name))
                    names.append(field.name)
                except CellbenchError as exc:
                    errors[field.name] = str(exc)
                    log.warning("segment %s: %s", plate.name, exc)
            if not images:
                continue
            for name, (cells, nuclei) in zip(
                names, segmenter.segment_fields(images, channels), strict=True
            ):
                count = len(np.unique(cells[cells > 0]))
                if count == 0:
                    warnings[name] = "no cell found"
                n_cells += count
                yield name, cells, nuclei

    try:
        n_fields = write_label_store(path, plate.name, params.methods, labelled_fields())
    except ValueError:
        raise CellbenchError(
            f"plate {plate.name!r}: no field could be segmented: {errors}"
        ) from None
    log.info("segment %s: %d fields, %d cells", plate.name, n_fields, n_cells)
    return {
        "fields": n_fields,
        "cells": n_cells,
        "field_errors": errors,
        "field_warnings": warnings,
        "layout_problems": {key: wells for key, wells in plate.layout_report.items() if wells},
    }


def _checked(image: np.ndarray, name: str) -> np.ndarray:
    """Refuse images that cannot be segmented as they are (all NaN)."""
    if image.dtype.kind == "f" and not np.isfinite(image).any():
        raise CellbenchError(f"{name}: every pixel is NaN or infinite")
    return image
