"""The VAE latent figures: panel counts, the threshold line, and the gallery from written files."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.config import VAEModel
from cellbench.paths import ResultsPaths
from cellbench.report import gallery
from cellbench.report.figures_latent import (
    interpolation_figure,
    latent_usage_figure,
    reconstruction_figure,
    sensitivity_figure,
    traversal_figure,
)

RNG = np.random.default_rng(0)


def test_latent_usage_bars_are_sorted_with_the_threshold_line():
    kl = np.array([0.001, 0.5, 0.02, 0.0])
    fig = latent_usage_figure(kl, 0.01)
    (ax,) = fig.axes
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == sorted(kl, reverse=True)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "0", "3"]
    (line,) = ax.get_lines()
    assert list(line.get_ydata()) == [0.01, 0.01]
    assert "2 of 4 used" in ax.get_title()


def test_sensitivity_bars_one_per_dimension():
    (ax,) = sensitivity_figure(np.array([0.0, 0.3, 0.1])).axes
    assert [bar.get_height() for bar in ax.patches] == [0.3, 0.1, 0.0]


def test_grids_draw_one_panel_per_image():
    traversal = RNG.random((3, 5, 2, 8, 8))
    fig = traversal_figure(traversal, [4, 0, 2], np.linspace(-2, 2, 5))
    assert len(fig.axes) == 15 and all(len(ax.images) == 1 for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "z4" and fig.axes[0].get_title() == "-2.00"
    assert len(interpolation_figure(RNG.random((7, 3, 8, 8)), ["a", "b"]).axes) == 7
    originals, made = RNG.random((4, 1, 8, 8)), RNG.random((4, 1, 8, 8))
    fig = reconstruction_figure(originals, made, list("abcd"))
    assert len(fig.axes) == 8
    shown = fig.axes[4].images[0].get_array()  # the first reconstruction, grey
    assert shown.shape == (8, 8, 3)


def test_gallery_draws_the_five_figures_from_the_files(tmp_path):
    paths = ResultsPaths(tmp_path)
    model = VAEModel(name="vae", crop_kind="nuclear", latent_size=4)
    folder = paths.model_dir("vae", 0)
    folder.mkdir(parents=True)
    pd.DataFrame({"dimension": range(4), "kl": [0.2, 0.0, 0.05, 0.001]}).to_csv(
        paths.latent_usage("vae", 0), index=False
    )
    np.savez_compressed(
        paths.latent_grids("vae", 0),
        originals=RNG.random((3, 2, 8, 8)),
        reconstructions=RNG.random((3, 2, 8, 8)),
        interpolation=RNG.random((9, 2, 8, 8)),
        traversal=RNG.random((4, 7, 2, 8, 8)),
        traversal_dims=np.array([0, 2, 3, 1]),
        traversal_offsets=np.linspace(-3, 3, 7),
        sensitivity=np.array([0.1, 0.0, 0.05, 0.01]),
        cell_ids=np.array(["c1", "c2", "c3"]),
        labels=np.array(["a", "b", "a"]),
        used_kl_nats=0.01,
    )
    written = gallery.latent_figures(paths, [model], 0)
    names = sorted(p.name for p in written)
    assert names == sorted(
        f"{stem}_vae.png"
        for stem in (
            "latent_usage",
            "latent_sensitivity",
            "latent_traversal",
            "latent_interpolation",
            "reconstructions",
        )
    )
    assert all(p.stat().st_size > 1000 for p in written)
    other = VAEModel(name="other", crop_kind="nuclear")
    assert gallery.latent_figures(paths, [other], 0) == []  # no files: no figure
