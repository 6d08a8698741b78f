"""ResNet-18 and ResNet-50 for N-channel microscopy crops, in plain PyTorch.

The architecture follows He et al. (2016) and torchvision's layout (7x7 stride-2 stem,
max-pool, four stages, global average pooling), with any number of input channels and a
`width` (channels of the first stage; 64 in the paper) so that tests can use tiny nets.
"""

from __future__ import annotations

import torch
from torch import nn

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
    """

    def __init__(
        self, block: str, layers: list[int], in_channels: int, n_classes: int, width: int = 64
    ):
        super().__init__()
        self.arguments = {
            "block": block,
            "layers": list(layers),
            "in_channels": in_channels,
            "n_classes": n_classes,
            "width": width,
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
        self.fc = nn.Linear(channels, n_classes)
        self.embedding_size = channels
        _initialise(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, D) globally average-pooled features of the last stage."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, K) class logits."""
        return self.fc(self.embed(x))


def build_resnet(depth: int, in_channels: int, n_classes: int, width: int = 64) -> ResNet:
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
    return ResNet(block, layers, in_channels, n_classes, width)


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
