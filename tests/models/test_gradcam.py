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


# --- the ResNet entry's options: gradcam_layer, gradcam_target, per-cell statistics -----------


def test_resolve_layer_picks_the_named_module_and_its_grid():
    from cellbench.models.gradcam import resolve_layer

    net = build_resnet(18, in_channels=2, n_classes=3, width=4)
    assert resolve_layer(net, "layer3") is net.layer3
    assert resolve_layer(net, "layer3.1") is net.layer3[1]
    images = np.random.default_rng(0).normal(size=(2, 2, 64, 64)).astype(np.float32)
    # 64 px: the stem halves twice (16), layers 2-4 halve once each (8, 4, 2)
    for name, side in [("layer2", 8), ("layer3", 4), ("layer3.1", 4), ("layer4", 2)]:
        raw = gradcam(net, resolve_layer(net, name), images, 0, upsample=False)
        assert raw.shape == (2, side, side), name
    assert gradcam(net, net.layer3, images, 0).shape == (2, 64, 64)  # upsampled by default


@pytest.mark.parametrize("name", ["layer5", "fc", "pool", "layer3.7", ""])
def test_an_unknown_layer_is_refused_naming_gradcam_layer(name):
    from cellbench.errors import ConfigError
    from cellbench.models.gradcam import resolve_layer

    net = build_resnet(18, in_channels=2, n_classes=3, width=4)
    with pytest.raises(ConfigError, match="gradcam_layer: .* valid: stem, .*layer4.1") as error:
        resolve_layer(net, name)
    assert "fc" not in str(error.value).split("valid:")[1].split("(")[0]


def test_stats_of_a_known_map_equal_a_hand_computation():
    values = np.array([[0.0, 0.2, 0.9], [0.5, 0.51, 1.0], [0.3, 0.7, 0.1]])
    stats = gradcam_stats(values[None])
    above = [v for v in values.ravel() if v > 0.5]  # 0.9, 0.51, 1.0, 0.7
    assert stats["coverage"][0] == pytest.approx(len(above) / 9)
    assert stats["mean_activation"][0] == pytest.approx(sum(values.ravel()) / 9)


def _explained(tmp_path, **options):
    """Train a tiny ResNet entry on the registry's cells and explain its test cells."""
    from pydantic import TypeAdapter

    from cellbench.config import ModelConfig
    from cellbench.models import resnet
    from cellbench.paths import ResultsPaths
    from tests.models.test_registry import CLASSES, sides_of, tiny_data

    data = tiny_data()
    entry = {"name": "cnn", "type": "resnet", "crop_kind": "whole_cell", "size_px": 32}
    entry.update(width=4, epochs=1, batch_size=8, patience=None, gradcam_cells=12, **options)
    params = TypeAdapter(ModelConfig).validate_python(entry)
    paths = ResultsPaths(tmp_path)
    sides, split = sides_of(len(data.labels))
    if not paths.torch_model_file("cnn", 0).exists():
        resnet.train(params, data, sides, CLASSES, seed=0, settings_hash="t", paths=paths)
    metrics = resnet.explain(params, data, split == "test", CLASSES, seed=0, paths=paths)
    with np.load(paths.gradcam_maps("cnn", 0)) as saved:
        return metrics, dict(saved)


def test_predicted_target_equals_true_target_on_correct_cells(tmp_path):
    _, true = _explained(tmp_path, gradcam_target="true")
    _, predicted = _explained(tmp_path, gradcam_target="predicted")
    np.testing.assert_array_equal(true["target"], true["true"])
    correct = predicted["target"] == predicted["true"]
    assert correct.any() and not correct.all()  # the test compares both kinds of cell
    np.testing.assert_allclose(predicted["maps"][correct], true["maps"][correct], atol=1e-6)
    wrong = ~correct
    assert not np.allclose(predicted["maps"][wrong], true["maps"][wrong])


def test_explain_saves_per_cell_stats_of_the_chosen_layer_and_their_means(tmp_path):
    metrics, saved = _explained(tmp_path, gradcam_layer="layer2")
    assert saved["raw_maps"].shape == (12, 4, 4)  # 32 px at layer2: 32 / 8
    assert saved["maps"].shape == (12, 32, 32)
    expected = gradcam_stats(saved["raw_maps"])
    for name in ("mean_activation", "coverage"):
        np.testing.assert_allclose(saved[name], expected[name])
        assert metrics["gradcam"][name] == pytest.approx(np.nanmean(expected[name]))


def test_an_unknown_layer_is_refused_before_training(tmp_path):
    from cellbench.errors import ConfigError

    with pytest.raises(ConfigError, match="gradcam_layer: 'layer9'"):
        _explained(tmp_path, gradcam_layer="layer9")
    assert not any(tmp_path.rglob("model.pt"))
