"""Tests of the PyTorch models; `blob_crops` and `fit_settings` build their seeded inputs."""

from __future__ import annotations

import numpy as np

from cellbench.config import TrainingConfig
from cellbench.models.training import FitSettings


def blob_crops(
    n: int, channels: int = 2, size: int = 32, seed: int = 0, n_classes: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy crops with a bright blob in the left (label 0) or right (label 1) half.

    With ``n_classes=3``, label 2 crops have no blob: a classifier must then find the blob
    itself, not merely the empty half, so its Grad-CAM maps point at the blob.

    Returns
    -------
    images : (n, channels, size, size) float32
    labels : (n,) int64, cycling through 0 .. n_classes - 1
    masks : (n, size, size) bool, the blob's disc (empty without a blob)
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % n_classes
    yy, xx = np.mgrid[:size, :size]
    images = rng.normal(0, 0.3, (n, channels, size, size)).astype(np.float32)
    masks = np.zeros((n, size, size), dtype=bool)
    radius = size / 8
    for i, label in enumerate(labels):
        cy = rng.uniform(size * 0.3, size * 0.7)
        cx = rng.uniform(size * 0.15, size * 0.3) + label * size / 2
        distance2 = (yy - cy) ** 2 + (xx - cx) ** 2
        if label == 2:
            continue
        images[i] += 2.0 * np.exp(-distance2 / (2 * radius**2)).astype(np.float32)
        masks[i] = distance2 <= (2 * radius) ** 2
    return images, labels, masks


def fit_settings(**overrides) -> FitSettings:
    """Small, fast `FitSettings`; keyword arguments replace its or its `TrainingConfig`'s fields."""
    run = {"seed": 0, "settings_hash": "test", "augment": None, "groups": None}
    training = {
        "epochs": 2,
        "batch_size": 8,
        "learning_rate": 1e-2,
        "weight_decay": 0.0,
        "optimizer": "adam",
        "patience": None,
    }
    for key, value in overrides.items():
        (run if key in run else training)[key] = value
    return FitSettings(TrainingConfig(**training), **run)


def write_blob_store(path, n: int, size: int = 16, seed: int = 0, plate: str = "P1"):
    """A crop store of `n` uint16 `blob_crops` (kind ``whole_cell``), labels in ``condition``.

    Returns
    -------
    path : Path
    labels : (n,) int64, the class of each crop (0 or 1)
    """
    import pandas as pd

    from cellbench.crops.extract import crop_spec
    from cellbench.crops.store import write_crop_store

    images, labels, _ = blob_crops(n, size=size, seed=seed)
    crops = np.clip((images + 1.0) * 5000, 0, 65535).astype(np.uint16)
    masks = np.ones((n, size, size), np.uint8)
    table = pd.DataFrame(
        {
            "cell_id": [f"{plate}_A01_1_{i + 1}" for i in range(n)],
            "plate": plate,
            "well": "A01",
            "condition": np.where(labels == 0, "left", "right"),
        }
    )
    half = n // 2  # two fields, as the crop stage writes them
    batches = [
        (table.iloc[part].reset_index(drop=True), {"whole_cell": (crops[part], masks[part])})
        for part in (slice(0, half), slice(half, n))
    ]
    write_crop_store(
        path,
        plate=plate,
        channel_names=["dna", "actin"],
        specs=[crop_spec("whole_cell", size)],
        batches=batches,
        config_hash="test",
    )
    return path, labels
