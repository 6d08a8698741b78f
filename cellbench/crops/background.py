"""Crops with a changed background, for the background-confound study.

Variants: ``masked`` (`mask_outside`); ``swap_same`` / ``swap_diff``, the cell pasted onto a
donor's crop of the same / another class with the donor's centre cell removed (`choose_donors`,
`swap_backgrounds`); ``cell_free``, the cell pasted onto a window with no cell
(`cell_free_windows`, `paste_on_windows`). Pasting follows the reference synthesis: optional
per-channel min-max normalisation of both images, then ``bg[fg > 0] = fg[fg > 0]`` with the
cell's mask (bit 1) as the foreground region.
"""

from __future__ import annotations

import numpy as np

from cellbench.crops.extract import MASK_CELL


def mask_outside(crops: np.ndarray, masks: np.ndarray, bit: int = MASK_CELL) -> np.ndarray:
    """Zero the pixels of each crop whose mask lacks `bit`.

    Parameters
    ----------
    crops : (N, C, S, S) ndarray
    masks : (N, S, S) ndarray of uint8
        Bit masks; a pixel is kept when ``mask & bit`` is non-zero (any of the bits of `bit`).
    bit : int

    Returns
    -------
    (N, C, S, S) ndarray, dtype of `crops`
    """
    keep = (masks & bit) != 0
    return np.where(keep[:, np.newaxis], crops, np.zeros((), crops.dtype))


def minmax(image: np.ndarray) -> np.ndarray:
    """Scale each channel to [0, 1] by its own minimum and maximum.

    Parameters
    ----------
    image : (C, S, S) ndarray
        Any leading axes are allowed: the range is taken over the last two axes.

    Returns
    -------
    (C, S, S) ndarray of float32
        A constant channel becomes 0.
    """
    values = image.astype(np.float32)
    low = values.min(axis=(-2, -1), keepdims=True)
    span = values.max(axis=(-2, -1), keepdims=True) - low
    scaled = (values - low) / np.where(span > 0, span, np.float32(1))
    return np.where(span > 0, scaled, np.float32(0)).astype(np.float32, copy=False)


def paste(
    foreground: np.ndarray,
    inside: np.ndarray,
    background: np.ndarray,
    normalise: bool = False,
) -> np.ndarray:
    """Foreground pixels inside a region, background pixels elsewhere.

    Parameters
    ----------
    foreground, background : (C, S, S) ndarray
        Leading axes are allowed, e.g. (N, C, S, S) with `inside` (N, S, S).
    inside : (S, S) ndarray of bool
        Where the foreground is kept.
    normalise : bool
        Min-max normalise both images per channel first (`minmax`, over the whole image: pass a
        foreground that is zero outside the cell to match the reference synthesis).

    Returns
    -------
    (C, S, S) ndarray
        float32 with `normalise`, else the inputs' common dtype (``np.result_type``).
    """
    if foreground.shape != background.shape:
        raise ValueError(f"foreground {foreground.shape} and background {background.shape} differ")
    if normalise:
        foreground, background = minmax(foreground), minmax(background)
    return np.where(np.asarray(inside, bool)[..., np.newaxis, :, :], foreground, background)


def remove_centre_cell(crop: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A donor background: the donor's own centre cell replaced by background pixels.

    Background pixels are those with no mask bit set (not this cell, not another cell). Each
    pixel of the centre cell (bit 1) takes the values of a background pixel of the same crop
    drawn at random with replacement; one pixel is drawn for all channels together, so the
    channels stay jointly realistic. Other pixels are unchanged.

    Parameters
    ----------
    crop : (C, S, S) ndarray
        The donor's unmasked crop (a masked crop has only zeros as background).
    mask : (S, S) ndarray of uint8
    rng : numpy.random.Generator

    Returns
    -------
    (C, S, S) ndarray, dtype of `crop`

    Raises
    ------
    ValueError
        When the crop has no background pixel.
    """
    background = mask == 0
    n_background = int(background.sum())
    if n_background == 0:
        raise ValueError("the donor crop has no background pixel (mask == 0) to fill from")
    centre = (mask & MASK_CELL) != 0
    out = crop.copy()
    drawn = rng.integers(0, n_background, size=int(centre.sum()))
    out[:, centre] = crop[:, background][:, drawn]
    return out


def choose_donors(
    classes: np.ndarray,
    same_class: bool,
    rng: np.random.Generator,
    eligible: np.ndarray | None = None,
) -> np.ndarray:
    """Pick for each cell a random donor of the same or of another class.

    Parameters
    ----------
    classes : (N,) ndarray
        Class of each cell (any sortable dtype).
    same_class : bool
        Donors of the same class (``swap_same``) or of any other class (``swap_diff``).
    rng : numpy.random.Generator
    eligible : (N,) ndarray of bool, optional
        Cells that may be donors (e.g. those whose crop has background pixels); default all.

    Returns
    -------
    (N,) ndarray of int64
        Donor index j != i, uniform over the eligible candidates; -1 where there is none.
    """
    classes = np.asarray(classes)
    n = len(classes)
    eligible = np.ones(n, bool) if eligible is None else np.asarray(eligible, bool)
    if eligible.shape != (n,):
        raise ValueError(f"eligible has shape {eligible.shape}, expected ({n},)")
    if n == 0:
        return np.zeros(0, np.int64)
    _, kind = np.unique(classes, return_inverse=True)
    kind = kind.ravel()
    # Eligible cells sorted by class: class k holds positions [start[k], start[k] + count[k]).
    pool = np.flatnonzero(eligible)
    pool = pool[np.argsort(kind[pool], kind="stable")]
    count = np.bincount(kind[pool], minlength=kind.max() + 1)
    start = np.cumsum(count) - count
    rank = np.zeros(n, np.int64)  # position of an eligible cell within its class block
    rank[pool] = np.arange(len(pool)) - start[kind[pool]]
    if same_class:
        n_candidates = count[kind] - eligible
    else:
        n_candidates = len(pool) - count[kind]
    drawn = rng.integers(0, np.maximum(n_candidates, 1))
    if same_class:
        drawn += eligible & (drawn >= rank)  # skip the cell itself
        position = start[kind] + drawn
    else:
        position = np.where(drawn < start[kind], drawn, drawn + count[kind])
    donors = np.full(n, -1, np.int64)
    has = n_candidates > 0
    donors[has] = pool[position[has]]
    return donors


def cell_free_windows(
    cells: np.ndarray, size: int, max_windows: int, rng: np.random.Generator
) -> np.ndarray:
    """Random windows of a label image that hold no cell pixel.

    Every window fully inside the image whose labels are all 0 is found with a summed-area
    table (O(Y * X)); at most `max_windows` of them are drawn without replacement. Windows may
    overlap one another.

    Parameters
    ----------
    cells : (Y, X) ndarray of int
        Cell label image, 0 = no cell.
    size : int
        Window side in pixels.
    max_windows : int
    rng : numpy.random.Generator

    Returns
    -------
    (K, 2) ndarray of int64
        Top-left corners (y, x), K <= max_windows, in the order drawn.
    """
    if size < 1 or max_windows < 0:
        raise ValueError(f"size must be >= 1 and max_windows >= 0, got {size}, {max_windows}")
    height, width = cells.shape
    if size > height or size > width:
        return np.zeros((0, 2), np.int64)
    table = np.zeros((height + 1, width + 1), np.int64)
    table[1:, 1:] = np.cumsum(np.cumsum(cells != 0, axis=0, dtype=np.int64), axis=1)
    occupied = (
        table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]
    )  # (Y - size + 1, X - size + 1): cell pixels of the window starting there
    free = np.flatnonzero(occupied == 0)
    picked = rng.choice(free, size=min(max_windows, len(free)), replace=False)
    return np.stack(np.unravel_index(picked, occupied.shape), axis=1).astype(np.int64)


def swap_backgrounds(
    crops: np.ndarray,
    masks: np.ndarray,
    donors: np.ndarray,
    rng: np.random.Generator,
    normalise: bool = False,
    *,
    donor_crops: np.ndarray | None = None,
    donor_masks: np.ndarray | None = None,
) -> np.ndarray:
    """Paste each cell onto the background of its donor, the donor's centre cell removed.

    Parameters
    ----------
    crops : (N, C, S, S) ndarray
        Unmasked crops (the donors' backgrounds are taken from them).
    masks : (N, S, S) ndarray of uint8
    donors : (N,) ndarray of int
        From `choose_donors`: rows of `donor_crops`; -1 = no donor.
    rng : numpy.random.Generator
        Draws the fill of the donors' removed cells (`remove_centre_cell`), in row order, so
        that rows split into consecutive blocks, each with its own donors, draw the same fill.
    normalise : bool
        Min-max normalise the cell (zero outside its mask) and the donor background per channel.
    donor_crops : (D, C, S, S) ndarray, optional
        Unmasked crops the donors index (e.g. only the donors of a block of rows, read back
        from a store); default `crops`.
    donor_masks : (D, S, S) ndarray of uint8, optional
        Their masks; default `masks`. Give both or neither.

    Returns
    -------
    (N, C, S, S) ndarray
        dtype of `crops`, or float32 with `normalise`; rows without a donor are all zeros.
    """
    donors = np.asarray(donors)
    if donors.shape != (len(crops),):
        raise ValueError(f"donors has shape {donors.shape}, expected ({len(crops)},)")
    if (donor_crops is None) != (donor_masks is None):
        raise ValueError("give both donor_crops and donor_masks, or neither")
    if donor_crops is None:
        donor_crops, donor_masks = crops, masks
    elif donor_crops.shape[1:] != crops.shape[1:] or len(donor_masks) != len(donor_crops):
        raise ValueError(
            f"donor_crops {donor_crops.shape} / donor_masks {donor_masks.shape} do not match "
            f"crops {crops.shape}"
        )
    out = np.zeros(crops.shape, np.float32 if normalise else crops.dtype)
    for i in np.flatnonzero(donors >= 0):
        j = donors[i]
        background = remove_centre_cell(donor_crops[j], donor_masks[j], rng)
        inside = (masks[i] & MASK_CELL) != 0
        foreground = np.where(inside, crops[i], np.zeros((), crops.dtype))
        out[i] = paste(foreground, inside, background, normalise)
    return out


def paste_on_windows(
    crops: np.ndarray,
    masks: np.ndarray,
    windows_images: np.ndarray,
    assignment: np.ndarray,
    normalise: bool = False,
) -> np.ndarray:
    """Paste each cell onto an image of a cell-free window (``cell_free``).

    Parameters
    ----------
    crops : (N, C, S, S) ndarray
    masks : (N, S, S) ndarray of uint8
    windows_images : (W, C, S, S) ndarray
        Crops of cell-free windows (see `cell_free_windows`).
    assignment : (N,) ndarray of int
        Window of each cell; -1 = none.
    normalise : bool
        Min-max normalise the cell (zero outside its mask) and the window per channel.

    Returns
    -------
    (N, C, S, S) ndarray
        Common dtype of the inputs, or float32 with `normalise`; rows with -1 are all zeros.
    """
    assignment = np.asarray(assignment)
    if assignment.shape != (len(crops),):
        raise ValueError(f"assignment has shape {assignment.shape}, expected ({len(crops)},)")
    if windows_images.shape[1:] != crops.shape[1:]:
        raise ValueError(f"windows {windows_images.shape[1:]} and crops {crops.shape[1:]} differ")
    dtype = np.float32 if normalise else np.result_type(crops, windows_images)
    out = np.zeros(crops.shape, dtype)
    rows = np.flatnonzero(assignment >= 0)
    if len(rows):
        inside = (masks[rows] & MASK_CELL) != 0
        foreground = mask_outside(crops[rows], masks[rows], MASK_CELL)
        out[rows] = paste(foreground, inside, windows_images[assignment[rows]], normalise)
    return out
