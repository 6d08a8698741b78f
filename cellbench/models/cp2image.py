"""CP2Image-style generator: from a cell's feature vector to an image of the cell.

The generator maps standardised handcrafted features (N, F) to a crop (N, C, S, S) with a
linear layer to a (4 x 4) map and ``log2(S / 4)`` upsampling blocks. It is trained on the
pixel loss (MSE) alone, with `fit`, or with an added discriminator feature-matching loss
(Salimans et al. 2016): a small convolutional discriminator learns to tell real crops from
generated ones, and the generator matches the batch means of its intermediate features on
real and generated crops. The adversarial loop checkpoints every epoch like `fit` and reads
its batches the same way (`cellbench.models.loaders`: crops from the stores by workers, an
order fixed by seed and epoch, one cell per treatment with ``batches: one_per_treatment``);
it always trains in float32 (``precision`` applies to `fit`).

`AdversarialSettings` holds what the published CP2Image (S2) changes: the feature-matching
distance (``paired``) and schedule (``delayed``: `delayed_feature_matching_weights`), an SGD
discriminator with momentum, and which scales of the published generator
(`cellbench.models.cp2image_published`) the pixel loss compares. Real and generated crops go
through the discriminator in one batch, so its batch norm (the published discriminator's)
normalises them together, as the paper's code does.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

# The discriminator and feature matching live in `cellbench.models.adversarial` (VAE+ uses
# them too); they stay importable from here.
from cellbench.models.adversarial import (
    Discriminator,
    _upsamplings,
    delayed_feature_matching_weights,
    feature_matching_loss,
)
from cellbench.models.cp2image_published import (
    PublishedDiscriminator,
    PublishedGenerator,
    multiscale_pixel_loss,
)
from cellbench.models.loaders import EpochBatches, evaluation_batches, to_device
from cellbench.models.training import (
    FitSettings,
    fit,
    load_checkpoint,
    make_optimizer,
    save_checkpoint,
    set_rng_state,
)

log = logging.getLogger(__name__)


class CP2ImageGenerator(nn.Module):
    """(N, F) features -> (N, C, S, S) crops; S is 4 times a power of two."""

    def __init__(self, n_features: int, out_channels: int, image_size: int, width: int = 32):
        super().__init__()
        n_up = _upsamplings(image_size)
        self.arguments = {
            "n_features": n_features,
            "out_channels": out_channels,
            "image_size": image_size,
            "width": width,
        }
        channels = [width * 2 ** (n_up - i) for i in range(n_up + 1)]
        self.start = channels[0]
        self.project = nn.Sequential(nn.Linear(n_features, channels[0] * 16), nn.ReLU())
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        blocks.append(nn.Conv2d(channels[-1], out_channels, 3, 1, 1))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, F) standardised features -> (N, C, S, S) crops."""
        return self.blocks(self.project(features).view(len(features), self.start, 4, 4))


def pixel_loss(generated: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
    """Mean squared error between (N, C, S, S) generated and real crops."""
    return F.mse_loss(generated, crops)


@dataclass(frozen=True)
class AdversarialSettings:
    """How the adversarial loop weighs, schedules and optimises (see `CP2ImageModel`).

    Attributes
    ----------
    feature_matching_weight : float
        The feature-matching term's weight beside the pixel loss.
    distance : {"l2", "l1", "paired"}
        See `feature_matching_loss`.
    schedule : {"constant", "delayed"}
        constant: every layer weighs 1; delayed: `delayed_feature_matching_weights`.
    delay_steps : int
        D of the delayed schedule (the paper's 2500).
    discriminator_optimizer : {"as_generator", "sgd"}
        as_generator: the generator's optimiser settings; sgd: SGD with momentum.
    discriminator_learning_rate, discriminator_momentum : float
        Of the SGD discriminator.
    pixel_loss_scales : {"last", "all"}
        With a `PublishedGenerator`: the 68 px image only, or the mean over its scales.
    """

    feature_matching_weight: float = 1.0
    distance: str = "l2"
    schedule: str = "constant"
    delay_steps: int = 2500
    discriminator_optimizer: str = "as_generator"
    discriminator_learning_rate: float = 1e-3
    discriminator_momentum: float = 0.9
    pixel_loss_scales: str = "last"

    @classmethod
    def from_config(cls, params) -> AdversarialSettings:
        """The settings of a `CP2ImageModel` entry."""
        return cls(
            feature_matching_weight=params.feature_matching_weight,
            distance=params.feature_matching_distance,
            schedule=params.feature_matching_schedule,
            delay_steps=params.feature_matching_delay_steps,
            discriminator_optimizer=params.discriminator_optimizer,
            discriminator_learning_rate=params.discriminator_learning_rate,
            discriminator_momentum=params.discriminator_momentum,
            pixel_loss_scales=params.pixel_loss_scales,
        )

    def layer_weights(self, step: int, n_layers: int) -> list[float]:
        """The feature-matching weight of each discriminator layer at training step `step`."""
        if self.schedule == "constant":
            return [1.0] * n_layers
        if self.schedule == "delayed":
            return delayed_feature_matching_weights(step, n_layers, self.delay_steps)
        raise ValueError(f"schedule must be 'constant' or 'delayed', got {self.schedule!r}")

    def discriminator_optimizer_for(
        self, discriminator: nn.Module, training
    ) -> torch.optim.Optimizer:
        """The discriminator's optimiser: SGD with momentum, or the generator's kind."""
        if self.discriminator_optimizer == "sgd":
            return torch.optim.SGD(
                discriminator.parameters(),
                lr=self.discriminator_learning_rate,
                momentum=self.discriminator_momentum,
            )
        return make_optimizer(discriminator, training)


def generated_pixel_loss(
    generator: nn.Module, features: torch.Tensor, crops: torch.Tensor, scales: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the generated (N, C, S, S) crops, their pixel loss) for one batch.

    With ``scales="all"`` and a `PublishedGenerator`, the loss is `multiscale_pixel_loss`
    over its images at every scale; otherwise the MSE of the full-size crops.
    """
    if scales == "all" and isinstance(generator, PublishedGenerator):
        images = generator.scales(features)
        return images[-1], multiscale_pixel_loss(images, crops)
    fake = generator(features)
    return fake, pixel_loss(fake, crops)


def train_cp2image(
    generator: CP2ImageGenerator,
    train: Dataset,
    validation: Dataset | None,
    settings: FitSettings,
    checkpoint_path: Path,
    discriminator: Discriminator | PublishedDiscriminator | None = None,
    adversarial: AdversarialSettings | None = None,
) -> dict:
    """Train `generator` in place on (features, crop) pairs; return its history.

    Without a discriminator this is `fit` with the pixel loss (best epoch on validation,
    early stopping). With one, each batch updates the discriminator (real vs generated) and
    then the generator on pixel + ``feature_matching_weight`` * feature-matching loss
    (`adversarial`, default `AdversarialSettings()`); the generator of the epoch with the
    lowest validation pixel loss is kept (the last one without validation). Both variants
    checkpoint every epoch and resume (with the step count that schedules feature matching).

    Returns
    -------
    dict
        ``epochs`` (per epoch: train_loss, val_loss, seconds, and for the adversarial loop
        feature_matching and discriminator losses), ``best_epoch``, ``resumed_from``.
    """
    if settings.augment is not None:
        raise ValueError("train_cp2image takes no augmentation: set FitSettings.augment=None")
    if discriminator is None:
        return fit(generator, train, validation, pixel_loss, settings, checkpoint_path)
    adversarial = adversarial or AdversarialSettings()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator.to(device)
    discriminator.to(device)
    opt_g = make_optimizer(generator, settings.training)
    opt_d = adversarial.discriminator_optimizer_for(discriminator, settings.training)
    state = {"epoch": 0, "best_loss": float("inf"), "best_epoch": 0, "step": 0}
    history: dict = {"epochs": [], "resumed_from": [], "stopped_early": False}
    best = copy.deepcopy(generator.state_dict())
    torch.manual_seed(settings.seed)
    saved = load_checkpoint(checkpoint_path, settings.settings_hash)
    if saved is not None:
        generator.load_state_dict(saved["generator"])
        discriminator.load_state_dict(saved["discriminator"])
        opt_g.load_state_dict(saved["opt_g"])
        opt_d.load_state_dict(saved["opt_d"])
        best, state, history = saved["best_model"], saved["state"], saved["history"]
        set_rng_state(saved["rng"])
        log.info("resuming %s after epoch %d", checkpoint_path.parent, state["epoch"])
    history["resumed_from"].append(state["epoch"])

    models = (generator, discriminator, opt_g, opt_d)
    if settings.training.precision != "fp32":
        log.info("the adversarial CP2Image loop trains in fp32 (precision applies to fit)")
    batches = EpochBatches(
        train,
        settings.training.batch_size,
        shuffle=True,
        seed=settings.seed,
        drop_last=False,
        device=device,
        workers=settings.training.loader_workers,
        groups=settings.batch_groups(),
    )
    while state["epoch"] < settings.training.epochs:
        started, epoch = time.time(), state["epoch"] + 1
        losses = _adversarial_epoch(*models, batches.epoch(epoch), device, adversarial, state)
        val_loss = (
            _mean_pixel_loss(generator, validation, settings, device)
            if validation is not None
            else None
        )
        criterion = val_loss if val_loss is not None else losses["train_loss"]
        if criterion < state["best_loss"] or validation is None:
            state.update(best_loss=criterion, best_epoch=epoch)
            best = copy.deepcopy(generator.state_dict())
        state["epoch"] = epoch
        row = {"epoch": epoch, **losses, "val_loss": val_loss}
        history["epochs"].append({**row, "seconds": time.time() - started})
        payload = {
            "generator": generator.state_dict(),
            "discriminator": discriminator.state_dict(),
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            "best_model": best,
            "state": state,
            "history": history,
        }
        save_checkpoint(checkpoint_path, settings.settings_hash, payload)
        log.info("epoch %d: %s", epoch, row)
    batches.close()
    generator.load_state_dict(best)
    history["best_epoch"] = state["best_epoch"]
    return history


def _adversarial_epoch(
    generator, discriminator, opt_g, opt_d, loader, device, adversarial, state
) -> dict:
    """One pass over `loader`: a discriminator step, then a generator step, per batch.

    ``state["step"]`` counts the batches of every epoch so far (the schedule's t).
    """
    generator.train()
    discriminator.train()
    sums = {"train_loss": 0.0, "feature_matching": 0.0, "discriminator": 0.0}
    count = 0
    for features, crops in loader:
        features, crops = to_device(features, device), to_device(crops, device)
        fake, pixel = generated_pixel_loss(
            generator, features, crops, adversarial.pixel_loss_scales
        )
        d_loss = _discriminator_step(discriminator, opt_d, crops, fake.detach())
        matching = _feature_matching(discriminator, crops, fake, adversarial, state["step"])
        g_loss = pixel + adversarial.feature_matching_weight * matching
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        state["step"] += 1
        n = len(crops)
        sums["train_loss"] += pixel.detach().item() * n
        sums["feature_matching"] += matching.detach().item() * n
        sums["discriminator"] += d_loss.detach().item() * n
        count += n
    return {k: v / max(count, 1) for k, v in sums.items()}


def _discriminator_step(discriminator, opt_d, real, fake) -> torch.Tensor:
    """One step on BCE(real -> 1) + BCE(fake -> 0), real and fake in one batch; the loss."""
    logits, _ = discriminator(torch.cat([real, fake]))
    real_logit, fake_logit = logits[: len(real)], logits[len(real) :]
    loss = F.binary_cross_entropy_with_logits(
        real_logit, torch.ones_like(real_logit)
    ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return loss


def _feature_matching(discriminator, real, fake, adversarial, step: int) -> torch.Tensor:
    """The generator's scheduled feature-matching loss (the discriminator held fixed)."""
    discriminator.requires_grad_(False)
    try:
        _, layers = discriminator(torch.cat([real, fake]))
    finally:
        discriminator.requires_grad_(True)
    real_features = [x[: len(real)].detach() for x in layers]
    fake_features = [x[len(real) :] for x in layers]
    weights = adversarial.layer_weights(step, len(layers))
    return feature_matching_loss(real_features, fake_features, adversarial.distance, weights)


def _mean_pixel_loss(generator, data, settings: FitSettings, device) -> float:
    """Mean pixel loss of the generator on `data` (validation), in one ordered pass."""
    generator.eval()
    total, count = 0.0, 0
    batches = evaluation_batches(
        data, settings.training.batch_size, device, settings.training.loader_workers
    )
    with torch.no_grad():
        for features, crops in batches:
            loss = pixel_loss(generator(to_device(features, device)), to_device(crops, device))
            total += loss.item() * len(crops)
            count += len(crops)
    return total / max(count, 1)
