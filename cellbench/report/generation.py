"""Figures of a generator's grids (CP2Image), drawn from what its evaluate task wrote.

``generation_grids.npz`` (`cellbench.evaluate.generation`) holds, for a few test treatments,
a few test cells' crops and the crops generated from their features, and the images generated
between two treatments' mean standardised feature vectors. Two figures per model: the grid
(``generation_grid_<model>``: a row per treatment, a real / generated pair of columns per cell)
and the interpolation (``generation_interpolation_<model>``: one row). Crops are drawn as the
VAE's grids are (`cellbench.report.figures_latent.image_grid_figure`): colour composites,
one display scale per figure, so real and generated panels compare. No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cellbench.paths import ResultsPaths
from cellbench.report.figures import save_figure
from cellbench.report.figures_latent import image_grid_figure


def generation_grid_figure(
    real: np.ndarray, generated: np.ndarray, treatments: Sequence[str], *, title: str = ""
) -> Figure:
    """(T, K, C, S, S) real crops and those generated from their features, cell by cell.

    Row t is treatment ``treatments[t]``; its columns are K pairs: a cell's crop ("real k"),
    then the crop generated from its features ("generated k").
    """
    real, generated = np.asarray(real), np.asarray(generated)
    if real.shape != generated.shape or real.ndim != 5:
        raise ValueError(
            f"real and generated must both be (T, K, C, S, S); got {real.shape} and "
            f"{generated.shape}"
        )
    rows, cells = real.shape[:2]
    pairs = np.stack([real, generated], axis=2).reshape(rows, 2 * cells, *real.shape[2:])
    labels = [f"{kind} {k + 1}" for k in range(cells) for kind in ("real", "generated")]
    return image_grid_figure(
        pairs,
        [str(t) for t in treatments],
        labels,
        title=title or "test cells and the crops generated from their features",
    )


def treatment_interpolation_figure(
    strip: np.ndarray, t: Sequence[float], ends: Sequence[str], *, title: str = ""
) -> Figure:
    """(steps, C, S, S) crops generated between two treatments' mean features, in one row."""
    return image_grid_figure(
        np.asarray(strip)[None],
        [f"{ends[0]} ->\n{ends[1]}"],
        [f"t = {float(x):.2f}" for x in t],
        title=title or "generated between two treatments' mean features",
    )


def generation_figures(paths: ResultsPaths, models: list, seed: int) -> list[Path]:
    """Each generator's grid and interpolation (first seed), from ``generation_grids.npz``.

    A model without the file (not evaluated, or ``analysis_cells: 0``) is skipped, and the
    interpolation of a model whose test cells hold a single treatment.
    """
    figures = []
    for model in models:
        path = paths.generation_grids(model.name, seed)
        if not path.exists():
            continue
        with np.load(path) as loaded:
            grids = {key: loaded[key] for key in loaded.files}
        name = f"{model.name} (seed {seed}, test cells)"
        title = f"{name}: real crops / crops generated from their features"
        made = {
            "generation_grid": generation_grid_figure(
                grids["real"], grids["generated"], grids["treatments"], title=title
            )
        }
        if "interpolation" in grids:
            made["generation_interpolation"] = treatment_interpolation_figure(
                grids["interpolation"],
                grids["interpolation_t"],
                grids["interpolation_treatments"],
                title=f"{name}: between two treatments' mean features",
            )
        for stem, figure in made.items():
            written = save_figure(figure, paths.report_figure(f"{stem}_{model.name}"))
            figures.append(next(p for p in written if p.suffix == ".png"))
    return figures
