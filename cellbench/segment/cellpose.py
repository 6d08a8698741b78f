"""Cellpose for cells (and nuclei): the 3.x API and the 4.x (cpsam) API.

Channels are mapped explicitly. With the 3.x API the network gets a two-channel image
(cytoplasm, nucleus) and ``channels=[1, 2]``; a single-channel image gets ``channels=[0, 0]``.
(A known slip elsewhere: ``channels=[0, 1]`` makes Cellpose 3 average every channel into the
first, so the DNA channel is lost.) With 4.x, which reads the first three channels, the
network gets (cytoplasm, nucleus, zeros).

Named models are downloaded on first use; without internet give ``model`` a path to weights
(``cellbench train-segmenter --backend cellpose`` makes them, or copy ``~/.cellpose/models``
from a machine with internet). Cellpose 3 silently falls back to its default model when a
path does not exist, so paths are checked here first.
"""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path

import numpy as np

from cellbench.config import CellposeCells, CellposeNuclei
from cellbench.errors import CellbenchError

log = logging.getLogger(__name__)

BATCH_FIELDS = 8  # fields per call: Cellpose evaluates a batch at once


def major_version() -> int:
    """The installed Cellpose's major version (3 or 4)."""
    return int(metadata.version("cellpose").split(".")[0])


def load_model(params: CellposeCells | CellposeNuclei):
    """Load a CellposeModel once (per task)."""
    from cellpose import models

    is_path = Path(params.model).exists() or os.sep in params.model
    if is_path and not Path(params.model).is_file():
        raise CellbenchError(f"Cellpose weights {params.model} do not exist (segmentation model)")
    try:
        if is_path:
            return models.CellposeModel(gpu=params.gpu, pretrained_model=str(params.model))
        if major_version() >= 4:
            return models.CellposeModel(gpu=params.gpu, pretrained_model=params.model)
        return models.CellposeModel(gpu=params.gpu, model_type=params.model)
    except Exception as exc:  # download failures surface as many exception types
        raise CellbenchError(
            f"Cellpose model {params.model!r} could not be loaded ({type(exc).__name__}: {exc}). "
            "Without internet, set the model to a weights file: train one with `cellbench "
            "train-segmenter --backend cellpose`, or copy ~/.cellpose/models from a machine "
            "with internet."
        ) from exc


def find_nuclei(model, images: list[np.ndarray], params: CellposeNuclei) -> list[np.ndarray]:
    """Label nuclei in (Y, X) nucleus images."""
    return _evaluate(model, [image[np.newaxis] for image in images], params)


def find_cells(
    model,
    signals: list[np.ndarray],
    nuclei_signals: list[np.ndarray],
    nuclei: list[np.ndarray],
    params: CellposeCells,
) -> list[np.ndarray]:
    """Label cells from (Y, X) cytoplasm and nucleus images (the nucleus labels are unused)."""
    stacks = [np.stack([c, n]) for c, n in zip(signals, nuclei_signals, strict=True)]
    return _evaluate(model, stacks, params)


def _evaluate(model, stacks: list[np.ndarray], params) -> list[np.ndarray]:
    """Run the network on (K, Y, X) stacks (K = 1: nucleus only; K = 2: cytoplasm, nucleus)."""
    options = {
        "diameter": params.diameter_px,
        "flow_threshold": params.flow_threshold,
        "cellprob_threshold": params.cellprob_threshold,
        "batch_size": params.batch_size,
        "normalize": True,
    }
    if major_version() >= 4:
        padded = [
            np.concatenate([s, np.zeros((3 - len(s), *s.shape[1:]), s.dtype)]) for s in stacks
        ]
        masks, _, _ = model.eval(padded, channel_axis=0, **options)
    elif stacks[0].shape[0] == 1:
        masks, _, _ = model.eval([s[0] for s in stacks], channels=[0, 0], **options)
    else:
        masks, _, _ = model.eval(stacks, channels=[1, 2], channel_axis=0, **options)
    return [np.asarray(m, dtype=np.int32) for m in masks]
