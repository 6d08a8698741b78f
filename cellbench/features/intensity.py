"""Intensity statistics of every object of a region at once, from one sort per channel.

Pixels are sorted by (object, value) in a single key sort, so minimum, maximum, median and
quartiles are lookups at known offsets and sums are `np.add.reduceat` over contiguous runs:
no Python-level loop over objects.
"""

from __future__ import annotations

import numpy as np

INTENSITY_FEATURES: tuple[str, ...] = (
    "MeanIntensity",
    "StdIntensity",
    "MinIntensity",
    "MaxIntensity",
    "MedianIntensity",
    "LowerQuartileIntensity",
    "UpperQuartileIntensity",
    "IntegratedIntensity",
)


def sorted_by_owner(
    owner: np.ndarray, values: np.ndarray, n: int, keys: dict | None = None
) -> np.ndarray:
    """`values` as float64, sorted by owner and, within an owner, ascending (one key sort).

    `keys` caches the shifted owners between channels of one region.
    """
    if len(values) == 0:
        return np.zeros(0)
    keys = {} if keys is None else keys
    owner_bits = max(int(n - 1).bit_length(), 1)
    if values.dtype.kind in "bu" and values.dtype.itemsize <= 2 and owner_bits <= 16:
        bits = 8 * values.dtype.itemsize  # the values themselves are the low bits
        if bits not in keys:
            keys[bits] = owner.astype(np.uint32) << np.uint32(bits)
        key = keys[bits] | values.astype(np.uint32)
        key.sort()
        key &= np.uint32((1 << bits) - 1)
        return key.astype(np.float64)
    if values.dtype.kind in "biu" and values.dtype.itemsize <= 4:
        low = int(values.min())
        value_bits = max((int(values.max()) - low).bit_length(), 1)
        if owner_bits + value_bits <= 64:
            key_type = np.uint32 if owner_bits + value_bits <= 32 else np.uint64
            key = (owner.astype(key_type) << key_type(value_bits)) | (
                values.astype(np.int64) - low
            ).astype(key_type)
            key.sort()
            return (key & key_type((1 << value_bits) - 1)).astype(np.float64) + low
    # any other dtype: rank the values first, then sort (owner, rank) keys
    order = np.argsort(values, kind="stable")
    rank = np.empty(len(values), np.uint64)
    rank[order] = np.arange(len(values), dtype=np.uint64)
    key = (owner.astype(np.uint64) << np.uint64(32)) | rank
    key.sort()
    return values[order][(key & np.uint64(0xFFFFFFFF)).astype(np.intp)].astype(np.float64)


def _lerp_quantile(
    ordered: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: float
) -> np.ndarray:
    """np.percentile(..., method='linear') of each group of `ordered` (groups non-empty)."""
    virtual = (counts - 1) * q
    below = np.floor(virtual)
    gamma = virtual - below
    below = below.astype(np.intp)
    above = np.minimum(below + 1, counts - 1)
    a, b = ordered[starts + below], ordered[starts + above]
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def intensity_stats(
    owner: np.ndarray, counts: np.ndarray, values: np.ndarray
) -> list[dict[str, np.ndarray]]:
    """Intensity statistics of every object of one region, per channel (NaN when empty).

    Parameters
    ----------
    owner : (P,) ndarray of int
        Object index (0-based) of each region pixel.
    counts : (N,) ndarray of int
        Pixels per object.
    values : (C, P) ndarray
        Intensities of the region pixels.
    """
    n = len(counts)
    present = counts > 0
    size = counts[present]
    starts = (np.cumsum(counts) - counts)[present]
    keys: dict = {}
    results = []
    for plane in values:
        out = {name: np.full(n, np.nan) for name in INTENSITY_FEATURES}
        results.append(out)
        if len(size) == 0:
            continue
        with np.errstate(invalid="ignore", over="ignore"):  # NaN / inf pixels: NaN / inf
            ordered = sorted_by_owner(owner, plane, n, keys)
            out["MinIntensity"][present] = ordered[starts]
            out["MaxIntensity"][present] = ordered[starts + size - 1]
            out["MedianIntensity"][present] = _lerp_quantile(ordered, starts, size, 0.5)
            out["LowerQuartileIntensity"][present] = _lerp_quantile(ordered, starts, size, 0.25)
            out["UpperQuartileIntensity"][present] = _lerp_quantile(ordered, starts, size, 0.75)
            total = np.add.reduceat(ordered, starts)
            mean = total / size
            ordered -= np.repeat(mean, size)  # two-pass variance, population (ddof=0)
            ordered *= ordered
            out["StdIntensity"][present] = np.sqrt(np.add.reduceat(ordered, starts) / size)
            out["MeanIntensity"][present] = mean
            out["IntegratedIntensity"][present] = total
    return results
