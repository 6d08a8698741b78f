"""AreaShape features of every object of a label image at once, as scikit-image defines them.

``regionprops`` computes convex hulls, perimeters and Feret diameters object by object in
Python; on a 512 x 512 field of ~100 cells and three regions that takes ~0.2 s, ten times
more than everything else together. Here each property is computed for all objects at once
from horizontal pixel runs, exact integer moments, 2 x 2 neighbourhood codes (perimeter,
Crofton perimeter, Euler number) and exact lattice convex hulls (`cellbench.features.hull`),
and tests check every value against ``regionprops`` (tests/features/test_measure.py).
"""

from __future__ import annotations

from math import pi, sqrt

import numpy as np
from scipy import ndimage as ndi
from scipy import sparse
from scipy.sparse import csgraph

from cellbench.features.hull import convex_features

# scikit-image regionprops property -> CellProfiler feature name
SHAPE_FEATURES: dict[str, str] = {
    "area": "Area",
    "area_convex": "ConvexArea",
    "area_filled": "FilledArea",
    "perimeter": "Perimeter",
    "perimeter_crofton": "PerimeterCrofton",
    "eccentricity": "Eccentricity",
    "solidity": "Solidity",
    "extent": "Extent",
    "axis_major_length": "MajorAxisLength",
    "axis_minor_length": "MinorAxisLength",
    "feret_diameter_max": "MaximumFeretDiameter",
    "equivalent_diameter_area": "EquivalentDiameter",
    "orientation": "Orientation",
}

_PERIMETER_WEIGHTS = np.zeros(50)  # skimage.measure.perimeter, 4-neighbourhood
_PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1
_PERIMETER_WEIGHTS[[21, 33]] = sqrt(2)
_PERIMETER_WEIGHTS[[13, 23]] = (1 + sqrt(2)) / 2
_CROFTON = np.array(  # skimage.measure.perimeter_crofton, 4 directions, by 2 x 2 pattern code
    [
        0,
        pi / 4 * (1 + 1 / sqrt(2)),
        pi / (4 * sqrt(2)),
        pi / (2 * sqrt(2)),
        0,
        pi / 4 * (1 + 1 / sqrt(2)),
        0,
        pi / (4 * sqrt(2)),
        pi / 4,
        pi / 2,
        pi / (4 * sqrt(2)),
        pi / (4 * sqrt(2)),
        pi / 4,
        pi / 2,
        0,
        0,
    ]
)
# Gray's bit quads: 4 x the Euler number (4-connected object, 8-connected holes) by pattern code
_EULER4 = np.array([0, 1, 1, 0, 1, 0, 2, -1, 1, 2, 0, -1, 0, -1, -1, 0])


class _Grid:
    """A compact label image padded by one background pixel, with its neighbour differences.

    ``flat`` is the padded image raveled (row length ``width``); ``across[k]`` is True where
    pixel k differs from its right neighbour and ``down[k]`` where it differs from the pixel
    below (False in the last column / row, which are background).
    """

    def __init__(self, compact: np.ndarray):
        height, width = compact.shape
        padded = np.zeros((height + 2, width + 2), np.int32)
        padded[1:-1, 1:-1] = compact
        self.padded, self.width = padded, width + 2
        self.flat = padded.reshape(-1)
        self.foreground = self.flat > 0
        across = np.zeros(padded.shape, bool)
        np.not_equal(padded[:, 1:], padded[:, :-1], out=across[:, :-1])
        down = np.zeros(padded.shape, bool)
        np.not_equal(padded[1:], padded[:-1], out=down[:-1])
        self.across, self.down = across.reshape(-1), down.reshape(-1)


def shape_features(compact: np.ndarray, n: int, counts: np.ndarray) -> dict[str, np.ndarray]:
    """AreaShape features of objects 1..n of a compact label image (NaN for absent objects)."""
    out = {name: np.full(n, np.nan) for name in SHAPE_FEATURES.values()}
    present = np.flatnonzero(counts)
    if len(present) == 0:
        return out
    grid = _Grid(compact)
    runs = _runs(grid)
    rows = _row_extents(runs)
    group_starts = np.flatnonzero(np.r_[True, rows["obj"][1:] != rows["obj"][:-1]])
    top = rows["y"][group_starts]
    bottom = rows["y"][np.r_[group_starts[1:], len(rows["y"])] - 1]
    left = np.minimum.reduceat(rows["l"], group_starts)
    right = np.maximum.reduceat(rows["r"], group_starts)
    area = counts[present].astype(np.float64)
    out["Area"][present] = area
    out["Extent"][present] = area / ((bottom - top + 1) * (right - left + 1))
    out["EquivalentDiameter"][present] = np.sqrt(4 * area / pi)
    _moment_features(runs, present, top, left, out)
    out["Perimeter"][present] = _perimeter(grid, n)[present]
    crofton, euler4, windows = _quad_features(grid, n)
    out["PerimeterCrofton"][present] = crofton[present]
    convex_area, feret = convex_features(rows, present, top, bottom, n)
    out["ConvexArea"][present] = convex_area
    out["Solidity"][present] = area / convex_area
    out["MaximumFeretDiameter"][present] = feret
    box = (top, bottom, left, right)
    out["FilledArea"][present] = _filled_area(grid, runs, n, counts, euler4, windows, box, present)
    return out


def _runs(grid: _Grid) -> dict[str, np.ndarray]:
    """Horizontal runs of every object: obj (0-based), row, first and last column, by object.

    Rows and columns are those of the unpadded image.
    """
    fg, across = grid.foreground, grid.across
    starts = np.flatnonzero(fg[1:] & across[:-1]) + 1
    ends = np.flatnonzero(fg & across)  # runs never interleave: the k-th end closes the k-th
    row, first = np.divmod(starts, grid.width)
    obj = grid.flat[starts].astype(np.int64) - 1
    order = np.argsort(obj, kind="stable")  # row-major order kept within an object
    return {
        "obj": obj[order],
        "row": row[order] - 1,
        "first": first[order] - 1,
        "last": ends[order] % grid.width - 1,
    }


def _row_extents(runs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Leftmost and rightmost column of every (object, row) that holds pixels."""
    key = runs["obj"] * (int(runs["row"].max(initial=0)) + 1) + runs["row"]
    new = np.r_[True, key[1:] != key[:-1]]
    head = np.flatnonzero(new)
    tail = np.r_[head[1:], len(key)] - 1
    return {
        "obj": runs["obj"][head],
        "y": runs["row"][head].astype(np.int64),
        "l": runs["first"][head].astype(np.int64),
        "r": runs["last"][tail].astype(np.int64),
    }


def _moment_features(
    runs: dict[str, np.ndarray],
    present: np.ndarray,
    top: np.ndarray,
    left: np.ndarray,
    out: dict[str, np.ndarray],
) -> None:
    """Eccentricity, axis lengths and orientation from exact integer central moments."""
    obj = runs["obj"]
    starts = np.flatnonzero(np.r_[True, obj[1:] != obj[:-1]])
    slot = np.searchsorted(present, obj)
    v = runs["row"].astype(np.int64) - top[slot]
    u0 = runs["first"].astype(np.int64) - left[slot]
    u1 = runs["last"].astype(np.int64) - left[slot]
    m = u1 - u0 + 1

    def squares(x: np.ndarray) -> np.ndarray:  # 0^2 + 1^2 + ... + x^2
        return x * (x + 1) * (2 * x + 1) // 6

    s_c = (u0 + u1) * m // 2
    sums = [
        np.add.reduceat(values, starts)
        for values in (m, v * m, s_c, v * v * m, squares(u1) - squares(u0 - 1), v * s_c)
    ]
    n, s_r, s_c, s_rr, s_cc, s_rc = sums
    if int(n.max()) * int(max(s_rr.max(), s_cc.max())) < 2**62:
        n_rr, n_cc, n_rc = n * s_rr - s_r * s_r, n * s_cc - s_c * s_c, n * s_rc - s_r * s_c
    else:  # huge objects: float64 (still far more precise than a pixel)
        nf = n.astype(np.float64)
        n_rr = nf * s_rr - s_r.astype(np.float64) ** 2
        n_cc = nf * s_cc - s_c.astype(np.float64) ** 2
        n_rc = nf * s_rc - s_r.astype(np.float64) * s_c
    n2 = n.astype(np.float64) ** 2
    # scikit-image's inertia tensor [[a, b], [b, c]]: a = column variance, c = row variance
    a, b, c = n_cc / n2, -(n_rc / n2), n_rr / n2  # b = -0.0 when n_rc == 0, as skimage
    root = np.sqrt(((a - c) / 2) ** 2 + b * b)
    l1 = np.maximum((a + c) / 2 + root, 0)
    l2 = np.maximum((a + c) / 2 - root, 0)
    out["MajorAxisLength"][present] = 4 * np.sqrt(l1)
    out["MinorAxisLength"][present] = 4 * np.sqrt(l2)
    ratio = np.divide(l2, l1, out=np.ones_like(l1), where=l1 > 0)
    out["Eccentricity"][present] = np.sqrt(np.maximum(1 - ratio, 0))
    diagonal = np.where(n_rc > 0, pi / 4, -pi / 4)  # a == c: skimage's special case
    out["Orientation"][present] = np.where(n_cc == n_rr, diagonal, 0.5 * np.arctan2(-2 * b, c - a))


def _perimeter(grid: _Grid, n: int) -> np.ndarray:
    """skimage.measure.perimeter (4-neighbourhood) of every object, from its border pixels.

    A border pixel has a 4-neighbour outside its object; its code is 1 plus 2 per 4-neighbour
    and 10 per diagonal neighbour that is a border pixel of the same object.
    """
    w, flat = grid.width, grid.flat
    across, down = grid.across, grid.down
    border = np.zeros(len(flat), bool)
    border[w:] = grid.foreground[w:] & (across[w:] | across[w - 1 : -1] | down[w:] | down[:-w])
    index = np.flatnonzero(border)
    label = flat[index]
    code = np.ones(len(index), np.intp)
    for step, weight in ((-w, 2), (w, 2), (-1, 2), (1, 2), (-w - 1, 10), (-w + 1, 10)):
        code += weight * ((flat[index + step] == label) & border[index + step])
    for step, weight in ((w - 1, 10), (w + 1, 10)):
        code += weight * ((flat[index + step] == label) & border[index + step])
    return np.bincount(label - 1, weights=_PERIMETER_WEIGHTS[code], minlength=n)


def _quad_features(grid: _Grid, n: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Crofton perimeter and 4 x Euler number per object, from every 2 x 2 window.

    A window holds up to four objects; each object present sees its own pattern code
    (top-left 8, top-right 2, bottom-left 4, bottom-right 1, as scikit-image codes it).
    Windows inside one object contribute nothing and are skipped.
    """
    w, flat, across, down = grid.width, grid.flat, grid.across, grid.down
    m = len(flat) - w - 1
    mixed = np.flatnonzero(across[:m] | across[w : w + m] | down[:m] | down[1 : m + 1])
    a, b, c, d = flat[mixed], flat[mixed + 1], flat[mixed + w], flat[mixed + w + 1]
    sa, sb, sc = b == a, c == a, d == a
    cb, db, dc = c == b, d == b, d == c
    candidates = [
        (a, a > 0, 8 + 2 * sa + 4 * sb + sc),
        (b, (b > 0) & ~sa, 2 + 4 * cb + db),
        (c, (c > 0) & ~sb & ~cb, 4 + dc),
        (d, (d > 0) & ~sc & ~db & ~dc, np.ones(len(d), np.intp)),
    ]
    owner = np.concatenate([lab[keep] for lab, keep, _ in candidates]).astype(np.intp) - 1
    code = np.concatenate([np.asarray(cd)[keep] for _, keep, cd in candidates])
    crofton = np.bincount(owner, weights=_CROFTON[code], minlength=n)
    euler4 = np.rint(np.bincount(owner, weights=_EULER4[code], minlength=n)).astype(np.int64)
    return crofton, euler4, (mixed, a, b, c, d)


def _filled_area(
    grid: _Grid,
    runs: dict[str, np.ndarray],
    n: int,
    counts: np.ndarray,
    euler4: np.ndarray,
    windows: tuple,
    box: tuple[np.ndarray, ...],
    present: np.ndarray,
) -> np.ndarray:
    """Area with holes filled (8-connected holes, as scikit-image's area_filled).

    Holes = 4-connected pieces - Euler number. Objects with holes take the background
    components that touch them alone; an object whose holes are not all such components (a
    hole holding another object) is filled on its own crop.
    """
    area = counts[present].astype(np.float64)
    holes = _pieces(runs, n)[present] - euler4[present] // 4
    if not (holes > 0).any():
        return area
    background, n_gaps = ndi.label(~grid.foreground.reshape(grid.padded.shape), np.ones((3, 3)))
    gaps = background.reshape(-1)
    outside = gaps[0]
    # every 8-neighbour pair lies in a 2 x 2 window: a background pixel touches the objects of
    # its windows; a component touching one object only (and not the outside) is its hole
    mixed, a, b, c, d = windows
    big = np.iinfo(np.int32).max
    low = np.minimum(
        np.minimum(np.where(a > 0, a, big), np.where(b > 0, b, big)),
        np.minimum(np.where(c > 0, c, big), np.where(d > 0, d, big)),
    ).astype(np.int32)
    high = np.maximum(np.maximum(a, b), np.maximum(c, d)).astype(np.int32)
    lowest = np.full(n_gaps + 1, big, np.int32)
    highest = np.zeros(n_gaps + 1, np.int32)
    w = grid.width
    for step in (0, 1, w, w + 1):
        gap = gaps[mixed + step].astype(np.intp)
        np.minimum.at(lowest, gap, low)
        np.maximum.at(highest, gap, high)
    enclosed = (lowest == highest) & (highest > 0)
    enclosed[[0, outside]] = False
    sizes = np.bincount(gaps, minlength=n_gaps + 1)
    owner = highest[enclosed] - 1
    found = np.bincount(owner, minlength=n)[present]
    filled = area + np.bincount(owner, weights=sizes[enclosed], minlength=n)[present]
    top, bottom, left, right = box
    for k in np.flatnonzero((holes > 0) & (found != holes)):
        crop = grid.padded[top[k] + 1 : bottom[k] + 2, left[k] + 1 : right[k] + 2]
        filled[k] = ndi.binary_fill_holes(crop == present[k] + 1, np.ones((3, 3), bool)).sum()
    return filled


def _pieces(runs: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Number of 4-connected pieces of every object: components of its runs' overlap graph."""
    obj, row, first, last = runs["obj"], runs["row"], runs["first"], runs["last"]
    height, width = int(row.max()) + 2, int(last.max()) + 2
    base = obj * height + row
    key_first, key_last = base * width + first, base * width + last
    above = (base - 1) * width
    lo = np.searchsorted(key_last, above + first, side="left")
    hi = np.searchsorted(key_first, above + last, side="right") - 1
    links = np.maximum(hi - lo + 1, 0)
    total = int(links.sum())
    lower = np.repeat(np.arange(len(obj)), links)
    upper = np.repeat(lo, links) + np.arange(total) - np.repeat(np.cumsum(links) - links, links)
    graph = sparse.coo_matrix(
        (np.ones(total, np.int8), (lower, upper)), shape=(len(obj), len(obj))
    ).tocsr()
    _, component = csgraph.connected_components(graph, directed=False)
    _, head = np.unique(component, return_index=True)
    return np.bincount(obj[head], minlength=n)
