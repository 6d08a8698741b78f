"""The VAE study's latent analyses against hand computations and models built to know the answer."""

import numpy as np
import pandas as pd
import torch
from torch import nn

from cellbench.evaluate.latent import (
    analyse,
    decode_images,
    interpolate,
    latent_analysis,
    latent_usage,
    sensitivity,
    traverse,
)
from cellbench.models.vae import ConvVAE


class LinearDecoder(nn.Module):
    """decode(z) = weights @ z as a (1, 2, 2) image; records every latent it decodes."""

    decoder_kind = "gaussian"

    def __init__(self, weights: np.ndarray):
        super().__init__()
        self.weights = torch.as_tensor(weights, dtype=torch.float32)  # (4, D)
        self.seen: list[np.ndarray] = []

    def encode(self, x):
        flat = x.reshape(len(x), -1)
        return flat[:, :3], torch.zeros(len(x), 3)

    def decode(self, z):
        self.seen.append(z.numpy().copy())
        return (z @ self.weights.T).reshape(len(z), 1, 2, 2)


def test_latent_usage_is_the_closed_form_kl_averaged_over_cells():
    mu = np.array([[0.0, 1.0], [2.0, -1.0]])
    logvar = np.array([[0.0, np.log(2.0)], [np.log(0.5), 0.0]])
    by_hand = np.zeros(2)
    for i in range(2):
        for d in range(2):
            var = np.exp(logvar[i, d])
            by_hand[d] += 0.5 * (mu[i, d] ** 2 + var - 1 - np.log(var)) / 2
    np.testing.assert_allclose(latent_usage(mu, logvar), by_hand)
    assert latent_usage(np.zeros((3, 4)), np.zeros((3, 4))).tolist() == [0, 0, 0, 0]


def test_encoding_in_batches_is_encoding_at_once():
    from cellbench.evaluate.latent import encode_images

    model = ConvVAE(2, 16, latent_dim=3, depth=2, width=4).eval()
    images = np.random.default_rng(4).random((7, 2, 16, 16)).astype(np.float32)
    at_once = encode_images(model, images, batch_size=100)
    batched = encode_images(model, images, batch_size=3)
    for whole, parts in zip(at_once, batched, strict=True):
        np.testing.assert_allclose(whole, parts, rtol=1e-5, atol=1e-6)


def test_a_dimension_the_decoder_ignores_has_zero_sensitivity():
    weights = np.zeros((4, 3))
    weights[:, 0] = [1.0, 2.0, 0.0, -1.0]  # mean |w| = 1
    weights[:, 2] = 0.5
    model = LinearDecoder(weights)
    z = np.random.default_rng(0).normal(size=(5, 3))
    found = sensitivity(model, z, step=np.array([1.0, 0.3, 2.0]))
    np.testing.assert_allclose(found, [1.0, 0.0, 0.5], atol=1e-6)


def test_interpolation_ends_decode_to_the_two_cells():
    model = ConvVAE(2, 16, latent_dim=4, depth=2, width=4).eval()
    rng = np.random.default_rng(1)
    z_a, z_b = rng.normal(size=4), rng.normal(size=4)
    strip = interpolate(model, z_a, z_b, steps=5)
    assert strip.shape == (5, 2, 16, 16)
    np.testing.assert_allclose(strip[0], decode_images(model, z_a[None])[0], atol=1e-5)
    np.testing.assert_allclose(strip[-1], decode_images(model, z_b[None])[0], atol=1e-5)
    middle = decode_images(model, ((z_a + z_b) / 2)[None])[0]
    np.testing.assert_allclose(strip[2], middle, atol=1e-5)


def test_traversal_moves_only_the_chosen_dimension():
    model = LinearDecoder(np.ones((4, 3)))
    z = np.array([0.5, -1.0, 2.0])
    offsets = np.array([-1.0, 0.0, 2.0])
    grid = traverse(model, z, dims=[2, 0], offsets=offsets)
    assert grid.shape == (2, 3, 1, 2, 2)
    latents = model.seen[-1].reshape(2, 3, 3)
    for i, dim in enumerate([2, 0]):
        for j, offset in enumerate(offsets):
            expected = z.copy()
            expected[dim] += offset
            np.testing.assert_allclose(latents[i, j], expected, atol=1e-6)
    np.testing.assert_allclose(grid[0, 2, 0, 0, 0], z.sum() + 2.0, atol=1e-5)


def test_analyse_grids_are_in_unit_range_and_seeded():
    model = ConvVAE(3, 16, latent_dim=6, depth=2, width=4).eval()
    images = np.random.default_rng(2).random((10, 3, 16, 16)).astype(np.float32)
    kl, grids = analyse(model, images, grid_cells=4, seed=0)
    assert kl.shape == (6,) and (kl >= 0).all()
    assert grids["originals"].shape == grids["reconstructions"].shape == (4, 3, 16, 16)
    assert grids["interpolation"].shape == (9, 3, 16, 16)
    assert grids["traversal"].shape == (6, 7, 3, 16, 16)
    assert list(grids["traversal_dims"]) == list(np.argsort(-kl, kind="stable"))
    for key in ("originals", "reconstructions", "interpolation", "traversal"):
        assert grids[key].dtype == np.float32 and 0 <= grids[key].min() <= grids[key].max() <= 1
    assert grids["sensitivity"].shape == (6,) and (grids["sensitivity"] > 0).all()
    again = analyse(model, images, grid_cells=4, seed=0)[1]
    assert np.array_equal(again["cells"], grids["cells"])
    assert not np.array_equal(
        analyse(model, images, grid_cells=4, seed=5)[1]["cells"], grids["cells"]
    )


def test_evaluate_hook_writes_usage_and_grids(tmp_path):
    from cellbench.config import VAEModel
    from cellbench.models.images import _save
    from cellbench.models.inputs import CELL_ID, ModelData
    from cellbench.paths import ResultsPaths

    params = VAEModel(
        name="vae",
        crop_kind="nuclear",
        size_px=16,
        depth=2,
        width=4,
        latent_size=5,
        analysis_cells=3,
    )
    paths = ResultsPaths(tmp_path)
    model = ConvVAE(2, 16, latent_dim=5, depth=2, width=4)
    path = paths.torch_model_file("vae", 0)
    path.parent.mkdir(parents=True)
    _save(path, "vae", model)
    images = np.random.default_rng(3).random((12, 2, 16, 16)).astype(np.float32)
    cells = pd.DataFrame({CELL_ID: [f"c{i}" for i in range(12)]})
    data = ModelData(cells=cells, labels=np.array(["a", "b"] * 6), crops=images)
    test = np.arange(12) >= 6
    summary = latent_analysis(params, data, test, seed=0, paths=paths)
    usage = pd.read_csv(paths.latent_usage("vae", 0))
    assert list(usage.columns) == ["dimension", "kl"] and len(usage) == 5
    assert np.isclose(summary["latent_kl_total"], usage["kl"].sum())
    assert summary["latent_dimensions_used"] == int((usage["kl"] > 0.01).sum())
    grids = np.load(paths.latent_grids("vae", 0))
    assert grids["reconstructions"].shape == (3, 2, 16, 16)
    assert set(grids["cell_ids"]) <= {f"c{i}" for i in range(6, 12)}  # test cells only
    params_off = params.model_copy(update={"analysis_cells": 0})
    assert latent_analysis(params_off, data, test, seed=0, paths=paths) == {}
