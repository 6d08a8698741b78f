"""The scikit-learn model entries: random forest, SVM, logistic regression, boosting."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from cellbench.config.model_base import ModelInputs, ModelName


class ClassicalModelEntry(ModelInputs):
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
        shared = {*ClassicalModelEntry.model_fields, "type", *self.not_classifier_options}
        return {k: getattr(self, k) for k in type(self).model_fields if k not in shared}


class RandomForestModel(ClassicalModelEntry):
    """scikit-learn random forest (after median imputation and scaling)."""

    gives_probabilities = True

    type: Literal["random_forest"] = "random_forest"
    n_estimators: int = Field(200, ge=1)
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(1, ge=1)


class SVMModel(ClassicalModelEntry):
    """Linear support vector machine (scikit-learn LinearSVC)."""

    gives_probabilities = False  # margins (decision_function) only

    type: Literal["svm"] = "svm"
    C: float = Field(1.0, gt=0)


class LogisticRegressionModel(ClassicalModelEntry):
    """Multinomial logistic regression."""

    gives_probabilities = True

    type: Literal["logistic_regression"] = "logistic_regression"
    C: float = Field(1.0, gt=0)


class GradientBoostingModel(ClassicalModelEntry):
    """Histogram gradient boosting (scikit-learn HistGradientBoostingClassifier)."""

    gives_probabilities = True

    type: Literal["gradient_boosting"] = "gradient_boosting"
    max_iter: int = Field(100, ge=1, description="boosting iterations (trees per class)")
    learning_rate: float = Field(0.1, gt=0)
    max_leaf_nodes: int | None = Field(31, ge=2, description="null: no limit")
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(20, ge=1)
    l2_regularization: float = Field(0.0, ge=0)
