"""One training loop for every PyTorch model: checkpoint each epoch, resume, keep the best.

The loop saves a checkpoint after every epoch (model, optimiser, scheduler, random state,
history, the best weights so far). A run that finds a checkpoint made with the same settings
resumes after its last epoch, so a job preempted or requeued by SLURM loses at most one
epoch. The best-on-validation weights are kept as a real copy (not a reference to the live
parameters), and training stops early after `patience` epochs without improvement.
Checkpoints are read with ``torch.load(weights_only=True)``.

The batch order and the augmentation of an epoch depend on (seed, epoch) only, so a resumed
run sees the same batches as an uninterrupted one, with or without loader workers. A dataset
may yield ``(inputs, targets)`` (supervised) or ``inputs`` alone (autoencoding: the target is
the augmented input). An optional `Adversary` (`cellbench.models.adversarial`, the VAE+'s
discriminator) adds its terms to each training batch's loss; its weights, optimiser state and
step counter are checkpointed beside the model's. Crops read from the crop stores stream
through worker processes, a batch at a time (`cellbench.models.loaders`); the forward pass
runs in the entry's ``precision`` on CUDA (`cellbench.models.precision`).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from cellbench.config import TrainingConfig
from cellbench.errors import CellbenchError, ConfigError
from cellbench.io.atomic import write_json

# The checkpoint functions live in `cellbench.models.checkpoint`; they stay importable from here.
from cellbench.models.checkpoint import load_checkpoint, save_checkpoint, set_rng_state

# `epoch_generator` lives in `cellbench.models.loaders`; it stays importable from here.
from cellbench.models.loaders import EpochBatches, epoch_generator, evaluation_batches, to_device
from cellbench.models.optimisers import make_optimizer, make_scheduler
from cellbench.models.precision import autocast, grad_scaler

if TYPE_CHECKING:
    from cellbench.models.adversarial import Adversary

log = logging.getLogger(__name__)

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class FitSettings:
    """One training run: the config's optimisation settings, whole, and what the run adds.

    Attributes
    ----------
    training : TrainingConfig
        Epochs, batch size, optimiser, learning rate, weight decay, scheduler and patience;
        any PyTorch model entry of the config is one (`cellbench.config.TrainingConfig`).
    seed : int
        Seeds the weights, the batch order and the augmentation.
    settings_hash : str
        A checkpoint made with another hash is not resumed.
    augment : callable, optional
        Called as ``augment(inputs, generator)`` on every training batch (never on
        validation batches), with a CPU generator seeded from (seed, epoch).
    groups : (N,) array, optional
        The treatment of each training item (`treatment_groups`); with ``training.batches:
        one_per_treatment`` the training batches hold at most one item per treatment.
    """

    training: TrainingConfig
    seed: int
    settings_hash: str
    augment: Augment | None = None
    groups: np.ndarray | None = None

    def batch_groups(self) -> np.ndarray | None:
        """The groups the training batches are drawn by, or None for random batches."""
        if self.training.batches == "random":
            return None
        if self.groups is None:
            raise ConfigError(
                "batches: one_per_treatment needs each training cell's treatment, and this "
                "model's trainer was given none; use batches: random for it"
            )
        return self.groups


def treatment_groups(
    training: TrainingConfig, cells: pd.DataFrame, rows: np.ndarray | None = None
) -> np.ndarray | None:
    """The treatment of each cell (`rows` of `cells`), for ``batches: one_per_treatment``.

    The values of ``training.treatment_columns`` joined by ``+``; None with ``batches:
    random``.

    Raises
    ------
    ConfigError
        When a treatment column is not among the cells' columns.
    """
    if training.batches == "random":
        return None
    missing = [c for c in training.treatment_columns if c not in cells.columns]
    if missing:
        raise ConfigError(
            f"treatment_columns: {missing} are not columns of the cells; they have "
            f"{sorted(c for c in cells.columns if c.startswith('Metadata_'))}"
        )
    picked = cells if rows is None else cells[rows]
    parts = [picked[c].astype(str).to_numpy() for c in training.treatment_columns]
    return np.array(["+".join(values) for values in zip(*parts, strict=True)], dtype=object)


def fit(
    model: nn.Module,
    train: Dataset,
    validation: Dataset | None,
    loss_fn: Callable[[object, torch.Tensor], torch.Tensor],
    settings: FitSettings,
    checkpoint_path: Path,
    on_epoch_start: Callable[[int, nn.Module], None] | None = None,
    adversary: Adversary | None = None,
) -> dict:
    """Train `model` in place; return its history. The best weights are loaded at the end.

    Parameters
    ----------
    model : nn.Module
    train, validation : Dataset
        Items ``(inputs, targets)`` or ``inputs`` alone (the target is then the input);
        without validation, the last epoch's weights are kept.
    loss_fn : callable
        (model outputs, targets) -> scalar loss.
    settings : FitSettings
    checkpoint_path : Path
        Written after every epoch; removed by `finish` once the model is saved.
    on_epoch_start : callable, optional
        Called as ``on_epoch_start(epoch, model)`` before each epoch (epochs count from 1),
        after any resume; for logging and tests.
    adversary : Adversary, optional
        Its ``generator_loss(outputs, targets)`` is added to the loss of every training
        batch (it steps its discriminator there); validation losses leave it out.

    Returns
    -------
    dict
        ``epochs`` (per epoch: train_loss, val_loss, seconds, and with an adversary its
        `Adversary.epoch_metrics`; train_loss includes its terms), ``best_epoch``,
        ``resumed_from`` (epochs already done at each start), ``stopped_early``.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    validation = validation or None  # an empty validation set counts as none
    run = _start_run(model, settings, checkpoint_path, device, adversary)
    batches = _epoch_batches(train, validation, settings, device)
    try:
        while run.state["epoch"] < settings.training.epochs and not run.history["stopped_early"]:
            started = time.time()
            epoch = run.state["epoch"] + 1
            if on_epoch_start is not None:
                on_epoch_start(epoch, model)
            train_loss = _run_epoch(run, batches[0].epoch(epoch), loss_fn, settings, epoch, device)
            val_loss = (
                _run_epoch(run, batches[1].epoch(epoch), loss_fn, settings, epoch, device, False)
                if batches[1] is not None
                else None
            )
            _end_epoch(run, epoch, train_loss, val_loss, settings.training.patience, started)
            if adversary is not None:
                run.history["epochs"][-1].update(adversary.epoch_metrics())
            save_checkpoint(checkpoint_path, settings.settings_hash, run.payload())
            log.info("epoch %d: train %.4f, val %s", epoch, train_loss, val_loss)
    finally:
        for loader in batches:
            if loader is not None:
                loader.close()
    model.load_state_dict(run.best_weights)
    run.history["best_epoch"] = run.state["best_epoch"]
    return run.history


def _epoch_batches(
    train: Dataset, validation: Dataset | None, settings: FitSettings, device: torch.device
) -> tuple[EpochBatches, EpochBatches | None]:
    """The training and validation batches of a run (their workers live as long as the run).

    A last training batch of one image would break batch norm: it is dropped (a different
    image each epoch, as the order is shuffled).
    """
    training = settings.training
    lone = len(train) > 1 and len(train) % training.batch_size == 1
    options = {"seed": settings.seed, "device": device, "workers": training.loader_workers}
    train_batches = EpochBatches(
        train,
        training.batch_size,
        shuffle=True,
        drop_last=lone,
        groups=settings.batch_groups(),
        **options,
    )
    if validation is None:
        return train_batches, None
    return train_batches, EpochBatches(
        validation, training.batch_size, shuffle=False, drop_last=False, **options
    )


@dataclass
class _Run:
    """What one `fit` carries from epoch to epoch, and what its checkpoint holds.

    ``state`` counts epochs done and tracks the best loss (``epoch``, ``best_loss``,
    ``best_epoch``, ``bad_epochs``); ``history`` is what `fit` returns.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    scaler: torch.amp.GradScaler
    state: dict
    history: dict
    best_weights: dict
    adversary: Adversary | None = None

    def payload(self) -> dict:
        """The checkpoint contents (`save_checkpoint` adds the settings hash and RNG state)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),  # {} unless fp16 on CUDA
            "best_model": self.best_weights,
            "state": self.state,
            "history": self.history,
            "adversary": self.adversary.state_dict() if self.adversary is not None else None,
        }


def _start_run(
    model: nn.Module,
    settings: FitSettings,
    checkpoint_path: Path,
    device: torch.device,
    adversary: Adversary | None = None,
) -> _Run:
    """Move `model` (and `adversary`) to `device`, build the optimiser and schedule, resume."""
    model.to(device)
    if adversary is not None:
        adversary.to(device)
    optimizer = make_optimizer(model, settings.training)
    run = _Run(
        model=model,
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, settings.training),
        scaler=grad_scaler(device, settings.training.precision),
        state={"epoch": 0, "best_loss": float("inf"), "best_epoch": 0, "bad_epochs": 0},
        history={"epochs": [], "resumed_from": [], "stopped_early": False},
        best_weights=_copy_state(model),
        adversary=adversary,
    )
    torch.manual_seed(settings.seed)
    saved = load_checkpoint(checkpoint_path, settings.settings_hash)
    if saved is not None:
        if adversary is not None and saved.get("adversary") is None:
            raise CellbenchError(
                f"{checkpoint_path}: the checkpoint has no discriminator state to resume the "
                "adversarial training from; delete it to start afresh"
            )
        _resume(run, saved)
        log.info("resuming %s after epoch %d", checkpoint_path.parent, run.state["epoch"])
    run.history["resumed_from"].append(run.state["epoch"])
    return run


def _resume(run: _Run, saved: dict) -> None:
    """Load a checkpoint's weights, optimiser, schedule, progress and random state into `run`."""
    run.model.load_state_dict(saved["model"])
    run.optimizer.load_state_dict(saved["optimizer"])
    if run.scheduler is not None and saved["scheduler"] is not None:
        run.scheduler.load_state_dict(saved["scheduler"])
    if saved.get("scaler"):
        run.scaler.load_state_dict(saved["scaler"])
    run.best_weights = saved["best_model"]
    run.state = saved["state"]
    run.history = saved["history"]
    if run.adversary is not None:
        run.adversary.load_state_dict(saved["adversary"])
    set_rng_state(saved["rng"])


def _end_epoch(
    run: _Run,
    epoch: int,
    train_loss: float,
    val_loss: float | None,
    patience: int | None,
    started: float,
) -> None:
    """Step the schedule, keep the best weights, record the epoch and decide on stopping early.

    The criterion is the validation loss, or without validation the training loss (and every
    epoch then counts as the best).
    """
    criterion = val_loss if val_loss is not None else train_loss
    if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        run.scheduler.step(criterion)
    elif run.scheduler is not None:
        run.scheduler.step()
    if criterion < run.state["best_loss"] or val_loss is None:
        run.state.update(best_loss=criterion, best_epoch=epoch, bad_epochs=0)
        run.best_weights = _copy_state(run.model)
    else:
        run.state["bad_epochs"] += 1
    run.state["epoch"] = epoch
    run.history["epochs"].append(
        {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "seconds": time.time() - started,
        }
    )
    run.history["stopped_early"] = patience is not None and run.state["bad_epochs"] >= patience


def finish(checkpoint_path: Path) -> None:
    """Remove the checkpoint once the trained model is saved: the next run starts afresh."""
    checkpoint_path.unlink(missing_ok=True)


def run_arguments(params: TrainingConfig, seed: int, settings_hash: str, paths) -> dict:
    """The keywords every PyTorch trainer takes: settings, seed, hash, model and checkpoint.

    `params` is the model's config entry (a `TrainingConfig`, passed whole); `paths` a
    `cellbench.paths.ResultsPaths`, which names the model file and checkpoint of its seed.
    """
    return {
        "training": params,
        "seed": seed,
        "settings_hash": settings_hash,
        "model_path": paths.torch_model_file(params.name, seed),
        "checkpoint_path": paths.checkpoint(params.name, seed),
    }


def by_split(values: np.ndarray, sides: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{split: values[mask]}`` for each split's (N,) bool mask in `sides`."""
    return {split: values[mask] for split, mask in sides.items()}


def save_history(history: dict, path: Path) -> dict:
    """Write a run's training history (JSON) and return what the task's status keeps of it."""
    write_json(path, history)
    return {"epochs": len(history["epochs"]), "resumed_from": history["resumed_from"]}


def class_weights(labels, n_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights, as scikit-learn's ``class_weight="balanced"``.

    Parameters
    ----------
    labels : (N,) array-like of int
        Class indices in ``[0, n_classes)``.
    n_classes : int

    Returns
    -------
    (n_classes,) float32 Tensor
        ``N / (n_classes * count)``; a class absent from `labels` counts as 1.

    Examples
    --------
    >>> [round(w, 4) for w in class_weights([0, 0, 0, 1], 2).tolist()]
    [0.6667, 2.0]
    """
    labels = np.asarray(labels, dtype=np.int64).ravel()
    counts = np.bincount(labels, minlength=n_classes)
    if len(counts) > n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got a label {labels.max()}")
    weights = len(labels) / (n_classes * np.maximum(counts, 1))
    return torch.as_tensor(weights, dtype=torch.float32)


def predict_batches(
    model: nn.Module,
    data: torch.Tensor | Dataset,
    batch_size: int,
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    workers: int | None = None,
) -> torch.Tensor:
    """Apply ``fn`` (default: the model) to `data` in batches, in eval mode, without grad.

    Parameters
    ----------
    model : nn.Module
        Put in eval mode; its device is used for the inputs.
    data : (N, ...) Tensor or Dataset
        A dataset's items are ``inputs`` or ``(inputs, ...)``; crops read from the stores
        stream through worker processes (`cellbench.models.loaders.evaluation_batches`).
    batch_size : int
    fn : callable, optional
        For example ``model.embed``; called ``fn(images, features)`` on the batches of a
        `cellbench.models.loaders.WithFeatures` dataset.
    workers : int, optional
        Worker processes of a store-backed dataset (a model entry's ``loader_workers``);
        default: the task's CPUs minus one.

    Returns
    -------
    (N, ...) Tensor on the CPU, in float32 (evaluation never autocasts)
    """
    fn = fn or model
    dataset = TensorDataset(data) if isinstance(data, torch.Tensor) else data
    device = next(model.parameters()).device
    model.eval()
    outputs = []
    with torch.no_grad():
        for batch in evaluation_batches(dataset, batch_size, device, workers):
            inputs, _ = _unpack(batch)
            outputs.append(_forward(fn, to_device(inputs, device)).cpu())
    return torch.cat(outputs) if outputs else torch.empty(0)


def _copy_state(model: nn.Module) -> dict:
    """A copy of the weights that later training steps cannot change."""
    return copy.deepcopy(model.state_dict())


def _unpack(batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(inputs, targets) of a batch; targets None for a dataset of inputs alone."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if len(batch) == 1:
        return batch[0], None
    return batch[0], batch[1]


def _forward(fn: Callable, inputs: torch.Tensor | list) -> torch.Tensor:
    """``fn(images)``, or ``fn(images, features)`` for the inputs of `loaders.WithFeatures`."""
    return fn(*inputs) if isinstance(inputs, list) else fn(inputs)


def _augment_images(augment: Callable, inputs, generator: torch.Generator):
    """The batch with its images augmented; features beside them are left as they are."""
    if isinstance(inputs, list):
        return [augment(inputs[0], generator), *inputs[1:]]
    return augment(inputs, generator)


def _batch_len(inputs: torch.Tensor | list) -> int:
    """Items in a batch of images, or of ``[images, features]``."""
    return len(inputs[0]) if isinstance(inputs, list) else len(inputs)


def _run_epoch(
    run: _Run,
    batches: Iterable,
    loss_fn: Callable,
    settings: FitSettings,
    epoch: int,
    device: torch.device,
    training: bool = True,
) -> float:
    """One pass over `batches`: training steps, or (``training=False``) the loss alone.

    Returns the mean loss per item. The forward pass and the loss run under the entry's
    precision (`autocast`); the fp16 scaler is a pass-through unless enabled.
    """
    model, optimizer, scaler = run.model, run.optimizer, run.scaler
    model.train(training)
    augment_rng = epoch_generator(settings.seed, epoch, stream=1)
    total, count = 0.0, 0
    with torch.set_grad_enabled(training):
        for batch in batches:
            inputs, targets = _unpack(batch)
            inputs = to_device(inputs, device)
            if training and settings.augment is not None:
                inputs = _augment_images(settings.augment, inputs, augment_rng)
            targets = inputs if targets is None else to_device(targets, device)
            with autocast(device, settings.training.precision):
                outputs = _forward(model, inputs)
                loss = loss_fn(outputs, targets)
            if training and run.adversary is not None:  # in float32, outside autocast
                loss = loss + run.adversary.generator_loss(outputs, targets)
            if training:
                optimizer.zero_grad()
                scaler.scale(loss).backward()
                if settings.training.gradient_clip is not None:
                    scaler.unscale_(optimizer)  # clip the true gradients, not scaled ones
                    nn.utils.clip_grad_norm_(model.parameters(), settings.training.gradient_clip)
                scaler.step(optimizer)
                scaler.update()
            total += loss.detach().float().item() * _batch_len(inputs)
            count += _batch_len(inputs)
    return total / max(count, 1)
