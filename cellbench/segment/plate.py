"""Segment every field of a plate into its label store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from cellbench.config import ClassicalSegmentation
from cellbench.data.plates import Plate, read_field
from cellbench.segment import segment_field
from cellbench.segment.store import write_label_store

log = logging.getLogger(__name__)


def segment_plate(
    plate: Plate, channels: list[str], params: ClassicalSegmentation, path: Path
) -> dict:
    """Segment each field of `plate` and write the label store at `path`.

    Returns
    -------
    dict
        ``fields`` and ``cells`` counts, for the task's status.
    """
    counts = {"fields": 0, "cells": 0}

    def labelled_fields() -> Iterator:
        for field in plate.fields:
            image = read_field(plate, field, channels)
            cells, nuclei = segment_field(image, channels, params)
            counts["cells"] += len(set(cells[cells > 0].tolist()))
            yield field.xyyzz, cells, nuclei

    counts["fields"] = write_label_store(path, plate.name, params.method, labelled_fields())
    log.info("segment %s: %d fields, %d cells", plate.name, counts["fields"], counts["cells"])
    return counts
