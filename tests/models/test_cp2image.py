import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from cellbench.models.augment import make_augment
from cellbench.models.cp2image import (
    AdversarialSettings,
    CP2ImageGenerator,
    Discriminator,
    feature_matching_loss,
    train_cp2image,
)
from tests.models import blob_crops, fit_settings


def pairs(n=24, size=16, seed=0) -> TensorDataset:
    """Crops and a feature vector that describes them: blob side and brightness stats."""
    images, labels, _ = blob_crops(n, size=size, seed=seed)
    features = np.stack(
        [labels * 2.0 - 1, images.mean(axis=(1, 2, 3)), images.std(axis=(1, 2, 3))], axis=1
    )
    features = (features - features.mean(0)) / features.std(0)
    return TensorDataset(torch.from_numpy(features.astype(np.float32)), torch.from_numpy(images))


@pytest.mark.parametrize("size", [4, 16, 32])
def test_generator_output_shape(size):
    generator = CP2ImageGenerator(n_features=7, out_channels=3, image_size=size, width=4)
    assert generator(torch.randn(5, 7)).shape == (5, 3, size, size)
    logits, features = Discriminator(3, size, width=4)(torch.randn(5, 3, size, size))
    assert logits.shape == (5,) and all(len(f) == 5 for f in features)


@pytest.mark.parametrize("size", [0, 12, 24, 30])
def test_image_size_must_be_four_times_a_power_of_two(size):
    with pytest.raises(ValueError, match="4 times a power of two"):
        CP2ImageGenerator(3, 1, size)


def test_pixel_loss_decreases_with_fit(tmp_path):
    torch.manual_seed(0)
    generator = CP2ImageGenerator(3, 2, 16, width=8)
    history = train_cp2image(
        generator,
        pairs(),
        pairs(8, seed=1),
        fit_settings(epochs=5, learning_rate=3e-3),
        tmp_path / "checkpoint.pt",
    )
    losses = [row["train_loss"] for row in history["epochs"]]
    assert losses[-1] < losses[0]


def test_feature_matching_variant_trains_checkpoints_and_resumes(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"

    def run(epochs):
        torch.manual_seed(0)
        return train_cp2image(
            CP2ImageGenerator(3, 2, 16, width=8),
            pairs(),
            pairs(8, seed=1),
            fit_settings(epochs=epochs),
            checkpoint,
            discriminator=Discriminator(2, 16, width=4),
            adversarial=AdversarialSettings(feature_matching_weight=0.5),
        )

    history = run(1)
    row = history["epochs"][0]
    assert {"train_loss", "feature_matching", "discriminator", "val_loss"} <= set(row)
    assert all(np.isfinite(row[k]) for k in ("train_loss", "feature_matching", "discriminator"))
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["state"]["epoch"] == 1 and "discriminator" in saved
    assert run(2)["resumed_from"] == [0, 1]


def test_feature_matching_loss():
    real = [torch.ones(4, 2, 3, 3), torch.zeros(4, 5)]
    assert feature_matching_loss(real, real) == 0
    fake = [torch.zeros(4, 2, 3, 3), torch.zeros(4, 5)]
    assert feature_matching_loss(real, fake, "l2") == pytest.approx(1.0)
    assert feature_matching_loss(real, [f * 3 for f in real], "l1") == pytest.approx(2.0)
    with pytest.raises(ValueError, match="distance"):
        feature_matching_loss(real, fake, "cosine")


def test_augmentation_is_refused(tmp_path):
    with pytest.raises(ValueError, match="augment"):
        train_cp2image(
            CP2ImageGenerator(3, 2, 16),
            pairs(),
            None,
            fit_settings(augment=make_augment()),
            tmp_path / "c.pt",
        )
