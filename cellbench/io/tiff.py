"""Read multi-channel fields from TIFF files.

TIFF, OME-TIFF and ImageJ stacks (`read_tiff`), one file per channel (`read_channel_files`),
and the mapping of the config's channel names onto a file's channels (`map_channels`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import tifffile

from cellbench.errors import CellbenchError
from cellbench.io.axes import check_plane_args, reduce_axes


@dataclass
class FieldImage:
    """One field of view as a (C, Y, X) array with what the file says about it.

    Attributes
    ----------
    image : (C, Y, X) ndarray
        The pixel values, in the file's dtype.
    channel_names : list of str or None
        One name per channel when the file records them, else None.
    pixel_size_um : float or None
        The X pixel size in micrometres when the file records it, else None.
    source : str
        The file(s) the field came from, for error messages.
    """

    image: np.ndarray
    channel_names: list[str] | None
    pixel_size_um: float | None
    source: str


#: Length units (as OME and ImageJ spell them) in micrometres.
_UNIT_UM = {
    "m": 1e6,
    "cm": 1e4,
    "mm": 1e3,
    "µm": 1.0,
    "μm": 1.0,
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "\\u00b5m": 1.0,
    "nm": 1e-3,
    "å": 1e-4,
}
#: TIFF ResolutionUnit values with a metric length (tifffile.RESUNIT): pixels per unit -> um.
_RESUNIT_UM = {3: 1e4, 4: 1e3, 5: 1.0}  # CENTIMETER, MILLIMETER, MICROMETER


def read_tiff(path: Path, *, z: str | int = "max", t: int = 0) -> FieldImage:
    """Read one TIFF as a (C, Y, X) field.

    A 2-D image gives C = 1. Multi-page, OME-TIFF and ImageJ stacks are interpreted by the axes
    of their first series (tifffile's ``series[0].axes``): T is indexed by `t`, Z max-projected
    (``z="max"``) or indexed (``z=int``), C kept, S (samples, e.g. RGB) treated as channels.
    A plain multi-page TIFF (axes ``IYX`` / ``QYX``) is read as one channel per page.

    Parameters
    ----------
    path : Path
        The TIFF file.
    z : "max" or int, default "max"
        Max-project Z, or take plane `z`.
    t : int, default 0
        The time point to take.

    Returns
    -------
    FieldImage
        Channel names from OME ``Channel/@Name``, ImageJ ``Labels`` or the ``channel_names``
        that cellbench stores in tifffile's shaped metadata, when present and one per channel.
        Pixel size from OME ``PhysicalSizeX`` or the XResolution tag with a centimetre,
        millimetre or micrometre unit (or ImageJ's unit when the tag's unit is NONE); an inch
        unit (usually a meaningless DPI default) gives None.

    Raises
    ------
    CellbenchError
        The file is missing, truncated or corrupt, `t` / `z` is out of range, or its axes
        cannot be interpreted; the message names the file.
    """
    return _read_tiff_layout(Path(path), z=z, t=t)[0]


def _read_tiff_layout(
    path: Path, *, z: str | int, t: int
) -> tuple[FieldImage, str, tuple[int, ...]]:
    """`read_tiff`, also returning the series axes and shape as stored."""
    source = str(path)
    check_plane_args(z, t, source)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = series.axes, tuple(series.shape)
            _check_not_truncated(tif, series, source)
            data = series.asarray()
            names = _tiff_channel_names(tif, axes, shape)
            pixel_size = _tiff_pixel_size(tif)
    except FileNotFoundError:
        raise CellbenchError(f"{source}: file not found") from None
    except CellbenchError:
        raise
    except Exception as exc:  # truncated or corrupt files raise codec-specific errors
        raise CellbenchError(f"{source}: cannot read TIFF: {type(exc).__name__}: {exc}") from exc
    if data.shape != shape:  # e.g. tifffile squeezed differently; trust the data
        raise CellbenchError(
            f"{source}: cannot read TIFF: series shape {shape} but data of shape {data.shape}"
        )
    image, names = reduce_axes(data, axes, z=z, t=t, source=source, channel_names=names)
    return FieldImage(image, names, pixel_size, source), axes, shape


def _check_not_truncated(tif: tifffile.TiffFile, series: tifffile.TiffPageSeries, source: str):
    """Raise if a page's image data would run past the end of its file."""
    for page in series.pages:
        if page is None:
            continue
        offsets = getattr(page, "dataoffsets", ())
        counts = getattr(page, "databytecounts", ())
        if not offsets or not counts:
            continue
        size = page.parent.filehandle.size
        end = max(int(o) + int(c) for o, c in zip(offsets, counts, strict=False))
        if end > size:
            raise CellbenchError(
                f"{source}: truncated TIFF: image data runs to byte {end} but the file has "
                f"{size} bytes"
            )


def _tiff_channel_names(
    tif: tifffile.TiffFile, axes: str, shape: tuple[int, ...]
) -> list[str] | None:
    """Channel names from OME, ImageJ or cellbench's shaped metadata; None when absent."""
    sizes = dict(zip(axes.upper(), shape, strict=True))
    n_channels = sizes.get("C", 1)
    if tif.is_ome and tif.ome_metadata:
        names = _ome_channel_names(tif.ome_metadata)
        if names:
            return names
    if tif.is_imagej and tif.imagej_metadata:
        labels = tif.imagej_metadata.get("Labels")
        if labels:
            labels = [str(label) for label in labels]
            if len(labels) == n_channels:
                return labels
            # ImageJ labels are per plane, channels varying fastest: keep them only when every
            # Z / T plane repeats the same channel labels.
            if len(labels) % n_channels == 0 and all(
                label == labels[i % n_channels] for i, label in enumerate(labels)
            ):
                return labels[:n_channels]
    if tif.is_shaped and tif.shaped_metadata:
        names = tif.shaped_metadata[0].get("channel_names")
        if names:
            return [str(name) for name in names]
    return None


def _ome_pixels(ome_xml: str):
    """The Pixels element of the first OME Image, or None."""
    root = ElementTree.fromstring(ome_xml)
    for image in root:
        if _local(image.tag) == "Image":
            for child in image:
                if _local(child.tag) == "Pixels":
                    return child
            return None
    return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ome_channel_names(ome_xml: str) -> list[str] | None:
    try:
        pixels = _ome_pixels(ome_xml)
    except ElementTree.ParseError:
        return None
    if pixels is None:
        return None
    channels = [child for child in pixels if _local(child.tag) == "Channel"]
    names = [channel.get("Name") for channel in channels]
    if not names or any(name is None for name in names):
        return None
    return names


def _ome_pixel_size(ome_xml: str) -> float | None:
    try:
        pixels = _ome_pixels(ome_xml)
    except ElementTree.ParseError:
        return None
    if pixels is None or pixels.get("PhysicalSizeX") is None:
        return None
    scale = _UNIT_UM.get(pixels.get("PhysicalSizeXUnit", "µm").strip().lower())
    try:
        value = float(pixels.get("PhysicalSizeX"))
    except ValueError:
        return None
    return _positive(value * scale) if scale is not None else None


def _tiff_pixel_size(tif: tifffile.TiffFile) -> float | None:
    """X pixel size in um from OME PhysicalSizeX or the resolution tags; None when unknown."""
    if tif.is_ome and tif.ome_metadata:
        size = _ome_pixel_size(tif.ome_metadata)
        if size is not None:
            return size
    page = tif.pages[0]
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    try:
        numerator, denominator = tag.value
        pixels_per_unit = float(numerator) / float(denominator)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    unit_tag = page.tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 2  # TIFF default: inch
    scale = _RESUNIT_UM.get(unit)
    if scale is None and unit == 1 and tif.is_imagej and tif.imagej_metadata:
        scale = _UNIT_UM.get(str(tif.imagej_metadata.get("unit", "")).strip().lower())
    if scale is None or pixels_per_unit <= 0:
        return None
    return _positive(scale / pixels_per_unit)


def _positive(value: float) -> float | None:
    return value if math.isfinite(value) and value > 0 else None


def read_channel_files(
    paths: Sequence[Path], names: Sequence[str], *, z: str | int = "max", t: int = 0
) -> FieldImage:
    """Read one single-channel TIFF per channel as a (C, Y, X) field.

    Parameters
    ----------
    paths : sequence of Path
        One file per channel, in channel order.
    names : sequence of str
        The channel names, one per file; become ``channel_names``.
    z, t
        As for `read_tiff`, applied to every file.

    Returns
    -------
    FieldImage
        ``source`` lists the files; ``pixel_size_um`` is the files' pixel size when every file
        that records one agrees (within 0.1 %), else None.

    Raises
    ------
    CellbenchError
        `paths` and `names` differ in length or are empty; a file cannot be read; a file holds
        more than one channel after z / t handling ('expected one channel', with its shape and
        axes); or the files differ in shape or dtype (naming the odd file and both shapes).
    """
    paths = [Path(p) for p in paths]
    names = [str(n) for n in names]
    source = ", ".join(str(p) for p in paths)
    if not paths:
        raise CellbenchError("read_channel_files: no files given")
    if len(paths) != len(names):
        raise CellbenchError(
            f"{source}: {len(paths)} file(s) but {len(names)} channel name(s) {names}"
        )
    planes: list[np.ndarray] = []
    sizes: list[float] = []
    for path in paths:
        field, axes, shape = _read_tiff_layout(path, z=z, t=t)
        if field.image.shape[0] != 1:
            raise CellbenchError(
                f"{path}: expected one channel per file, got {field.image.shape[0]} "
                f"(stored shape {shape}, axes {axes}, z={z!r}, t={t})"
            )
        plane = field.image[0]
        if planes and (plane.shape != planes[0].shape or plane.dtype != planes[0].dtype):
            raise CellbenchError(
                f"{path}: image of shape {plane.shape} and dtype {plane.dtype} differs from "
                f"{paths[0]}: shape {planes[0].shape}, dtype {planes[0].dtype}"
            )
        planes.append(plane)
        if field.pixel_size_um is not None:
            sizes.append(field.pixel_size_um)
    pixel_size = (
        sizes[0] if sizes and all(math.isclose(s, sizes[0], rel_tol=1e-3) for s in sizes) else None
    )
    return FieldImage(np.stack(planes), names, pixel_size, source)


def map_channels(
    field: FieldImage, wanted: Sequence[str], mapping: dict[str, str | int] | None = None
) -> np.ndarray:
    """Pick the configured channels of a field, by name or through a mapping.

    Parameters
    ----------
    field : FieldImage
        The field read from the file(s).
    wanted : sequence of str
        The channel names the config uses, in the order wanted.
    mapping : dict, optional
        Config name -> the file's channel name (str) or channel index (int, 0-based). Names not
        in the mapping are looked up in the file by exactly that name.

    Returns
    -------
    (len(wanted), Y, X) ndarray
        A copy, in the file's dtype.

    Raises
    ------
    CellbenchError
        A wanted channel cannot be found (not in the file, index out of range, or the file has
        no channel names), or a file name is ambiguous; the message names the source, the
        wanted name and the channels the file has. There is no silent fallback to position.
    """
    mapping = dict(mapping or {})
    has = _describe_channels(field)
    indices = [_channel_index(field, name, mapping.get(name, name), has) for name in wanted]
    return field.image[indices]


def _describe_channels(field: FieldImage) -> str:
    """What the field's channels are, for error messages: their names, or how to map them."""
    n_channels = field.image.shape[0]
    if field.channel_names is not None:
        return f"the file has channels {field.channel_names}"
    return f"the file has {n_channels} unnamed channel(s) (map them by index 0-{n_channels - 1})"


def _channel_index(field: FieldImage, name: str, target: object, has: str) -> int:
    """The index of the channel that config channel `name` maps to (`target`: name or index)."""
    n_channels = field.image.shape[0]
    if isinstance(target, Integral) and not isinstance(target, bool):
        if not 0 <= int(target) < n_channels:
            raise CellbenchError(
                f"{field.source}: channel {name!r} is mapped to index {target}, out of range; {has}"
            )
        return int(target)
    if not isinstance(target, str):
        raise CellbenchError(
            f"{field.source}: channel {name!r} is mapped to {target!r}; expected a channel "
            f"name or an integer index; {has}"
        )
    found = [i for i, have in enumerate(field.channel_names or []) if have == target]
    if not found:
        via = f" (mapped to {target!r})" if target != name else ""
        raise CellbenchError(f"{field.source}: channel {name!r}{via} not found; {has}")
    if len(found) > 1:
        raise CellbenchError(
            f"{field.source}: channel {name!r} matches {len(found)} channels named "
            f"{target!r}; map it by index; {has}"
        )
    return found[0]
