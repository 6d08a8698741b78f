"""Train segmentation weights offline from annotated images (``cellbench train-segmenter``).

A user with annotated fields (or a public set such as DSB 2018) makes StarDist or Cellpose
weights without downloading anything; the weights then go to ``segmentation.nuclei.model`` or
``segmentation.cells.model`` as a path. Images are split into training and validation by
image, never by patch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from cellbench.errors import CellbenchError
from cellbench.segment.evaluate import pair_files, read_image, read_mask
from cellbench.segment.preprocess import normalise

log = logging.getLogger(__name__)


def load_training_set(
    images: Path, masks: Path, validation_fraction: float, seed: int
) -> tuple[list, list, list, list]:
    """Read image/mask pairs (paired by name), normalise, split by image (seeded).

    Returns
    -------
    train_images, train_masks, val_images, val_masks : list of (Y, X) ndarray
    """
    pairs = pair_files(images, masks)
    if len(pairs) < 2:
        raise CellbenchError(f"{images}: need at least two annotated images, found {len(pairs)}")
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_val = min(max(1, round(validation_fraction * len(pairs))), len(pairs) - 1)
    val = set(order[:n_val].tolist())
    split: dict[bool, tuple[list, list]] = {True: ([], []), False: ([], [])}
    for i, (image_path, mask_path) in enumerate(pairs):
        image = normalise(read_image(image_path), 1.0, 99.8)
        split[i in val][0].append(image)
        split[i in val][1].append(read_mask(mask_path).astype(np.int32))
    log.info("%d training and %d validation images", len(split[False][0]), n_val)
    return split[False][0], split[False][1], split[True][0], split[True][1]


def train_segmenter(
    backend: str,
    *,
    images: Path,
    masks: Path,
    out: Path,
    epochs: int,
    steps_per_epoch: int = 50,
    patch_px: int = 128,
    validation_fraction: float = 0.15,
    seed: int = 0,
    pretrained: str | None = None,
) -> Path:
    """Train weights and return the path to give as ``model`` in the config.

    Parameters
    ----------
    backend : {"stardist", "cellpose"}
    images, masks : Path
        Folders of single-channel TIFFs and their label images, paired by file name.
    out : Path
        The model folder to create (StarDist) or the folder that gets ``models/<name>``
        (Cellpose).
    epochs : int
    steps_per_epoch : int
        StarDist only.
    patch_px : int
        Side of the training patches (made a multiple of 16 that fits every image).
    pretrained : str, optional
        Weights to fine-tune instead of starting from random ones.
    """
    train_x, train_y, val_x, val_y = load_training_set(images, masks, validation_fraction, seed)
    smallest = min(min(image.shape) for image in train_x + val_x)
    patch = max(16, min(patch_px, smallest) // 16 * 16)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if backend == "stardist":
        return _train_stardist(
            train_x, train_y, val_x, val_y, out, epochs, steps_per_epoch, patch, seed, pretrained
        )
    if backend == "cellpose":
        return _train_cellpose(train_x, train_y, val_x, val_y, out, epochs, patch, pretrained)
    raise CellbenchError(f"unknown backend {backend!r}; choose stardist or cellpose")


def _train_stardist(train_x, train_y, val_x, val_y, out, epochs, steps, patch, seed, pretrained):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from stardist import fill_label_holes
    from stardist.models import Config2D, StarDist2D

    train_y = [fill_label_holes(y) for y in train_y]
    val_y = [fill_label_holes(y) for y in val_y]
    if pretrained:
        source = Path(pretrained)
        model = StarDist2D(None, name=source.name, basedir=str(source.parent))
        model.basedir, model.name = out.parent, out.name  # save the fine-tuned copy under out
        model.logdir = out
    else:
        config = Config2D(
            n_rays=32,
            grid=(2, 2),
            n_channel_in=1,
            train_patch_size=(patch, patch),
            train_batch_size=4,
            train_epochs=epochs,
            train_steps_per_epoch=steps,
            train_tensorboard=False,
            use_gpu=False,
        )
        model = StarDist2D(config, name=out.name, basedir=str(out.parent))
    np.random.seed(seed)  # noqa: NPY002  (StarDist draws its patches from the global state)
    model.train(
        train_x, train_y, validation_data=(val_x, val_y), epochs=epochs, steps_per_epoch=steps
    )
    model.optimize_thresholds(val_x, val_y)
    return out


def _train_cellpose(train_x, train_y, val_x, val_y, out, epochs, patch, pretrained):
    from cellpose import models, train

    out.mkdir(parents=True, exist_ok=True)
    if pretrained:
        model = models.CellposeModel(gpu=False, pretrained_model=str(pretrained))
    else:
        model = models.CellposeModel(gpu=False, pretrained_model=False, model_type=None)
    filename, _, _ = train.train_seg(
        model.net,
        train_data=train_x,
        train_labels=train_y,
        test_data=val_x,
        test_labels=val_y,
        channels=[0, 0],
        n_epochs=epochs,
        save_path=str(out),
        model_name=out.name,
        min_train_masks=1,
        batch_size=4,
        bsize=patch,
    )
    return Path(filename)
