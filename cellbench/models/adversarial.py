"""A small convolutional discriminator, feature matching, and the VAE+ adversary for `fit`.

`Discriminator` and `feature_matching_loss` serve CP2Image (`cellbench.models.cp2image`) and
the BBBC021 VAE study's VAE+ (S5 of the reference inventory). `Adversary` is the VAE+ part:
on each training batch of `fit` it shows the discriminator the reconstructions of one half of
the batch as fake and the other half's real crops as real (BCE on logits, one SGD step with
momentum), and returns the generator's added terms: ``adversarial_weight`` times the
non-saturating GAN loss plus the feature matching of every discriminator layer i weighted by
``gamma_i(t) = clip(t / ramp_steps - i, 0, 1)`` (t the training step), so deeper layers join
later. Its weights, optimiser state and step counter go into `fit`'s checkpoint.

CP2Image (S2) schedules its layers differently (`delayed_feature_matching_weights`: layer k
joins at step ``delay (k + 1)`` and reaches weight 1 ``delay`` steps later), matches each
real crop's features with those of its own generated crop (``distance="paired"``) and
normalises its discriminator's weights spectrally (`add_spectral_norm`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

Views = Callable[[object, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class Discriminator(nn.Module):
    """Stride-2 4 x 4 convolutions with LeakyReLU 0.2, then a linear layer to one logit.

    Block i has ``width * 2**i`` channels. By default there are ``log2(S / 4)`` blocks (at
    least one; S 4 times a power of two), down to 4 x 4; `depth` sets the number of blocks
    instead (any side of at least ``2 ** depth``, halved rounding down). With
    `spectral_norm`, every convolution and the linear layer are spectrally normalised.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        width: int = 16,
        depth: int | None = None,
        spectral_norm: bool = False,
    ):
        super().__init__()
        if depth is None:
            depth = max(_upsamplings(image_size), 1)
        elif depth < 1 or image_size < 2**depth:
            raise ValueError(
                f"the discriminator needs image_size >= 2 ** depth, got {image_size}, {depth}"
            )
        layers, c_in, side = [], in_channels, image_size
        for i in range(depth):
            c_out = width * 2**i
            layers.append(nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2)))
            c_in, side = c_out, side // 2
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(c_in * side**2, 1)
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(N, C, S, S) -> ((N,) logits, the output of every convolution block)."""
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return self.head(torch.flatten(x, 1)).squeeze(1), features


def feature_matching_loss(
    real: list[torch.Tensor],
    fake: list[torch.Tensor],
    distance: str = "l2",
    weights: list[float] | None = None,
) -> torch.Tensor:
    """Distance between batch-mean discriminator features of real and generated crops.

    Parameters
    ----------
    real, fake : list of (N, ...) Tensor
        Intermediate discriminator features, layer by layer.
    distance : {"l2", "l1", "paired"}
        Mean squared or mean absolute difference of the batch means, summed over layers;
        paired: the mean squared difference of each real crop's features and those of the
        generated crop at the same position (CP2Image's loss, there scaled by 0.5 C S S).
    weights : list of float, optional
        One weight per layer (default: all 1); a layer of weight 0 adds nothing.
    """
    if distance not in ("l1", "l2", "paired"):
        raise ValueError(f"distance must be 'l1', 'l2' or 'paired', got {distance!r}")
    weights = [1.0] * len(real) if weights is None else weights
    total = torch.zeros((), device=fake[0].device)
    for r, f, w in zip(real, fake, weights, strict=True):
        if w == 0:
            continue
        if distance == "paired":
            total = total + w * (r - f).pow(2).mean()
            continue
        gap = r.mean(dim=0) - f.mean(dim=0)
        total = total + w * (gap.abs().mean() if distance == "l1" else gap.pow(2).mean())
    return total


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalise every convolution and linear layer of `module`, in place.

    Uses ``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per forward
    pass in training mode); returns `module`.
    """
    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        parametrizations.spectral_norm(layer)
    return module


def delayed_feature_matching_weights(step: int, n_layers: int, delay_steps: int) -> list[float]:
    """CP2Image's schedule: layer k weighs ``clip((step - delay (k + 1)) / delay, 0, 1)``.

    Layers count from 0; `delay_steps` is the published 2500.

    Examples
    --------
    >>> delayed_feature_matching_weights(3750, 3, 2500)
    [0.5, 0.0, 0.0]
    """
    if delay_steps < 1:
        raise ValueError(f"delay_steps must be a positive number of steps, got {delay_steps}")
    return [
        min(max((step - delay_steps * (k + 1)) / delay_steps, 0.0), 1.0) for k in range(n_layers)
    ]


def feature_matching_gammas(step: int, n_layers: int, ramp_steps: int) -> list[float]:
    """``gamma_i = clip(step / ramp_steps - i, 0, 1)`` for layers i = 0 .. n_layers - 1.

    Examples
    --------
    >>> feature_matching_gammas(4515, 4, 3010)
    [1.0, 0.5, 0.0, 0.0]
    """
    return [min(max(step / ramp_steps - i, 0.0), 1.0) for i in range(n_layers)]


class Adversary:
    """The discriminator of a VAE+ and its SGD optimiser; `fit` calls `generator_loss`.

    Parameters
    ----------
    discriminator : Discriminator
    views : callable
        ``views(model outputs, targets) -> (reconstructions, real crops)``, both
        (N, C, S, S) in the same space.
    learning_rate, momentum : float
        Of the discriminator's SGD.
    ramp_steps : int
        The steps over which each layer's feature-matching weight rises from 0 to 1.
    adversarial_weight : float
        The weight of the generator's GAN term (BCE of the fakes' logits against "real").
    """

    def __init__(
        self,
        discriminator: Discriminator,
        views: Views,
        learning_rate: float = 1e-2,
        momentum: float = 0.9,
        ramp_steps: int = 3010,
        adversarial_weight: float = 1.0,
    ):
        self.discriminator = discriminator
        self.optimizer = torch.optim.SGD(
            discriminator.parameters(), lr=learning_rate, momentum=momentum
        )
        self.views = views
        self.ramp_steps = ramp_steps
        self.adversarial_weight = adversarial_weight
        self.step = 0
        self._sums: dict[str, float] = {}
        self._count = 0

    def to(self, device: torch.device) -> Adversary:
        """Move the discriminator (before the optimiser has any state)."""
        self.discriminator.to(device)
        return self

    def generator_loss(self, outputs, targets: torch.Tensor) -> torch.Tensor:
        """Step the discriminator on this batch; return the generator's added loss (scalar).

        The first half of the batch's reconstructions are the fakes, the second half's real
        crops the reals; a batch of fewer than 2 crops adds nothing. Runs in float32.
        """
        fake, real = self.views(outputs, targets)
        half = len(fake) // 2
        if half == 0:
            return torch.zeros((), device=fake.device)
        fake, real = fake[:half].float(), real[half:].float()
        d_loss = self._discriminator_step(fake, real)
        with torch.no_grad():
            _, real_features = self.discriminator(real)
        fake_logit, fake_features = self.discriminator(fake)
        adversarial = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        gammas = feature_matching_gammas(self.step, len(fake_features), self.ramp_steps)
        matching = feature_matching_loss(real_features, fake_features, "l2", gammas)
        self.step += 1
        self._record(len(fake), discriminator=d_loss, adversarial=adversarial, matching=matching)
        return self.adversarial_weight * adversarial + matching

    def _discriminator_step(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """One SGD step on BCE(real -> 1) + BCE(detached fake -> 0); returns that loss."""
        real_logit, _ = self.discriminator(real)
        fake_logit, _ = self.discriminator(fake.detach())
        loss = F.binary_cross_entropy_with_logits(
            real_logit, torch.ones_like(real_logit)
        ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss

    def _record(self, n: int, **losses: torch.Tensor) -> None:
        """Add a batch's losses (weighted by its n fakes) to the epoch's sums."""
        for key, value in losses.items():
            self._sums[key] = self._sums.get(key, 0.0) + value.detach().item() * n
        self._count += n

    def epoch_metrics(self) -> dict[str, float]:
        """The epoch's mean discriminator, adversarial and feature-matching losses; resets.

        Keys ``discriminator_loss``, ``adversarial_loss``, ``feature_matching_loss`` (the
        gamma-weighted sum) and ``adversarial_step`` (t after the epoch).
        """
        count = max(self._count, 1)
        names = {"discriminator": "discriminator_loss", "adversarial": "adversarial_loss"}
        names["matching"] = "feature_matching_loss"
        metrics = {names[k]: self._sums.get(k, 0.0) / count for k in names}
        self._sums, self._count = {}, 0
        return {**metrics, "adversarial_step": self.step}

    def state_dict(self) -> dict:
        """Discriminator weights, optimiser state and step counter, for the checkpoint."""
        return {
            "discriminator": self.discriminator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` saved."""
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])


def _upsamplings(image_size: int) -> int:
    """log2(image_size / 4), for image sizes 4 times a power of two."""
    ratio = image_size // 4
    if image_size < 4 or image_size % 4 or ratio & (ratio - 1):
        raise ValueError(
            f"image_size must be 4 times a power of two (4, 8, 16, 32, 64, ...), got {image_size}"
        )
    return ratio.bit_length() - 1
