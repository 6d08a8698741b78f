"""CP2Image's report figures: the real / generated grid and the interpolation, as PNG files."""

from __future__ import annotations

import numpy as np
import pytest

from cellbench.config import CP2ImageModel
from cellbench.io.atomic import atomic_path
from cellbench.paths import ResultsPaths
from cellbench.report.generation import (
    generation_figures,
    generation_grid_figure,
    treatment_interpolation_figure,
)

RNG = np.random.default_rng(0)
PNG = b"\x89PNG\r\n\x1a\n"


def grids(treatments: int = 3, cells: int = 2, channels: int = 3, interpolation: bool = True):
    """Arrays as `cellbench.evaluate.generation.generation_analysis` writes them."""
    shape = (treatments, cells, channels, 8, 8)
    written = {
        "real": RNG.random(shape, dtype=np.float32),
        "generated": RNG.random(shape, dtype=np.float32),
        "features": RNG.normal(size=(treatments, cells, 4)).astype(np.float32),
        "treatments": np.array([f"cmpd{t} @ 1.0" for t in range(treatments)]),
        "cell_ids": np.array([[f"c{t}_{k}" for k in range(cells)] for t in range(treatments)]),
        "treatment_by": np.asarray("Metadata_Compound+Metadata_Concentration"),
    }
    if interpolation:
        written["interpolation"] = RNG.random((5, channels, 8, 8), dtype=np.float32)
        written["interpolation_t"] = np.array([0, 0.25, 0.5, 0.75, 1], dtype=np.float32)
        written["interpolation_means"] = RNG.normal(size=(2, 4)).astype(np.float32)
        written["interpolation_treatments"] = written["treatments"][:2]
    return written


def write(paths: ResultsPaths, model: str, arrays: dict) -> None:
    with atomic_path(paths.generation_grids(model, 0)) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def test_the_grid_pairs_each_real_crop_with_its_generated_one():
    arrays = grids()
    fig = generation_grid_figure(arrays["real"], arrays["generated"], arrays["treatments"])
    assert len(fig.axes) == 3 * 4 and all(len(ax.images) == 1 for ax in fig.axes)
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert titles == ["real 1", "generated 1", "real 2", "generated 2"]
    assert [fig.axes[4 * t].get_ylabel() for t in range(3)] == list(arrays["treatments"])
    assert fig.axes[0].images[0].get_array().shape == (8, 8, 3)  # an RGB composite
    with pytest.raises(ValueError, match=r"\(T, K, C, S, S\)"):
        generation_grid_figure(arrays["real"], arrays["generated"][:, :1], arrays["treatments"])


def test_the_interpolation_is_one_row_labelled_by_t():
    arrays = grids()
    fig = treatment_interpolation_figure(
        arrays["interpolation"], arrays["interpolation_t"], ["a", "b"]
    )
    assert [ax.get_title() for ax in fig.axes] == [
        "t = 0.00",
        "t = 0.25",
        "t = 0.50",
        "t = 0.75",
        "t = 1.00",
    ]


def test_the_gallery_writes_both_figures_as_png(tmp_path):
    paths = ResultsPaths(tmp_path)
    models = [
        CP2ImageModel(name=name, crop_kind="whole_cell", size_px=8) for name in ("g", "h", "x")
    ]
    write(paths, "g", grids())
    write(paths, "h", grids(treatments=1, channels=1, interpolation=False))
    written = generation_figures(paths, models, 0)  # x: never evaluated, skipped
    names = sorted(p.name for p in written)
    assert names == [
        "generation_grid_g.png",
        "generation_grid_h.png",
        "generation_interpolation_g.png",
    ]
    for path in written:
        assert path.parent == paths.report_dir and path.read_bytes()[:8] == PNG
        assert path.with_suffix(".pdf").exists()
