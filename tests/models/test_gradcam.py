import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from cellbench.models.gradcam import gradcam, gradcam_stats, plot_gradcam_panel, save_gradcam
from cellbench.models.resnet import build_resnet
from cellbench.models.training import fit
from tests.models import blob_crops, fit_settings


def test_maps_have_the_input_size_and_unit_range():
    torch.manual_seed(0)
    net = build_resnet(18, in_channels=3, n_classes=4, width=8)
    net.train()
    images = np.random.default_rng(0).normal(size=(5, 3, 32, 24)).astype(np.float32)
    maps = gradcam(net, net.layer2, images, batch_size=2)
    assert maps.shape == (5, 32, 24) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    assert net.training  # the model's mode is restored
    assert all(p.grad is None for p in net.parameters())  # the weights get no gradients
    assert gradcam(net, net.layer2, images[:2], class_index=[0, 3]).shape == (2, 32, 24)


def test_a_layer_outside_the_model_is_refused():
    net = build_resnet(18, 2, 2, width=8)
    with pytest.raises(ValueError, match="not used"):
        gradcam(net, nn.Conv2d(2, 2, 3), np.zeros((1, 2, 32, 32), np.float32))


def test_maps_point_at_the_blob_of_a_trained_classifier(tmp_path):
    # Classes: blob left, blob right, no blob; so "left" means "a blob here", not "none there".
    train, train_labels, _ = blob_crops(96, seed=0, n_classes=3)
    test, test_labels, masks = blob_crops(36, seed=3, n_classes=3)
    torch.manual_seed(0)
    net = build_resnet(18, in_channels=2, n_classes=3, width=8)
    data = TensorDataset(torch.from_numpy(train), torch.from_numpy(train_labels))
    settings = fit_settings(epochs=3, batch_size=16, learning_rate=3e-3)
    fit(net, data, None, nn.CrossEntropyLoss(), settings, tmp_path / "checkpoint.pt")

    blob = test_labels < 2
    maps = gradcam(net, net.layer1, test[blob], class_index=test_labels[blob])
    left, right = maps[:, :, :16].sum(axis=(1, 2)), maps[:, :, 16:].sum(axis=(1, 2))
    blob_side = np.where(test_labels[blob] == 1, right, left)
    other_side = np.where(test_labels[blob] == 1, left, right)
    assert (blob_side > other_side).mean() >= 0.75
    assert blob_side.sum() > 1.3 * other_side.sum()
    inside = gradcam_stats(maps, masks[blob])["mean_activation"]
    assert inside.mean() > maps.mean()


def test_stats_on_a_hand_made_map():
    maps = np.zeros((2, 4, 4))
    maps[0, :2, :] = 1.0  # top half hot
    maps[1] = 0.5  # exactly 0.5 is not above 0.5
    stats = gradcam_stats(maps)
    np.testing.assert_allclose(stats["coverage"], [0.5, 0.0])
    np.testing.assert_allclose(stats["mean_activation"], [0.5, 0.5])

    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, 1:3, 1:3] = True  # 2 of its 4 pixels are hot
    stats = gradcam_stats(maps, masks)
    np.testing.assert_allclose(stats["coverage"][0], 0.5)
    np.testing.assert_allclose(stats["mean_activation"][0], 0.5)
    assert np.isnan(stats["coverage"][1])  # empty mask
    with pytest.raises(ValueError, match="shape"):
        gradcam_stats(maps, masks[:, :3])


def test_save_and_plot(tmp_path):
    images, _, _ = blob_crops(3, size=16)
    maps = np.random.default_rng(0).uniform(size=(3, 16, 16)).astype(np.float32)
    save_gradcam(maps, tmp_path / "maps.npz", labels=np.array([0, 1, 0]))
    with np.load(tmp_path / "maps.npz") as saved:
        np.testing.assert_array_equal(saved["maps"], maps)
        np.testing.assert_array_equal(saved["labels"], [0, 1, 0])
    plot_gradcam_panel(images, maps, tmp_path / "panel.png", titles=["a", "b", "c"])
    assert (tmp_path / "panel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps.npz", "panel.png"]
