"""Model sections of the config: one entry per model, trained once per seed.

Every model names its input: ``features`` (the handcrafted feature table), ``crops`` (one
crop kind of the crop store, resized to ``size_px``) or ``fusion`` (features and flattened
crops, each block standardised on the training cells, then concatenated).

Each model class also declares, as class-level facts, what its type can do: its ``family``
(``classical``: a scikit-learn pipeline; ``torch``: a PyTorch model), ``gives_probabilities``,
``gives_embeddings``, ``gives_crops`` (reconstructed or generated crops), ``gives_gradcam``,
``gives_latent_analysis`` (a VAE's latent usage, traversal, interpolation and sensitivity) and
``gives_generation_grids`` (a generator's real vs generated crops per treatment, and images
generated between two treatments' mean features).
Every list of types (`CLASSICAL_TYPES`, `PROBABILISTIC_TYPES`, ...) is derived from them, so
the config knows each type's abilities without importing `cellbench.models`, whose registry
(`cellbench.models.registry`) holds the implementations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, Tag, model_validator

from cellbench.config.base import StrictModel, _tag, name_type, union_members
from cellbench.config.feature_groups import FeatureGroup, Region
from cellbench.config.split import SplitConfig

ModelName = name_type("model")  # models/<name>/, _status/<stage>/<name>.seed<k>.json

# Marks a model setting that only the evaluate stage reads (Grad-CAM, the latent analyses):
# changing it re-runs the evaluation, not the training (`training_settings`).
EVALUATE_ONLY = {"evaluate_only": True}


# how a crop model reads crops (cellbench.crops.normalise): by the plate's statistics, or each
# crop on its own by its channel maximum, minimum and maximum, or percentiles
CropNormalise = Literal["plate", "max", "minmax", "percentile"]


class _Split(StrictModel):
    """What every model entry has: its own split (optional), and what it reads.

    A model may split its cells its own way (e.g. by plate and by compound, side by side).
    `reads_features`, `reads_crops` and `reads_embeddings` answer "what does this model read?"
    from its ``input``, for every stage. The class-level facts below say what a type gives;
    a model class sets those that hold for it (tests/models/test_registry.py checks them).
    """

    family: ClassVar[Literal["classical", "torch"]]
    gives_probabilities: ClassVar[bool] = False  # class probabilities of every cell (KL pairs)
    gives_embeddings: ClassVar[bool] = False  # an embedding per cell (another model may read)
    gives_crops: ClassVar[bool] = False  # reconstructed or generated crops (MSE, SSIM)
    gives_gradcam: ClassVar[bool] = False  # Grad-CAM maps of test cells
    gives_latent_analysis: ClassVar[bool] = False  # latent usage, traversal, interpolation
    gives_generation_grids: ClassVar[bool] = False  # real vs generated crops per treatment

    split: SplitConfig | None = Field(None, description="null: the experiment's split")

    @property
    def reads_features(self) -> bool:
        """Whether the model reads the handcrafted feature tables (features, fusion)."""
        return self.input in ("features", "fusion")

    @property
    def reads_crops(self) -> bool:
        """Whether the model reads crops from the crop stores (crops, fusion)."""
        return self.input in ("crops", "fusion")

    @property
    def reads_embeddings(self) -> bool:
        """Whether the model reads another model's embeddings (`embedding_model`)."""
        return self.input == "embeddings"


class _FeatureChoice(StrictModel):
    """Which handcrafted feature columns a model reads: by group and region, or by name."""

    feature_groups: list[FeatureGroup] | None = Field(None, description="null: every group")
    feature_regions: list[Region] | None = Field(None, description="null: every region")
    feature_columns: list[str] | None = Field(
        None,
        min_length=1,
        description="exact feature columns, in this order (e.g. the perturbation study's "
        "Image_Count_... and two DNA textures), instead of feature_groups / feature_regions; "
        "null: by group and region",
    )

    @model_validator(mode="after")
    def _exact_or_by_group(self):
        if self.feature_columns is not None and (self.feature_groups or self.feature_regions):
            raise ValueError(
                "feature_columns: names the columns exactly; leave feature_groups and "
                "feature_regions unset with it"
            )
        return self


class _Inputs(_Split, _FeatureChoice):
    """What a model reads: features (optionally a subset), a crop kind, or both."""

    input: Literal["features", "crops", "fusion"] = "features"
    crop_kind: str | None = Field(None, description="crop kind (crops.kinds or precut)")
    size_px: int = Field(32, ge=8, description="crops are resized to size_px x size_px")
    normalise: CropNormalise = Field("plate", description="with crops: see the README")

    @model_validator(mode="after")
    def _crop_kind_when_crops(self):
        if self.reads_crops and self.crop_kind is None:
            raise ValueError(f"crop_kind: required with input: {self.input}")
        if self.reads_embeddings and getattr(self, "embedding_model", None) is None:
            raise ValueError("embedding_model: required with input: embeddings")
        return self


class _ClassicalModel(_Inputs):
    """A scikit-learn pipeline: imputation, scaling, optional PCA and the type's classifier.

    The fields a type adds to these are its classifier's settings (`classifier_options`), the
    keyword arguments of its builder in `cellbench.models.classical`.
    """

    family = "classical"

    name: ModelName
    input: Literal["features", "crops", "fusion", "embeddings"] = "features"
    embedding_model: str | None = Field(
        None,
        description="with input: embeddings, the ResNet or VAE whose embeddings are read; the "
        "model is then fitted in the evaluate stage, on that model's split",
    )
    pca_components: float | None = Field(
        None, gt=0, description="PCA before the classifier: a count, or a variance share < 1"
    )
    pca_method: Literal["full", "incremental"] = Field(
        "full",
        description="full: scikit-learn PCA on the whole matrix in memory; incremental: "
        "IncrementalPCA fitted pca_batch_size cells at a time, crops read chunk by chunk "
        "(with input: fusion the PCA covers the crops, the features join it standardised)",
    )
    pca_batch_size: int = Field(
        256, ge=1, description="with pca_method: incremental, cells per chunk (the study's 256)"
    )
    class_weight: Literal["balanced"] | None = "balanced"
    zscore_per_well: bool = Field(
        False,
        description="standardise the features of each well's cells with that well's own "
        "mean and SD before the model (the nucleocentric study's per-well z-score)",
    )
    prune_correlation: float | None = Field(
        None,
        gt=0,
        le=1,
        description="keep one of every pair of features whose |Pearson r| on the training "
        "cells exceeds this (the study's 0.95); null: keep every feature",
    )
    undersample: bool = Field(
        False,
        description="train on an equal number of cells of every class, the smallest class's "
        "count, drawn without replacement (as imbalanced-learn's RandomUnderSampler)",
    )
    not_classifier_options: ClassVar[tuple[str, ...]] = ()  # a type's fields its builder lacks

    @model_validator(mode="after")
    def _incremental_pca_counts(self):
        if self.pca_method != "incremental":
            return self
        count = self.pca_components
        if count is None or count < 1 or not float(count).is_integer():
            raise ValueError(
                f"pca_components: pca_method: incremental keeps a count of components (e.g. "
                f"100); got {count!r}"
            )
        if self.pca_batch_size < count:
            raise ValueError(
                f"pca_batch_size: {self.pca_batch_size} is below pca_components {int(count)}; "
                "each chunk must hold at least as many cells as components"
            )
        return self

    @property
    def streams_crops(self) -> bool:
        """Whether the model reads its crops chunk by chunk (incremental PCA on crops)."""
        return self.pca_method == "incremental" and self.reads_crops

    @property
    def classifier_options(self) -> dict:
        """The settings this type adds to every classical entry's, by name (e.g. ``C``)."""
        shared = {*_ClassicalModel.model_fields, "type", *self.not_classifier_options}
        return {k: getattr(self, k) for k in type(self).model_fields if k not in shared}


class RandomForestModel(_ClassicalModel):
    """scikit-learn random forest (after median imputation and scaling)."""

    gives_probabilities = True

    type: Literal["random_forest"] = "random_forest"
    n_estimators: int = Field(200, ge=1)
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(1, ge=1)


class SVMModel(_ClassicalModel):
    """Linear support vector machine (scikit-learn LinearSVC)."""

    gives_probabilities = False  # margins (decision_function) only

    type: Literal["svm"] = "svm"
    C: float = Field(1.0, gt=0)


class LogisticRegressionModel(_ClassicalModel):
    """Multinomial logistic regression."""

    gives_probabilities = True

    type: Literal["logistic_regression"] = "logistic_regression"
    C: float = Field(1.0, gt=0)


class GradientBoostingModel(_ClassicalModel):
    """Histogram gradient boosting (scikit-learn HistGradientBoostingClassifier)."""

    gives_probabilities = True

    type: Literal["gradient_boosting"] = "gradient_boosting"
    max_iter: int = Field(100, ge=1, description="boosting iterations (trees per class)")
    learning_rate: float = Field(0.1, gt=0)
    max_leaf_nodes: int | None = Field(31, ge=2, description="null: no limit")
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(20, ge=1)
    l2_regularization: float = Field(0.0, ge=0)


class TrainingConfig(StrictModel):
    """Optimisation settings of every PyTorch model: the one place their defaults live.

    Every PyTorch model entry is a `TrainingConfig` (its keys sit in the model's entry), and
    the training loop (`cellbench.models.training.fit`) reads it whole.
    """

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    optimizer: Literal["adam", "adamw"] = "adamw"
    scheduler: Literal["plateau", "cosine", "none"] = Field(
        "plateau",
        description="plateau: halve the learning rate after 3 epochs without improvement; "
        "cosine: anneal it to 0 over the epochs; none: keep it",
    )
    patience: int | None = Field(10, ge=1, description="early stopping; null: never")
    gradient_clip: float | None = Field(
        None, gt=0, description="clip the gradients' global L2 norm to this; null: never"
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        description="mixed precision on CUDA: bf16 or fp16 autocast (fp16 with gradient "
        "scaling); fp32: none. The CPU always trains in fp32",
    )
    batches: Literal["random", "one_per_treatment"] = Field(
        "random",
        description="random: shuffled batches of batch_size cells; one_per_treatment: each "
        "batch holds at most one cell of each treatment (treatment_columns), min(batch_size, "
        "treatments) of them, the treatments used evenly over an epoch (CP2Image's batches, "
        "S2); an epoch is then about as many cells as the training set",
    )
    treatment_columns: list[Annotated[str, Field(pattern=r"^Metadata_\w+$")]] = Field(
        default_factory=lambda: ["Metadata_Compound", "Metadata_Concentration"],
        min_length=1,
        description="with batches: one_per_treatment, the cell columns whose values together "
        "name a treatment (default: compound and concentration)",
    )
    loader_workers: int | None = Field(
        None,
        ge=0,
        exclude=True,  # how crops are read, not what is learnt: outside the settings hash
        description="processes reading crops from the crop stores; null: the task's CPUs "
        "minus one (0: the training process reads)",
    )


class _TorchTraining(_Split, TrainingConfig):
    """A PyTorch model entry: its split and input, and the shared optimisation settings."""

    family = "torch"


class MLPModel(_TorchTraining, _FeatureChoice):
    """A multilayer perceptron on the handcrafted features."""

    name: ModelName
    type: Literal["mlp"] = "mlp"
    input: Literal["features"] = "features"
    class_weight: ClassVar[Literal["balanced"] | None] = "balanced"  # always weighted

    hidden: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [128, 64])
    dropout: float = Field(0.2, ge=0, lt=1)


class LogisticRegressionTorchModel(_TorchTraining, _FeatureChoice):
    """Multinomial logistic regression in PyTorch: one linear layer, cross-entropy.

    The background-confound study's classifier of PIFiA features (its ``train_lr.py``:
    ``nn.Linear(64, 15)``, plain cross-entropy, Adam at 1e-3, batches of 128, 5 epochs), on
    features imputed and standardised inside the saved model. It is the ``mlp`` network
    without hidden layers, trained by the same loop; unlike ``mlp`` it gives the softmax
    class probabilities, so it can be one side of a ``report.kl_pairs`` entry.
    """

    gives_probabilities = True  # softmax of the logits

    hidden: ClassVar[list[int]] = []  # no hidden layer: logits = W x + b
    dropout: ClassVar[float] = 0.0

    name: ModelName
    type: Literal["logistic_regression_torch"] = "logistic_regression_torch"
    input: Literal["features"] = "features"
    epochs: int = Field(5, ge=1, description="the study's 5 epochs")
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0, description="the study's Adam learning rate")
    weight_decay: float = Field(0.0, ge=0, description="the study: none")
    optimizer: Literal["adam", "adamw"] = "adam"
    scheduler: Literal["plateau", "cosine", "none"] = Field(
        "none", description="the study keeps the learning rate"
    )
    patience: int | None = Field(
        None, ge=1, description="early stopping on val loss; null (the study): every epoch"
    )
    class_weight: Literal["balanced"] | None = Field(
        None,
        description="balanced: weight the loss by inverse class frequency; null (the study): "
        "plain cross-entropy",
    )


class ResNetModel(_TorchTraining, _FeatureChoice):
    """ResNet-18 or -50 on crops, with an N-channel first convolution; Grad-CAM in evaluate.

    With ``input: fusion`` the head is late fusion of the image embedding and handcrafted
    features; its embedding (`gives_embeddings`) stays the pooled image embedding.
    """

    gives_probabilities = True
    gives_embeddings = True  # the pooled last stage
    gives_gradcam = True

    name: ModelName
    type: Literal["resnet"] = "resnet"
    input: Literal["crops", "fusion"] = Field(
        "crops",
        description="crops; fusion: the image embedding and the cell's standardised "
        "handcrafted features -> one linear layer (late fusion)",
    )
    crop_kind: str
    normalise: CropNormalise = Field(
        "plate", description="crop intensities to [0, 1] per channel, when read (see README)"
    )
    size_px: int = Field(64, ge=16)
    depth: Literal[18, 50] = 18
    width: int = Field(64, ge=4, description="channels of the first stage (64 in the paper)")
    augment: bool = Field(True, description="flips, 90-degree turns, brightness/contrast")
    class_weight: Literal["balanced"] | None = Field(
        "balanced", description="weight the loss by inverse class frequency; null: unweighted"
    )
    gradcam_cells: int = Field(
        16, ge=0, description="test cells explained by Grad-CAM", json_schema_extra=EVALUATE_ONLY
    )
    gradcam_layer: str | None = Field(
        None,
        description="module whose maps Grad-CAM explains, e.g. layer4 or layer3.1; null: "
        "layer4 at size_px >= 64, else layer3 (a map of at least 2 x 2)",
        json_schema_extra=EVALUATE_ONLY,
    )
    gradcam_target: Literal["true", "predicted"] = Field(
        "true",
        description="the class Grad-CAM explains: the cell's true or predicted class",
        json_schema_extra=EVALUATE_ONLY,
    )
    weights: Path | None = Field(
        None,
        description="a torchvision ResNet state dict to fine-tune from (its fc is dropped; "
        "the first convolution adapted to the channels); needs width: 64. null: from scratch",
    )

    @model_validator(mode="after")
    def _pretrained_width(self):
        if self.weights is not None and self.width != 64:
            raise ValueError(f"weights: needs width: 64 (torchvision's), got width: {self.width}")
        return self


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


class VAEModel(_TorchTraining):
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


class CP2ImageModel(_TorchTraining, _FeatureChoice):
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


ModelConfig = Annotated[
    Annotated[RandomForestModel, Tag("random_forest")]
    | Annotated[SVMModel, Tag("svm")]
    | Annotated[LogisticRegressionModel, Tag("logistic_regression")]
    | Annotated[GradientBoostingModel, Tag("gradient_boosting")]
    | Annotated[MLPModel, Tag("mlp")]
    | Annotated[LogisticRegressionTorchModel, Tag("logistic_regression_torch")]
    | Annotated[ResNetModel, Tag("resnet")]
    | Annotated[VAEModel, Tag("vae")]
    | Annotated[CP2ImageModel, Tag("cp2image")],
    _tag("type"),
]
MODEL_TYPES = tuple(union_members(ModelConfig))  # every `type:` a model entry may have


def _types_that(fact) -> tuple[str, ...]:
    """The model types whose config class satisfies `fact`, in the union's order."""
    return tuple(kind for kind, entry in union_members(ModelConfig).items() if fact(entry))


# The scikit-learn models (fitted in one call, saved with skops), the others being PyTorch's.
CLASSICAL_TYPES = _types_that(lambda entry: entry.family == "classical")
TORCH_TYPES = _types_that(lambda entry: entry.family == "torch")
PROBABILISTIC_TYPES = _types_that(lambda entry: entry.gives_probabilities)
EMBEDDING_TYPES = _types_that(lambda entry: entry.gives_embeddings)  # `embedding_model` sources


def training_settings(model) -> dict:
    """The settings a model's training depends on: its entry without the `EVALUATE_ONLY` keys.

    The train stage's hash is made of these, so that asking for more Grad-CAM cells or latent
    grids re-runs the evaluation and keeps the trained model.
    """
    fields = type(model).model_fields
    return {
        key: value
        for key, value in model.model_dump(mode="json").items()
        if not (fields[key].json_schema_extra or {}).get("evaluate_only")
    }
