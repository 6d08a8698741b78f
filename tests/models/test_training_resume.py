import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from cellbench.models.augment import make_augment
from cellbench.models.training import (
    FitSettings,
    class_weights,
    finish,
    fit,
    predict_batches,
)
from tests.models import blob_crops, fit_settings


class TinyNet(nn.Module):
    """Convolution, batch norm and dropout: weights, buffers and random state all matter."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3)
        )
        self.head = nn.Linear(4 * 4, 2)

    def forward(self, x):
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 2), 1))


def build() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


def data(n=24, seed=0) -> TensorDataset:
    images, labels, _ = blob_crops(n, size=16, seed=seed)
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))


LOSS = nn.CrossEntropyLoss()


def settings(**overrides) -> FitSettings:
    return fit_settings(augment=make_augment(), **overrides)


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def test_a_killed_run_resumes_after_its_last_epoch_with_its_weights(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    train, val = data(), data(12, seed=1)
    fit(build(), train, val, LOSS, settings(epochs=2), checkpoint)  # "killed": no finish
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["state"]["epoch"] == 2

    seen = []
    model = build()
    history = fit(
        model,
        train,
        val,
        LOSS,
        settings(epochs=4),
        checkpoint,
        on_epoch_start=lambda epoch, m: seen.append((epoch, copy.deepcopy(m.state_dict()))),
    )
    assert history["resumed_from"] == [0, 2]
    assert [epoch for epoch, _ in seen] == [3, 4]
    assert same_state(seen[0][1], saved["model"])
    assert [row["epoch"] for row in history["epochs"]] == [1, 2, 3, 4]

    straight = build()
    straight_history = fit(straight, train, val, LOSS, settings(epochs=4), tmp_path / "s.pt")
    assert same_state(model.state_dict(), straight.state_dict())
    last = torch.load(checkpoint, weights_only=True)["model"]
    assert same_state(last, torch.load(tmp_path / "s.pt", weights_only=True)["model"])
    losses = [row["train_loss"] for row in history["epochs"]]
    assert losses == [row["train_loss"] for row in straight_history["epochs"]]


def test_finish_removes_the_checkpoint_so_the_next_run_starts_afresh(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    fit(build(), data(), None, LOSS, fit_settings(epochs=1), checkpoint)
    finish(checkpoint)
    assert not checkpoint.exists()
    history = fit(build(), data(), None, LOSS, fit_settings(epochs=1), checkpoint)
    assert history["resumed_from"] == [0]


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    fit(build(), data(), None, LOSS, fit_settings(epochs=1), checkpoint)
    history = fit(
        build(), data(), None, LOSS, fit_settings(epochs=1, settings_hash="x"), checkpoint
    )
    assert history["resumed_from"] == [0]


def test_best_weights_are_a_copy_not_the_live_parameters(tmp_path):
    snapshot = {}

    def spoil_after_epoch_1(epoch, model):
        if epoch == 2:  # epoch 1 is the best so far; wreck the live weights in place
            snapshot.update(copy.deepcopy(model.state_dict()))
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.add_(100.0)

    model = build()
    history = fit(
        model,
        data(),
        data(12, seed=1),
        LOSS,
        fit_settings(epochs=2, learning_rate=1e-4),
        tmp_path / "checkpoint.pt",
        on_epoch_start=spoil_after_epoch_1,
    )
    assert history["best_epoch"] == 1
    assert same_state(model.state_dict(), snapshot)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert same_state(saved["best_model"], snapshot)
    assert not same_state(saved["model"], snapshot)


def test_early_stopping_stays_stopped_on_resume(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    spoil = lambda epoch, m: [p.data.add_(50.0) for p in m.parameters()] if epoch > 1 else None  # noqa: E731
    settings_ = fit_settings(epochs=5, patience=1, learning_rate=1e-4)
    history = fit(build(), data(), data(12, 1), LOSS, settings_, checkpoint, on_epoch_start=spoil)
    assert history["stopped_early"] and len(history["epochs"]) == 2
    again = fit(build(), data(), data(12, 1), LOSS, settings_, checkpoint)
    assert len(again["epochs"]) == 2 and again["resumed_from"] == [0, 2]


def test_cosine_schedule_anneals_the_learning_rate_to_zero(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    fit(build(), data(), None, LOSS, fit_settings(epochs=2, scheduler="cosine"), checkpoint)
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)
    fit(build(), data(), None, LOSS, fit_settings(epochs=1, scheduler="none"), tmp_path / "n.pt")
    saved = torch.load(tmp_path / "n.pt", weights_only=True)
    assert saved["scheduler"] is None and saved["optimizer"]["param_groups"][0]["lr"] == 1e-2


def test_unknown_scheduler_or_optimizer_is_refused(tmp_path):
    with pytest.raises(ValueError, match="scheduler"):
        fit_settings(scheduler="step")
    with pytest.raises(ValueError, match="optimizer"):
        fit(build(), data(), None, LOSS, fit_settings(optimizer="sgd"), tmp_path / "c.pt")


class ArrayDataset(Dataset):
    """A plain map-style dataset of numpy arrays, not a TensorDataset."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def test_any_dataset_trains_and_predicts(tmp_path):
    images, labels, _ = blob_crops(16, size=16)
    history = fit(
        build(),
        ArrayDataset(images, labels),
        None,
        LOSS,
        fit_settings(epochs=1),
        tmp_path / "c.pt",
    )
    assert len(history["epochs"]) == 1 and np.isfinite(history["epochs"][0]["train_loss"])
    model = build()
    from_dataset = predict_batches(model, ArrayDataset(images, labels), batch_size=5)
    from_tensor = predict_batches(model, torch.from_numpy(images), batch_size=16)
    assert from_dataset.shape == (16, 2)
    torch.testing.assert_close(from_dataset, from_tensor)


def test_class_weights_match_balanced_weighting():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array([0, 0, 0, 1, 2, 2])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    np.testing.assert_allclose(class_weights(labels, 3).numpy(), expected, rtol=1e-6)
    assert class_weights([0, 0], 2).tolist() == [0.5, 1.0]  # an absent class counts once
    with pytest.raises(ValueError, match="labels"):
        class_weights([0, 3], 2)
