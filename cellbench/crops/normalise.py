"""Per-channel normalisation of crops at read time (see `cellbench.crops.dataset`).

Stores keep raw uint16 intensities; `normalise_crops` maps a batch of (N, C, S, S) crops to
float32, each crop and channel by its own maximum or percentiles, or by its plate's
statistics, when items are read. `normalise_crop` is the same for one (C, S, S) crop, with
exactly the same values.

The per-crop percentiles of uint8 / uint16 crops come from one histogram per channel (a
compiled counting pass, `_ranked_values`) instead of a partial sort: the same order
statistics, combined exactly as ``np.percentile``'s default (linear) method does, bit for
bit, at about a tenth of the cost. Other dtypes (float crops) keep the partial sort.
The mapping of uint8 / uint16 crops to float32 is one compiled pass too (`_affine_into`: the
same float32 subtract, divide and clip as the numpy operations it replaces, bit for bit),
which can write the crops in any order into a batch being filled (``take``).
"""

from __future__ import annotations

import functools
from typing import Literal

import numba
import numpy as np

Normalise = Literal["none", "max", "minmax", "percentile", "plate"]
NORMALISE_MODES: tuple[str, ...] = ("none", "max", "minmax", "percentile", "plate")

_HISTOGRAM_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


def normalise_crop(
    crop: np.ndarray,
    mode: Normalise,
    *,
    percentiles: tuple[float, float] = (1.0, 99.0),
    plate_range: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Normalise a (C, S, S) crop per channel into a new float32 array.

    Parameters
    ----------
    crop : ndarray
        (C, S, S) raw intensities (any real dtype).
    mode : {"none", "max", "minmax", "percentile", "plate"}
        See `CropDataset`.
    percentiles : (float, float)
        For "percentile": the crop's percentiles (numpy's default linear method) mapped to 0
        and 1.
    plate_range : (ndarray, ndarray), optional
        For "plate": the (C,) low and high values mapped to 0 and 1.

    Returns
    -------
    ndarray
        (C, S, S) float32; in [0, 1] unless `mode` is "none". The same values as crop ``i``
        of `normalise_crops` on a batch holding this crop.
    """
    return normalise_crops(crop[None], mode, percentiles=percentiles, plate_range=plate_range)[0]


def normalise_crops(
    crops: np.ndarray,
    mode: Normalise,
    *,
    percentiles: tuple[float, float] = (1.0, 99.0),
    plate_range: tuple[np.ndarray, np.ndarray] | None = None,
    out: np.ndarray | None = None,
    take: np.ndarray | None = None,
) -> np.ndarray:
    """Normalise a batch of (N, C, S, S) crops, each crop and channel on its own.

    Parameters
    ----------
    crops : ndarray
        (N, C, S, S) raw intensities (any real dtype).
    mode : {"none", "max", "minmax", "percentile", "plate"}
        See `CropDataset`.
    percentiles : (float, float)
        For "percentile": each crop's channel percentiles (numpy's default linear method)
        mapped to 0 and 1.
    plate_range : (ndarray, ndarray), optional
        For "plate": the low and high values mapped to 0 and 1, of shape (C,) (one plate) or
        (N, C) (the plate of each crop).
    out : ndarray, optional
        (M, C, S, S) C-contiguous float32 array to write into (e.g. a batch being filled);
        a new one by default.
    take : (M,) int array, optional
        Row ``k`` of the result is crop ``take[k]`` (a crop may appear several times, in any
        order); ``take[k] < 0`` leaves ``out[k]`` as it is. Default: every crop in order
        (M = N). Reading sorted rows from a file and writing them in a batch's order this
        way costs no extra copy.

    Returns
    -------
    ndarray
        `out`, or a new (M, C, S, S) float32 array; in [0, 1] unless `mode` is "none".

    Examples
    --------
    >>> crops = np.arange(2 * 1 * 2 * 2, dtype=np.uint16).reshape(2, 1, 2, 2)
    >>> normalise_crops(crops, "max")[1, 0]
    array([[0.5714286 , 0.71428573],
           [0.85714287, 1.        ]], dtype=float32)
    >>> normalise_crops(crops, "none", take=np.array([1, 1]))[:, 0, 0, 0]
    array([4., 4.], dtype=float32)
    """
    if mode not in NORMALISE_MODES:
        raise ValueError(f"normalise must be one of {NORMALISE_MODES}, not {mode!r}")
    take = _checked_take(take, len(crops))
    out = _output(out, (len(take), *crops.shape[1:]))
    if crops.dtype in _HISTOGRAM_DTYPES:
        flat = np.ascontiguousarray(crops.reshape(crops.shape[0] * crops.shape[1], -1))
        rows = out.reshape(out.shape[0] * out.shape[1], -1)
        if mode == "none":
            _cast_into(flat, take, crops.shape[1], rows)
            return out
        low, span, ok, high = _ranges(crops, flat, mode, percentiles, plate_range)
        _affine_into(flat, take, crops.shape[1], low, span, ok, high, rows)
        return out
    chosen = take >= 0
    out[chosen] = _normalise_numpy(crops[take[chosen]], mode, percentiles, plate_range)
    return out


def _checked_take(take: np.ndarray | None, n: int) -> np.ndarray:
    """`take` as an intp array, checked against `n` crops (default: 0..n-1)."""
    if take is None:
        return np.arange(n, dtype=np.intp)
    take = np.asarray(take, dtype=np.intp)
    if take.ndim != 1 or (take.size and take.max() >= n):
        raise ValueError(f"take must be a 1-d array of crop indices below {n}, not {take}")
    return take


def _output(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """`out`, checked to be a C-contiguous float32 array of `shape`, or a new one."""
    if out is None:
        return np.empty(shape, np.float32)
    if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be a C-contiguous float32 array of shape {shape}, not {out.dtype} "
            f"{out.shape}"
        )
    return out


def _ranges(
    crops: np.ndarray,
    flat: np.ndarray,
    mode: str,
    percentiles: tuple[float, float],
    plate_range: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, C) float32 low, span, bool span > 0, float32 high: out = clip((x - low) / span).

    The same float32 values `_scale` and `_divide_by_max` use, so that `_affine_into` gives
    their results bit for bit ("max": low 0 and span the maximum, x / max being in 0..1).
    """
    n, n_channels = crops.shape[:2]
    if mode == "max":
        top = flat.max(axis=1).reshape(n, n_channels).astype(np.float32)
        zero = np.zeros((n, n_channels), np.float32)
        return zero, np.where(top > 0, top, 1), top > 0, top
    low, high = _crop_range(crops, flat, mode, percentiles, plate_range)
    span = high - low
    ok = span > 0
    span32 = np.where(ok, span, 1.0).astype(np.float32)
    return low.astype(np.float32), span32, ok, high.astype(np.float32)


def _normalise_numpy(
    crops: np.ndarray,
    mode: str,
    percentiles: tuple[float, float],
    plate_range: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """`normalise_crops` with numpy operations, for crops of dtypes other than uint8 / uint16."""
    image = crops.astype(np.float32)
    if mode == "none":
        return image
    n, n_channels = crops.shape[:2]
    if mode == "max":
        return _divide_by_max(image, crops.reshape(n, n_channels, -1).max(axis=2))
    flat = crops.reshape(n, n_channels, -1).reshape(n * n_channels, -1)
    low, high = _crop_range(crops, flat, mode, percentiles, plate_range)
    return _scale(image, crops, low, high)


def _crop_range(
    crops: np.ndarray,
    flat: np.ndarray,
    mode: str,
    percentiles: tuple[float, float],
    plate_range: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The (N, C) low and high values mapped to 0 and 1 by "minmax", "percentile" or "plate"."""
    n, n_channels = crops.shape[:2]
    if mode == "minmax":  # each crop's channel minimum and maximum
        shape = (n, n_channels)
        return flat.min(axis=1).reshape(shape), flat.max(axis=1).reshape(shape)
    if mode == "percentile":
        return crop_percentiles(crops, percentiles)
    return _plate_range(plate_range, n, n_channels)


def _plate_range(
    plate_range: tuple[np.ndarray, np.ndarray] | None, n: int, n_channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """The (N, C) float64 low and high values of `plate_range` ((C,) or (N, C) each)."""
    if plate_range is None:
        raise ValueError('normalise="plate" needs plate_range')
    low, high = (np.broadcast_to(np.asarray(v, np.float64), (n, n_channels)) for v in plate_range)
    return low, high


def crop_percentiles(crops: np.ndarray, q: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The two percentiles `q` of every crop and channel, exactly as ``np.percentile``.

    Parameters
    ----------
    crops : ndarray
        (N, C, ...) intensities: the percentiles are over the trailing axes.
    q : (float, float)
        Percentiles, in 0..100.

    Returns
    -------
    (ndarray, ndarray)
        (N, C) float64 each: ``np.percentile(crops[i, c], q)`` for every i, c, bit for bit.
        uint8 / uint16 crops are counted in a histogram; others partially sorted.
    """
    n, n_channels = crops.shape[:2]
    flat = np.ascontiguousarray(crops.reshape(n * n_channels, -1))
    if flat.size == 0:
        return np.empty((n, n_channels)), np.empty((n, n_channels))
    below, above, fraction, ranks = _order_statistics(flat.shape[1], tuple(map(float, q)))
    if flat.dtype in _HISTOGRAM_DTYPES:
        values = _values_at_ranks(flat, ranks)
        a, b = values[:, np.searchsorted(ranks, below)], values[:, np.searchsorted(ranks, above)]
    else:
        part = np.partition(flat, ranks, axis=1)
        a, b = part[:, below], part[:, above]
    values = _lerp(a, b, fraction)  # (N * C, 2) float64
    return values[:, 0].reshape(n, n_channels), values[:, 1].reshape(n, n_channels)


def _divide_by_max(image: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Divide (N, C, S, S) `image` in place by its (N, C) maxima; all-zero channels stay 0."""
    top = top.astype(np.float32)[..., None, None]
    if top.all():
        return np.divide(image, top, out=image)
    return np.divide(image, top, out=image, where=top > 0)


@functools.lru_cache(maxsize=64)
def _order_statistics(
    n: int, q: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ranks below and above each percentile of n values, the fraction between, all ranks.

    As ``np.percentile``'s linear method: the virtual index of quantile q/100 is
    ``(n - 1) * q / 100``; the fraction is its distance to the rank below.
    """
    position = (n - 1) * (np.asarray(q, np.float64) / 100.0)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    return below, above, position - below, np.unique(np.r_[below, above])


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``np.percentile``'s interpolation between order statistics `a` and `b`, bit for bit.

    As numpy's ``_lerp``: the difference in the values' own dtype, then from a where the
    float64 fraction t < 0.5 and from b above (a + (b - a) t alone differs in the last bit).
    """
    diff = np.subtract(b, a)
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t).astype(np.float64, copy=False)


def _values_at_ranks(flat: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """(R, K) values of sorted rank `ranks` (ascending, 0-based) of each row of (R, P) `flat`."""
    histogram = np.zeros(int(np.iinfo(flat.dtype).max) + 1, np.uint32)
    values = np.empty((len(flat), len(ranks)), flat.dtype)
    _ranked_values(flat, ranks.astype(np.intp), histogram, values)
    return values


@numba.njit(cache=True, nogil=True)
def _ranked_values(flat, ranks, histogram, values):  # pragma: no cover (compiled)
    """Fill values[r, k] with the ranks[k]-th smallest value of flat[r], by counting.

    `histogram` (one counter per value of the dtype) is zero on entry and on exit. Each row
    is counted into it in one pass that also finds the row's maximum; zeros (the masked
    pixels around a cell, often half a crop) go to a counter of their own, so that their
    runs do not wait on one memory counter. The ranks in the lower half are then found
    scanning up from 0, those in the upper half scanning down from the maximum: a scan
    stops at its last rank (for 1 / 99 %, a few hundred values of the ~10^4 counted), and
    the counters up to the maximum are cleared in one pass.
    """
    n_pixels = flat.shape[1]
    split = 0  # ranks[:split] are in the lower half
    while split < ranks.shape[0] and 2 * ranks[split] < n_pixels:
        split += 1
    for r in range(flat.shape[0]):
        row = flat[r]
        zeros = 0
        top = 0
        for i in range(n_pixels):
            v = row[i]
            if v == 0:
                zeros += 1
            else:
                histogram[v] += 1
                top = max(top, v)
        _scan_up(histogram, zeros, ranks, split, values[r])
        _scan_down(histogram, top, n_pixels, ranks, split, values[r])
        histogram[: top + 1] = 0


@numba.njit(cache=True, nogil=True, inline="always")
def _scan_up(histogram, zeros, ranks, split, values):  # pragma: no cover (compiled)
    """values[k] for k < split: the first value whose cumulative count exceeds ranks[k]."""
    k = 0
    seen = zeros
    v = 0
    while k < split:
        if v > 0:
            seen += histogram[v]
        while k < split and seen > ranks[k]:
            values[k] = v
            k += 1
        v += 1


@numba.njit(cache=True, nogil=True, inline="always")
def _scan_down(histogram, top, n_pixels, ranks, split, values):  # pragma: no cover
    """values[k] for k >= split: the first value down from `top` with enough pixels above.

    That is more than ``n_pixels - 1 - ranks[k]`` pixels at or above it; 0 where only the
    zeros (not in `histogram`) are left.
    """
    k = ranks.shape[0] - 1
    above = 0
    v = top
    while k >= split and v > 0:
        above += histogram[v]
        while k >= split and above > n_pixels - 1 - ranks[k]:
            values[k] = v
            k -= 1
        v -= 1
    while k >= split:
        values[k] = 0
        k -= 1


def _scale(image: np.ndarray, crops: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map (N, C) `low`..`high` to 0..1 in `image` in place and clip.

    Where high <= low (or either is NaN) the channel reads 1 above high, else 0, from the raw
    `crops` (N, C, S, S).
    """
    span = high - low
    ok = span > 0
    low32 = low.astype(np.float32)[..., None, None]
    np.subtract(image, low32, out=image)
    np.divide(image, np.where(ok, span, 1.0).astype(np.float32)[..., None, None], out=image)
    np.maximum(image, 0.0, out=image)
    np.minimum(image, 1.0, out=image)
    if not ok.all():
        high32 = high.astype(np.float32)[~ok][:, None, None]
        image[~ok] = crops[~ok].astype(np.float32) > high32
    return image


@numba.njit(cache=True, nogil=True)
def _cast_into(flat, take, n_channels, rows):  # pragma: no cover (compiled)
    """rows[k * C + c] = flat[take[k] * C + c] as float32; rows of take[k] < 0 left alone."""
    for k in range(take.shape[0]):
        j = take[k]
        if j < 0:
            continue
        for c in range(n_channels):
            src = flat[j * n_channels + c]
            dst = rows[k * n_channels + c]
            for i in range(flat.shape[1]):
                dst[i] = np.float32(src[i])


@numba.njit(cache=True, nogil=True)
def _affine_into(flat, take, n_channels, low, span, ok, high, rows):  # pragma: no cover
    """rows[k * C + c] = (flat[take[k] * C + c] - low) / span, clipped to 0..1.

    One pass from the raw values to float32, the same operations in the same float32
    arithmetic as `_scale` (subtract, divide, max 0, min 1). Where ``ok`` is False the row
    reads 1 above ``high``, else 0. Rows of a negative ``take[k]`` are left as they are.
    """
    zero = np.float32(0.0)
    one = np.float32(1.0)
    n_pixels = flat.shape[1]
    for k in range(take.shape[0]):
        j = take[k]
        if j < 0:
            continue
        for c in range(n_channels):
            src = flat[j * n_channels + c]
            dst = rows[k * n_channels + c]
            lo = low[j, c]
            sp = span[j, c]
            hi = high[j, c]
            if ok[j, c]:
                for i in range(n_pixels):
                    dst[i] = min(max((np.float32(src[i]) - lo) / sp, zero), one)
            else:
                for i in range(n_pixels):
                    dst[i] = one if np.float32(src[i]) > hi else zero
