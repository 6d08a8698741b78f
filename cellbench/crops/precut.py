"""Ingest pre-cut crops of one plate into its crop store (kind ``precut``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.config.crop_kinds import PRECUT
from cellbench.crops.extract import crop_spec
from cellbench.crops.store import write_crop_store
from cellbench.data.precut import read_precut

log = logging.getLogger(__name__)

BATCH = 256  # crops read and written at a time


def ingest_precut_plate(
    index: pd.DataFrame,
    plate: str,
    axes: str,
    channels: list[str],
    label_column: str,
    path: Path,
    *,
    config_hash: str,
    compression: str | None,
) -> dict:
    """Write the crops of `plate` listed in `index` (from `index_crops`) into one store.

    Returns
    -------
    dict
        ``cells`` and ``class_counts`` (crops per value of `label_column`), for the status.
    """
    rows = index[index["plate"] == plate].sort_values("cell_id").reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"no crop of plate {plate!r}")
    first = read_precut([rows.loc[0, "path"]], axes)
    if first.shape[1] != len(channels):
        raise ValueError(
            f"{rows.loc[0, 'path']}: {first.shape[1]} channel(s), but data.channels names "
            f"{len(channels)}: {channels}"
        )
    spec = crop_spec(PRECUT, first.shape[-1])

    def batches() -> Iterator[tuple[pd.DataFrame, dict]]:
        for start in range(0, len(rows), BATCH):
            chunk = rows.iloc[start : start + BATCH]
            crops = read_precut(chunk["path"].tolist(), axes)
            masks = np.zeros((len(crops), spec.size_px, spec.size_px), np.uint8)
            yield chunk.drop(columns=["path"]), {PRECUT: (crops, masks)}

    table = write_crop_store(
        path,
        plate=plate,
        channel_names=channels,
        specs=[spec],
        batches=batches(),
        config_hash=config_hash,
        compression=compression,
    )
    counts = table[label_column].value_counts().sort_index() if label_column in table else {}
    log.info("crop %s: %d pre-cut crops into %s", plate, len(table), path)
    return {
        "cells": len(table),
        "class_counts": {str(k): int(v) for k, v in dict(counts).items()},
        "class_column": label_column,
    }
