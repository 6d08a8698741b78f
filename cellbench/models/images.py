"""Train image models (ResNet classifier, VAE) on crops, save, load, embed and predict.

Crops come in as `CropRows` (read from the crop stores a batch at a time, by DataLoader
workers; `cellbench.models.crop_rows`) or as (N, C, H, W) float32 arrays in memory, already
normalised, split into ``train`` and ``val`` like the feature models. A saved model file
holds the weights and the constructor arguments as plain data (read back with
``torch.load(weights_only=True)``), so prediction needs nothing but the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from cellbench.config import TrainingConfig
from cellbench.io.atomic import atomic_path
from cellbench.models.augment import make_augment
from cellbench.models.crop_rows import CropRows, as_crop_rows
from cellbench.models.loaders import WithFeatures, loader_workers
from cellbench.models.persist import load_torch
from cellbench.models.pretrained import load_pretrained
from cellbench.models.resnet import build_resnet, resnet_from_arguments
from cellbench.models.training import FitSettings, class_weights, finish, fit, predict_batches
from cellbench.models.vae import ConvVAE, vae_adversary, vae_from_arguments, vae_loss


def image_fit_settings(
    training: TrainingConfig,
    seed: int,
    settings_hash: str,
    *,
    augment: bool,
    square: bool,
    groups: np.ndarray | None = None,
) -> FitSettings:
    """The `FitSettings` of one image model's run.

    With `augment`, training crops are flipped, turned by multiples of 90 degrees (square
    crops only) and jittered in brightness and contrast (`cellbench.models.augment`).
    `groups` are the training cells' treatments (``batches: one_per_treatment``).
    """
    augmenter = make_augment(rotations=square) if augment else None
    return FitSettings(training, seed, settings_hash, augmenter, groups)


# Crops the Bernoulli decoder's scaling is fitted on, at most (a seeded sample of the training
# crops; all of them when fewer): 512 crops of 68 x 68 give 2.4 million pixels per channel.
SCALING_CROPS = 512

Crops = CropRows | np.ndarray


def train_image_classifier(
    images: dict[str, Crops],
    labels: dict[str, np.ndarray],
    classes: list[str],
    *,
    training: TrainingConfig,
    augment: bool,
    seed: int,
    settings_hash: str,
    model_path: Path,
    checkpoint_path: Path,
    depth: int = 18,
    width: int = 64,
    balanced: bool = True,
    weights: Path | None = None,
    features: dict[str, np.ndarray] | None = None,
    batch_groups: np.ndarray | None = None,
) -> dict:
    """Fit a ResNet on the ``train`` crops (best epoch on ``val``) and save it.

    Parameters
    ----------
    images : dict of {split: CropRows or (N, C, H, W) float32 array}
    labels : dict of {split: (N,) array of class names}
    classes : list of str
        Output order of the logits.
    training : TrainingConfig
        The optimisation settings (a `ResNetModel` entry is one).
    augment : bool
        Flip, turn and jitter the training crops (see `image_fit_settings`).
    seed : int
    settings_hash : str
        A checkpoint made with another hash is not resumed.
    model_path, checkpoint_path : Path
    depth : {18, 50}
    width : int
        Channels of the first ResNet stage.
    balanced : bool
        Weight the cross-entropy by inverse class frequency (it then favours balanced
        accuracy over accuracy on unequal classes).
    weights : Path, optional
        A torchvision ResNet state dict to start from (`cellbench.models.pretrained`).
    features : dict of {split: (N, F) float array}, optional
        Handcrafted features of the same cells: a late-fusion model (`ResNet` with
        ``n_features``), standardised by the mean and standard deviation of the ``train``
        cells (kept in the saved model).
    batch_groups : (N,) array, optional
        The ``train`` cells' treatments, for ``batches: one_per_treatment``
        (`cellbench.models.training.treatment_groups`).

    Returns
    -------
    dict
        The training history (see `fit`).
    """
    crops = {split: as_crop_rows(x, f"images[{split!r}]") for split, x in images.items()}
    train = crops["train"]
    index = {name: i for i, name in enumerate(classes)}
    targets = {split: _class_indices(labels[split], index, split) for split in labels}
    torch.manual_seed(seed)
    n_features = 0 if features is None else features["train"].shape[1]
    model = build_resnet(depth, train.shape[1], len(classes), width, n_features)
    if weights is not None:
        load_pretrained(model, weights)
    if n_features:
        model.set_feature_scaling(features["train"])
    weights = class_weights(targets["train"], len(classes)) if balanced else None
    loss = nn.CrossEntropyLoss(weight=weights)  # on logits, weighted against imbalance

    def dataset(split: str) -> Dataset | None:
        if len(labels.get(split, [])) == 0:
            return None
        images = crops[split].dataset(torch.from_numpy(targets[split]))
        return with_features(images, None if features is None else features[split])

    history = fit(
        model,
        dataset("train"),
        dataset("val"),
        lambda out, y: loss.to(out.device)(out, y),
        image_fit_settings(
            training,
            seed,
            settings_hash,
            augment=augment,
            square=train.shape[2] == train.shape[3],
            groups=batch_groups,
        ),
        Path(checkpoint_path),
    )
    _save(model_path, "resnet", model, classes=list(classes))
    finish(Path(checkpoint_path))
    return history


def train_vae(
    images: dict[str, Crops],
    *,
    training: TrainingConfig,
    augment: bool,
    seed: int,
    settings_hash: str,
    model_path: Path,
    checkpoint_path: Path,
    latent_dim: int = 32,
    depth: int = 3,
    width: int = 32,
    beta: float = 1.0,
    decoder: str = "gaussian",
    max_width: int | None = None,
    logvar_clamp: tuple[float, float] | None = None,
    adversarial: dict | None = None,
    batch_groups: np.ndarray | None = None,
) -> dict:
    """Fit a convolutional VAE on the ``train`` crops (best epoch on ``val``) and save it.

    Parameters
    ----------
    images : dict of {split: CropRows or (N, C, S, S) float32 array}
        S at least ``2 ** depth``. For a Bernoulli decoder the crops are scaled per
        channel to [0, 1] from the 0.5 and 99.5 percentiles of the training crops (of a
        seeded sample of `SCALING_CROPS` of them where there are more).
    training, augment, seed, settings_hash, model_path, checkpoint_path
        As in `train_image_classifier`.
    latent_dim, depth, width, beta, decoder, max_width, logvar_clamp
        See `cellbench.models.vae.ConvVAE` and `vae_loss`.
    adversarial : dict, optional
        VAE+: the keywords of `cellbench.models.adversarial.Adversary` after its
        discriminator and views (learning_rate, momentum, ramp_steps, adversarial_weight);
        a `VAE_DISCRIMINATOR_DEPTH`-block discriminator is trained with the VAE.
    batch_groups : (N,) array, optional
        As in `train_image_classifier`.

    Returns
    -------
    dict
        The training history (see `fit`).
    """
    crops = {split: as_crop_rows(x, f"images[{split!r}]") for split, x in images.items()}
    train = crops["train"]
    if train.shape[2] != train.shape[3]:
        raise ValueError(f"the VAE needs square crops, got H, W = {train.shape[2:]}")
    torch.manual_seed(seed)
    model = ConvVAE(
        train.shape[1], train.shape[2], latent_dim, depth, width, decoder, max_width, logvar_clamp
    )
    if decoder == "bernoulli":
        model.fit_scaling(scaling_sample(train, seed, training.loader_workers))

    def dataset(split: str) -> Dataset | None:
        if split not in crops or len(crops[split]) == 0:
            return None
        return crops[split].dataset()

    history = fit(
        model,
        dataset("train"),
        dataset("val"),
        lambda out, x: vae_loss(out, model.scale_inputs(x), beta, decoder),
        image_fit_settings(
            training, seed, settings_hash, augment=augment, square=True, groups=batch_groups
        ),
        Path(checkpoint_path),
        adversary=None if adversarial is None else vae_adversary(model, adversarial),
    )
    _save(model_path, "vae", model, beta=beta)
    finish(Path(checkpoint_path))
    return history


def load_image_model(path: Path) -> tuple[nn.Module, dict]:
    """A saved image model (on the CPU, in eval mode) and its metadata.

    Returns
    -------
    model : nn.Module
    metadata : dict
        ``kind`` ("resnet" or "vae"), ``arguments``, and ``classes`` for a classifier.
    """
    saved = load_torch(path)  # weights_only: tensors and plain data, never code
    build = {"resnet": resnet_from_arguments, "vae": vae_from_arguments}[saved["kind"]]
    model = build(saved["arguments"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    metadata = {k: v for k, v in saved.items() if k != "state_dict"}
    return model, metadata


def scaling_sample(crops: CropRows, seed: int, workers: int | None = None) -> np.ndarray:
    """The training crops a Bernoulli VAE's scaling is fitted on: all, or `SCALING_CROPS`.

    Returns
    -------
    (n, C, S, S) float32 ndarray
        n = min(N, SCALING_CROPS) crops, a seeded sample in row order where N is larger, so
        memory stays bounded however many cells there are.
    """
    if len(crops) <= SCALING_CROPS:
        return crops.to_array(workers=_workers(crops, workers))
    keep = np.sort(np.random.default_rng(seed).choice(len(crops), SCALING_CROPS, replace=False))
    return crops.subset(keep).to_array(workers=_workers(crops, workers))


def with_features(images: Dataset, features: np.ndarray | None) -> Dataset:
    """`images` with each cell's (F,) raw features beside its crop (`WithFeatures`)."""
    if features is None:
        return images
    return WithFeatures(images, torch.as_tensor(np.asarray(features, dtype=np.float32)))


def embed_images(
    model: nn.Module, images: Crops, batch_size: int = 256, workers: int | None = None
) -> np.ndarray:
    """(N, C, H, W) crops -> (N, D) float32 embeddings (``model.embed``), on the model's device.

    The ResNet embedding is the pooled last stage; the VAE embedding is the latent mean.
    Crops from the stores stream through `workers` processes (default: the CPUs minus one).
    """
    dataset = as_crop_rows(images, "images").dataset()
    return predict_batches(model, dataset, batch_size, fn=model.embed, workers=workers).numpy()


def predict_images(
    model: nn.Module, images: Crops, batch_size: int = 256, workers: int | None = None
) -> np.ndarray:
    """(N, C, H, W) crops -> (N, K) class probabilities of a classifier (softmax of logits)."""
    dataset = as_crop_rows(images, "images").dataset()
    logits = predict_batches(model, dataset, batch_size, workers=workers)
    return torch.softmax(logits, dim=1).numpy()


def _workers(crops: CropRows, workers: int | None) -> int:
    """Workers of a one-pass read: none in memory, else `loader_workers(workers)`."""
    return loader_workers(workers) if crops.reads_files else 0


def _save(model_path: Path, kind: str, model: nn.Module, **extra) -> None:
    """Weights (on the CPU) and constructor arguments as plain data, written atomically."""
    payload = {
        "kind": kind,
        "arguments": dict(model.arguments),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    with atomic_path(model_path) as tmp:
        torch.save(payload, tmp)


def _class_indices(names: np.ndarray, index: dict[str, int], split: str) -> np.ndarray:
    names = np.asarray(names).tolist()
    unknown = sorted(map(str, set(names) - set(index)))
    if unknown:
        raise ValueError(f"labels[{split!r}] has classes {unknown} not in classes {list(index)}")
    return np.array([index[n] for n in names], dtype=np.int64)
