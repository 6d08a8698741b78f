"""One training loop for every PyTorch model: checkpoint each epoch, resume, keep the best.

The loop saves a checkpoint after every epoch (model, optimiser, scheduler, random state,
history, the best weights so far). A run that finds a checkpoint made with the same settings
resumes after its last epoch, so a job preempted or requeued by SLURM loses at most one
epoch. The best-on-validation weights are kept as a real copy (not a reference to the live
parameters), and training stops early after `patience` epochs without improvement.
Checkpoints are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cellbench.io.atomic import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitSettings:
    """Optimisation settings shared by every model."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    optimizer: str  # "adam" or "adamw"
    patience: int | None  # epochs without validation improvement before stopping
    seed: int
    settings_hash: str  # a checkpoint made with other settings is not resumed


def fit(
    model: nn.Module,
    train: TensorDataset,
    validation: TensorDataset | None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    settings: FitSettings,
    checkpoint_path: Path,
) -> dict:
    """Train `model` in place; return its history. The best weights are loaded at the end.

    Parameters
    ----------
    model : nn.Module
    train, validation : TensorDataset
        (inputs, targets); without validation, the last epoch's weights are kept.
    loss_fn : callable
        (outputs, targets) -> scalar loss.
    settings : FitSettings
    checkpoint_path : Path
        Written after every epoch, removed when training ends.

    Returns
    -------
    dict
        ``epochs`` (per epoch: train_loss, val_loss, seconds), ``best_epoch``,
        ``resumed_from`` (epochs already done at each start), ``stopped_early``.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    optimizer = _optimizer(model, settings)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    state = {"epoch": 0, "best_loss": float("inf"), "best_epoch": 0, "bad_epochs": 0}
    history: dict = {"epochs": [], "resumed_from": [], "stopped_early": False}
    best_weights = copy.deepcopy(model.state_dict())
    torch.manual_seed(settings.seed)

    saved = _load_checkpoint(checkpoint_path, settings.settings_hash)
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        best_weights = saved["best_model"]
        state = saved["state"]
        history = saved["history"]
        torch.set_rng_state(saved["rng"])
        log.info("resuming %s after epoch %d", checkpoint_path.parent, state["epoch"])
    history["resumed_from"].append(state["epoch"])

    while state["epoch"] < settings.epochs:
        started = time.time()
        epoch = state["epoch"] + 1
        train_loss = _run_epoch(model, train, loss_fn, settings, epoch, device, optimizer)
        val_loss = (
            _run_epoch(model, validation, loss_fn, settings, epoch, device) if validation else None
        )
        criterion = val_loss if val_loss is not None else train_loss
        scheduler.step(criterion)
        if criterion < state["best_loss"] or validation is None:
            state.update(best_loss=criterion, best_epoch=epoch, bad_epochs=0)
            best_weights = copy.deepcopy(model.state_dict())
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        history["epochs"].append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "seconds": time.time() - started,
            }
        )
        stop = settings.patience is not None and state["bad_epochs"] >= settings.patience
        history["stopped_early"] = stop
        _save_checkpoint(
            checkpoint_path,
            settings.settings_hash,
            model,
            optimizer,
            scheduler,
            best_weights,
            state,
            history,
        )
        log.info("epoch %d: train %.4f, val %s", epoch, train_loss, val_loss)
        if stop:
            break

    model.load_state_dict(best_weights)
    history["best_epoch"] = state["best_epoch"]
    return history


def finish(checkpoint_path: Path) -> None:
    """Remove the checkpoint once the trained model is saved: the next run starts afresh."""
    checkpoint_path.unlink(missing_ok=True)


def _optimizer(model: nn.Module, settings: FitSettings) -> torch.optim.Optimizer:
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[settings.optimizer]
    return kind(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)


def _run_epoch(
    model: nn.Module,
    data: TensorDataset,
    loss_fn: Callable,
    settings: FitSettings,
    epoch: int,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None = None,
) -> float:
    """One pass over `data`; trains when an optimiser is given. Returns the mean loss."""
    training = optimizer is not None
    model.train(training)
    # The shuffle order depends on (seed, epoch) only, so a resumed run sees the same batches.
    generator = torch.Generator().manual_seed(settings.seed * 100_003 + epoch)
    loader = DataLoader(data, batch_size=settings.batch_size, shuffle=training, generator=generator)
    total, count = 0.0, 0
    with torch.set_grad_enabled(training):
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            loss = loss_fn(model(inputs), targets)
            if training:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            total += float(loss) * len(targets)
            count += len(targets)
    return total / max(count, 1)


def _save_checkpoint(path, settings_hash, model, optimizer, scheduler, best, state, history):
    """Write the checkpoint atomically: a kill mid-save leaves the previous one intact."""
    payload = {
        "settings_hash": settings_hash,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "best_model": best,
        "state": state,
        "history": history,
        "rng": torch.get_rng_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load_checkpoint(path: Path, settings_hash: str) -> dict | None:
    """The checkpoint at `path` if it was made with the same settings, else None."""
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("settings_hash") != settings_hash:
        log.warning("ignoring %s: made with other settings", path)
        return None
    return saved
