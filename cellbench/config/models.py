"""Model sections of the config: one entry per model, trained once per seed.

Every model names its input: ``features`` (the handcrafted feature table), ``crops`` (one
crop kind of the crop store, resized to ``size_px``) or ``fusion`` (features and flattened
crops, each block standardised on the training cells, then concatenated).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Tag, field_validator, model_validator

from cellbench.config.base import StrictModel, _tag, name_type

ModelName = name_type("model")  # models/<name>/, _status/<stage>/<name>.seed<k>.json
FeatureGroup = Literal["AreaShape", "Intensity", "Texture"]
Region = Literal["Nucleus", "Cytoplasm", "Cell"]


class SplitConfig(StrictModel):
    """How cells are divided into train / validation / test, by whole groups."""

    by: Literal["plate", "well", "field", "compound", "cell"] = Field(
        "well", description="cell leaks (a warning says so): use it only to show the leak"
    )
    test_fraction: float = Field(0.3, gt=0, lt=1)
    val_fraction: float = Field(0.0, ge=0, lt=1)
    sample: int | Literal["max", "all"] = Field(
        "all",
        description="class balancing: N per class in train (N/3 test, N/10 validation); "
        "max: the smallest class's training count; all: every cell",
    )

    @field_validator("sample")
    @classmethod
    def _positive_sample(cls, value):
        if isinstance(value, int) and value < 1:
            raise ValueError("sample: a positive count, 'max' or 'all'")
        return value

    @model_validator(mode="after")
    def _fractions_leave_training(self) -> SplitConfig:
        if self.test_fraction + self.val_fraction >= 1:
            raise ValueError("test_fraction + val_fraction must leave cells for training")
        return self


class _Split(StrictModel):
    """A model may split its cells its own way (e.g. by plate and by compound, side by side)."""

    split: SplitConfig | None = Field(None, description="null: the experiment's split")


class _Inputs(_Split):
    """What a model reads: features (optionally a subset), a crop kind, or both."""

    input: Literal["features", "crops", "fusion"] = "features"
    crop_kind: str | None = Field(None, description="crop kind (crops.kinds or precut)")
    size_px: int = Field(32, ge=8, description="crops are resized to size_px x size_px")
    feature_groups: list[FeatureGroup] | None = Field(None, description="null: every group")
    feature_regions: list[Region] | None = Field(None, description="null: every region")

    @model_validator(mode="after")
    def _crop_kind_when_crops(self):
        if self.input in ("crops", "fusion") and self.crop_kind is None:
            raise ValueError(f"crop_kind: required with input: {self.input}")
        if self.input == "embeddings" and getattr(self, "embedding_model", None) is None:
            raise ValueError("embedding_model: required with input: embeddings")
        return self


class _ClassicalModel(_Inputs):
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
    class_weight: Literal["balanced"] | None = "balanced"


class RandomForestModel(_ClassicalModel):
    """scikit-learn random forest (after median imputation and scaling)."""

    type: Literal["random_forest"] = "random_forest"
    n_estimators: int = Field(200, ge=1)
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(1, ge=1)


class SVMModel(_ClassicalModel):
    """Linear support vector machine (scikit-learn LinearSVC)."""

    type: Literal["svm"] = "svm"
    C: float = Field(1.0, gt=0)


class LogisticRegressionModel(_ClassicalModel):
    """Multinomial logistic regression."""

    type: Literal["logistic_regression"] = "logistic_regression"
    C: float = Field(1.0, gt=0)


class _TorchTraining(_Split):
    """Optimisation settings of every PyTorch model (one training loop for all)."""

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    optimizer: Literal["adam", "adamw"] = "adamw"
    scheduler: Literal["plateau", "cosine", "none"] = "plateau"
    patience: int | None = Field(10, ge=1, description="early stopping; null: never")


class MLPModel(_TorchTraining):
    """A multilayer perceptron on the handcrafted features."""

    name: ModelName
    type: Literal["mlp"] = "mlp"
    input: Literal["features"] = "features"
    feature_groups: list[FeatureGroup] | None = None
    feature_regions: list[Region] | None = None
    hidden: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [128, 64])
    dropout: float = Field(0.2, ge=0, lt=1)


class ResNetModel(_TorchTraining):
    """ResNet-18 or -50 on crops, with an N-channel first convolution; Grad-CAM in evaluate."""

    name: ModelName
    type: Literal["resnet"] = "resnet"
    input: Literal["crops"] = "crops"
    crop_kind: str
    size_px: int = Field(64, ge=16)
    depth: Literal[18, 50] = 18
    width: int = Field(64, ge=4, description="channels of the first stage (64 in the paper)")
    augment: bool = Field(True, description="flips, 90-degree turns, brightness/contrast")
    class_weight: Literal["balanced"] | None = Field(
        "balanced", description="weight the loss by inverse class frequency; null: unweighted"
    )
    gradcam_cells: int = Field(16, ge=0, description="test cells explained by Grad-CAM")


class VAEModel(_TorchTraining):
    """Convolutional variational autoencoder; its latent mean is the cell's embedding."""

    name: ModelName
    type: Literal["vae"] = "vae"
    input: Literal["crops"] = "crops"
    crop_kind: str
    size_px: int = Field(64, ge=16)
    depth: int = Field(3, ge=1, le=6, description="stride-2 convolution blocks")
    latent_size: int = Field(32, ge=2)
    beta: float = Field(1.0, ge=0)
    decoder: Literal["gaussian", "bernoulli"] = "gaussian"
    augment: bool = False


class CP2ImageModel(_TorchTraining):
    """A generator from a cell's feature vector to its crop (pixel loss, optional GAN term)."""

    name: ModelName
    type: Literal["cp2image"] = "cp2image"
    input: Literal["fusion"] = "fusion"  # features in, crops as targets
    crop_kind: str
    size_px: int = Field(32, ge=8)
    feature_groups: list[FeatureGroup] | None = None
    feature_regions: list[Region] | None = None
    feature_matching: bool = Field(False, description="add discriminator feature matching")


ModelConfig = Annotated[
    Annotated[RandomForestModel, Tag("random_forest")]
    | Annotated[SVMModel, Tag("svm")]
    | Annotated[LogisticRegressionModel, Tag("logistic_regression")]
    | Annotated[MLPModel, Tag("mlp")]
    | Annotated[ResNetModel, Tag("resnet")]
    | Annotated[VAEModel, Tag("vae")]
    | Annotated[CP2ImageModel, Tag("cp2image")],
    _tag("type"),
]
CLASSICAL_TYPES = ("random_forest", "svm", "logistic_regression")
