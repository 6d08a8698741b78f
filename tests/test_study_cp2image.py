"""The CP2Image study (S2): its published networks, schedule, optimisers and config end to end.

The end-to-end test runs configs/studies/cp2image.yaml on the BBBC021 crops of
$CELLBENCH_DATA at a reduced size (one seed, one epoch, a subset of the cells).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import TensorDataset

from cellbench.config import config_from_dict, default_data_root
from cellbench.execution.run import execute
from cellbench.models.adversarial import (
    Discriminator,
    delayed_feature_matching_weights,
    feature_matching_gammas,
    feature_matching_loss,
)
from cellbench.models.cp2image import AdversarialSettings, train_cp2image
from cellbench.models.cp2image_published import (
    PublishedDiscriminator,
    PublishedGenerator,
    multiscale_pixel_loss,
)
from cellbench.paths import ResultsPaths
from tests.helpers import REPO
from tests.models import fit_settings


def weight_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@pytest.mark.parametrize(
    ("discriminator", "size"),
    [
        (PublishedDiscriminator(3, 68, spectral_norm=True), 68),
        (Discriminator(3, 32, width=4, spectral_norm=True), 32),
        (Discriminator(3, 68, width=4, depth=3, spectral_norm=True), 68),
    ],
    ids=["published", "strided", "strided-68px"],
)
def test_spectral_norm_is_on_every_discriminator_convolution_and_linear_layer(discriminator, size):
    layers = weight_layers(discriminator)
    assert len(layers) >= 4
    for layer in layers:
        assert torch.nn.utils.parametrize.is_parametrized(layer, "weight")
        (parametrization,) = layer.parametrizations.weight
        assert type(parametrization).__name__ == "_SpectralNorm"
    discriminator.train()
    for _ in range(30):  # power iterations converge in training mode
        discriminator(torch.randn(4, 3, size, size))
    discriminator.eval()
    for layer in layers:
        matrix = layer.weight.detach().flatten(1)
        assert torch.linalg.matrix_norm(matrix, ord=2) == pytest.approx(1.0, abs=0.05)


def test_without_the_switch_no_layer_is_normalised():
    for discriminator in (PublishedDiscriminator(3, 68), Discriminator(3, 32, width=4)):
        layers = weight_layers(discriminator)
        assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in layers)


@pytest.mark.parametrize(
    ("step", "weights"),
    [
        (0, [0.0, 0.0, 0.0]),
        (2500, [0.0, 0.0, 0.0]),
        (3750, [0.5, 0.0, 0.0]),
        (5000, [1.0, 0.0, 0.0]),
        (6250, [1.0, 0.5, 0.0]),
        (7500, [1.0, 1.0, 0.0]),
        (8750, [1.0, 1.0, 0.5]),
        (20000, [1.0, 1.0, 1.0]),
    ],
)
def test_feature_matching_weights_follow_the_published_schedule(step, weights):
    assert delayed_feature_matching_weights(step, 3, 2500) == pytest.approx(weights)
    delayed = AdversarialSettings(schedule="delayed", delay_steps=2500)
    assert delayed.layer_weights(step, 3) == pytest.approx(weights)


def test_the_delay_is_configurable_and_the_other_schedules_stay():
    assert delayed_feature_matching_weights(150, 2, 100) == [0.5, 0.0]
    assert AdversarialSettings().layer_weights(0, 3) == [1.0, 1.0, 1.0]  # CP2Image's constant
    assert feature_matching_gammas(4515, 4, 3010) == [1.0, 0.5, 0.0, 0.0]  # VAE+'s, unchanged
    with pytest.raises(ValueError, match="delay_steps"):
        delayed_feature_matching_weights(10, 2, 0)


def test_paired_feature_matching_compares_each_crop_with_its_own():
    real = [torch.tensor([[1.0, 0.0], [0.0, 1.0]])]
    swapped = [real[0].flip(0)]  # the same batch mean, every pair different
    assert feature_matching_loss(real, swapped, "l2") == 0
    assert feature_matching_loss(real, swapped, "paired") == pytest.approx(1.0)
    assert feature_matching_loss(real, real, "paired", weights=[3.0]) == 0


def test_published_generator_makes_68_px_crops_and_an_image_at_every_scale():
    torch.manual_seed(0)
    generator = PublishedGenerator(n_features=453, out_channels=3)
    features = torch.randn(6, 453)
    scales = generator.scales(features)
    assert [tuple(x.shape) for x in scales] == [(6, 3, s, s) for s in (5, 14, 32, 68)]
    assert generator(features).shape == (6, 3, 68, 68)
    generator.eval()  # batch norm from running statistics: forward is the last scale
    assert torch.equal(generator(features), generator.scales(features)[-1])
    blocks = [m for m in generator.blocks.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.kernel_size, m.padding) for m in blocks] == [((5, 5), (0, 0))] * 4
    assert [m.negative_slope for m in generator.modules() if isinstance(m, nn.LeakyReLU)] == [
        0.01
    ] * 8
    heads = [h[0] for h in generator.heads]
    assert all(h.kernel_size == (1, 1) and h.out_channels == 3 for h in heads)
    with pytest.raises(ValueError, match="size_px: 68"):
        PublishedGenerator(453, 3, image_size=64)


def test_published_discriminator_reads_four_hidden_layers():
    logits, layers = PublishedDiscriminator(3, 68)(torch.randn(5, 3, 68, 68))
    assert logits.shape == (5,)
    assert [tuple(x.shape[1:]) for x in layers] == [
        (32, 32, 32),
        (32, 14, 14),
        (32, 5, 5),
        (64, 1, 1),
    ]
    with pytest.raises(ValueError, match="at least 68 px"):
        PublishedDiscriminator(3, 48)


def test_multiscale_pixel_loss_compares_each_scale_with_the_crop_at_its_side():
    crops = torch.rand(2, 3, 68, 68)
    exact = [torch.nn.functional.adaptive_avg_pool2d(crops, s) for s in (5, 14, 32, 68)]
    assert multiscale_pixel_loss(exact, crops) == pytest.approx(0.0, abs=1e-7)
    off = [x + (i == 0) for i, x in enumerate(exact)]  # only the 5 px image is off, by 1
    assert multiscale_pixel_loss(off, crops) == pytest.approx(0.25)


def pairs(n: int, seed: int) -> TensorDataset:
    """Feature vectors and the 68 px crops they describe: a bright square's place and size."""
    rng = np.random.default_rng(seed)
    features = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    crops = np.zeros((n, 2, 68, 68), np.float32)
    for i, (y, x, s) in enumerate(features):
        top, left, side = int(24 + 10 * y), int(24 + 10 * x), int(12 + 6 * s)
        crops[i, :, top : top + side, left : left + side] = 1.0
    return TensorDataset(torch.from_numpy(features), torch.from_numpy(crops))


def published_run(tmp_path, epochs: int, groups=None):
    torch.manual_seed(0)
    batches = "random" if groups is None else "one_per_treatment"
    settings = fit_settings(
        epochs=epochs, batch_size=6, learning_rate=1e-2, groups=groups, batches=batches
    )
    adversarial = AdversarialSettings(
        distance="paired",
        schedule="delayed",
        delay_steps=2,
        discriminator_optimizer="sgd",
        discriminator_learning_rate=1e-3,
        discriminator_momentum=0.9,
        pixel_loss_scales="all",
    )
    generator = PublishedGenerator(3, 2, width=8)
    discriminator = PublishedDiscriminator(2, 68, width=8, spectral_norm=True)
    history = train_cp2image(
        generator,
        pairs(12, 0),
        pairs(6, 1),
        settings,
        tmp_path / "c.pt",
        discriminator,
        adversarial,
    )
    return generator, history


def test_the_published_loop_trains_schedules_and_resumes_with_its_step(tmp_path):
    _, first = published_run(tmp_path, 1)
    row = first["epochs"][0]
    assert row["feature_matching"] == 0  # steps 0, 1: every layer still weighs 0
    saved = torch.load(tmp_path / "c.pt", weights_only=True)
    assert saved["state"]["step"] == 2
    assert isinstance(saved["opt_d"]["param_groups"][0]["momentum"], float)
    assert saved["opt_d"]["param_groups"][0]["momentum"] == 0.9
    assert "betas" in saved["opt_g"]["param_groups"][0]  # Adam for the generator
    generator, resumed = published_run(tmp_path, 4)
    assert resumed["resumed_from"] == [0, 1]
    assert all(r["feature_matching"] > 0 for r in resumed["epochs"][2:])  # layer 0 joined
    assert torch.load(tmp_path / "c.pt", weights_only=True)["state"]["step"] == 8
    assert all(np.isfinite(r["val_loss"]) for r in resumed["epochs"])


def test_the_published_loop_draws_one_cell_per_treatment(tmp_path):
    groups = np.repeat(["a+1", "b+1", "c+1"], 4)  # 12 cells, 3 treatments: 4 batches of 3
    published_run(tmp_path, 1, groups=groups)
    assert torch.load(tmp_path / "c.pt", weights_only=True)["state"]["step"] == 4


def test_config_errors_name_the_key():
    from pydantic import ValidationError

    from cellbench.config import CP2ImageModel

    entry = {"name": "g", "crop_kind": "precut", "architecture": "published"}
    with pytest.raises(ValidationError, match="size_px: architecture: published"):
        CP2ImageModel(**entry)
    with pytest.raises(ValidationError, match="pixel_loss_scales: all needs"):
        CP2ImageModel(name="g", crop_kind="precut", pixel_loss_scales="all")
    params = CP2ImageModel(**entry, size_px=68, feature_matching_schedule="delayed")
    settings = AdversarialSettings.from_config(params)
    assert (settings.schedule, settings.delay_steps) == ("delayed", 2500)


@pytest.mark.skipif(
    not (default_data_root() / "bbbc021").is_dir(), reason="BBBC021 not in $CELLBENCH_DATA"
)
def test_the_study_runs_end_to_end_at_a_reduced_size(tmp_path):
    raw = yaml.safe_load((REPO / "configs" / "studies" / "cp2image.yaml").read_text())
    raw["results_root"] = str(tmp_path / "results")
    raw["models"][0]["epochs"] = 1
    raw["features"] = {"texture": None}  # fewer features to measure, twice: a reduced size
    config = config_from_dict(raw)
    model = config.models[0]
    assert (model.architecture, model.spectral_norm, model.batches) == (
        "published",
        True,
        "one_per_treatment",
    )
    assert config.split.by == "compound"
    results = execute(config, "all", "local", echo=lambda line: None).results
    assert [f"{r.stage}/{r.task}: {r.message}" for r in results if not r.ok] == []
    paths = ResultsPaths(config.results_root)
    metrics = json.loads(paths.metrics(model.name, 0).read_text())
    assert metrics["reconstruction_mse"] >= 0 and -1 <= metrics["ssim"] <= 1
    assert "generated_features_mean_pearson_r" in metrics
    history = json.loads(paths.history(model.name, 0).read_text())
    assert len(history["epochs"]) == 1 and history["epochs"][0]["feature_matching"] == 0
    assert (paths.report_dir / "index.html").stat().st_size > 0
