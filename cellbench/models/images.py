"""Train image models (ResNet classifier, VAE) on crops, save, load, embed and predict.

Crops come in as (N, C, H, W) float32 arrays, already normalised, split into ``train`` and
``val`` like the feature models. A saved model file holds the weights and the constructor
arguments as plain data (read back with ``torch.load(weights_only=True)``), so prediction
needs nothing but the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from cellbench.config import TrainingConfig
from cellbench.io.atomic import atomic_path
from cellbench.models.augment import make_augment
from cellbench.models.persist import load_torch
from cellbench.models.resnet import build_resnet, resnet_from_arguments
from cellbench.models.training import FitSettings, class_weights, finish, fit, predict_batches
from cellbench.models.vae import ConvVAE, vae_from_arguments, vae_loss


def image_fit_settings(
    training: TrainingConfig, seed: int, settings_hash: str, *, augment: bool, square: bool
) -> FitSettings:
    """The `FitSettings` of one image model's run.

    With `augment`, training crops are flipped, turned by multiples of 90 degrees (square
    crops only) and jittered in brightness and contrast (`cellbench.models.augment`).
    """
    return FitSettings(
        training, seed, settings_hash, make_augment(rotations=square) if augment else None
    )


def train_image_classifier(
    images: dict[str, np.ndarray],
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
) -> dict:
    """Fit a ResNet on the ``train`` crops (best epoch on ``val``) and save it.

    Parameters
    ----------
    images : dict of {split: (N, C, H, W) float32 array}
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

    Returns
    -------
    dict
        The training history (see `fit`).
    """
    train = _check_images(images["train"], "images['train']")
    index = {name: i for i, name in enumerate(classes)}
    targets = {split: _class_indices(labels[split], index, split) for split in labels}
    torch.manual_seed(seed)
    model = build_resnet(depth, train.shape[1], len(classes), width)
    weights = class_weights(targets["train"], len(classes)) if balanced else None
    loss = nn.CrossEntropyLoss(weight=weights)  # on logits, weighted against imbalance

    def dataset(split: str) -> TensorDataset | None:
        if len(labels.get(split, [])) == 0:
            return None
        x = _check_images(images[split], f"images[{split!r}]")
        return TensorDataset(torch.from_numpy(x), torch.from_numpy(targets[split]))

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
        ),
        Path(checkpoint_path),
    )
    _save(model_path, "resnet", model, classes=list(classes))
    finish(Path(checkpoint_path))
    return history


def train_vae(
    images: dict[str, np.ndarray],
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
) -> dict:
    """Fit a convolutional VAE on the ``train`` crops (best epoch on ``val``) and save it.

    Parameters
    ----------
    images : dict of {split: (N, C, S, S) float32 array}
        S divisible by ``2 ** depth``. For a Bernoulli decoder the crops are scaled per
        channel to [0, 1] from the training crops' 0.5 and 99.5 percentiles.
    training, augment, seed, settings_hash, model_path, checkpoint_path
        As in `train_image_classifier`.
    latent_dim, depth, width, beta, decoder
        See `cellbench.models.vae.ConvVAE` and `vae_loss`.

    Returns
    -------
    dict
        The training history (see `fit`).
    """
    train = _check_images(images["train"], "images['train']")
    if train.shape[2] != train.shape[3]:
        raise ValueError(f"the VAE needs square crops, got H, W = {train.shape[2:]}")
    torch.manual_seed(seed)
    model = ConvVAE(train.shape[1], train.shape[2], latent_dim, depth, width, decoder)
    if decoder == "bernoulli":
        model.fit_scaling(train)

    def dataset(split: str) -> TensorDataset | None:
        if len(images.get(split, [])) == 0:
            return None
        return TensorDataset(torch.from_numpy(_check_images(images[split], f"images[{split!r}]")))

    history = fit(
        model,
        dataset("train"),
        dataset("val"),
        lambda out, x: vae_loss(out, model.scale_inputs(x), beta, decoder),
        image_fit_settings(training, seed, settings_hash, augment=augment, square=True),
        Path(checkpoint_path),
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


def embed_images(model: nn.Module, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, C, H, W) crops -> (N, D) float32 embeddings (``model.embed``), on the model's device.

    The ResNet embedding is the pooled last stage; the VAE embedding is the latent mean.
    """
    x = torch.from_numpy(_check_images(images, "images"))
    return predict_batches(model, x, batch_size, fn=model.embed).numpy()


def predict_images(model: nn.Module, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, C, H, W) crops -> (N, K) class probabilities of a classifier (softmax of logits)."""
    x = torch.from_numpy(_check_images(images, "images"))
    logits = predict_batches(model, x, batch_size)
    return torch.softmax(logits, dim=1).numpy()


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


def _check_images(images: np.ndarray, name: str) -> np.ndarray:
    """`images` as a contiguous float32 (N, C, H, W) array, or a ValueError naming it."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"{name} must be (N, C, H, W), got shape {images.shape}")
    return images


def _class_indices(names: np.ndarray, index: dict[str, int], split: str) -> np.ndarray:
    names = np.asarray(names).tolist()
    unknown = sorted(map(str, set(names) - set(index)))
    if unknown:
        raise ValueError(f"labels[{split!r}] has classes {unknown} not in classes {list(index)}")
    return np.array([index[n] for n in names], dtype=np.int64)
