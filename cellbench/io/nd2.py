"""Read fields of view from Nikon ND2 files (through the `nd2` package)."""

from __future__ import annotations

import math
from pathlib import Path

import nd2
import numpy as np

from cellbench.errors import CellbenchError
from cellbench.io.axes import check_plane_args, reduce_axes
from cellbench.io.tiff import FieldImage

#: The axes `nd2` reports that this reader understands (P: positions, S: RGB components).
_KNOWN_AXES = set("PTZCYXS")


def read_nd2(path: Path, *, z: str | int = "max", t: int = 0) -> list[FieldImage]:
    """Read every position of an ND2 file as a (C, Y, X) field.

    Parameters
    ----------
    path : Path
        The ND2 file.
    z : "max" or int, default "max"
        Max-project Z, or take plane `z`.
    t : int, default 0
        The time point to take.

    Returns
    -------
    list of FieldImage
        One field per position (the ``P`` axis, "multi-position"), in P order; one item when
        the file has no P axis. Channel names from ``metadata.channels[i].channel.name`` (RGB
        components, an ``S`` axis, become channels ``"name [R]"`` etc.), pixel size from
        ``voxel_size().x`` when the X axis is calibrated, ``source`` is the path, with
        ``" position p/P"`` appended when the file has several positions.

    Raises
    ------
    CellbenchError
        The file is missing, truncated or corrupt; `t` or `z` is out of range (the message gives
        the T or Z size); or the file has an axis this reader does not understand. The message
        names the file.
    """
    source = str(path)
    check_plane_args(z, t, source)
    try:
        with nd2.ND2File(path) as handle:
            return _read_positions(handle, source, z=z, t=t)
    except FileNotFoundError:
        raise CellbenchError(f"{source}: file not found") from None
    except CellbenchError:
        raise
    except Exception as exc:  # corrupt / truncated files fail in many ways inside `nd2`
        detail = str(exc) if len(str(exc)) <= 200 else str(exc)[:200] + "..."
        raise CellbenchError(f"{source}: cannot read ND2: {type(exc).__name__}: {detail}") from exc


def _read_positions(handle, source: str, *, z: str | int, t: int) -> list[FieldImage]:
    sizes = dict(handle.sizes)
    axes = "".join(sizes)
    odd = [a for a in axes if a not in _KNOWN_AXES]
    if odd:
        raise CellbenchError(f"{source}: unsupported ND2 axis/axes {odd} (sizes {sizes})")
    n_t, n_z = sizes.get("T", 1), sizes.get("Z", 1)
    if int(t) >= n_t:
        raise CellbenchError(f"{source}: t={t} is out of range: T size is {n_t}")
    if z != "max" and int(z) >= n_z:
        raise CellbenchError(f"{source}: z={z} is out of range: Z size is {n_z}")
    names = _channel_names(handle, sizes.get("C", 1))
    pixel_size = _pixel_size(handle)

    data = handle.to_dask()
    if tuple(data.shape) != tuple(sizes.values()):
        raise CellbenchError(f"{source}: ND2 data of shape {data.shape} do not match {sizes}")
    # Index T (and Z when a plane is asked for) lazily, so that only those frames are read.
    index: list[int | slice] = [slice(None)] * len(axes)
    kept = axes
    if "T" in axes:
        index[axes.index("T")] = int(t)
        kept = kept.replace("T", "")
    if "Z" in axes and z != "max":
        index[axes.index("Z")] = int(z)
        kept = kept.replace("Z", "")
    data = data[tuple(index)]

    n_positions = sizes.get("P", 1)
    fields = []
    for p in range(n_positions):
        if "P" in kept:
            block, block_axes = data[p], kept.replace("P", "")
        else:
            block, block_axes = data, kept
        array = np.asarray(block.compute(scheduler="synchronous"))
        where = source if n_positions == 1 else f"{source} position {p}/{n_positions}"
        image, field_names = reduce_axes(
            array,
            block_axes,
            z="max" if "Z" in block_axes else 0,
            t=0,
            source=where,
            channel_names=names,
        )
        fields.append(FieldImage(image, field_names, pixel_size, where))
    return fields


def _channel_names(handle, n_channels: int) -> list[str] | None:
    """Channel names from the file's metadata, or None when it does not give one per channel."""
    channels = getattr(getattr(handle, "metadata", None), "channels", None)
    if not channels:
        return None
    try:
        names = [str(channel.channel.name) for channel in channels]
    except AttributeError:
        return None
    return names if len(names) == n_channels else None


def _pixel_size(handle) -> float | None:
    """X voxel size in um, or None when the file does not calibrate X."""
    channels = getattr(getattr(handle, "metadata", None), "channels", None)
    if channels:
        calibrated = getattr(getattr(channels[0], "volume", None), "axesCalibrated", None)
        if calibrated is not None and not calibrated[0]:
            return None
    try:
        value = float(handle.voxel_size().x)
    except (AttributeError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None
