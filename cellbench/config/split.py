"""The split section: how cells are divided into train, validation and test sets.

One `SplitConfig` is the experiment's ``split:``; a model entry may carry its own. Groups
(plates, wells, fields, compounds) go whole to one side; `cellbench.splits` does the
dividing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from cellbench.config.base import StrictModel


class SplitConfig(StrictModel):
    """How cells are divided into train / validation / test, by whole groups."""

    by: Literal["plate", "well", "field", "compound", "cell", "compound_wells", "coculture"] = (
        Field(
            "well",
            description="cell leaks (a warning says so): use it only to show the leak, or with "
            "folds for the perturbation study's cell-level cross-validation; compound_wells: "
            "whole wells, each compound giving one well to each side (the "
            "BBBC021 VAE study's split), fractions of wells; coculture: the nucleocentric "
            "study's split: train and validate on mono-culture wells (class: "
            "data.label_column, from the layout), test on every co-culture cell (class: "
            "test_label_column, from the markers; undefined cells dropped and counted); "
            "test_fraction is not read, val_fraction is a share of the mono-culture wells",
        )
    )
    culture_column: str = Field(
        "culture", description="with by: coculture, the layout column naming a well's culture"
    )
    coculture_value: str = Field(
        "coculture", description="with by: coculture, the culture_column value of mixed wells"
    )
    test_label_column: str = Field(
        "ground_truth",
        description="with by: coculture, the class of co-culture cells: a ground_truth.column",
    )
    test_fraction: float = Field(0.3, gt=0, lt=1)
    val_fraction: float = Field(0.0, ge=0, lt=1)
    folds: int | None = Field(
        None,
        ge=2,
        description="with by: cell, stratified k-fold cross-validation over cells "
        "(StratifiedKFold, shuffled by fold_seed): seed k of `seeds` tests on fold k, the "
        "other folds train (test_fraction is not read). Cells of one well fall on both sides "
        "(leakage, as for by: cell; the perturbation study split by field). null: no folds",
    )
    fold_seed: int = Field(
        42, description="with folds: the random_state of the fold shuffle (the study's 42)"
    )
    sample: int | Literal["max", "all", "oversampling"] = Field(
        "all",
        description="class balancing: N per class in train (N/3 test, N/10 validation); "
        "max: the smallest class's training count; all: every cell; oversampling: "
        "oversample_per_class training draws per class, with replacement (validation and "
        "test cells all kept, each once)",
    )
    oversample_per_class: int = Field(
        5000, ge=1, description="with sample: oversampling, training draws per class"
    )

    @field_validator("sample")
    @classmethod
    def _positive_sample(cls, value):
        if isinstance(value, int) and value < 1:
            raise ValueError("sample: a positive count, 'max' or 'all'")
        return value

    @model_validator(mode="after")
    def _fractions_leave_training(self) -> SplitConfig:
        if self.folds is None and self.test_fraction + self.val_fraction >= 1:
            raise ValueError("test_fraction + val_fraction must leave cells for training")
        if self.folds is not None and self.by != "cell":
            raise ValueError(
                f"folds: cross-validation folds are over cells; set by: cell (got by: {self.by})"
            )
        return self
