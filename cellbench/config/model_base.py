"""What every model entry has: its split, its input, the class-level facts of its type.

`ModelEntry` is the root of every model entry (its own split, what it reads, the facts its
type declares); `ModelInputs` adds the handcrafted-feature choice and the crop kind;
`TrainingConfig` holds the optimisation settings of every PyTorch model (`TorchModelEntry`).
`EVALUATE_ONLY` marks the settings only the evaluate stage reads; `training_settings` leaves
them out of the train stage's hash.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from cellbench.config.base import StrictModel, name_type
from cellbench.config.feature_groups import FeatureGroup, Region
from cellbench.config.split import SplitConfig

ModelName = name_type("model")  # models/<name>/, _status/<stage>/<name>.seed<k>.json

# Marks a model setting that only the evaluate stage reads (Grad-CAM, the latent analyses):
# changing it re-runs the evaluation, not the training (`training_settings`).
EVALUATE_ONLY = {"evaluate_only": True}


# how a crop model reads crops (cellbench.crops.normalise): by the plate's statistics, or each
# crop on its own by its channel maximum, minimum and maximum, or percentiles
CropNormalise = Literal["plate", "max", "minmax", "percentile"]


class ModelEntry(StrictModel):
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


class FeatureChoice(StrictModel):
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


class ModelInputs(ModelEntry, FeatureChoice):
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


class TorchModelEntry(ModelEntry, TrainingConfig):
    """A PyTorch model entry: its split and input, and the shared optimisation settings."""

    family = "torch"


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
