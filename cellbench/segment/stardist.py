"""StarDist 2D nuclei: a pretrained model by name, or a model folder made offline.

Without internet, `StarDist2D.from_pretrained` cannot download weights; give
``segmentation.nuclei.model`` the folder of a model instead (one made by ``cellbench
train-segmenter --backend stardist``, or one copied from a machine with internet, where
pretrained models live under ``~/.keras/models/StarDist2D/``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from cellbench.config import StarDistNuclei
from cellbench.errors import CellbenchError

log = logging.getLogger(__name__)

BATCH_FIELDS = 1  # fields per call: StarDist predicts image by image


def load_model(params: StarDistNuclei):
    """Load a StarDist2D model once (per task)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from stardist.models import StarDist2D

    folder = Path(params.model)
    if folder.exists() or os.sep in params.model:
        if not (folder / "config.json").is_file():
            raise CellbenchError(
                f"StarDist model folder {folder} has no config.json (segmentation.nuclei.model)"
            )
        return StarDist2D(None, name=folder.name, basedir=str(folder.parent))
    try:
        model = StarDist2D.from_pretrained(params.model)
    except Exception as exc:  # download failures surface as many exception types
        model, reason = None, f"{type(exc).__name__}: {exc}"
    else:
        reason = "unknown pretrained name"
    if model is None:
        raise CellbenchError(
            f"StarDist model {params.model!r} could not be loaded ({reason}). Without internet, "
            "set segmentation.nuclei.model to a model folder: train one with `cellbench "
            "train-segmenter --backend stardist`, or copy ~/.keras/models/StarDist2D/"
            f"{params.model} from a machine with internet."
        )
    return model


def find_nuclei(model, images: list[np.ndarray], params: StarDistNuclei) -> list[np.ndarray]:
    """Label the nuclei of each (Y, X) image, already normalised to about [0, 1]."""
    labels = []
    for image in images:
        found, _ = model.predict_instances(
            image.astype(np.float32),
            prob_thresh=params.prob_thresh,
            nms_thresh=params.nms_thresh,
            n_tiles=params.n_tiles,
            show_tile_progress=False,
            verbose=False,
        )
        labels.append(found.astype(np.int32))
    return labels
