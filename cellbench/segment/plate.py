"""Segment every field of a plate into its label store, loading the models once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from cellbench.config import SegmentationConfig
from cellbench.data.plates import Plate, read_field
from cellbench.errors import CellbenchError
from cellbench.io.layout import warn_wells_without_layout
from cellbench.segment import Segmenter
from cellbench.segment.store import write_label_store

log = logging.getLogger(__name__)

BATCH_FIELDS = 8  # the most fields a backend sees at once (Cellpose); see Segmenter.batch_fields


def segment_plate(
    plate: Plate,
    channels: list[str],
    params: SegmentationConfig,
    path: Path,
    nonfinite: Literal["fail", "zero"] = "fail",
) -> dict:
    """Segment each field of `plate` and write the label store at `path`.

    A field that cannot be read, or holds no cell, does not stop the plate: it is recorded
    under ``field_errors`` / ``field_warnings`` and left out of (or empty in) the store, so
    the crop and features stages, which read only stored fields, skip it too. A field with
    NaN or infinite pixels is such a field under ``nonfinite="fail"``; under ``"zero"`` its
    pixels are set to 0 and counted (`read_field`).

    Returns
    -------
    dict
        ``fields``, ``cells``, ``field_errors``, ``field_warnings``, ``layout_problems`` and
        ``nonfinite_pixels_zeroed``, for the task's status.

    Raises
    ------
    CellbenchError
        Every field failed.
    """
    segmenter = Segmenter(params)
    errors: dict[str, str] = {}
    warnings: dict[str, str] = {}
    zeroed: dict[str, int] = {}
    n_cells = 0
    warn_wells_without_layout(log, plate.name, plate.layout_report, plate.layout.columns)

    def labelled_fields() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        nonlocal n_cells
        batch = min(BATCH_FIELDS, segmenter.batch_fields)  # held in memory at once
        for start in range(0, len(plate.fields), batch):
            names, images = [], []
            for field in plate.fields[start : start + batch]:
                try:
                    images.append(read_field(plate, field, channels, nonfinite, zeroed))
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
                if name in zeroed:
                    note = f"{zeroed[name]} NaN or infinite pixel(s) set to 0"
                    warnings[name] = f"{warnings[name]}; {note}" if name in warnings else note
                n_cells += count
                yield name, cells, nuclei

    try:
        n_fields = write_label_store(path, plate.name, params.methods, labelled_fields())
    except ValueError:
        raise CellbenchError(
            f"plate {plate.name!r}: no field could be segmented: {errors}"
        ) from None
    log.info("segment %s: %d fields, %d cells", plate.name, n_fields, n_cells)
    if zeroed:
        log.warning(
            "segment %s: %d NaN or infinite pixel(s) set to 0 in field(s) %s",
            plate.name,
            sum(zeroed.values()),
            ", ".join(zeroed),
        )
    return {
        "fields": n_fields,
        "cells": n_cells,
        "field_errors": errors,
        "field_warnings": warnings,
        "layout_problems": {key: wells for key, wells in plate.layout_report.items() if wells},
        "nonfinite_pixels_zeroed": sum(zeroed.values()),
    }
