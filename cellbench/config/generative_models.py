"""The generative model entries: the VAE (with the BBBC021 study's presets) and CP2Image."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cellbench.config.model_base import (
    EVALUATE_ONLY,
    CropNormalise,
    FeatureChoice,
    ModelName,
    TorchModelEntry,
)

# The BBBC021 VAE study's models (S5 of the reference inventory): five stride-2 blocks, the
# log-variance clamped to [-6, 3], the unit-Gaussian likelihood, gradients clipped to 1.0;
# Small / Medium keep 16 / 32 channels in every block, Large grows 32 -> 256; beta_vae is the
# medium one with a 500-d latent and beta 4; vae_plus is the medium one trained with a
# discriminator (half-batch GAN, scheduled feature matching). A preset fills what its entry
# leaves unset.
_STUDY_VAE = {
    "depth": 5,
    "latent_size": 256,
    "decoder": "gaussian_nll",
    "logvar_clamp": (-6.0, 3.0),
    "gradient_clip": 1.0,
    "augment": True,
}
VAE_PRESETS: dict[str, dict] = {
    "small": {**_STUDY_VAE, "width": 16, "max_width": 16},
    "medium": {**_STUDY_VAE, "width": 32, "max_width": 32},
    "large": {**_STUDY_VAE, "width": 32, "max_width": 256},
    "beta_vae": {**_STUDY_VAE, "width": 32, "max_width": 32, "latent_size": 500, "beta": 4.0},
    "vae_plus": {**_STUDY_VAE, "width": 32, "max_width": 32, "adversarial": True},
}


class VAEModel(TorchModelEntry):
    """Convolutional variational autoencoder; its latent mean is the cell's embedding."""

    gives_embeddings = True  # the latent mean
    gives_crops = True  # reconstructions
    gives_latent_analysis = True  # cellbench.evaluate.latent

    name: ModelName
    type: Literal["vae"] = "vae"
    input: Literal["crops"] = "crops"
    preset: Literal[tuple(VAE_PRESETS)] | None = Field(  # type: ignore[valid-type]
        None,
        description="the BBBC021 VAE study's small, medium, large, beta_vae or vae_plus settings",
    )
    crop_kind: str
    normalise: CropNormalise = Field(
        "plate", description="crop intensities to [0, 1] per channel, when read (see README)"
    )
    size_px: int = Field(64, ge=16)
    depth: int = Field(3, ge=1, le=6, description="stride-2 convolution blocks")
    width: int = Field(32, ge=1, description="channels of the first block, doubling after")
    max_width: int | None = Field(None, ge=1, description="the most channels of a block")
    latent_size: int = Field(32, ge=2)
    beta: float = Field(1.0, ge=0)
    decoder: Literal["gaussian", "gaussian_nll", "bernoulli"] = "gaussian"
    logvar_clamp: tuple[float, float] | None = Field(
        None, description="bounds of the log-variance, e.g. [-6, 3]; null: none"
    )
    augment: bool = False
    analysis_cells: int = Field(
        8,
        ge=0,
        description="test cells of the latent analyses' grids (reconstructions, interpolation, "
        "traversal, sensitivity); latent usage over up to 2000 test cells; 0: no analyses",
        json_schema_extra=EVALUATE_ONLY,
    )
    adversarial: bool = Field(
        False,
        description="VAE+: a discriminator sees half of each batch's reconstructions as fake "
        "and the other half's crops as real; the VAE adds its GAN and feature-matching terms",
    )
    discriminator_learning_rate: float = Field(
        1e-2, gt=0, description="the discriminator's SGD learning rate (adversarial only)"
    )
    discriminator_momentum: float = Field(
        0.9, ge=0, lt=1, description="the discriminator's SGD momentum (adversarial only)"
    )
    feature_matching_ramp_steps: int = Field(
        3010,
        ge=1,
        description="training steps T of the feature-matching schedule: discriminator layer "
        "i weighs clip(t / T - i, 0, 1) at step t (adversarial only)",
    )
    adversarial_weight: float = Field(
        1.0, ge=0, description="weight of the VAE's GAN term (adversarial only)"
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_preset(cls, values):
        """The preset's settings under those the entry gives itself."""
        if isinstance(values, dict) and values.get("preset") in VAE_PRESETS:
            values = {**VAE_PRESETS[values["preset"]], **values}
        return values


class CP2ImageModel(TorchModelEntry, FeatureChoice):
    """A generator from a cell's feature vector to its crop (pixel loss, optional GAN term).

    ``architecture: published`` with ``spectral_norm``, ``feature_matching_schedule:
    delayed``, ``feature_matching_distance: paired``, ``optimizer: adam`` and
    ``discriminator_optimizer: sgd`` is the published CP2Image (S2); see
    `cellbench.models.cp2image_published` and configs/studies/cp2image.yaml.
    """

    gives_crops = True  # crops generated from features
    gives_generation_grids = True  # cellbench.evaluate.generation

    name: ModelName
    type: Literal["cp2image"] = "cp2image"
    input: Literal["fusion"] = "fusion"  # features in, crops as targets
    crop_kind: str
    normalise: CropNormalise = Field(
        "plate", description="crop intensities to [0, 1] per channel, when read (see README)"
    )
    size_px: int = Field(32, ge=8)
    feature_matching: bool = Field(False, description="add discriminator feature matching")
    architecture: Literal["default", "published"] = Field(
        "default",
        description="default: a linear layer to 4 x 4, then upsampling blocks, with a "
        "stride-2 discriminator; published: the paper's generator (the feature vector at 1 x "
        "1 grown to 68 x 68 by padded 5 x 5 convolutions and nearest upsampling, an image "
        "at every scale) and its pooling discriminator; needs size_px: 68",
    )
    spectral_norm: bool = Field(
        False, description="spectral normalisation of every discriminator convolution/linear"
    )
    feature_matching_schedule: Literal["constant", "delayed"] = Field(
        "constant",
        description="constant: every discriminator layer weighs 1 from the start; delayed: "
        "layer k (from 0) weighs clip((t - D (k + 1)) / D, 0, 1) at step t, D = "
        "feature_matching_delay_steps (the paper's schedule)",
    )
    feature_matching_delay_steps: int = Field(
        2500, ge=1, description="D of the delayed schedule (the paper's 2500 steps)"
    )
    feature_matching_distance: Literal["l2", "l1", "paired"] = Field(
        "l2",
        description="l2 / l1: between the batch means of real and generated features; "
        "paired: mean squared difference of each real crop's features and its own generated "
        "crop's (the paper's)",
    )
    feature_matching_weight: float = Field(
        1.0, ge=0, description="the feature-matching term's weight beside the pixel loss"
    )
    discriminator_optimizer: Literal["as_generator", "sgd"] = Field(
        "as_generator",
        description="as_generator: the generator's optimizer and learning rate; sgd: SGD "
        "with discriminator_learning_rate and discriminator_momentum (the paper's)",
    )
    discriminator_learning_rate: float = Field(
        1e-3, gt=0, description="with discriminator_optimizer: sgd (the paper's 0.001)"
    )
    discriminator_momentum: float = Field(
        0.9, ge=0, lt=1, description="with discriminator_optimizer: sgd (the paper's 0.9)"
    )
    pixel_loss_scales: Literal["last", "all"] = Field(
        "last",
        description="with architecture: published, the images the pixel loss compares: last, "
        "the 68 px one (the paper's code); all: the mean over the 5, 14, 32 and 68 px images, "
        "the crop area-averaged to each",
    )
    analysis_cells: int = Field(
        4,
        ge=0,
        description="test cells per treatment (treatment_columns, or the label where the "
        "cells lack them) in the generation grids: each cell's crop beside the one generated "
        "from its features; 0: no grids and no interpolation",
        json_schema_extra=EVALUATE_ONLY,
    )
    analysis_treatments: int = Field(
        4,
        ge=1,
        description="test treatments in the generation grids; the first two are also "
        "interpolated (images generated between their mean standardised feature vectors)",
        json_schema_extra=EVALUATE_ONLY,
    )

    @model_validator(mode="after")
    def _published_size(self):
        if self.architecture == "published" and self.size_px != 68:
            raise ValueError(
                f"size_px: architecture: published generates 68 x 68 crops; set size_px: 68 "
                f"(got {self.size_px}); crops are resized to it when read"
            )
        if self.pixel_loss_scales == "all" and self.architecture != "published":
            raise ValueError(
                "pixel_loss_scales: all needs architecture: published (the default "
                "generator makes one scale)"
            )
        return self
