"""Train and apply a CP2Image generator: a cell's handcrafted features -> its crop.

Features are imputed (training medians) and standardised (training mean and SD); the
statistics are saved with the weights, so `generate` needs nothing but the model file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from cellbench.io.atomic import atomic_path
from cellbench.models.cp2image import CP2ImageGenerator, Discriminator, train_cp2image
from cellbench.models.persist import load_torch
from cellbench.models.training import finish, predict_batches


def _standardiser(train: np.ndarray) -> dict[str, np.ndarray]:
    """Median, mean and SD (1 where constant) of the (N, F) training features."""
    median = np.nan_to_num(np.nanmedian(train, axis=0)) if len(train) else np.zeros(train.shape[1])
    filled = np.where(np.isnan(train), median, train)
    sd = filled.std(axis=0)
    return {"median": median, "mean": filled.mean(axis=0), "sd": np.where(sd > 0, sd, 1.0)}


def _standardise(features: np.ndarray, stats: dict) -> np.ndarray:
    filled = np.where(np.isnan(features), stats["median"], features)
    return ((filled - stats["mean"]) / stats["sd"]).astype(np.float32)


def train_generator(
    params,
    features: dict[str, np.ndarray],
    images: dict[str, np.ndarray],
    *,
    training,
    seed: int,
    settings_hash: str,
    model_path: Path,
    checkpoint_path: Path,
) -> dict:
    """Fit the generator on the ``train`` cells (best pixel loss on ``val``) and save it.

    Parameters
    ----------
    params : CP2ImageModel
    features : dict of {split: (N, F) float array}
    images : dict of {split: (N, C, S, S) float32 array}
        The target crops, S = 4 x a power of two.
    training : cellbench.models.images.ImageTraining
        Augmentation is never used (it would break the feature-to-pixel correspondence).
    """
    stats = _standardiser(features["train"])
    torch.manual_seed(seed)
    crops = images["train"]
    generator = CP2ImageGenerator(features["train"].shape[1], crops.shape[1], crops.shape[-1])
    discriminator = (
        Discriminator(crops.shape[1], crops.shape[-1]) if params.feature_matching else None
    )

    def dataset(split: str) -> TensorDataset | None:
        if len(features.get(split, [])) == 0:
            return None
        x = torch.from_numpy(_standardise(features[split], stats))
        return TensorDataset(x, torch.from_numpy(np.ascontiguousarray(images[split])))

    settings = replace(training.fit_settings(seed, settings_hash, square=True), augment=None)
    history = train_cp2image(
        generator, dataset("train"), dataset("val"), settings, Path(checkpoint_path), discriminator
    )
    payload = {
        "kind": "cp2image",
        "arguments": dict(generator.arguments),
        "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        **{k: torch.as_tensor(v, dtype=torch.float64) for k, v in stats.items()},
    }
    with atomic_path(Path(model_path)) as tmp:
        torch.save(payload, tmp)
    finish(Path(checkpoint_path))
    return history


def generate(model_path: Path, features: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, F) raw features -> (N, C, S, S) float32 crops from a saved generator."""
    saved = load_torch(model_path)  # weights_only: tensors and plain data, never code
    generator = CP2ImageGenerator(**saved["arguments"])
    generator.load_state_dict(saved["state_dict"])
    generator.eval()
    stats = {k: saved[k].numpy() for k in ("median", "mean", "sd")}
    x = torch.from_numpy(_standardise(np.asarray(features, dtype=np.float64), stats))
    return predict_batches(generator, x, batch_size).numpy()
