"""Train and apply a CP2Image generator: a cell's handcrafted features -> its crop.

Features are imputed (training medians) and standardised (training mean and SD) as every
feature model does (`cellbench.models.standardise`); the statistics are saved with the
weights, so `generate` needs nothing but the model file.

``architecture: published`` builds the paper's networks (`cellbench.models.cp2image_published`);
the saved file names its architecture, so `generate` rebuilds the right one.

The ``cp2image`` model type of the registry (`cellbench.models.registry`): `train`, `predict`
(no classes) and `reconstruct` (crops generated from the cells' features).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from cellbench.config import TrainingConfig
from cellbench.io.atomic import atomic_path
from cellbench.models.cp2image import (
    AdversarialSettings,
    CP2ImageGenerator,
    Discriminator,
    train_cp2image,
)
from cellbench.models.cp2image_published import PublishedDiscriminator, PublishedGenerator
from cellbench.models.crop_rows import CropRows, as_crop_rows
from cellbench.models.persist import load_torch
from cellbench.models.registry import Prediction
from cellbench.models.standardise import Standardisation, fit_standardisation
from cellbench.models.training import (
    FitSettings,
    by_split,
    finish,
    predict_batches,
    run_arguments,
    save_history,
    treatment_groups,
)

if TYPE_CHECKING:
    from cellbench.config import CP2ImageModel
    from cellbench.models.inputs import ModelData
    from cellbench.paths import ResultsPaths


def train_generator(
    params,
    features: dict[str, np.ndarray],
    images: dict[str, CropRows | np.ndarray],
    *,
    training: TrainingConfig,
    seed: int,
    settings_hash: str,
    model_path: Path,
    checkpoint_path: Path,
    batch_groups: np.ndarray | None = None,
) -> dict:
    """Fit the generator on the ``train`` cells (best pixel loss on ``val``) and save it.

    Parameters
    ----------
    params : CP2ImageModel
    features : dict of {split: (N, F) float array}
    images : dict of {split: CropRows or (N, C, S, S) float32 array}
        The target crops, S = 4 x a power of two; crops from the stores stream a batch at a
        time.
    training : TrainingConfig
        The optimisation settings (a `CP2ImageModel` entry is one). Augmentation is never
        used (it would break the feature-to-pixel correspondence).
    batch_groups : (N,) array, optional
        The ``train`` cells' treatments, for ``batches: one_per_treatment``.
    """
    stats = fit_standardisation(features["train"])
    torch.manual_seed(seed)
    crops = {split: as_crop_rows(x, f"images[{split!r}]") for split, x in images.items()}
    shape = crops["train"].shape
    generator, discriminator = build_networks(params, features["train"].shape[1], shape)

    def dataset(split: str) -> Dataset | None:
        if len(features.get(split, [])) == 0:
            return None
        x = torch.from_numpy(stats.apply(features[split]).astype(np.float32))
        return FeaturesToCrops(x, crops[split].dataset())

    settings = FitSettings(training, seed, settings_hash, groups=batch_groups)
    history = train_cp2image(
        generator,
        dataset("train"),
        dataset("val"),
        settings,
        Path(checkpoint_path),
        discriminator,
        AdversarialSettings.from_config(params),
    )
    saved = {"median": stats.medians, "mean": stats.means, "sd": stats.scales}  # file keys
    payload = {
        "kind": "cp2image",
        "architecture": params.architecture,
        "arguments": dict(generator.arguments),
        "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        **{key: torch.as_tensor(values, dtype=torch.float64) for key, values in saved.items()},
    }
    with atomic_path(Path(model_path)) as tmp:
        torch.save(payload, tmp)
    finish(Path(checkpoint_path))
    return history


GENERATORS = {"default": CP2ImageGenerator, "published": PublishedGenerator}


def build_networks(params, n_features: int, shape: tuple[int, ...]) -> tuple:
    """The generator of `params.architecture` and its discriminator (None without one).

    Parameters
    ----------
    params : CP2ImageModel
    n_features : int
    shape : (N, C, S, S) of the target crops
    """
    channels, side = shape[1], shape[-1]
    generator = GENERATORS[params.architecture](n_features, channels, side)
    if not params.feature_matching:
        return generator, None
    if params.architecture == "published":
        return generator, PublishedDiscriminator(channels, side, spectral_norm=params.spectral_norm)
    return generator, Discriminator(channels, side, spectral_norm=params.spectral_norm)


class FeaturesToCrops(Dataset):
    """Items ``(features, crop)``: a cell's standardised (F,) features and its crop.

    Parameters
    ----------
    features : (N, F) float32 Tensor
    crops : Dataset
        N items ``(crop,)`` (`CropRows.dataset`); ``reads_files`` is theirs, so crops from
        the stores are read by loader workers.
    """

    def __init__(self, features: torch.Tensor, crops: Dataset) -> None:
        if len(features) != len(crops):
            raise ValueError(f"{len(features)} feature rows for {len(crops)} crops")
        self.features, self.crops = features, crops
        self.reads_files = bool(getattr(crops, "reads_files", False))

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[i], self.crops[i][0]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Items of a batch, the crops read in one call where their dataset batches reads."""
        batched = getattr(self.crops, "__getitems__", None)
        items = batched(indices) if batched is not None else [self.crops[i] for i in indices]
        return [(self.features[i], item[0]) for i, item in zip(indices, items, strict=True)]


def load_generator(model_path: Path) -> tuple[torch.nn.Module, Standardisation]:
    """A saved generator (in eval mode) and the standardisation of its training features."""
    saved = load_torch(model_path)  # weights_only: tensors and plain data, never code
    generator = GENERATORS[saved.get("architecture", "default")](**saved["arguments"])
    generator.load_state_dict(saved["state_dict"])
    generator.eval()
    stats = Standardisation(saved["median"].numpy(), saved["mean"].numpy(), saved["sd"].numpy())
    return generator, stats


def generate_standardised(
    generator: torch.nn.Module, standardised: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """(N, F) standardised features (as the generator sees them) -> (N, C, S, S) float32 crops."""
    x = torch.from_numpy(np.asarray(standardised, dtype=np.float32))
    return predict_batches(generator, x, batch_size).numpy()


def generate(model_path: Path, features: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, F) raw features -> (N, C, S, S) float32 crops from a saved generator."""
    generator, stats = load_generator(model_path)
    standardised = stats.apply(np.asarray(features, dtype=np.float64))
    return generate_standardised(generator, standardised, batch_size)


# --- the registry's functions ------------------------------------------------------------------


def train(
    params: CP2ImageModel,
    data: ModelData,
    sides: dict[str, np.ndarray],
    classes: list[str],
    *,
    seed: int,
    settings_hash: str,
    paths: ResultsPaths,
) -> dict:
    """Fit the generator from the ``train`` cells' features to their crops; save it, its history.

    `classes` is not read: the generator learns without labels.
    """
    history = train_generator(
        params,
        by_split(data.features, sides),
        by_split(data.crops, sides),
        batch_groups=treatment_groups(params, data.cells, sides["train"]),
        **run_arguments(params, seed, settings_hash, paths),
    )
    return save_history(history, paths.history(params.name, seed))


def predict(
    params: CP2ImageModel, data: ModelData, split: np.ndarray, *, seed: int, paths: ResultsPaths
) -> Prediction:
    """Nothing per cell: a generator predicts no class (see `reconstruct`)."""
    return Prediction()


def reconstruct(
    params: CP2ImageModel, data: ModelData, rows: np.ndarray, *, seed: int, paths: ResultsPaths
) -> np.ndarray:
    """(n, C, S, S) crops generated from the features of the cells `rows` (mask or positions).

    The result is in memory: callers with many cells pass them a chunk at a time.
    """
    return generate(paths.torch_model_file(params.name, seed), data.features[rows])
