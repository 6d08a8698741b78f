"""The BBBC021 VAE study's latent analyses, from a trained VAE's ``encode`` / ``decode``.

Latent usage (mean KL per latent dimension), interpolation between two cells, traversal of
single dimensions around a cell's mean latent ("perturbation"), sensitivity of the decoded
image to each dimension, and reconstruction grids. The pure functions take any module with
``encode(x) -> (mu, logvar)`` and ``decode(z)`` (and optionally ``decoder_kind``); they run in
eval mode without gradients. `latent_analysis` is the evaluate task's hook: a handful of test
cells, so it costs seconds, written to ``latent_usage.csv`` and ``latent_grids.npz``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from cellbench.io.atomic import atomic_path

if TYPE_CHECKING:
    from cellbench.config import VAEModel
    from cellbench.models.inputs import ModelData
    from cellbench.paths import ResultsPaths

USED_KL_NATS = 0.01  # a latent dimension is "used" when its mean KL is above this
USAGE_CELLS = 2000  # test cells encoded for latent usage and the sensitivity step, at most
TRAVERSAL_DIMS = 8  # the most used dimensions traversed
TRAVERSAL_OFFSETS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)  # in sd of the latent means
INTERPOLATION_STEPS = 9
ENCODE_BATCH = 256  # images per encoder call


def latent_usage(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """(D,) mean KL(q(z|x) || N(0, 1)) per latent dimension, in nats, over the (N, D) cells.

    Closed form per cell and dimension: 0.5 * (mu^2 + exp(logvar) - 1 - logvar).
    """
    mu, logvar = np.asarray(mu, dtype=float), np.asarray(logvar, dtype=float)
    return (0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar)).mean(axis=0)


@torch.no_grad()
def decode_images(model: torch.nn.Module, z: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N, D) latents -> (N, C, H, W) float32 decoded images in the decoder's space.

    Bernoulli decoders give probabilities (sigmoid of the logits); others their means, unclipped.
    """
    model.eval()
    out = model.decode(torch.as_tensor(np.asarray(z), dtype=torch.float32))
    if getattr(model, "decoder_kind", "gaussian") == "bernoulli":
        out = torch.sigmoid(out)
    return out.numpy().astype(np.float32)


@torch.no_grad()
def encode_images(
    model: torch.nn.Module, images: np.ndarray, batch_size: int = ENCODE_BATCH
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, H, W) images -> latent means and log-variances, each (N, D) float32.

    Encoded `batch_size` images at a time, so activations stay bounded for large crops.
    """
    model.eval()
    means, logvars = [], []
    for start in range(0, len(images), batch_size):
        batch = torch.as_tensor(images[start : start + batch_size], dtype=torch.float32)
        mu, logvar = model.encode(batch)
        means.append(mu.numpy())
        logvars.append(logvar.numpy())
    return np.concatenate(means), np.concatenate(logvars)


def interpolate(
    model: torch.nn.Module, z_a: np.ndarray, z_b: np.ndarray, steps: int = INTERPOLATION_STEPS
) -> np.ndarray:
    """(steps, C, H, W) decodings of evenly spaced points from (D,) `z_a` to (D,) `z_b`.

    The first and last images are the decodings of `z_a` and `z_b` themselves.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    z = (1 - t) * np.asarray(z_a, dtype=np.float32) + t * np.asarray(z_b, dtype=np.float32)
    return decode_images(model, z)


def traverse(
    model: torch.nn.Module, z: np.ndarray, dims: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """(len(dims), len(offsets), C, H, W): `z` with one dimension moved by each offset, decoded.

    Row i adds ``offsets[j]`` (latent units) to dimension ``dims[i]`` of the (D,) latent `z`
    only; the other dimensions keep their values.
    """
    dims, offsets = np.asarray(dims, dtype=int), np.asarray(offsets, dtype=np.float32)
    latents = np.repeat(np.asarray(z, dtype=np.float32)[None], len(dims) * len(offsets), axis=0)
    rows = np.repeat(np.arange(len(dims)), len(offsets))
    latents[np.arange(len(latents)), dims[rows]] += np.tile(offsets, len(dims))
    images = decode_images(model, latents)
    return images.reshape(len(dims), len(offsets), *images.shape[1:])


def sensitivity(
    model: torch.nn.Module, z: np.ndarray, step: float | np.ndarray = 1.0
) -> np.ndarray:
    """(D,) mean absolute change of the decoded image per unit change of each latent dimension.

    Central finite differences at +- `step` (a float or (D,) array, e.g. 1 sd of the latent
    means) around each of the (N, D) latents `z`, averaged over cells and pixels: in decoder
    output units (intensity in [0, 1] for normalised crops) per latent unit.
    """
    z = np.asarray(z, dtype=np.float32)
    n, d = z.shape
    step = np.broadcast_to(np.asarray(step, dtype=np.float32), (d,))
    result = np.zeros(d)
    for k in range(d):
        shift = np.zeros(d, dtype=np.float32)
        shift[k] = step[k]
        change = decode_images(model, z + shift) - decode_images(model, z - shift)
        result[k] = np.abs(change).mean() / (2 * step[k])
    return result


def most_used(kl: np.ndarray, n: int) -> np.ndarray:
    """Positions of the `n` dimensions of largest KL, largest first (ties: lower index first)."""
    return np.argsort(-np.asarray(kl), kind="stable")[:n]


def analyse(
    model: torch.nn.Module, images: np.ndarray, grid_cells: int, seed: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Latent usage over (N, C, H, W) `images`, and the grids of `grid_cells` of them.

    Returns the (D,) KL per dimension and the grids in [0, 1] (float32): ``originals`` and
    ``reconstructions`` (n, C, H, W), ``interpolation`` (steps, C, H, W) from the first grid
    cell to the second, ``traversal`` (dims, offsets, C, H, W) around the first, with the
    ``traversal_dims``, ``traversal_offsets`` (latent units), ``sensitivity`` (D,) over the
    grid cells at +- 1 sd of the latent means, and ``cells`` (positions in `images`, seeded).
    """
    mu, logvar = encode_images(model, images)
    kl = latent_usage(mu, logvar)
    rng = np.random.default_rng(seed)
    cells = np.sort(rng.choice(len(images), min(grid_cells, len(images)), replace=False))
    sd = mu.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0).astype(np.float32)
    dims = most_used(kl, min(TRAVERSAL_DIMS, kl.size))
    offsets = np.asarray(TRAVERSAL_OFFSETS, dtype=np.float32)
    z = mu[cells]
    grids = {
        "originals": _unit(_decoder_space(model, images[cells])),
        "reconstructions": _unit(decode_images(model, z)),
        "interpolation": _unit(interpolate(model, z[0], z[min(1, len(z) - 1)])),
        "traversal": _unit(traverse(model, z[0], dims, offsets * sd[dims].mean())),
        "traversal_dims": dims,
        "traversal_offsets": offsets * sd[dims].mean(),
        "sensitivity": sensitivity(model, z, sd),
        "cells": cells,
    }
    return kl, grids


@torch.no_grad()
def _decoder_space(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """The inputs as the decoder sees them (a Bernoulli VAE's [0, 1] scaling), (n, C, H, W)."""
    scale = getattr(model, "scale_inputs", None)
    if scale is None:
        return np.asarray(images, dtype=np.float32)
    return scale(torch.as_tensor(images, dtype=torch.float32)).numpy()


def _unit(images: np.ndarray) -> np.ndarray:
    """Images clipped to [0, 1], float32: the crops' normalised intensity range."""
    return np.clip(images, 0.0, 1.0).astype(np.float32)


def latent_analysis(
    params: VAEModel, data: ModelData, rows: np.ndarray, *, seed: int, paths: ResultsPaths
) -> dict:
    """The evaluate task's latent analyses of a VAE, on test cells `rows` (a bool mask).

    Writes ``latent_usage.csv`` (dimension, kl) and ``latent_grids.npz`` (the `analyse` grids
    with the grid cells' ``cell_ids`` and ``labels``, and ``used_kl_nats``); returns the
    summary for metrics.json, or ``{}`` when the entry asks for no cell (``analysis_cells:
    0``) or there are no test cells.
    """
    from cellbench.models.images import load_image_model
    from cellbench.models.inputs import CELL_ID

    positions = np.flatnonzero(rows)
    if params.analysis_cells == 0 or len(positions) == 0:
        return {}
    rng = np.random.default_rng([seed, 18])
    if len(positions) > USAGE_CELLS:
        positions = np.sort(rng.choice(positions, USAGE_CELLS, replace=False))
    model, _ = load_image_model(paths.torch_model_file(params.name, seed))
    images = data.crops[positions].to_array()
    kl, grids = analyse(model, images, params.analysis_cells, seed)
    chosen = positions[grids.pop("cells")]
    grids["cell_ids"] = data.cells[CELL_ID].to_numpy()[chosen].astype(str)
    grids["labels"] = np.asarray(data.labels)[chosen].astype(str)
    grids["used_kl_nats"] = np.float64(USED_KL_NATS)  # the report's threshold line
    table = pd.DataFrame({"dimension": np.arange(kl.size), "kl": kl})
    with atomic_path(paths.latent_usage(params.name, seed)) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(paths.latent_grids(params.name, seed)) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **grids)
    return {
        "latent_dimensions_used": int((kl > USED_KL_NATS).sum()),
        "latent_kl_total": float(kl.sum()),
        "latent_analysis_cells": len(chosen),
    }
