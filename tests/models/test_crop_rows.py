"""Crops streamed from the stores: the values of the old in-memory read, and exact resumes."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter, ValidationError
from torch import nn
from torch.utils.data import DataLoader, Subset

from cellbench.config import ModelConfig, TrainingConfig
from cellbench.crops.dataset import CropDataset
from cellbench.models.crop_rows import CropRows, StreamedCrops
from cellbench.models.images import load_image_model, predict_images, train_image_classifier
from cellbench.models.loaders import (
    BlockShuffleSampler,
    epoch_generator,
    evaluation_batches,
    loader_workers,
)
from cellbench.models.training import fit, predict_batches
from tests.models import fit_settings, write_blob_store

SIZE = 16


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("streaming")
    first, labels1 = write_blob_store(root / "P1.h5", 22, SIZE, seed=0, plate="P1")
    second, labels2 = write_blob_store(root / "P2.h5", 15, SIZE, seed=1, plate="P2")
    return [first, second], np.concatenate([labels1, labels2])


def old_read_crop_rows(stores, kind, rows, size_px) -> np.ndarray:
    """`cellbench.models.inputs.read_crop_rows` as it was: every crop in one array."""
    dataset = CropDataset(stores, kind, label_column=None, normalise="plate", size_px=size_px)
    loader = DataLoader(Subset(dataset, rows.tolist()), batch_size=256)
    return torch.cat([images for images, _, _ in loader]).numpy()


def test_streamed_crops_equal_the_old_in_memory_read(stores):
    paths, _ = stores
    rows = np.array([36, 0, 3, 21, 22, 5, 30])  # across both stores, out of order
    crops = CropRows.from_stores(paths, "whole_cell", SIZE, rows)
    assert crops.reads_files and crops.shape == (7, 2, SIZE, SIZE) and len(crops) == 7
    expected = old_read_crop_rows(paths, "whole_cell", rows, SIZE)
    np.testing.assert_array_equal(crops.to_array(), expected)
    streamed = torch.cat([b[0] for b in DataLoader(crops.dataset(), batch_size=3)]).numpy()
    np.testing.assert_array_equal(streamed, expected)
    resized = CropRows.from_stores(paths, "whole_cell", 8, rows)
    np.testing.assert_array_equal(
        resized.to_array(), old_read_crop_rows(paths, "whole_cell", rows, 8)
    )


def test_subsets_by_mask_or_position_stay_unread_until_asked(stores):
    paths, labels = stores
    crops = CropRows.from_stores(paths, "whole_cell", SIZE, np.arange(len(labels)))
    mask = labels == 1
    picked = crops[mask]
    assert isinstance(picked, CropRows) and picked.shape == (int(mask.sum()), 2, SIZE, SIZE)
    np.testing.assert_array_equal(picked.to_array(), crops.to_array()[mask])
    np.testing.assert_array_equal(crops.subset(np.array([4, 1])).rows, [4, 1])
    with pytest.raises(ValueError, match="mask of 37 cells"):
        crops[mask[:5]]
    items = crops.dataset(torch.from_numpy(labels))
    image, target = items[3]
    assert isinstance(items, StreamedCrops) and target.item() == labels[3]
    np.testing.assert_array_equal(image.numpy(), crops.to_array()[3])
    with pytest.raises(ValueError, match="3 targets for 37 crops"):
        crops.dataset(np.zeros(3))


def test_an_array_in_memory_behaves_the_same(stores):
    array = np.random.default_rng(0).random((6, 2, 8, 8), dtype=np.float32)
    crops = CropRows(array)
    assert not crops.reads_files and crops.shape == (6, 2, 8, 8)
    np.testing.assert_array_equal(crops[np.array([5, 0])].to_array(), array[[5, 0]])
    (images,) = crops.dataset().tensors
    np.testing.assert_array_equal(images.numpy(), array)
    with pytest.raises(ValueError, match=r"\(N, C, S, S\)"):
        CropRows(np.zeros((3, 8, 8)))


def test_streamed_crops_pickle_and_read_in_spawned_workers(stores):
    paths, labels = stores
    crops = CropRows.from_stores(paths, "whole_cell", SIZE, np.arange(len(labels)))
    dataset = crops.dataset(torch.from_numpy(labels))
    dataset.crops[0]  # open the files in this process: the pickle must not carry them
    assert pickle.loads(pickle.dumps(dataset)).crops._handles == {}
    loader = DataLoader(dataset, batch_size=8, num_workers=2, multiprocessing_context="spawn")
    images = torch.cat([b[0] for b in loader]).numpy()
    np.testing.assert_array_equal(images, crops.to_array())


def test_block_shuffle_is_a_permutation_fixed_by_seed_and_epoch():
    sampler = BlockShuffleSampler(50, seed=3, block_rows=8)
    sampler.set_epoch(1)
    first = list(sampler)
    assert sorted(first) == list(range(50)) and len(sampler) == 50
    assert list(sampler) == first  # the same epoch: the same order
    sampler.set_epoch(2)
    assert list(sampler) != first
    blocks = [position // 8 for position in first]  # blocks of 8 stay together
    assert sum(a != b for a, b in zip(blocks[:-1], blocks[1:], strict=True)) == 6  # 7 blocks
    assert blocks != sorted(blocks) and first[:8] != sorted(first[:8])  # both shuffled
    other = BlockShuffleSampler(50, seed=3, block_rows=8)
    other.set_epoch(1)
    assert list(other) == first
    with pytest.raises(ValueError, match="block_rows"):
        BlockShuffleSampler(5, seed=0, block_rows=0)


def test_blocks_of_one_row_give_the_order_of_a_shuffling_dataloader():
    for n, epoch in ((10, 1), (37, 4)):
        sampler = BlockShuffleSampler(n, seed=3, block_rows=1)
        sampler.set_epoch(epoch)
        generator = epoch_generator(3, epoch)
        loader = DataLoader(list(range(n)), batch_size=7, shuffle=True, generator=generator)
        assert list(sampler) == torch.cat(list(loader)).tolist()


def test_loader_workers_follow_the_allocation(monkeypatch):
    monkeypatch.setenv("CELLBENCH_TASK_CPUS", "1")
    assert loader_workers() == 0  # one CPU: the training process reads
    monkeypatch.setenv("CELLBENCH_TASK_CPUS", "2")
    assert loader_workers() == min(2, len(os.sched_getaffinity(0))) - 1
    assert loader_workers(3) == 3


def test_precision_and_workers_validate_and_workers_stay_out_of_the_hash():
    assert TrainingConfig().precision == "fp32"
    assert TrainingConfig(precision="bf16").precision == "bf16"
    with pytest.raises(ValidationError, match="precision"):
        TrainingConfig(precision="fp8")
    with pytest.raises(ValidationError, match="loader_workers"):
        TrainingConfig(loader_workers=-1)
    entry = {"name": "r", "type": "resnet", "crop_kind": "whole_cell", "loader_workers": 2}
    params = TypeAdapter(ModelConfig).validate_python(entry)
    assert params.loader_workers == 2
    assert "loader_workers" not in params.model_dump(mode="json")  # not in the settings hash
    assert params.model_dump(mode="json")["precision"] == "fp32"


class TinyNet(nn.Module):
    """Convolution, batch norm and dropout: weights, buffers and random state all matter."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3)
        )
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_streamed_run_with_workers_resumes_exactly_and_matches_no_workers(stores, tmp_path):
    paths, labels = stores
    crops = CropRows.from_stores(paths, "whole_cell", SIZE, np.arange(len(labels)))
    train = crops.dataset(torch.from_numpy(labels))
    val = crops[np.arange(len(labels)) % 5 == 0].dataset(torch.from_numpy(labels[::5]))
    loss = nn.CrossEntropyLoss()

    def settings(epochs, workers):
        return fit_settings(epochs=epochs, loader_workers=workers, batch_size=8)

    checkpoint = tmp_path / "checkpoint.pt"
    fit(TinyNet(), train, val, loss, settings(2, 2), checkpoint)  # "killed" after epoch 2
    seen = []
    resumed = TinyNet()
    history = fit(
        resumed,
        train,
        val,
        loss,
        settings(4, 2),
        checkpoint,
        on_epoch_start=lambda epoch, m: seen.append(epoch),
    )
    assert history["resumed_from"] == [0, 2] and seen == [3, 4]

    straight = TinyNet()
    straight_history = fit(straight, train, val, loss, settings(4, 0), tmp_path / "s.pt")
    assert same_state(resumed.state_dict(), straight.state_dict())
    losses = [row["train_loss"] for row in history["epochs"]]
    assert losses == [row["train_loss"] for row in straight_history["epochs"]]
    predicted = predict_batches(straight, crops.dataset(), batch_size=5, workers=2)
    in_memory = predict_batches(straight, torch.from_numpy(crops.to_array()), batch_size=16)
    torch.testing.assert_close(predicted, in_memory)


def test_a_resnet_from_the_stores_trains_and_predicts_as_on_the_crops_in_memory(stores, tmp_path):
    from cellbench.models import resnet
    from cellbench.models.images import embed_images
    from cellbench.models.inputs import ModelData
    from cellbench.paths import ResultsPaths

    paths, labels = stores
    names = np.where(labels == 0, "left", "right")
    crops = CropRows.from_stores(paths, "whole_cell", SIZE, np.arange(len(labels)))
    train = np.arange(len(labels)) % 4 != 0
    entry = {"name": "r", "type": "resnet", "crop_kind": "whole_cell", "size_px": SIZE}
    params = TypeAdapter(ModelConfig).validate_python(
        {**entry, "width": 4, "epochs": 1, "batch_size": 8, "loader_workers": 1}
    )
    data = ModelData(cells=None, labels=names, crops=crops)
    results = ResultsPaths(tmp_path)
    run = {"seed": 0, "paths": results}
    resnet.train(params, data, {"train": train}, ["left", "right"], settings_hash="t", **run)
    prediction = resnet.predict(params, data, np.where(train, "train", "test"), **run)

    model, _ = load_image_model(results.torch_model_file("r", 0))
    in_memory = crops.to_array()
    memory = ResultsPaths(tmp_path / "memory")
    in_memory_data = ModelData(cells=None, labels=names, crops=in_memory)
    run_memory = {"seed": 0, "paths": memory}
    resnet.train(
        params, in_memory_data, {"train": train}, ["left", "right"], settings_hash="t", **run_memory
    )
    from_memory, _ = load_image_model(memory.torch_model_file("r", 0))
    assert same_state(model.state_dict(), from_memory.state_dict())  # the same order, weights
    probabilities = predict_images(model, in_memory)
    np.testing.assert_allclose(prediction.probabilities, probabilities, rtol=1e-5)
    np.testing.assert_allclose(prediction.embeddings, embed_images(model, in_memory), rtol=1e-5)
    with pytest.raises(ValueError, match=r"images\['train'\] must be \(N, C, H, W\)"):
        train_image_classifier(
            {"train": np.zeros((2, 8, 8))},
            {"train": np.array(["left", "right"])},
            ["left", "right"],
            training=params,
            augment=False,
            seed=0,
            settings_hash="t",
            model_path=tmp_path / "x.pt",
            checkpoint_path=tmp_path / "x.ckpt",
        )


def test_precision_is_a_no_op_on_the_cpu(stores, tmp_path):
    paths, labels = stores
    crops = CropRows.from_stores(paths, "whole_cell", SIZE, np.arange(len(labels)))
    train = crops.dataset(torch.from_numpy(labels))
    states = []
    for precision in ("fp32", "bf16", "fp16"):
        model = TinyNet()
        settings = fit_settings(epochs=1, precision=precision, loader_workers=0)
        fit(model, train, None, nn.CrossEntropyLoss(), settings, tmp_path / f"{precision}.pt")
        states.append(model.state_dict())
    assert same_state(states[0], states[1]) and same_state(states[0], states[2])


@pytest.mark.parametrize("model_type", ["vae", "cp2image"])
def test_reconstruction_scores_do_not_depend_on_the_chunk(tmp_path, monkeypatch, model_type):
    from cellbench.config import SplitConfig
    from cellbench.evaluate import run as evaluate_run
    from cellbench.models.train import train_model
    from cellbench.paths import ResultsPaths
    from tests.models.test_registry import tiny_data, tiny_entry

    data = tiny_data()
    monkeypatch.setattr("cellbench.models.train.load_model_data", lambda *a, **k: data)
    monkeypatch.setattr("cellbench.evaluate.run.load_model_data", lambda *a, **k: data)
    params = tiny_entry(model_type)
    paths = ResultsPaths(tmp_path)
    split = SplitConfig(by="well", test_fraction=0.25, val_fraction=0.25)
    files = {"feature_tables": [], "crop_stores": []}
    train_model(params, split, "condition", 0, paths, settings_hash="t", **files)
    scores = []
    for chunk in (evaluate_run.RECONSTRUCTION_CHUNK, 5):  # all test cells at once; 5 at a time
        monkeypatch.setattr(evaluate_run, "RECONSTRUCTION_CHUNK", chunk)
        evaluate_run.evaluate_model(
            params, "condition", 0, paths, channels=["DNA", "actin"], **files
        )
        metrics = json.loads(paths.metrics(params.name, 0).read_text())
        scores.append({k: v for k, v in metrics.items() if k == "ssim" or "reconstruction" in k})
        scores[-1].update({k: v for k, v in metrics.items() if k.startswith("generated_")})
    # Equal but for float rounding: the model sees batches of 5 instead of all test cells.
    assert scores[1].keys() == scores[0].keys()
    for key, value in scores[0].items():  # null where a correlation is undefined
        assert scores[1][key] == (value if value is None else pytest.approx(value, rel=1e-6))
    assert {"reconstruction_mse", "ssim"} <= set(scores[0])
    assert any(k.startswith("generated_") for k in scores[0]) == (model_type == "cp2image")


def test_a_models_normalise_setting_reaches_the_crops_it_reads(stores):
    from cellbench.config import VAEModel

    paths, labels = stores
    rows = np.arange(len(labels))
    plate = CropRows.from_stores(paths, "whole_cell", SIZE, rows).to_array()
    entry = VAEModel(name="v", crop_kind="whole_cell", size_px=SIZE, normalise="minmax")
    each = CropRows.from_stores(paths, "whole_cell", SIZE, rows, normalise=entry.normalise)
    each = each.to_array()
    assert not np.array_equal(plate, each)
    flat = each.reshape(*each.shape[:2], -1)
    varying = flat.max(axis=2) > flat.min(axis=2)
    assert np.allclose(flat.min(axis=2)[varying], 0) and np.allclose(flat.max(axis=2)[varying], 1)


def test_crops_from_the_stores_stream_with_their_features_through_workers(stores):
    from cellbench.models.loaders import WithFeatures

    paths, labels = stores
    crops = CropRows.from_stores(paths, "whole_cell", SIZE, np.arange(len(labels)))
    features = torch.arange(len(labels) * 3, dtype=torch.float32).reshape(-1, 3)
    targets = torch.as_tensor(labels)
    fused = WithFeatures(crops.dataset(targets), features)
    assert fused.reads_files
    expected = crops.to_array()
    for workers in (0, 1):
        seen = []
        for (images, rows), batch_targets in evaluation_batches(
            fused, 8, torch.device("cpu"), workers
        ):
            seen.append((images, rows, batch_targets))
        images = torch.cat([s[0] for s in seen])
        np.testing.assert_allclose(images.numpy(), expected)
        torch.testing.assert_close(torch.cat([s[1] for s in seen]), features)
        torch.testing.assert_close(torch.cat([s[2] for s in seen]), targets)
