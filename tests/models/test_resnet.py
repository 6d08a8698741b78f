import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from cellbench.config import TrainingConfig
from cellbench.models.images import (
    embed_images,
    load_image_model,
    predict_images,
    train_image_classifier,
)
from cellbench.models.resnet import build_resnet
from cellbench.models.training import fit
from tests.models import blob_crops, fit_settings


@pytest.mark.parametrize(("depth", "features"), [(18, 8 * 8), (50, 32 * 8)])
@pytest.mark.parametrize("channels", [2, 5])
def test_logits_and_embedding_shapes(depth, features, channels):
    net = build_resnet(depth, in_channels=channels, n_classes=3, width=8).eval()
    x = torch.randn(2, channels, 32, 32)
    with torch.no_grad():
        assert net(x).shape == (2, 3)
        assert net.embed(x).shape == (2, features)
    assert net.embedding_size == features


def test_default_width_is_that_of_the_paper():
    net = build_resnet(18, in_channels=2, n_classes=4)
    assert net.embedding_size == 512
    assert net.stem[0].in_channels == 2 and net.stem[0].out_channels == 64
    assert [len(s) for s in (net.layer1, net.layer2, net.layer3, net.layer4)] == [2, 2, 2, 2]


def test_unknown_depth_is_refused():
    with pytest.raises(ValueError, match="depth must be one of"):
        build_resnet(34, in_channels=2, n_classes=2)


def test_a_tiny_resnet_learns_left_versus_right_and_is_saved(tmp_path):
    train, train_labels, _ = blob_crops(96, seed=0)
    val, val_labels, _ = blob_crops(16, seed=1)
    test, test_labels, _ = blob_crops(40, seed=2)
    classes = ["left", "right"]
    names = np.asarray(classes)
    training = TrainingConfig(epochs=3, batch_size=16, learning_rate=3e-3, scheduler="none")
    history = train_image_classifier(
        {"train": train, "val": val},
        {"train": names[train_labels], "val": names[val_labels]},
        classes,
        training=training,
        augment=False,  # flips would swap left and right
        seed=0,
        settings_hash="h",
        model_path=tmp_path / "model.pt",
        checkpoint_path=tmp_path / "checkpoint.pt",
        depth=18,
        width=8,
    )
    assert len(history["epochs"]) == 3
    assert not (tmp_path / "checkpoint.pt").exists()

    model, metadata = load_image_model(tmp_path / "model.pt")
    assert metadata["kind"] == "resnet" and metadata["classes"] == classes
    probabilities = predict_images(model, test, batch_size=16)
    assert probabilities.shape == (40, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    accuracy = (probabilities.argmax(axis=1) == test_labels).mean()
    assert accuracy >= 0.8
    assert embed_images(model, test, batch_size=16).shape == (40, 64)


def test_labels_outside_the_classes_are_refused(tmp_path):
    images, _, _ = blob_crops(4, size=16)
    with pytest.raises(ValueError, match="not in classes"):
        train_image_classifier(
            {"train": images},
            {"train": np.array(["a", "b", "c", "a"])},
            ["a", "b"],
            training=TrainingConfig(epochs=1),
            augment=True,
            seed=0,
            settings_hash="h",
            model_path=tmp_path / "m.pt",
            checkpoint_path=tmp_path / "c.pt",
            width=8,
        )


def test_a_last_batch_of_one_crop_does_not_break_batch_norm(tmp_path):
    images, labels, _ = blob_crops(9, size=32)  # batches of 8 and 1
    net = build_resnet(18, in_channels=2, n_classes=2, width=4)
    data = TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))
    history = fit(net, data, None, nn.CrossEntropyLoss(), fit_settings(epochs=1), tmp_path / "c")
    assert len(history["epochs"]) == 1
