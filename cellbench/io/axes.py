"""Turn an array with named axes (tifffile / nd2 letters) into a (C, Y, X) field.

`reduce_axes` indexes T, max-projects or indexes Z, drops other singleton axes, takes an
unnamed page axis as the channel axis and folds C and S (samples) into one channel axis.
`check_plane_args` validates the ``z`` / ``t`` arguments the readers share.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np

from cellbench.errors import CellbenchError

#: Axes (tifffile letters) that hold channels: C proper and S (samples, e.g. RGB).
_CHANNEL_AXES = "CS"
#: Axes tifffile uses when it does not know what a leading axis is (pages / unknown).
_GENERIC_AXES = "IQ"


def check_plane_args(z: object, t: object, source: str) -> None:
    """Validate the ``z`` / ``t`` arguments shared by the readers.

    Raises
    ------
    CellbenchError
        ``z`` is neither ``"max"`` nor a non-negative integer, or ``t`` is not a non-negative
        integer.
    """
    if not (z == "max" or _is_index(z)):
        raise CellbenchError(f"{source}: z must be 'max' or a non-negative integer, got {z!r}")
    if not _is_index(t):
        raise CellbenchError(f"{source}: t must be a non-negative integer, got {t!r}")


def _is_index(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and int(value) >= 0


def reduce_axes(
    data: np.ndarray,
    axes: str,
    *,
    z: str | int,
    t: int,
    source: str,
    channel_names: list[str] | None = None,
) -> tuple[np.ndarray, list[str] | None]:
    """Turn an array with named axes into a (C, Y, X) array.

    Parameters
    ----------
    data : ndarray
        The pixel values, one dimension per letter of `axes`.
    axes : str
        One letter per dimension: ``T`` (indexed by `t`), ``Z`` (max-projected or indexed by
        `z`), ``C`` and ``S`` (channels, C-major when both), ``Y``, ``X``. ``I`` or ``Q`` (an
        unnamed axis, e.g. the pages of a plain multi-page TIFF) is taken as the channel axis
        when there is no ``C`` / ``S`` axis. Any other letter must have size 1.
    z : "max" or int
        Max-project Z, or take plane `z`.
    t : int
        The time point to take.
    source : str
        Named in error messages.
    channel_names : list of str, optional
        One name per ``C`` channel (or per channel in total); expanded per sample when there is
        an ``S`` axis as well.

    Returns
    -------
    image : (C, Y, X) ndarray
        Contiguous, in the input dtype.
    channel_names : list of str or None
        Names matching the channels of `image`, or None when the given ones do not fit.

    Raises
    ------
    CellbenchError
        `t` or `z` is out of range (the message gives the axis size), an axis cannot be
        interpreted, or Y / X is missing.
    """
    check_plane_args(z, t, source)
    axes = _checked_axes(data, axes, source)
    sizes = dict(zip(axes, data.shape, strict=True))
    described = f"axes {axes}, shape {data.shape}"
    data, axes = _take_time(data, axes, sizes, t=t, source=source)
    data, axes = _take_z(data, axes, sizes, z=z, source=source)
    data, axes = _find_channel_axes(data, axes, sizes, described=described, source=source)
    data = _to_csyx(data, axes)
    n_c, n_s = data.shape[:2]
    image = np.ascontiguousarray(data.reshape(n_c * n_s, *data.shape[2:]))
    return image, _expand_names(channel_names, n_c, n_s)


def _checked_axes(data: np.ndarray, axes: str, source: str) -> str:
    """`axes` in upper case; raise unless it names each dimension once, Y and X included."""
    axes = axes.upper()
    if len(axes) != data.ndim or len(set(axes)) != len(axes):
        raise CellbenchError(f"{source}: axes {axes!r} do not fit an array of shape {data.shape}")
    if "Y" not in axes or "X" not in axes:
        raise CellbenchError(f"{source}: no Y and X axes in {axes!r} (shape {data.shape})")
    return axes


def _take_time(
    data: np.ndarray, axes: str, sizes: dict[str, int], *, t: int, source: str
) -> tuple[np.ndarray, str]:
    """Index time point `t` of the T axis (without one, only ``t=0`` is valid)."""
    if "T" in axes:
        if int(t) >= sizes["T"]:
            raise CellbenchError(f"{source}: t={t} is out of range: T size is {sizes['T']}")
        return np.take(data, int(t), axis=axes.index("T")), axes.replace("T", "")
    if int(t) != 0:
        raise CellbenchError(f"{source}: t={t} is out of range: the file has no T axis (T size 1)")
    return data, axes


def _take_z(
    data: np.ndarray, axes: str, sizes: dict[str, int], *, z: str | int, source: str
) -> tuple[np.ndarray, str]:
    """Max-project the Z axis (``z="max"``) or index plane `z` (without one, only 0 is valid)."""
    if "Z" in axes:
        if z == "max":
            data = data.max(axis=axes.index("Z"))
        elif int(z) < sizes["Z"]:
            data = np.take(data, int(z), axis=axes.index("Z"))
        else:
            raise CellbenchError(f"{source}: z={z} is out of range: Z size is {sizes['Z']}")
        return data, axes.replace("Z", "")
    if z != "max" and int(z) != 0:
        raise CellbenchError(f"{source}: z={z} is out of range: the file has no Z axis (Z size 1)")
    return data, axes


def _find_channel_axes(
    data: np.ndarray, axes: str, sizes: dict[str, int], *, described: str, source: str
) -> tuple[np.ndarray, str]:
    """Drop singleton axes other than Y, X, C, S; take a lone I / Q axis as C; raise on others."""
    for letter in [a for a in axes if a not in "YXCS" and sizes[a] == 1]:
        data = data.squeeze(axis=axes.index(letter))
        axes = axes.replace(letter, "")
    if not any(a in axes for a in _CHANNEL_AXES):
        generic = [a for a in axes if a in _GENERIC_AXES]
        if len(generic) == 1:
            axes = axes.replace(generic[0], "C")
    odd = [a for a in axes if a not in "YXCS"]
    if odd:
        raise CellbenchError(
            f"{source}: cannot interpret axis/axes {odd} ({described}); "
            "expected T, Z, C, S (samples), Y and X"
        )
    return data, axes


def _to_csyx(data: np.ndarray, axes: str) -> np.ndarray:
    """`data` with axes some order of C, S, Y, X (C / S optional) as a (C, S, Y, X) view."""
    for letter in "CS":
        if letter not in axes:
            data = data[np.newaxis]
            axes = letter + axes
    return np.transpose(data, [axes.index(a) for a in "CSYX"])


def _expand_names(names: Sequence[str] | None, n_c: int, n_s: int) -> list[str] | None:
    if names is None:
        return None
    names = [str(name) for name in names]
    if len(names) == n_c * n_s:
        return names
    if len(names) == n_c and n_s > 1:
        labels = "RGBA" if n_s <= 4 else [str(i) for i in range(n_s)]
        return [f"{name} [{labels[s]}]" for name in names for s in range(n_s)]
    return None
