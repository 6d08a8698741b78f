"""Grey-level co-occurrence (GLCM) texture of every object of a label image at once.

Definition, per object, channel and offset (distance ``d`` px, angle ``a`` degrees):

1. The object's pixels are scaled by the object's own maximum to ``levels`` grey levels:
   ``q = floor(value / max * (levels - 1))``, clipped to ``[0, levels - 1]``. An object whose
   maximum is not positive (e.g. constant 0) or not finite is all level 0; non-finite values
   count as level 0.
2. Pixel pairs ``(p, p + offset)`` are counted when BOTH pixels belong to the object; pixels of
   the background or of other objects are ignored (not counted as level 0). The offset is
   scikit-image's: ``(round(sin(a) * d), round(cos(a) * d))`` in (row, column), rounded half away
   from zero.
3. The counts are made symmetric (the matrix plus its transpose, ``symmetric=True``) and
   normalised to sum 1 (``normed=True``).
4. Contrast, Dissimilarity, Homogeneity, Energy, Correlation and ASM follow the formulas of
   ``skimage.feature.graycoprops``, except that Correlation is NaN (not 1) when either grey-level
   standard deviation is below 1e-15 (e.g. a constant object), and that an object with no pair
   at an offset (a single pixel, a one-pixel-wide line across the offset) gets NaN for all six.

This equals ``graycomatrix`` + ``graycoprops`` on each object's bounding box with the pixels
outside the object given an extra level that is dropped before normalising. Here all objects of
a field are counted together: per offset, the same-object pixel pairs are found by slicing the
whole label image, coded as (object, unordered level pair) and counted with one ``np.bincount``
per channel; the properties are then array operations over all objects. Objects go in chunks
of at most `MAX_BINS` bins (channels x objects x L (L + 1) / 2) to bound memory.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

PROPERTIES: tuple[str, ...] = (
    "Contrast",
    "Dissimilarity",
    "Homogeneity",
    "Energy",
    "Correlation",
    "ASM",
)
# channels x objects x L (L + 1) / 2 co-occurrence bins counted at once (about 32 MB for each
# float64 temporary); more objects go in chunks
MAX_BINS = 4_000_000


def glcm_offset(distance: int, angle_deg: float) -> tuple[int, int]:
    """(row, column) step of a pixel pair, as scikit-image's `graycomatrix` takes it.

    Examples
    --------
    >>> glcm_offset(1, 0), glcm_offset(1, 45), glcm_offset(2, 90)
    ((0, 1), (1, 1), (2, 0))
    """
    angle = math.radians(angle_deg)

    def half_away(value: float) -> int:
        return int(value + 0.5) if value > 0 else int(value - 0.5)

    return half_away(math.sin(angle) * distance), half_away(math.cos(angle) * distance)


def angle_token(angle_deg: float) -> str:
    """Angle in column names: whole degrees with at least two digits, e.g. ``00``, ``45``, ``135``.

    A fractional angle keeps its decimals with ``p`` for the point (``22p5``).
    """
    if float(angle_deg).is_integer():
        return f"{int(angle_deg):02d}"
    return f"{angle_deg:g}".replace(".", "p")


def quantize(image: np.ndarray, labels: np.ndarray, maxima: np.ndarray, levels: int) -> np.ndarray:
    """Grey levels of every object pixel, scaled by its object's own maximum.

    Parameters
    ----------
    image : (Y, X) ndarray
        Intensities of one channel.
    labels : (Y, X) ndarray of int
        Objects numbered 1..N, 0 for background.
    maxima : (N,) ndarray
        Maximum intensity of each object (index ``label - 1``).
    levels : int

    Returns
    -------
    (Y, X) ndarray of int
        ``floor(value / max * (levels - 1))`` on object pixels, clipped to ``[0, levels - 1]``;
        0 elsewhere and in objects whose maximum is not positive.
    """
    flat = np.flatnonzero(labels)
    out = np.zeros(labels.size, np.intp)
    owner = labels.reshape(-1)[flat].astype(np.intp) - 1
    out[flat] = _grey_levels(image.reshape(-1)[flat], owner, maxima, levels)
    return out.reshape(labels.shape)


def _grey_levels(
    values: np.ndarray, owner: np.ndarray, maxima: np.ndarray, levels: int
) -> np.ndarray:
    """``floor(value / max[owner] * (levels - 1))`` in ``[0, levels - 1]``, as intp."""
    scale = np.asarray(maxima, dtype=np.float64)
    scale = np.where((scale > 0) & np.isfinite(scale), scale, np.inf)  # e.g. constant 0: all 0
    scaled = values.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scaled /= scale[owner]
        scaled *= levels - 1
    if values.dtype.kind in "bu":  # non-negative and finite: truncation is floor
        return scaled.astype(np.intp)
    scaled[~np.isfinite(scaled)] = 0
    return np.clip(np.floor(scaled), 0, levels - 1).astype(np.intp)


def _pairs(labels: np.ndarray, offset: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Flat index of the first pixel of every same-object pair at `offset`, and the step."""
    dr, dc = offset
    height, width = labels.shape
    rows_a = slice(max(0, -dr), height - max(0, dr))
    cols_a = slice(max(0, -dc), width - max(0, dc))
    rows_b = slice(max(0, dr), height - max(0, -dr))
    cols_b = slice(max(0, dc), width - max(0, -dc))
    a, b = labels[rows_a, cols_a], labels[rows_b, cols_b]
    same = np.zeros(labels.shape, bool)
    same[rows_a, cols_a] = (a == b) & (a > 0)
    return np.flatnonzero(same), dr * width + dc


def _row_pairs(
    labels: np.ndarray, pixels: np.ndarray, owner: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Indices into `pixels` of every same-object pair of horizontal neighbours, left first."""
    same = np.diff(pixels) == 1
    same &= owner[1:] == owner[:-1]
    width = labels.shape[1]
    row_ends = np.flatnonzero(labels[:, -1]) * width + width - 1  # no pair across a row's end
    at = np.searchsorted(pixels, row_ends)
    same[at[at < len(same)]] = False
    first = np.flatnonzero(same)
    return first, first + 1


def glcm_properties(counts: np.ndarray) -> dict[str, np.ndarray]:
    """The six `graycoprops` properties of a stack of co-occurrence matrices.

    Parameters
    ----------
    counts : (N, L, L) ndarray
        Co-occurrence counts (or frequencies) per object, already symmetric if wanted.

    Returns
    -------
    dict of str to (N,) ndarray of float64
        Keyed by `PROPERTIES`; NaN where a matrix is empty, Correlation NaN where a grey-level
        standard deviation is below 1e-15.
    """
    n, levels, _ = counts.shape
    totals = counts.reshape(n, -1).sum(axis=1).astype(np.float64)
    empty = totals == 0
    prob = counts / np.where(empty, 1, totals)[:, None, None]
    grey = np.arange(levels, dtype=np.float64)
    diff = grey[:, None] - grey[None, :]
    asm = np.einsum("nij,nij->n", prob, prob)
    props = {
        "Contrast": np.einsum("nij,ij->n", prob, diff**2),
        "Dissimilarity": np.einsum("nij,ij->n", prob, np.abs(diff)),
        "Homogeneity": np.einsum("nij,ij->n", prob, 1.0 / (1.0 + diff**2)),
        "Energy": np.sqrt(asm),
        "ASM": asm,
    }
    d_i = grey - np.einsum("nij,i->n", prob, grey)[:, None]
    d_j = grey - np.einsum("nij,j->n", prob, grey)[:, None]
    std_i = np.sqrt(np.einsum("nij,ni->n", prob, d_i**2))
    std_j = np.sqrt(np.einsum("nij,nj->n", prob, d_j**2))
    cov = np.einsum("nij,ni,nj->n", prob, d_i, d_j)
    flat = (std_i < 1e-15) | (std_j < 1e-15)
    props["Correlation"] = np.where(flat, np.nan, cov / np.where(flat, 1, std_i * std_j))
    for values in props.values():
        values[empty] = np.nan
    return {name: props[name] for name in PROPERTIES}


def glcm_texture(
    labels: np.ndarray,
    image: np.ndarray,
    distances: Sequence[int],
    angles_deg: Sequence[float],
    levels: int,
    maxima: np.ndarray | None = None,
    n_objects: int | None = None,
) -> dict[tuple[str, int, int, float], np.ndarray]:
    """GLCM texture of every object, channel and offset (see the module docstring).

    Parameters
    ----------
    labels : (Y, X) ndarray of int
        Objects numbered 1..N, 0 for background.
    image : (C, Y, X) ndarray
        Intensities.
    distances, angles_deg : sequences
        Pixel distances and angles in degrees; every combination is measured.
    levels : int
        Grey levels after per-object scaling.
    maxima : (C, N) ndarray, optional
        Per-object maximum of each channel over the object's pixels, when already known.
    n_objects : int, optional
        N, when objects at the end may be absent; default ``labels.max()``.

    Returns
    -------
    dict
        ``(property, channel index, distance, angle) -> (N,) float64`` values, object
        ``label`` at index ``label - 1``.
    """
    pixels = np.flatnonzero(labels)
    values = np.take(np.asarray(image).reshape(len(image), -1), pixels, axis=1)
    return glcm_texture_at(labels, pixels, values, distances, angles_deg, levels, maxima, n_objects)


def glcm_texture_at(
    labels: np.ndarray,
    pixels: np.ndarray,
    values: np.ndarray,
    distances: Sequence[int],
    angles_deg: Sequence[float],
    levels: int,
    maxima: np.ndarray | None = None,
    n_objects: int | None = None,
) -> dict[tuple[str, int, int, float], np.ndarray]:
    """`glcm_texture` from the object pixels' intensities, when the caller already has them.

    Parameters
    ----------
    labels : (Y, X) ndarray of int
        Objects numbered 1..N, 0 for background.
    pixels : (P,) ndarray of int
        ``np.flatnonzero(labels)``.
    values : (C, P) ndarray
        Intensities of every channel at `pixels`.
    distances, angles_deg, levels, maxima, n_objects
        As in `glcm_texture`.

    Returns
    -------
    dict
        As `glcm_texture`.
    """
    n = n_objects if n_objects is not None else int(labels.max(initial=0))
    flat_labels = labels.reshape(-1)
    owner = flat_labels[pixels].astype(np.intp) - 1
    channels = len(values)
    if maxima is None:
        maxima = np.full((channels, n), -np.inf)
        with np.errstate(invalid="ignore"):  # NaN maxima: the object is all level 0
            for c in range(channels):
                np.maximum.at(maxima[c], owner, values[c].astype(np.float64))
    grey = [_grey_levels(values[c], owner, maxima[c], levels) for c in range(channels)]
    position = None
    table = _triangle(levels)
    chunk = max(1, MAX_BINS // (channels * len(table.i)))
    out: dict[tuple[str, int, int, float], np.ndarray] = {}
    for distance in distances:
        for angle in angles_deg:
            offset = glcm_offset(distance, angle)
            if offset in ((0, 1), (0, -1)):  # neighbours in a row are neighbours in `pixels`
                first, second = _row_pairs(labels, pixels, owner)
            else:
                if position is None:
                    position = np.empty(labels.size, np.intp)  # flat pixel -> its index
                    position[pixels] = np.arange(len(pixels))
                first, step = _pairs(labels, offset)
                first, second = position[first], position[first + step]
            pair_owner = owner[first]
            if chunk < n:  # several chunks: pairs by object, each chunk a slice
                order = np.argsort(pair_owner, kind="stable")
                first, second, pair_owner = first[order], second[order], pair_owner[order]
            found = {name: np.full((channels, n), np.nan) for name in PROPERTIES}
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                at, to, owners = first, second, pair_owner
                if chunk < n:
                    lo, hi = np.searchsorted(pair_owner, [start, stop])
                    at, to, owners = first[lo:hi], second[lo:hi], pair_owner[lo:hi] - start
                counts = table.counts(grey, at, to, owners, stop - start)
                props = table.properties(counts)
                for name in PROPERTIES:
                    found[name][:, start:stop] = props[name].reshape(channels, stop - start)
            for name in PROPERTIES:
                for c in range(channels):
                    out[(name, c, distance, angle)] = found[name][c]
    return out


@functools.lru_cache(maxsize=8)
def _triangle(levels: int) -> _Triangle:
    return _Triangle(levels)


class _Triangle:
    """Co-occurrence counts kept as the upper triangle (i <= j) of each L x L matrix.

    With ``U`` the counts of unordered level pairs, the symmetric normalised matrix is
    ``P = (U + U.T) / (2 sum U)``; for a symmetric weight W, ``sum(P * W)`` is the sum over the
    triangle of ``U / sum U * W`` and the marginal of P is half the triangle's row plus column
    sums, so the full matrix is never built.
    """

    def __init__(self, levels: int):
        self.levels = levels
        self.i, self.j = (x.astype(np.intp) for x in np.triu_indices(levels))
        size = len(self.i)
        lookup = np.zeros((levels, levels), np.intp)
        lookup[self.i, self.j] = np.arange(size)
        lookup[self.j, self.i] = np.arange(size)
        self.lookup = lookup.reshape(-1)  # a * L + b -> triangle index of {a, b}
        diff = (self.i - self.j).astype(np.float64)
        # Contrast, Dissimilarity, Homogeneity weights, one row each
        self.weights = np.stack([diff**2, np.abs(diff), 1.0 / (1.0 + diff**2)])
        self.square = np.where(self.i == self.j, 1.0, 0.5)  # sum of P**2 over the full matrix
        # marginal of P: half the triangle's row sums plus half its column sums
        self.by_column = np.argsort(self.j, kind="stable")
        self.row_starts = np.searchsorted(self.i, np.arange(levels))
        self.column_starts = np.searchsorted(self.j[self.by_column], np.arange(levels))

    def counts(
        self,
        grey: list[np.ndarray],
        first: np.ndarray,
        second: np.ndarray,
        owner: np.ndarray,
        n: int,
    ) -> np.ndarray:
        """(C * n, T) counts of unordered grey-level pairs per channel and object."""
        size = n * len(self.i)
        base = owner * len(self.i)
        counts = np.empty((len(grey), size), np.int64)
        for c, levels_of in enumerate(grey):
            index = levels_of[first] * self.levels
            index += levels_of[second]
            code = self.lookup[index]
            code += base
            counts[c] = np.bincount(code, minlength=size)
        return counts.reshape(len(grey) * n, len(self.i))

    def properties(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """The six properties of every row of triangle counts (see `glcm_properties`)."""
        # einsum, not matmul: these small products are faster without BLAS threads
        totals = counts.sum(axis=1)
        empty = totals == 0
        prob = counts / np.where(empty, 1, totals)[:, None]
        weighted = np.einsum("nt,kt->nk", prob, self.weights)
        asm = np.einsum("nt,nt,t->n", prob, prob, self.square)
        marginal = np.add.reduceat(prob, self.row_starts, axis=1)
        by_column = np.take(prob, self.by_column, axis=1)
        marginal += np.add.reduceat(by_column, self.column_starts, axis=1)
        marginal /= 2
        grey = np.arange(self.levels, dtype=np.float64)
        centred = grey - np.einsum("nl,l->n", marginal, grey)[:, None]
        variance = np.einsum("ni,ni,ni->n", marginal, centred, centred)
        d_i, d_j = np.take(centred, self.i, axis=1), np.take(centred, self.j, axis=1)
        cov = np.einsum("nt,nt,nt->n", prob, d_i, d_j)
        flat = np.sqrt(variance) < 1e-15
        props = {
            "Contrast": weighted[:, 0],
            "Dissimilarity": weighted[:, 1],
            "Homogeneity": weighted[:, 2],
            "Energy": np.sqrt(asm),
            "Correlation": np.where(flat, np.nan, cov / np.where(flat, 1, variance)),
            "ASM": asm,
        }
        for values in props.values():
            values[empty] = np.nan
        return props
