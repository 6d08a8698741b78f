"""ResNet-18 and ResNet-50 for N-channel microscopy crops, in plain PyTorch.

The architecture follows He et al. (2016) and torchvision's layout (7x7 stride-2 stem,
max-pool, four stages, global average pooling), with any number of input channels and a
`width` (channels of the first stage; 64 in the paper) so that tests can use tiny nets.

The ``resnet`` model type of the registry (`cellbench.models.registry`): `train`, `predict`,
`embed` and `explain` (Grad-CAM) at the end of this module.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from cellbench.models.registry import Prediction
from cellbench.models.training import (
    by_split,
    predict_batches,
    run_arguments,
    save_history,
    treatment_groups,
)

if TYPE_CHECKING:
    from cellbench.config import ResNetModel
    from cellbench.models.inputs import ModelData
    from cellbench.paths import ResultsPaths

PREDICT_BATCH = 256  # crops per batch when predicting and embedding
DEPTHS = {18: ("basic", [2, 2, 2, 2]), 50: ("bottleneck", [3, 4, 6, 3])}


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        out = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = _shortcut(in_channels, out, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, with a residual connection (ResNet-50)."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        out = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = _shortcut(in_channels, out, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    """A ResNet: stem, four stages of residual blocks, global average pooling, linear head.

    ``arguments`` holds the constructor arguments as plain data, to save with the weights.
    With ``n_features > 0`` it is a late-fusion model: the head is one linear layer on the
    pooled image embedding concatenated with the cell's standardised handcrafted features
    (``feature_mean`` and ``feature_scale`` buffers, saved in the state dict; set them with
    `set_feature_scaling`). Its embedding stays the image embedding.
    """

    def __init__(
        self,
        block: str,
        layers: list[int],
        in_channels: int,
        n_classes: int,
        width: int = 64,
        n_features: int = 0,
    ):
        super().__init__()
        self.arguments = {
            "block": block,
            "layers": list(layers),
            "in_channels": in_channels,
            "n_classes": n_classes,
            "width": width,
            "n_features": n_features,
        }
        kind = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        stages, channels = [], width
        for i, count in enumerate(layers):
            stride = 1 if i == 0 else 2
            blocks = [kind(channels, width * 2**i, stride)]
            channels = width * 2**i * kind.expansion
            blocks += [kind(channels, width * 2**i) for _ in range(count - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels + n_features, n_classes)
        self.embedding_size = channels
        self.n_features = n_features
        if n_features:
            self.register_buffer("feature_mean", torch.zeros(n_features))
            self.register_buffer("feature_scale", torch.ones(n_features))
        _initialise(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, D) globally average-pooled features of the last stage."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)

    def head(self, embedding: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """(N, D) embeddings (and (N, F) raw features of a fusion model) -> (N, K) logits."""
        if not self.n_features:
            return self.fc(embedding)
        if features is None:
            raise ValueError(f"this fusion ResNet needs (N, {self.n_features}) features too")
        scaled = (features.to(embedding.dtype) - self.feature_mean) / self.feature_scale
        scaled = torch.nan_to_num(scaled, nan=0.0)  # an undefined feature: the training mean
        return self.fc(torch.cat([embedding, scaled], dim=1))

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """(N, C, H, W) images (and (N, F) features of a fusion model) -> (N, K) logits."""
        return self.head(self.embed(x), features)

    def set_feature_scaling(self, features: np.ndarray) -> None:
        """Standardise features by the mean and standard deviation of `features`.

        `features` : (N, F) raw features of the training cells; NaN ignored; a constant or
        undefined column is centred and left unscaled.
        """
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column
            mean = np.nan_to_num(np.nanmean(features, axis=0))
            scale = np.nanstd(features, axis=0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feature_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))


def build_resnet(
    depth: int, in_channels: int, n_classes: int, width: int = 64, n_features: int = 0
) -> ResNet:
    """A ResNet-18 or ResNet-50 for `in_channels`-channel images and `n_classes` classes.

    Parameters
    ----------
    depth : {18, 50}
    in_channels : int
        Channels of the input crops (the first convolution takes them all).
    n_classes : int
    width : int
        Channels of the first stage (64 in the paper); the embedding has ``8 * width``
        (ResNet-18) or ``32 * width`` (ResNet-50) features.
    n_features : int
        Handcrafted features fused into the head (late fusion); 0: images alone.

    Returns
    -------
    ResNet

    Examples
    --------
    >>> net = build_resnet(18, in_channels=5, n_classes=3, width=8)
    >>> net(torch.zeros(2, 5, 32, 32)).shape
    torch.Size([2, 3])
    """
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {depth}")
    block, layers = DEPTHS[depth]
    return ResNet(block, layers, in_channels, n_classes, width, n_features)


def resnet_from_arguments(arguments: dict) -> ResNet:
    """Rebuild a ResNet from its saved ``arguments``."""
    return ResNet(**arguments)


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity, or a strided 1x1 projection where the shape changes."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


def _initialise(model: nn.Module) -> None:
    """He initialisation for convolutions; BatchNorm to identity."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


# --- the registry's functions (cellbench.models.images imports this module: imported inside) ---


def train(
    params: ResNetModel,
    data: ModelData,
    sides: dict[str, np.ndarray],
    classes: list[str],
    *,
    seed: int,
    settings_hash: str,
    paths: ResultsPaths,
) -> dict:
    """Fit the ResNet on the ``train`` crops (best epoch on ``val``); save model and history.

    With ``input: fusion`` the head also reads the cells' handcrafted features.
    """
    from cellbench.models.images import train_image_classifier

    gradcam_module(build_resnet(params.depth, 1, 2, width=4), params)  # before hours of training
    history = train_image_classifier(
        by_split(data.crops, sides),
        by_split(data.labels, sides),
        classes,
        depth=params.depth,
        width=params.width,
        balanced=params.class_weight == "balanced",
        augment=params.augment,
        weights=params.weights,
        features=by_split(data.features, sides) if params.input == "fusion" else None,
        batch_groups=treatment_groups(params, data.cells, sides["train"]),
        **run_arguments(params, seed, settings_hash, paths),
    )
    return save_history(history, paths.history(params.name, seed))


def predict(
    params: ResNetModel, data: ModelData, split: np.ndarray, *, seed: int, paths: ResultsPaths
) -> Prediction:
    """Class probabilities (softmax), the likeliest class and the embedding of every crop.

    One pass over the crops gives both: the logits are the head applied to the embedding.
    """
    from cellbench.models.images import load_image_model, with_features

    model, saved = load_image_model(paths.torch_model_file(params.name, seed))
    outputs = predict_batches(
        model,
        with_features(data.crops.dataset(), _fused(model, data)),
        PREDICT_BATCH,
        fn=lambda x, features=None: _embedding_and_logits(model, x, features),
        workers=params.loader_workers,
    )
    embeddings, logits = outputs[:, : model.embedding_size], outputs[:, model.embedding_size :]
    probabilities = torch.softmax(logits, dim=1).numpy()
    predicted = np.asarray(saved["classes"])[probabilities.argmax(axis=1)]
    return Prediction(predicted, probabilities, embeddings.numpy())


def _embedding_and_logits(
    model: ResNet, x: torch.Tensor, features: torch.Tensor | None = None
) -> torch.Tensor:
    """(N, C, H, W) (and (N, F) features) -> (N, D + K): the embedding, then the logits."""
    embedding = model.embed(x)
    return torch.cat([embedding, model.head(embedding, features)], dim=1)


def _fused(model: ResNet, data: ModelData) -> np.ndarray | None:
    """The (N, F) features a fusion model reads beside the crops; None for images alone."""
    if not model.n_features:
        return None
    if data.features is None or data.features.shape[1] != model.n_features:
        got = None if data.features is None else data.features.shape[1]
        raise ValueError(f"the fusion model was trained on {model.n_features} features, got {got}")
    return data.features


class _FixedFeatures(nn.Module):
    """A fusion ResNet seen as a model of images alone, for Grad-CAM of given cells.

    ``forward(x)`` is ``model(x, features)`` for the (N, F) `features` of exactly those N
    cells (one batch); the ResNet's layers are its own, so hooks on them work.
    """

    def __init__(self, model: ResNet, features: np.ndarray):
        super().__init__()
        self.model = model
        self.features = torch.as_tensor(np.asarray(features, dtype=np.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, self.features.to(x.device))


def embed(params: ResNetModel, data: ModelData, *, seed: int, paths: ResultsPaths) -> np.ndarray:
    """(N, D) embeddings of the crops: the pooled last stage of the saved ResNet.

    A fusion model's embedding is this image embedding too (its features are not in it).
    """
    from cellbench.models.images import embed_images, load_image_model

    model, _ = load_image_model(paths.torch_model_file(params.name, seed))
    return embed_images(model, data.crops, PREDICT_BATCH, workers=params.loader_workers)


def explain(
    params: ResNetModel,
    data: ModelData,
    rows: np.ndarray,
    classes: list[str],
    *,
    seed: int,
    paths: ResultsPaths,
) -> dict:
    """Grad-CAM of the true or predicted class (``gradcam_target``) on the first cells of `rows`.

    The maps of ``gradcam_layer`` are min-max normalised per cell; per cell, the mean
    activation and coverage (fraction of pixels > 0.5) of the raw (h, w) map of the layer
    (not upsampled, as the perturbation study measures them) are saved with the maps
    (``maps`` at the crop's size, ``raw_maps``, ``cell_id``, ``target``, ``true``, ``label``,
    ``mean_activation``, ``coverage`` in gradcam.npz). Writes a figure
    panel too; returns ``{"gradcam": {statistic: mean over the cells}}``, or ``{}`` when the
    entry asks for no cell.
    """
    from cellbench.models.gradcam import gradcam, gradcam_stats, plot_gradcam_panel, save_gradcam
    from cellbench.models.images import load_image_model
    from cellbench.models.inputs import CELL_ID

    if params.gradcam_cells == 0:
        return {}
    model, _ = load_image_model(paths.torch_model_file(params.name, seed))
    rows = np.arange(len(data.labels))[rows][: params.gradcam_cells]  # a mask or indices
    if len(rows) == 0:
        return {"gradcam": {}}
    images = data.crops[rows].to_array()  # `gradcam_cells` crops at most
    true = np.array([classes.index(c) for c in data.labels[rows]])
    layer = gradcam_module(model, params)
    fused = _fused(model, data)
    if fused is not None:  # the cells' own features beside their crops, in one batch
        model = _FixedFeatures(model, fused[rows])
    targets = true if params.gradcam_target == "true" else _predicted(model, images)
    one_batch = {"batch_size": max(len(images), 1)}
    maps = gradcam(model, layer, images, targets, **one_batch)  # at the crop's size
    raw = gradcam(model, layer, images, targets, upsample=False, **one_batch)  # layer's grid
    stats = gradcam_stats(raw)  # as the perturbation study: on the raw, min-max scaled map
    cell_ids = data.cells[CELL_ID].to_numpy()[rows].astype(str)
    save_gradcam(
        maps,
        paths.gradcam_maps(params.name, seed),
        cell_id=cell_ids,
        target=targets,
        true=true,
        label=np.asarray(data.labels[rows]).astype(str),
        raw_maps=raw,
        **stats,
    )
    panel = paths.gradcam_panel(params.name, seed)
    titles = [
        f"{c} ({params.gradcam_target}: {classes[t]})"
        for c, t in zip(data.labels[rows], targets, strict=True)
    ]
    plot_gradcam_panel(images, maps, panel, titles=titles)
    return {"gradcam": {k: float(np.nanmean(v)) for k, v in stats.items()}}


def gradcam_module(model: ResNet, params: ResNetModel) -> nn.Module:
    """The module Grad-CAM explains (``gradcam_layer``).

    By default layer4 at size_px >= 64 and layer3 below, so that the map is at least 2 x 2.
    """
    from cellbench.models.gradcam import resolve_layer

    name = params.gradcam_layer or ("layer4" if params.size_px >= 64 else "layer3")
    return resolve_layer(model, name)


def _predicted(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """(N,) class index the model predicts for each (N, C, H, W) crop."""
    with torch.no_grad():
        logits = model(torch.from_numpy(np.asarray(images, dtype=np.float32)))
    return logits.argmax(dim=1).numpy()
