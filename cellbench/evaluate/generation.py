"""A generator's report grids: test crops beside the crops generated from their features.

For a few test treatments (the model's ``treatment_columns``, or the label where the cells lack
those columns) and a few test cells of each, the crop as read and the crop the generator makes
from the cell's features; and the images generated along the line between two treatments' mean
feature vectors, standardised as the generator sees them. `generation_analysis` is the
evaluate task's hook for model types that declare ``gives_generation_grids`` (CP2Image): a
handful of cells, so it costs seconds, written to ``generation_grids.npz`` for the report
(`cellbench.report.generation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cellbench.io.atomic import atomic_path

if TYPE_CHECKING:
    from cellbench.config import CP2ImageModel
    from cellbench.models.crop_rows import CropRows
    from cellbench.models.inputs import ModelData
    from cellbench.paths import ResultsPaths

INTERPOLATION_T = (0.0, 0.25, 0.5, 0.75, 1.0)  # positions from the first mean to the second
TREATMENT_JOIN = " @ "  # between a treatment's column values (compound @ concentration)


def cell_treatments(
    columns: list[str], cells: pd.DataFrame, labels: np.ndarray
) -> tuple[np.ndarray, str]:
    """Each cell's treatment and what names it: the values of `columns`, else the label.

    Returns
    -------
    (N,) object ndarray of str, str
        The values of `columns` joined by `TREATMENT_JOIN` (``DMSO @ 0.0``) when the cells
        have every one of them, else each cell's label; and the columns joined by ``+``, or
        ``label``.
    """
    if not all(c in cells.columns for c in columns):
        return np.asarray(labels).astype(str).astype(object), "label"
    joined = [TREATMENT_JOIN.join(row) for row in cells[columns].astype(str).to_numpy()]
    return np.array(joined, dtype=object), "+".join(columns)


def choose_cells(
    treatments: np.ndarray, n_treatments: int, n_cells: int, seed
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded grid cells: `n_treatments` treatments and `n_cells` cells of each, at most.

    Treatments with at least `n_cells` cells are drawn at random; when fewer than
    `n_treatments` have that many, the treatments with the most cells are taken (ties by
    name) and every row holds as many cells as the smallest of them.

    Parameters
    ----------
    treatments : (N,) array of str
    n_treatments, n_cells : int
        At least 1.
    seed : int or sequence of int
        Of `numpy.random.default_rng`.

    Returns
    -------
    chosen : (T,) ndarray of str
        The treatments, sorted.
    positions : (T, K) int ndarray
        Positions in `treatments` of each row's cells, ascending.
    """
    names, counts = np.unique(np.asarray(treatments).astype(str), return_counts=True)
    rng = np.random.default_rng(seed)
    full = np.flatnonzero(counts >= n_cells)
    if len(full) >= n_treatments:
        picked = np.sort(rng.choice(full, n_treatments, replace=False))
    else:
        picked = np.sort(np.argsort(-counts, kind="stable")[:n_treatments])  # ties: by name
    k = min(n_cells, int(counts[picked].min()))
    as_str = np.asarray(treatments).astype(str)
    positions = [np.flatnonzero(as_str == names[i]) for i in picked]
    positions = [np.sort(rng.choice(cells, k, replace=False)) for cells in positions]
    return names[picked], np.stack(positions).astype(np.int64)


def interpolate_means(
    generator, start: np.ndarray, end: np.ndarray, t=INTERPOLATION_T
) -> np.ndarray:
    """(len(t), C, S, S) crops generated from ``(1 - t) * start + t * end``.

    `start` and `end` are (F,) standardised feature vectors; t = 0 and 1 give their own crops.
    """
    from cellbench.models.generator import generate_standardised

    t = np.asarray(t, dtype=np.float32)[:, None]
    line = (1 - t) * np.asarray(start, dtype=np.float32) + t * np.asarray(end, dtype=np.float32)
    return generate_standardised(generator, line)


def analyse(
    generator,
    standardised: np.ndarray,
    treatments: np.ndarray,
    crops: CropRows,
    *,
    n_treatments: int,
    n_cells: int,
    seed,
) -> dict[str, np.ndarray]:
    """The grids of a generator on N cells: real and generated crops, and an interpolation.

    Parameters
    ----------
    generator : nn.Module
        (n, F) standardised features -> (n, C, S, S) crops.
    standardised : (N, F) float array
        The cells' features as the generator sees them (imputed and standardised).
    treatments : (N,) array of str
    crops : CropRows
        The N cells' crops; only the grid cells' are read.
    n_treatments, n_cells, seed
        Of `choose_cells`.

    Returns
    -------
    dict
        ``real`` and ``generated`` (T, K, C, S, S) float32 (intensities as read and as made,
        unclipped), ``features`` (T, K, F) float32 (the vectors the crops were generated
        from), ``treatments`` (T,) str, ``cells`` (T, K) positions among the N cells; with
        two treatments or more, ``interpolation`` (len(t), C, S, S) between the first two
        treatments' ``interpolation_means`` (2, F) (the mean over all their N cells), at
        ``interpolation_t``, with ``interpolation_treatments`` (2,).
    """
    from cellbench.models.generator import generate_standardised

    standardised = np.asarray(standardised, dtype=np.float32)
    chosen, cells = choose_cells(treatments, n_treatments, n_cells, seed)
    flat = cells.ravel()
    real = crops[flat].to_array()
    generated = generate_standardised(generator, standardised[flat])
    grids = {
        "real": real.reshape(*cells.shape, *real.shape[1:]),
        "generated": generated.reshape(*cells.shape, *generated.shape[1:]),
        "features": standardised[flat].reshape(*cells.shape, -1),
        "treatments": chosen.astype(str),
        "cells": cells,
    }
    if len(chosen) >= 2:
        as_str = np.asarray(treatments).astype(str)
        means = np.stack([standardised[as_str == t].mean(axis=0) for t in chosen[:2]])
        grids["interpolation"] = interpolate_means(generator, means[0], means[1])
        grids["interpolation_t"] = np.asarray(INTERPOLATION_T, dtype=np.float32)
        grids["interpolation_means"] = means.astype(np.float32)
        grids["interpolation_treatments"] = chosen[:2].astype(str)
    return grids


def generation_analysis(
    params: CP2ImageModel, data: ModelData, rows: np.ndarray, *, seed: int, paths: ResultsPaths
) -> dict:
    """The evaluate task's generation grids of a generator, on test cells `rows` (a bool mask).

    Writes ``generation_grids.npz`` (the `analyse` grids with the grid cells' ``cell_ids``
    (T, K) and ``treatment_by``, what names a treatment); returns the summary for
    metrics.json, or ``{}`` when the entry asks for no cell (``analysis_cells: 0``) or there
    are no test cells.
    """
    from cellbench.models.generator import load_generator
    from cellbench.models.inputs import CELL_ID

    positions = np.flatnonzero(rows)
    if params.analysis_cells == 0 or len(positions) == 0:
        return {}
    generator, stats = load_generator(paths.torch_model_file(params.name, seed))
    treatments, named_by = cell_treatments(params.treatment_columns, data.cells, data.labels)
    grids = analyse(
        generator,
        stats.apply(np.asarray(data.features[positions], dtype=np.float64)),
        treatments[positions],
        data.crops[positions],
        n_treatments=params.analysis_treatments,
        n_cells=params.analysis_cells,
        seed=[seed, 19],
    )
    chosen = positions[grids.pop("cells")]
    grids["cell_ids"] = data.cells[CELL_ID].to_numpy()[chosen].astype(str)
    grids["treatment_by"] = np.asarray(named_by)
    with atomic_path(paths.generation_grids(params.name, seed)) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **grids)
    return {
        "generation_grid_treatments": int(chosen.shape[0]),
        "generation_grid_cells": int(chosen.size),
    }
