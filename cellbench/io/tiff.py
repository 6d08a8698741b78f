"""Read multi-channel fields from TIFF files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from cellbench.errors import CellbenchError


def read_multichannel_tiff(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """Read one field stored as a (C, Y, X) TIFF.

    Parameters
    ----------
    path : Path
        A TIFF holding a single 2-D image or a (C, Y, X) stack.

    Returns
    -------
    image : (C, Y, X) ndarray
        The pixel values in the file's dtype; a 2-D image gets C = 1.
    channel_names : list of str or None
        Names saved in the file's metadata by tifffile (``channel_names``), if any.

    Raises
    ------
    CellbenchError
        The file cannot be read or is not 2-D / 3-D; the message names the file.
    """
    try:
        with tifffile.TiffFile(path) as tif:
            image = tif.asarray()
            metadata = tif.shaped_metadata[0] if tif.shaped_metadata else {}
    except FileNotFoundError:
        raise CellbenchError(f"{path}: file not found") from None
    except Exception as exc:  # truncated or corrupt files raise codec-specific errors
        raise CellbenchError(f"{path}: cannot read TIFF: {type(exc).__name__}: {exc}") from exc
    if image.ndim == 2:
        image = image[np.newaxis]
    if image.ndim != 3:
        raise CellbenchError(f"{path}: expected a (C, Y, X) image, got shape {image.shape}")
    names = metadata.get("channel_names")
    if names is not None and len(names) != image.shape[0]:
        names = None
    return image, names


def select_channels(
    image: np.ndarray, available: list[str], wanted: list[str], source: Path
) -> np.ndarray:
    """Return the channels `wanted`, in that order, from a (C, Y, X) image by name.

    Raises
    ------
    CellbenchError
        A wanted channel is not in the file; the message names the file and its channels.
    """
    missing = [name for name in wanted if name not in available]
    if missing:
        raise CellbenchError(f"{source}: channel(s) {missing} not found; the file has {available}")
    return image[[available.index(name) for name in wanted]]
