"""Convex area and maximum Feret diameter of every object at once, on the pixel lattice.

Part of the AreaShape features of `cellbench.features.shape`: the convex hull of each object
is found from its per-row extremes (concave majorants, in doubled coordinates so that half
pixels are integers), which gives scikit-image's ``area_convex`` and ``feret_diameter_max``
exactly (checked against ``regionprops`` in tests/features/test_measure.py).
"""

from __future__ import annotations

import numpy as np


def _upper_hull(group: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Indices of the vertices of the concave majorant of x(y), per group.

    Points are sorted by (group, y), y strictly increasing within a group. Vertices on or
    below the chord of their two neighbours are dropped, all at once, until none is left;
    the first and last point of a group always stay.
    """
    index = np.arange(len(x))
    while len(index) > 2:
        g, yy, xx = group[index], y[index], x[index]
        inner = (g[:-2] == g[1:-1]) & (g[2:] == g[1:-1])
        cross = (xx[1:-1] - xx[:-2]) * (yy[2:] - yy[:-2]) - (xx[2:] - xx[:-2]) * (
            yy[1:-1] - yy[:-2]
        )
        drop = inner & (cross <= 0)
        if not drop.any():
            break
        keep = np.ones(len(index), bool)
        keep[1:-1] = ~drop
        index = index[keep]
    return index


def _hull_chains(group: np.ndarray, y: np.ndarray, x: np.ndarray, valid: np.ndarray):
    """Deduplicate (group, y) keeping the largest x, then keep the concave majorant."""
    group, y, x = group[valid], y[valid], x[valid]
    key = group * (int(y.max()) + 2) + y
    head = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    group, y, x = group[head], y[head], np.maximum.reduceat(x, head)
    keep = _upper_hull(group, y, x)
    return group[keep], y[keep], x[keep]


def convex_features(
    rows: dict[str, np.ndarray], present: np.ndarray, top: np.ndarray, bottom: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Convex area and maximum Feret diameter, as scikit-image computes them.

    scikit-image takes the convex hull of the pixels' edge midpoints (a diamond around each
    pixel), counts the pixel centres inside or on it (area_convex), and takes the largest
    distance between the 0.5-level contour points of that convex image (feret_diameter_max).
    Here both are exact lattice computations in doubled coordinates (half pixels are integers):
    the hull's right and left boundaries are concave majorants of per-row extremes.
    """
    obj, y, lo, hi = rows["obj"], rows["y"], rows["l"], rows["r"]
    count = len(obj)
    # hull of the diamonds: right side maximises x, left side maximises -x, per half row
    both = np.concatenate
    ys = np.stack([2 * y - 1, 2 * y, 2 * y + 1], axis=1).reshape(-1)
    right_x = np.stack([2 * hi, 2 * hi + 1, 2 * hi], axis=1).reshape(-1)
    left_x = np.stack([-2 * lo, -2 * lo + 1, -2 * lo], axis=1).reshape(-1)
    owners = np.repeat(obj, 3)
    g, hy, hx = _hull_chains(
        both([owners, owners + n]),
        both([ys, ys]),
        both([right_x, left_x]),
        np.ones(6 * count, bool),
    )
    # every row of each object's span: the lattice points inside or on the hull
    heights = bottom - top + 1
    row_obj = np.repeat(present, heights)
    row_y = (
        np.repeat(top, heights)
        + np.arange(heights.sum())
        - np.repeat(np.cumsum(heights) - heights, heights)
    )
    stride = int(hy.max()) + 3
    key = g * stride + hy + 1

    def boundary(side: int) -> np.ndarray:  # floor(x(2y) / 2) of one side's chain
        at = np.searchsorted(key, (row_obj + side * n) * stride + 2 * row_y + 1, side="right") - 1
        ya, xa, yb, xb = hy[at], hx[at], hy[at + 1], hx[at + 1]
        span = yb - ya
        return (xa * span + (xb - xa) * (2 * row_y - ya)) // (2 * span)

    x_hi, x_lo = boundary(0), -boundary(1)
    starts = np.cumsum(heights) - heights
    convex_area = np.add.reduceat(np.maximum(x_hi - x_lo + 1, 0), starts).astype(np.float64)
    return convex_area, _feret(row_obj, row_y, x_lo, x_hi, starts, n)


def _feret(
    obj: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, starts: np.ndarray, n: int
) -> np.ndarray:
    """Largest distance between contour points of convex images given row by row.

    The contour at level 0.5 passes through the midpoints of the edges between an inside and an
    outside pixel; per half row only its leftmost and rightmost point can be a hull vertex.
    """
    count = len(obj)
    first = np.zeros(count, bool)
    first[starts] = True
    last = np.r_[first[1:], True]
    prev_lo, prev_hi = np.roll(lo, 1), np.roll(hi, 1)
    lo_moves, hi_moves = lo != prev_lo, hi != prev_hi
    # half row above each row: ends of the symmetric difference with the row above
    above_hi = np.where(first, 2 * hi, np.where(hi_moves, 2 * np.maximum(hi, prev_hi), 0))
    above_hi = np.where(~first & ~hi_moves, 2 * (np.maximum(lo, prev_lo) - 1), above_hi)
    above_lo = np.where(first, 2 * lo, np.where(lo_moves, 2 * np.minimum(lo, prev_lo), 0))
    above_lo = np.where(~first & ~lo_moves, 2 * (np.minimum(hi, prev_hi) + 1), above_lo)
    above_valid = first | lo_moves | hi_moves
    ys = np.stack([2 * y - 1, 2 * y, 2 * y + 1], axis=1).reshape(-1)
    valid = np.stack([above_valid, np.ones(count, bool), last], axis=1).reshape(-1)
    right_x = np.stack([above_hi, 2 * hi + 1, 2 * hi], axis=1).reshape(-1)
    left_x = np.stack([-above_lo, -(2 * lo - 1), -2 * lo], axis=1).reshape(-1)
    owners = np.repeat(obj, 3)
    g, hy, hx = _hull_chains(
        np.concatenate([owners, owners + n]),
        np.concatenate([ys, ys]),
        np.concatenate([right_x, left_x]),
        np.concatenate([valid, valid]),
    )
    hx = np.where(g >= n, -hx, hx)
    g = np.where(g >= n, g - n, g)
    order = np.argsort(g, kind="stable")
    g, hy, hx = g[order], hy[order], hx[order]
    heads = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[heads, len(g)])
    longest = np.zeros(len(heads))
    width = int(sizes.max())
    chunk = max(1, 4_000_000 // (width * width))
    slot = np.arange(len(g)) - np.repeat(heads, sizes)
    for start in range(0, len(heads), chunk):
        part = slice(start, min(len(heads), start + chunk))
        members = np.repeat(np.arange(part.stop - part.start), sizes[part])
        span = slice(heads[part.start], heads[part.stop - 1] + sizes[part.stop - 1])
        py = np.repeat(hy[heads[part]][:, None], width, axis=1)  # pad with the first vertex
        px = np.repeat(hx[heads[part]][:, None], width, axis=1)
        py[members, slot[span]] = hy[span]
        px[members, slot[span]] = hx[span]
        d2 = (py[:, :, None] - py[:, None, :]) ** 2 + (px[:, :, None] - px[:, None, :]) ** 2
        longest[part] = np.sqrt(d2.max(axis=(1, 2)))
    return longest / 2
