"""The background-confound experiments of a plate, as crop kinds of its store.

From unmasked windows centred on each cell (kind ``bg_original``) this builds ``bg_masked``,
``bg_swap_same``, ``bg_swap_diff`` and ``bg_cell_free`` (see `cellbench.crops.background`),
and records each cell's donor in the ``/cells`` table: the donor cell's id for swaps, the
field and window corner for cell-free backgrounds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.config import BackgroundConfig
from cellbench.config.crop_kinds import BACKGROUND_ORIGINAL, background_kind
from cellbench.crops.background import (
    choose_donors,
    mask_outside,
    paste_on_windows,
    swap_backgrounds,
)
from cellbench.crops.extract import MASK_CELL, CropSpec, crop_spec

ORIGINAL = background_kind(BACKGROUND_ORIGINAL)


def original_spec(settings: BackgroundConfig) -> CropSpec:
    """The unmasked cell-centred windows every experiment starts from."""
    return crop_spec(ORIGINAL, settings.size_px)


def experiment_kinds(
    settings: BackgroundConfig,
    table: pd.DataFrame,
    crops: np.ndarray,
    masks: np.ndarray,
    free_windows: np.ndarray,
    free_origins: list[str],
    label_column: str,
) -> list[tuple[CropSpec, np.ndarray, np.ndarray]]:
    """Build every configured experiment; add the donor columns to `table` in place.

    Parameters
    ----------
    settings : BackgroundConfig
    table : DataFrame
        The plate's `/cells` table, one row per crop.
    crops, masks : ndarray
        (N, C, S, S) ``bg_original`` windows and their (N, S, S) masks, in table order.
    free_windows : (W, C, S, S) ndarray
        Windows of the plate's fields that hold no cell.
    free_origins : list of str
        Where each free window comes from, e.g. ``A-01-02@(10,140)``.
    label_column : str
        The class that ``swap_same`` / ``swap_diff`` keep or change.
    """
    rng = np.random.default_rng(settings.seed)
    classes = table[label_column].astype(str).to_numpy() if label_column in table else None
    # A donor needs background pixels to lend; a window filled with cells has none.
    eligible = ((masks == 0).any(axis=(1, 2))) if len(masks) else np.zeros(0, bool)
    kinds = []
    for experiment in settings.experiments:
        spec = crop_spec(background_kind(experiment), settings.size_px)
        if experiment == "masked":
            images = mask_outside(crops, masks, MASK_CELL)
        elif experiment in ("swap_same", "swap_diff"):
            if classes is None:
                raise ValueError(f"{experiment} needs the class column {label_column!r} in /cells")
            donors = choose_donors(classes, experiment == "swap_same", rng, eligible=eligible)
            images = swap_backgrounds(crops, masks, donors, rng)
            ids = table["cell_id"].to_numpy()
            table[f"donor_{experiment}"] = np.where(donors >= 0, ids[np.maximum(donors, 0)], "")
        else:
            assignment = (
                rng.integers(0, len(free_windows), len(crops))
                if len(free_windows)
                else np.full(len(crops), -1)
            )
            images = (
                paste_on_windows(crops, masks, free_windows, assignment)
                if len(free_windows)
                else np.zeros_like(crops)
            )
            origins = np.asarray(free_origins + [""])
            table["donor_cell_free"] = origins[assignment]
        kinds.append((spec, images.astype(crops.dtype), masks))
    return kinds
