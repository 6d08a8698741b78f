"""Operations on label images shared by every backend: pairing, filtering, clearing borders."""

from __future__ import annotations

import numpy as np
from skimage import segmentation


def filter_by_area(labels: np.ndarray, min_area: int, max_area: int | None) -> np.ndarray:
    """Remove objects smaller than `min_area` or larger than `max_area` pixels."""
    areas = np.bincount(labels.ravel())
    keep = areas >= min_area
    if max_area is not None:
        keep &= areas <= max_area
    keep[0] = False
    return np.where(keep[labels], labels, 0).astype(np.int32)


def pair_nuclei(cells: np.ndarray, nuclei: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give each cell the nucleus it overlaps most, relabelled to the cell's label.

    Parameters
    ----------
    cells, nuclei : (Y, X) ndarray of int
        Independent label images (0 = background).

    Returns
    -------
    cells : (Y, X) ndarray of int32
        Unchanged labels.
    nuclei : (Y, X) ndarray of int32
        The nucleus of cell c, clipped to the cell, labelled c; nuclei that no cell claims
        are dropped, and a cell without a nucleus has none (label 0 there).
    """
    cells = cells.astype(np.int32)
    nuclei = nuclei.astype(np.int32)
    both = (cells > 0) & (nuclei > 0)
    if not both.any():
        return cells, np.zeros_like(cells)
    pairs = cells[both].astype(np.int64) * (int(nuclei.max()) + 1) + nuclei[both]
    codes, counts = np.unique(pairs, return_counts=True)
    cell_of, nucleus_of = np.divmod(codes, int(nuclei.max()) + 1)
    # For each cell, the pair with the most shared pixels (ties: the lowest nucleus label).
    order = np.lexsort((nucleus_of, -counts, cell_of))
    first = np.unique(cell_of[order], return_index=True)[1]
    owner = np.zeros(int(cells.max()) + 1, np.int64)  # cell label -> its nucleus label
    owner[cell_of[order][first]] = nucleus_of[order][first]
    paired = both & (owner[cells] == nuclei)
    return cells, np.where(paired, cells, 0).astype(np.int32)


def nuclei_as_cells(nuclei: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """When only nuclei are segmented, every nucleus is a cell of its own."""
    nuclei = nuclei.astype(np.int32)
    return nuclei.copy(), nuclei


def finish(
    cells: np.ndarray,
    nuclei: np.ndarray,
    *,
    remove_border_objects: bool,
    min_cell_area_px: int,
    max_cell_area_px: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Drop cells by area and border contact (with their nuclei); renumber 1..N."""
    cells = filter_by_area(cells, min_cell_area_px, max_cell_area_px)
    if remove_border_objects:
        cells = segmentation.clear_border(cells)
    nuclei = np.where(np.isin(nuclei, np.unique(cells[cells > 0])), nuclei, 0)
    relabelled, forward, _ = segmentation.relabel_sequential(cells)
    return relabelled.astype(np.int32), forward[nuclei].astype(np.int32)
