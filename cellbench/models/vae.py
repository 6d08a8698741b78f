"""A convolutional variational autoencoder for crops; the latent mean is the embedding.

The encoder has `depth` stride-2 convolution blocks (each halves H and W and doubles the
channels) and two linear heads for the latent mean and log-variance; the decoder mirrors it
with transposed convolutions. The loss is the reconstruction term plus ``beta`` times the KL
divergence to N(0, I) (Kingma & Welling 2014; Higgins et al. 2017 for beta).

Three decoders: ``"gaussian"`` (sum of squared errors on the inputs as given),
``"gaussian_nll"`` (the negative log-likelihood of a unit-variance Gaussian, 0.5 SSE + 0.5 D
ln 2 pi, as the BBBC021 VAE study writes its loss) and ``"bernoulli"`` (binary cross-entropy on
logits, on inputs scaled per channel to [0, 1]; the scaling is a pair of buffers set by
`fit_scaling` and saved with the weights).

The ``vae`` model type of the registry (`cellbench.models.registry`): `train`, `predict` (a
linear probe on the latent means), `embed` and `reconstruct` at the end of this module.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cellbench.models.adversarial import Adversary, Discriminator
from cellbench.models.registry import Prediction
from cellbench.models.training import (
    by_split,
    predict_batches,
    run_arguments,
    save_history,
    treatment_groups,
)
from cellbench.splits import TRAIN

if TYPE_CHECKING:
    from cellbench.config import VAEModel
    from cellbench.models.inputs import ModelData
    from cellbench.paths import ResultsPaths

DECODERS = ("gaussian", "gaussian_nll", "bernoulli")
VAE_DISCRIMINATOR_DEPTH = 4  # the VAE+ discriminator's convolution blocks, as the study's
PREDICT_BATCH = 256  # crops per batch when embedding and reconstructing


class ConvVAE(nn.Module):
    """Convolutional VAE for (N, C, S, S) crops.

    Block i of the encoder is a stride-2 4 x 4 convolution to ``min(width * 2**i, max_width)``
    channels (``max_width`` None: no cap), halving the side (rounding down: 68 -> 34 -> 17 ->
    8); the decoder's transposed convolutions add the pixel a halving dropped, so any side of
    at least ``2 ** depth`` comes back whole. ``logvar_clamp`` bounds the log-variance head
    (the BBBC021 VAE study clamps it to [-6, 3]). ``arguments`` holds the constructor
    arguments as plain data, to save with the weights.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        latent_dim: int = 32,
        depth: int = 3,
        width: int = 32,
        decoder: str = "gaussian",
        max_width: int | None = None,
        logvar_clamp: tuple[float, float] | None = None,
    ):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        if depth < 1 or image_size < 2**depth:
            raise ValueError(
                f"image_size must be at least 2 ** depth, got image_size={image_size}, "
                f"depth={depth}; lower depth or choose a larger crop size"
            )
        self.arguments = {
            "in_channels": in_channels,
            "image_size": image_size,
            "latent_dim": latent_dim,
            "depth": depth,
            "width": width,
            "decoder": decoder,
            "max_width": max_width,
            "logvar_clamp": None if logvar_clamp is None else list(logvar_clamp),
        }
        self.decoder_kind = decoder
        self.logvar_clamp = logvar_clamp
        self.register_buffer("low", torch.zeros(in_channels))
        self.register_buffer("high", torch.ones(in_channels))
        channels = [min(width * 2**i, max_width or width * 2**i) for i in range(depth)]
        sides = [image_size]
        for _ in range(depth):
            sides.append(sides[-1] // 2)
        self.bottom = (channels[-1], sides[-1], sides[-1])
        flat = int(np.prod(self.bottom))

        encoder: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *channels[:-1]], channels, strict=True):
            encoder += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*encoder, nn.Flatten())
        self.mu = nn.Linear(flat, latent_dim)
        self.logvar = nn.Linear(flat, latent_dim)

        self.expand = nn.Linear(latent_dim, flat)
        decoder_layers: list[nn.Module] = []
        outputs = [*channels[-2::-1], in_channels]  # the decoder's channels, block by block
        for i, (c_in, c_out) in enumerate(zip(channels[::-1], outputs, strict=True)):
            side_in, side_out = sides[depth - i], sides[depth - i - 1]
            extra = side_out - 2 * side_in  # 1 where the encoder's halving dropped a pixel
            decoder_layers.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, output_padding=extra))
            if i < depth - 1:
                decoder_layers += [nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
        self.decoder = nn.Sequential(*decoder_layers)

    def fit_scaling(self, images: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)):
        """Set the per-channel [0, 1] scaling of a Bernoulli decoder from (N, C, H, W) images."""
        low, high = np.percentile(images, percentiles, axis=(0, 2, 3))
        high = np.where(high > low, high, low + 1)
        self.low.copy_(torch.as_tensor(low, dtype=torch.float32))
        self.high.copy_(torch.as_tensor(high, dtype=torch.float32))

    def scale_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) inputs in the decoder's space: [0, 1] for Bernoulli, as given else."""
        if self.decoder_kind != "bernoulli":
            return x
        scaled = (x - self.low[:, None, None]) / (self.high - self.low)[:, None, None]
        return scaled.clamp(0, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) inputs -> latent mean and log-variance, each (N, latent_dim)."""
        hidden = self.encoder(self.scale_inputs(x))
        logvar = self.logvar(hidden)
        if self.logvar_clamp is not None:
            logvar = logvar.clamp(*self.logvar_clamp)
        return self.mu(hidden), logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) -> (N, C, H, W) means (Gaussian) or logits (Bernoulli)."""
        return self.decoder(self.expand(z).view(len(z), *self.bottom))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, mu, logvar); z is sampled in training mode, the mean in eval."""
        mu, logvar = self.encode(x)
        z = mu
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, latent_dim) latent means."""
        return self.encode(x)[0]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) reconstructions in the decoder's space (probabilities for Bernoulli)."""
        out = self.decode(self.encode(x)[0])
        return torch.sigmoid(out) if self.decoder_kind == "bernoulli" else out


def vae_loss(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    targets: torch.Tensor,
    beta: float = 1.0,
    decoder: str = "gaussian",
) -> torch.Tensor:
    """Negative ELBO per image: reconstruction + beta * KL(q(z|x) || N(0, I)).

    Parameters
    ----------
    outputs : tuple
        ``(reconstruction, mu, logvar)`` from `ConvVAE.forward`.
    targets : (N, C, H, W) Tensor
        In the decoder's space (``model.scale_inputs(x)``); in [0, 1] for Bernoulli.
    beta : float
    decoder : {"gaussian", "bernoulli"}

    Returns
    -------
    scalar Tensor
        Summed over pixels and latent dimensions, averaged over images.
    """
    recon, mu, logvar = outputs
    n = len(targets)
    if decoder == "gaussian":
        reconstruction = F.mse_loss(recon, targets, reduction="sum") / n
    elif decoder == "gaussian_nll":  # -log N(x; x_hat, I): 0.5 SSE + 0.5 D ln(2 pi)
        dims = targets[0].numel()
        sse = F.mse_loss(recon, targets, reduction="sum") / n
        reconstruction = 0.5 * sse + 0.5 * dims * math.log(2 * math.pi)
    elif decoder == "bernoulli":
        if bool((targets < 0).any() | (targets > 1).any()):
            raise ValueError(
                "a Bernoulli decoder needs targets in [0, 1]; pass model.scale_inputs(x)"
            )
        reconstruction = F.binary_cross_entropy_with_logits(recon, targets, reduction="sum") / n
    else:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / n
    return reconstruction + beta * kl


def vae_adversary(model: ConvVAE, settings: dict) -> Adversary:
    """The VAE+ discriminator of `model`'s crops (built from the current torch seed).

    The discriminator compares reconstructions and crops in the decoder's space
    (probabilities and [0, 1] crops for Bernoulli); `settings` are `Adversary`'s keywords
    learning_rate, momentum, ramp_steps and adversarial_weight.
    """
    arguments = model.arguments
    discriminator = Discriminator(
        arguments["in_channels"], arguments["image_size"], depth=VAE_DISCRIMINATOR_DEPTH
    )

    def views(outputs, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recon = outputs[0]
        fake = torch.sigmoid(recon) if model.decoder_kind == "bernoulli" else recon
        return fake, model.scale_inputs(targets)

    return Adversary(discriminator, views, **settings)


def vae_from_arguments(arguments: dict) -> ConvVAE:
    """Rebuild a ConvVAE from its saved ``arguments``."""
    return ConvVAE(**arguments)


# --- the registry's functions (cellbench.models.images imports this module: imported inside) ---


def train(
    params: VAEModel,
    data: ModelData,
    sides: dict[str, np.ndarray],
    classes: list[str],
    *,
    seed: int,
    settings_hash: str,
    paths: ResultsPaths,
) -> dict:
    """Fit the VAE on the ``train`` crops (best epoch on ``val``); save model and history.

    `classes` is not read: the VAE learns without labels.
    """
    from cellbench.models.images import train_vae

    history = train_vae(
        by_split(data.crops, sides),
        latent_dim=params.latent_size,
        depth=params.depth,
        width=params.width,
        max_width=params.max_width,
        logvar_clamp=params.logvar_clamp,
        beta=params.beta,
        decoder=params.decoder,
        augment=params.augment,
        adversarial=adversary_settings(params),
        batch_groups=treatment_groups(params, data.cells, sides["train"]),
        **run_arguments(params, seed, settings_hash, paths),
    )
    return save_history(history, paths.history(params.name, seed))


def adversary_settings(params: VAEModel) -> dict | None:
    """`Adversary`'s keywords from a VAE entry; None unless ``adversarial`` (VAE+)."""
    if not params.adversarial:
        return None
    return {
        "learning_rate": params.discriminator_learning_rate,
        "momentum": params.discriminator_momentum,
        "ramp_steps": params.feature_matching_ramp_steps,
        "adversarial_weight": params.adversarial_weight,
    }


def predict(
    params: VAEModel, data: ModelData, split: np.ndarray, *, seed: int, paths: ResultsPaths
) -> Prediction:
    """Embeddings, and classes from a logistic-regression probe fitted on the training cells'."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    embeddings = embed(params, data, seed=seed, paths=paths)
    train_cells = split == TRAIN
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(embeddings[train_cells], data.labels[train_cells])
    return Prediction(predicted=probe.predict(embeddings), embeddings=embeddings)


def embed(params: VAEModel, data: ModelData, *, seed: int, paths: ResultsPaths) -> np.ndarray:
    """(N, latent_size) latent means of the crops under the saved VAE."""
    from cellbench.models.images import embed_images, load_image_model

    model, _ = load_image_model(paths.torch_model_file(params.name, seed))
    return embed_images(model, data.crops, PREDICT_BATCH, workers=params.loader_workers)


def reconstruct(
    params: VAEModel, data: ModelData, rows: np.ndarray, *, seed: int, paths: ResultsPaths
) -> np.ndarray:
    """(n, C, S, S) reconstructions of the crops of the cells `rows` (a mask or positions).

    The result is in memory: callers with many cells pass them a chunk at a time.
    """
    from cellbench.models.images import load_image_model

    model, _ = load_image_model(paths.torch_model_file(params.name, seed))
    crops = data.crops[rows].dataset()
    return predict_batches(
        model, crops, PREDICT_BATCH, fn=model.reconstruct, workers=params.loader_workers
    ).numpy()
