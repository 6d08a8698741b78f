"""Start a cellbench ResNet from a torchvision ResNet state dict (fine-tuning).

The file holds torchvision's key names (``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``,
..., ``layer4.1.bn2.*``, ``downsample.0/1`` in the blocks that change shape, ``fc.*``).
cellbench names the stem ``stem.0`` (convolution) and ``stem.1`` (BatchNorm) and the
projection shortcut ``shortcut.0/1``; every other name is the same. The file's ``fc`` is
dropped (a new head is trained for our classes). torchvision's first convolution takes 3
(RGB) channels; for N != 3 input channels it is replaced by the mean of its RGB filters,
repeated N times and scaled by 3 / N, so that an image with the same value in every channel
gives the same first-layer response as the RGB filters would on a gray image.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from cellbench.errors import CellbenchError

PRETRAINED_WIDTH = 64  # torchvision's ResNets have 64 channels in the first stage
FIRST_CONV = "conv1.weight"  # torchvision's name of the first convolution
SHOWN = 5  # keys or shapes listed in an error


class PretrainedWeightsError(CellbenchError):
    """A weights file (ResNetModel ``weights``) that does not fit the ResNet."""


def torchvision_to_cellbench(name: str) -> str:
    """A torchvision ResNet state-dict key as cellbench's module name.

    Examples
    --------
    >>> torchvision_to_cellbench("bn1.running_mean")
    'stem.1.running_mean'
    >>> torchvision_to_cellbench("layer2.0.downsample.1.weight")
    'layer2.0.shortcut.1.weight'
    """
    name = re.sub(r"^conv1\.", "stem.0.", name)
    name = re.sub(r"^bn1\.", "stem.1.", name)
    return name.replace(".downsample.", ".shortcut.")


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """(D, 3, k, k) RGB filters -> (D, N, k, k): the RGB mean repeated N times, times 3 / N.

    Unchanged when N is 3.
    """
    if in_channels == weight.shape[1]:
        return weight
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, in_channels, 1, 1) * (weight.shape[1] / in_channels)


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in `path`, read with ``weights_only=True`` (tensors only, never code).

    Raises
    ------
    PretrainedWeightsError
        The file is missing, unreadable, or not a mapping of names to tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"weights: no such file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated file, a pickle of code, another format
        raise PretrainedWeightsError(
            f"weights: {path} is not a readable state dict: {error}"
        ) from error
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise PretrainedWeightsError(
            f"weights: {path} is not a state dict (names -> tensors), got {type(state).__name__}"
        )
    return state


def load_pretrained(model: nn.Module, path: Path) -> None:
    """Copy a torchvision ResNet state dict from `path` into `model`, except its ``fc``.

    Parameters
    ----------
    model : cellbench.models.resnet.ResNet
        Of width 64 (torchvision's); its first convolution's input channels decide how the
        file's RGB filters are adapted (`adapt_first_conv`).
    path : Path

    Raises
    ------
    PretrainedWeightsError
        Naming the file and the keys: missing or unexpected keys, shapes that differ, or a
        model of another width.
    """
    width = model.arguments["width"]
    if width != PRETRAINED_WIDTH:
        raise PretrainedWeightsError(
            f"weights: {path} needs width: {PRETRAINED_WIDTH} (torchvision's), got width: {width}"
        )
    state = read_weights_file(path)
    if FIRST_CONV in state:
        state[FIRST_CONV] = adapt_first_conv(state[FIRST_CONV], model.arguments["in_channels"])
    mapped = {torchvision_to_cellbench(k): v for k, v in state.items() if not k.startswith("fc.")}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    _check_keys(path, own, mapped)
    _check_shapes(path, own, mapped)
    model.load_state_dict({**model.state_dict(), **mapped})


def _check_keys(path: Path, own: dict, mapped: dict) -> None:
    """Raise naming the first missing and unexpected keys (in cellbench's names)."""
    missing, unexpected = sorted(set(own) - set(mapped)), sorted(set(mapped) - set(own))
    if missing or unexpected:
        raise PretrainedWeightsError(
            f"weights: {path} does not fit the ResNet: {len(missing)} missing key(s) "
            f"{missing[:SHOWN]}, {len(unexpected)} unexpected key(s) {unexpected[:SHOWN]} "
            "(cellbench's names: stem.0 = conv1, stem.1 = bn1, shortcut = downsample; "
            "check depth: 18 or 50)"
        )


def _check_shapes(path: Path, own: dict, mapped: dict) -> None:
    """Raise listing the first keys whose shapes differ between the file and the model."""
    wrong = [
        f"{k}: file {tuple(mapped[k].shape)}, model {tuple(v.shape)}"
        for k, v in own.items()
        if tuple(mapped[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise PretrainedWeightsError(
            f"weights: {path} has {len(wrong)} tensor(s) of another shape: {wrong[:SHOWN]}"
        )
