"""Model sections of the config: one entry per model, trained once per seed.

This module holds the discriminative PyTorch entries (MLP, torch logistic regression, ResNet)
and the `ModelConfig` union of every type; the scikit-learn entries are in
`cellbench.config.classical_models`, the generative ones in
`cellbench.config.generative_models`, what they share in `cellbench.config.model_base`.

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

from cellbench.config.base import _tag, union_members
from cellbench.config.classical_models import (
    GradientBoostingModel,
    LogisticRegressionModel,
    RandomForestModel,
    SVMModel,
)
from cellbench.config.generative_models import CP2ImageModel, VAEModel
from cellbench.config.model_base import (
    EVALUATE_ONLY,
    CropNormalise,
    FeatureChoice,
    ModelName,
    TorchModelEntry,
)


class MLPModel(TorchModelEntry, FeatureChoice):
    """A multilayer perceptron on the handcrafted features."""

    name: ModelName
    type: Literal["mlp"] = "mlp"
    input: Literal["features"] = "features"
    class_weight: ClassVar[Literal["balanced"] | None] = "balanced"  # always weighted

    hidden: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [128, 64])
    dropout: float = Field(0.2, ge=0, lt=1)


class LogisticRegressionTorchModel(TorchModelEntry, FeatureChoice):
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


class ResNetModel(TorchModelEntry, FeatureChoice):
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
