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


# --- fine-tuning from a torchvision state dict ------------------------------------------------


def _torchvision_resnet18_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision.models.resnet18's state-dict names and shapes, written out by hand.

    From torchvision's definition (BasicBlock: conv1/bn1/conv2/bn2, downsample.0/1 in the
    first block of layers 2-4; 1000 ImageNet classes), not from cellbench's module.
    """
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix: str, channels: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (channels,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    bn("bn1", 64)
    channels_in = 64
    for stage, channels in enumerate([64, 128, 256, 512], start=1):
        for block in range(2):
            prefix = f"layer{stage}.{block}"
            first_in = channels_in if block == 0 else channels
            shapes[f"{prefix}.conv1.weight"] = (channels, first_in, 3, 3)
            bn(f"{prefix}.bn1", channels)
            shapes[f"{prefix}.conv2.weight"] = (channels, channels, 3, 3)
            bn(f"{prefix}.bn2", channels)
            if block == 0 and stage > 1:
                shapes[f"{prefix}.downsample.0.weight"] = (channels, channels_in, 1, 1)
                bn(f"{prefix}.downsample.1", channels)
        channels_in = channels
    shapes["fc.weight"], shapes["fc.bias"] = (1000, 512), (1000,)
    return shapes


def _write_torchvision_file(path, drop: str | None = None, reshape: str | None = None) -> dict:
    """Random tensors under torchvision's ResNet-18 names, saved to `path`; returns them."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, shape in _torchvision_resnet18_shapes().items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(7, dtype=torch.long)
        else:
            state[name] = torch.randn(shape, generator=generator)
    if drop is not None:
        del state[drop]
    if reshape is not None:
        state[reshape] = torch.zeros(3, 3)
    torch.save(state, path)
    return state


def test_a_torchvision_state_dict_is_loaded_under_cellbench_names(tmp_path):
    from cellbench.models.pretrained import load_pretrained

    state = _write_torchvision_file(tmp_path / "r18.pt")
    net = build_resnet(18, in_channels=5, n_classes=3)
    fc_before = net.fc.weight.detach().clone()
    load_pretrained(net, tmp_path / "r18.pt")
    own = net.state_dict()
    expected_first = state["conv1.weight"].mean(dim=1, keepdim=True).repeat(1, 5, 1, 1) * 3 / 5
    torch.testing.assert_close(own["stem.0.weight"], expected_first)
    torch.testing.assert_close(own["stem.1.running_var"], state["bn1.running_var"])
    torch.testing.assert_close(own["layer1.1.conv2.weight"], state["layer1.1.conv2.weight"])
    shortcut = state["layer3.0.downsample.0.weight"]
    torch.testing.assert_close(own["layer3.0.shortcut.0.weight"], shortcut)
    torch.testing.assert_close(own["layer4.1.bn2.bias"], state["layer4.1.bn2.bias"])
    compared = 0
    for name, tensor in state.items():  # every tensor but conv1 and fc, under its own name
        if name == "conv1.weight" or name.startswith("fc."):
            continue
        ours = name.replace("bn1.", "stem.1.", 1) if name.startswith("bn1.") else name
        ours = ours.replace(".downsample.", ".shortcut.")
        torch.testing.assert_close(own[ours], tensor)
        compared += 1
    assert compared == len(state) - 3
    torch.testing.assert_close(net.fc.weight, fc_before)  # a new head for our classes


def test_three_channel_crops_keep_the_rgb_filters(tmp_path):
    from cellbench.models.pretrained import load_pretrained

    state = _write_torchvision_file(tmp_path / "r18.pt")
    net = build_resnet(18, in_channels=3, n_classes=2)
    load_pretrained(net, tmp_path / "r18.pt")
    torch.testing.assert_close(net.stem[0].weight, state["conv1.weight"])


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"drop": "layer2.1.bn1.running_mean"}, r"missing key.*layer2\.1\.bn1\.running_mean"),
        ({"reshape": "layer3.1.conv1.weight"}, r"another shape.*layer3\.1\.conv1\.weight"),
    ],
)
def test_a_file_that_does_not_fit_is_refused_naming_the_file_and_key(tmp_path, broken, message):
    from cellbench.models.pretrained import PretrainedWeightsError, load_pretrained

    _write_torchvision_file(tmp_path / "r18.pt", **broken)
    with pytest.raises(PretrainedWeightsError, match="r18.pt") as error:
        load_pretrained(build_resnet(18, in_channels=2, n_classes=2), tmp_path / "r18.pt")
    assert error.match(message)


def test_missing_files_other_formats_and_other_widths_are_refused(tmp_path):
    from cellbench.models.pretrained import PretrainedWeightsError, load_pretrained

    net = build_resnet(18, in_channels=2, n_classes=2)
    with pytest.raises(PretrainedWeightsError, match="no such file.*absent.pt"):
        load_pretrained(net, tmp_path / "absent.pt")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(PretrainedWeightsError, match="list.pt is not a state dict"):
        load_pretrained(net, tmp_path / "list.pt")
    _write_torchvision_file(tmp_path / "r18.pt")
    with pytest.raises(PretrainedWeightsError, match="width: 64"):
        load_pretrained(build_resnet(18, 2, 2, width=8), tmp_path / "r18.pt")


def test_weights_are_read_with_weights_only(tmp_path, monkeypatch):
    from cellbench.models import pretrained

    _write_torchvision_file(tmp_path / "r18.pt")
    calls = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(pretrained.torch, "load", recording_load)
    pretrained.load_pretrained(build_resnet(18, 2, 2), tmp_path / "r18.pt")
    assert calls == [{"map_location": "cpu", "weights_only": True}]


def test_a_fine_tuned_resnet_trains_one_step_from_the_file(tmp_path):
    state = _write_torchvision_file(tmp_path / "r18.pt")
    images, labels, _ = blob_crops(8, size=32, seed=0)
    names = np.asarray(["left", "right"])[labels]
    history = train_image_classifier(
        {"train": images},
        {"train": names},
        ["left", "right"],
        training=TrainingConfig(epochs=1, batch_size=8, learning_rate=1e-4, scheduler="none"),
        augment=False,
        seed=0,
        settings_hash="h",
        model_path=tmp_path / "model.pt",
        checkpoint_path=tmp_path / "checkpoint.pt",
        weights=tmp_path / "r18.pt",
    )
    assert len(history["epochs"]) == 1
    model, _ = load_image_model(tmp_path / "model.pt")
    moved = model.state_dict()["layer2.0.conv1.weight"] - state["layer2.0.conv1.weight"]
    assert 0 < moved.abs().max() < 0.01  # started from the file, then one Adam step of 1e-4


# --- late fusion: the image embedding and standardised handcrafted features -> linear ----------


def _fusion_run(tmp_path, data=None):
    from pydantic import TypeAdapter

    from cellbench.config import ModelConfig
    from cellbench.models import resnet
    from cellbench.paths import ResultsPaths
    from tests.models.test_registry import CLASSES, sides_of, tiny_data

    data = data or tiny_data()
    entry = {"name": "fused", "type": "resnet", "input": "fusion", "crop_kind": "whole_cell"}
    entry.update(size_px=32, width=4, epochs=1, batch_size=8, patience=None, gradcam_cells=4)
    params = TypeAdapter(ModelConfig).validate_python(entry)
    assert params.reads_features and params.reads_crops
    paths = ResultsPaths(tmp_path)
    sides, split = sides_of(len(data.labels))
    resnet.train(params, data, sides, CLASSES, seed=0, settings_hash="t", paths=paths)
    return params, data, sides, split, paths


def test_a_fusion_resnet_trains_and_standardises_by_the_training_cells(tmp_path):
    params, data, sides, _, paths = _fusion_run(tmp_path)
    model, _ = load_image_model(paths.torch_model_file("fused", 0))
    assert model.n_features == 4 and model.fc.in_features == model.embedding_size + 4
    train = data.features[sides["train"]].astype(np.float64)
    np.testing.assert_allclose(model.feature_mean.numpy(), train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(model.feature_scale.numpy(), train.std(axis=0), rtol=1e-5)
    assert json_history_epochs(paths) == 1


def json_history_epochs(paths) -> int:
    import json

    return len(json.loads(paths.history("fused", 0).read_text())["epochs"])


def test_a_fusion_resnet_prediction_follows_its_features(tmp_path):
    import copy

    from cellbench.models import resnet
    from tests.models.test_registry import CLASSES

    params, data, _, split, paths = _fusion_run(tmp_path)
    run = {"seed": 0, "paths": paths}
    before = resnet.predict(params, data, split, **run)
    changed = copy.copy(data)
    changed.features = data.features.copy()
    changed.features[:, 2] += 10.0 * data.features[:, 2].std()  # one column moved
    after = resnet.predict(params, changed, split, **run)
    assert np.abs(after.probabilities - before.probabilities).max() > 1e-3
    np.testing.assert_allclose(after.embeddings, before.embeddings)  # the image embedding
    np.testing.assert_allclose(resnet.embed(params, data, **run), before.embeddings, atol=1e-6)
    explained = resnet.explain(params, data, split == "test", CLASSES, **run)
    assert set(explained["gradcam"]) == {"mean_activation", "coverage"}


def test_a_fusion_resnet_needs_features_and_reads_nan_as_the_mean():
    net = build_resnet(18, in_channels=2, n_classes=3, width=4, n_features=3)
    with pytest.raises(ValueError, match="needs \\(N, 3\\) features"):
        net(torch.zeros(2, 2, 32, 32))
    assert net(torch.zeros(2, 2, 32, 32), torch.full((2, 3), float("nan"))).shape == (2, 3)
