"""The optimiser and learning-rate schedule of a PyTorch model's training, from its config."""

from __future__ import annotations

import torch
from torch import nn

from cellbench.config import TrainingConfig


def make_optimizer(model: nn.Module, training: TrainingConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over the model's parameters, as `training` says."""
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if training.optimizer not in kinds:
        raise ValueError(
            f"TrainingConfig.optimizer must be one of {sorted(kinds)}, got {training.optimizer!r}"
        )
    kind = kinds[training.optimizer]
    return kind(model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, training: TrainingConfig):
    """The learning-rate schedule `training.scheduler` names (see `TrainingConfig`)."""
    if training.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    if training.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.epochs)
    return None
