"""The published CP2Image networks (S2 of the reference inventory): generator, discriminator.

`PublishedGenerator` takes the feature vector as a (F, 1, 1) map and grows it by four blocks
of [zero padding 4, 5 x 5 convolution (valid) to ``width`` channels, batch norm, LeakyReLU
0.01, nearest upsampling]: sides 1 -> 5 (up to 10) -> 14 (up to 28) -> 32 (up to 64) -> 68,
the last block without upsampling. After each block, before its upsampling, a 1 x 1
convolution to C channels with batch norm and LeakyReLU 0.01 makes an image at that scale
(5, 14, 32 and 68 px): `scales` returns the four.

How the scales are used is the one ambiguous point (the inventory says only that the 1 x 1
head is applied per scale). In the published code the heads of every scale are built, but
only the 68 px image enters the pixel loss and the discriminator; the smaller ones are
never trained. cellbench does the same by default (``pixel_loss_scales: last``); with
``all``, the pixel loss is the mean over the four scales, each against the crop
area-averaged to its side, so that every head learns (`multiscale_pixel_loss`).

`PublishedDiscriminator`: three blocks of [5 x 5 convolution (valid) to ``width`` channels,
batch norm, 2 x 2 max pooling, LeakyReLU 0.01] (68 -> 32 -> 14 -> 5), a 5 x 5 convolution to
64 channels with batch norm and LeakyReLU (5 -> 1), and a 1 x 1 convolution to one logit with
batch norm, summed over space. Its four hidden layers are the ones feature matching reads.
With ``spectral_norm`` every convolution is spectrally normalised (the paper normalises the
three block convolutions; cellbench normalises all five, so the switch means one thing for
both discriminators).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cellbench.models.adversarial import add_spectral_norm

PUBLISHED_SIZE_PX = 68  # the generator's output side
# the side each generator block's output is upsampled to (None: the last block keeps its side)
UPSAMPLED_SIDES = (10, 28, 64, None)
LEAK = 0.01


class PublishedGenerator(nn.Module):
    """(N, F) features -> (N, C, 68, 68) crops, with an image at every scale (`scales`).

    Parameters
    ----------
    n_features : int
        F, the length of the feature vector (453 in the paper).
    out_channels : int
        C, the crop's channels.
    image_size : int
        Must be 68, the only side the published arithmetic makes.
    width : int
        Channels of every block (32 in the paper).

    Examples
    --------
    >>> generator = PublishedGenerator(10, 3)
    >>> [tuple(x.shape) for x in generator.scales(torch.randn(2, 10))]
    [(2, 3, 5, 5), (2, 3, 14, 14), (2, 3, 32, 32), (2, 3, 68, 68)]
    """

    def __init__(
        self, n_features: int, out_channels: int, image_size: int = 68, width: int = 32
    ) -> None:
        super().__init__()
        if image_size != PUBLISHED_SIZE_PX:
            raise ValueError(
                f"the published generator makes {PUBLISHED_SIZE_PX} x {PUBLISHED_SIZE_PX} crops; "
                f"got image_size {image_size} (set size_px: {PUBLISHED_SIZE_PX})"
            )
        self.arguments = {
            "n_features": n_features,
            "out_channels": out_channels,
            "image_size": image_size,
            "width": width,
        }
        c_in, blocks, heads = n_features, [], []
        for _ in UPSAMPLED_SIDES:
            blocks.append(
                nn.Sequential(
                    nn.ZeroPad2d(4),
                    nn.Conv2d(c_in, width, 5, bias=False),
                    nn.BatchNorm2d(width),
                    nn.LeakyReLU(LEAK),
                )
            )
            heads.append(
                nn.Sequential(
                    nn.Conv2d(width, out_channels, 1, bias=False),
                    nn.BatchNorm2d(out_channels),
                    nn.LeakyReLU(LEAK),
                )
            )
            c_in = width
        self.blocks, self.heads = nn.ModuleList(blocks), nn.ModuleList(heads)

    def _activations(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Each block's (N, width, s, s) output before its upsampling; s = 5, 14, 32, 68."""
        x, activations = features[:, :, None, None], []
        for block, side in zip(self.blocks, UPSAMPLED_SIDES, strict=True):
            x = block(x)
            activations.append(x)
            if side is not None:
                x = F.interpolate(x, size=(side, side), mode="nearest")
        return activations

    def scales(self, features: torch.Tensor) -> list[torch.Tensor]:
        """(N, F) -> the (N, C, s, s) image of every scale, s = 5, 14, 32, 68."""
        activations = self._activations(features)
        return [head(x) for head, x in zip(self.heads, activations, strict=True)]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, F) standardised features -> (N, C, 68, 68) crops (the last scale only)."""
        return self.heads[-1](self._activations(features)[-1])


def multiscale_pixel_loss(scales: list[torch.Tensor], crops: torch.Tensor) -> torch.Tensor:
    """Mean over scales of the MSE of each (N, C, s, s) image against the crops at side s.

    The (N, C, S, S) crops are area-averaged to each side (``adaptive_avg_pool2d``).
    """
    losses = [F.mse_loss(x, F.adaptive_avg_pool2d(crops, x.shape[-2:])) for x in scales]
    return torch.stack(losses).mean()


class PublishedDiscriminator(nn.Module):
    """(N, C, S, S) crops -> ((N,) logits, the outputs of its four hidden layers).

    Parameters
    ----------
    in_channels : int
    image_size : int
        S; 68 gives the paper's sides 32, 14, 5 and 1. Any S whose sides stay positive
        works (the logit map is summed over space).
    width : int
        Channels of the three pooling blocks (32 in the paper).
    spectral_norm : bool
        Spectrally normalise every convolution.
    """

    def __init__(
        self, in_channels: int, image_size: int, width: int = 32, spectral_norm: bool = False
    ) -> None:
        super().__init__()
        side, c_in, layers = image_size, in_channels, []
        for _ in range(3):
            side = (side - 4) // 2
            layers.append(
                nn.Sequential(
                    nn.Conv2d(c_in, width, 5),
                    nn.BatchNorm2d(width),
                    nn.MaxPool2d(2),
                    nn.LeakyReLU(LEAK),
                )
            )
            c_in = width
        if side - 4 < 1:
            raise ValueError(
                f"the published discriminator needs crops of at least 68 px, got {image_size}"
            )
        layers.append(
            nn.Sequential(nn.Conv2d(width, 64, 5), nn.BatchNorm2d(64), nn.LeakyReLU(LEAK))
        )
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.Conv2d(64, 1, 1), nn.BatchNorm2d(1))
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(N, C, S, S) -> ((N,) logits summed over space, the four hidden layers' outputs)."""
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return self.head(x).sum(dim=(1, 2, 3)), features
