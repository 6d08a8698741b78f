"""Handcrafted per-cell features: intensity, shape and texture per region, a whole field at once.

Columns follow CellProfiler's words, as pycytominer users read them:
``<Region>_<Group>_<Feature>[_<Channel>]``, e.g. ``Nucleus_Intensity_MeanIntensity_DNA``,
``Cell_AreaShape_Solidity`` or ``Nucleus_Texture_Contrast_DNA_1_00`` (texture adds the distance
in px and the angle in degrees, two digits). Regions are Nucleus (the nucleus label image),
Cytoplasm (cell minus nucleus) and Cell; a nucleus carries its cell's label. Per field,
``Image_Count_Cells`` holds the number of cells of the field on every row.

Definitions (values are not rounded; a region with no pixels, such as the cytoplasm of a cell
that is all nucleus, gives NaN for every feature of that region):

- Intensity, per region and channel, over the region's pixels: MeanIntensity, StdIntensity
  (population standard deviation, ``ddof=0``), MinIntensity, MaxIntensity, MedianIntensity,
  LowerQuartileIntensity and UpperQuartileIntensity (``np.percentile`` with its default
  'linear' method at 50, 25 and 75) and IntegratedIntensity (the sum).
- AreaShape, per region, as scikit-image's ``regionprops`` defines them (see `SHAPE_FEATURES`
  for the property behind each name), computed for all objects at once (`cellbench.features.shape`).
- Texture (when a `TextureConfig` is given): grey-level co-occurrence properties, see
  `cellbench.features.texture` for the exact definition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cellbench.features import texture as glcm
from cellbench.features.intensity import INTENSITY_FEATURES, intensity_stats
from cellbench.features.shape import SHAPE_FEATURES, shape_features

if TYPE_CHECKING:
    from cellbench.config import TextureConfig

__all__ = [
    "COUNT_COLUMN",
    "INTENSITY_FEATURES",
    "METADATA_PREFIX",
    "REGIONS",
    "SHAPE_FEATURES",
    "TEXTURE_FEATURES",
    "measure_field",
    "metadata_column",
    "region_labels",
    "texture_column",
]

REGIONS: tuple[str, ...] = ("Nucleus", "Cytoplasm", "Cell")
TEXTURE_FEATURES: tuple[str, ...] = glcm.PROPERTIES
COUNT_COLUMN = "Image_Count_Cells"
METADATA_PREFIX = "Metadata_"


def metadata_column(name: str) -> str:
    """Feature-table column of a metadata variable, in CamelCase.

    Examples
    --------
    >>> metadata_column("cell_id")
    'Metadata_CellId'
    """
    return METADATA_PREFIX + "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def region_labels(cells: np.ndarray, nuclei: np.ndarray) -> dict[str, np.ndarray]:
    """Label images of the three regions; every region of a cell carries the cell's label."""
    return {
        "Nucleus": nuclei,
        "Cytoplasm": np.where(nuclei > 0, 0, cells),
        "Cell": cells,
    }


def texture_column(region: str, feature: str, channel: str, distance: int, angle_deg: float) -> str:
    """Column name of one texture feature, e.g. ``Nucleus_Texture_Contrast_DNA_1_00``."""
    return f"{region}_Texture_{feature}_{channel}_{distance}_{glcm.angle_token(angle_deg)}"


def measure_field(
    image: np.ndarray,
    cells: np.ndarray,
    nuclei: np.ndarray,
    channel_names: list[str],
    regions: list[str],
    texture: TextureConfig | None = None,
) -> pd.DataFrame:
    """Measure every cell of one field.

    Parameters
    ----------
    image : (C, Y, X) ndarray
        Raw intensities.
    cells, nuclei : (Y, X) ndarray of int
        Label images; a nucleus carries its cell's label (nuclei without a cell are ignored).
    channel_names : list of str
        Names of the C channels, used in column names.
    regions : list of {"Nucleus", "Cytoplasm", "Cell"}
    texture : TextureConfig, optional
        Distances, angles and grey levels of GLCM texture; None: no texture columns.

    Returns
    -------
    DataFrame
        One row per cell label (column ``label``, ascending), ``Image_Count_Cells``, then per
        region (in `REGIONS` order) its AreaShape, Intensity and Texture columns.

    Raises
    ------
    ValueError
        The image does not have one plane per channel name, or an unknown region.
    """
    image = np.asarray(image)
    cells, nuclei = np.asarray(cells), np.asarray(nuclei)
    if image.ndim != 3 or image.shape[0] != len(channel_names):
        raise ValueError(
            f"image of shape {image.shape} does not hold the {len(channel_names)} channels "
            f"{channel_names} as (C, Y, X)"
        )
    if image.shape[1:] != cells.shape or cells.shape != nuclei.shape:
        raise ValueError(
            f"image {image.shape[1:]}, cells {cells.shape} and nuclei {nuclei.shape} differ"
        )
    unknown = sorted(set(regions) - set(REGIONS))
    if unknown:
        raise ValueError(f"unknown regions {unknown}; valid: {list(REGIONS)}")
    labels = _labels_of(cells)
    n = len(labels)
    columns: dict[str, np.ndarray] = {
        "label": labels,
        COUNT_COLUMN: np.full(n, n, dtype=np.int64),
    }
    planes = image.reshape(image.shape[0], -1)
    for region, label_image in region_labels(cells, nuclei).items():
        if region not in regions:
            continue
        compact = _compact(label_image, labels)
        pixels = np.flatnonzero(compact)
        owner = compact.reshape(-1)[pixels].astype(np.intp) - 1
        counts = np.bincount(owner, minlength=n)
        for name, values in shape_features(compact, n, counts).items():
            columns[f"{region}_AreaShape_{name}"] = values
        values = np.take(planes, pixels, axis=1)
        stats = intensity_stats(owner, counts, values)
        for channel, channel_stats in zip(channel_names, stats, strict=True):
            for name in INTENSITY_FEATURES:
                columns[f"{region}_Intensity_{name}_{channel}"] = channel_stats[name]
        if texture is None:
            continue
        found = glcm.glcm_texture_at(
            compact,
            pixels,
            values,
            texture.distances_px,
            texture.angles_deg,
            texture.levels,
            maxima=np.stack([channel_stats["MaxIntensity"] for channel_stats in stats]),
            n_objects=n,
        )
        for c, channel in enumerate(channel_names):
            for name in TEXTURE_FEATURES:
                for distance in texture.distances_px:
                    for angle in texture.angles_deg:
                        column = texture_column(region, name, channel, distance, angle)
                        columns[column] = found[(name, c, distance, angle)]
    return pd.DataFrame(columns)


# --- labels ------------------------------------------------------------------------------------


def _labels_of(cells: np.ndarray) -> np.ndarray:
    """Sorted positive labels of a label image."""
    if cells.size == 0:
        return np.zeros(0, np.int64)
    top = int(cells.max())
    if top <= 0:
        return np.zeros(0, np.int64)
    if top <= 4 * cells.size + 1024 and (cells.dtype.kind == "u" or cells.min() >= 0):
        present = np.bincount(cells.reshape(-1).astype(np.intp, copy=False), minlength=top + 1)
        return np.flatnonzero(present[1:]).astype(np.int64) + 1
    return np.unique(cells[cells > 0]).astype(np.int64)


def _compact(label_image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """`label_image` renumbered 1..N by position in `labels`; 0 for background and other labels."""
    top = int(label_image.max()) if label_image.size else 0
    if top <= 0 or len(labels) == 0:
        return np.zeros(label_image.shape, np.int32)
    if labels[-1] == len(labels) and top <= len(labels) and label_image.dtype.kind in "iu":
        if label_image.dtype.kind == "u" or label_image.min() >= 0:  # already 1..N
            return label_image
    if top > 4 * label_image.size + 1024:  # sparse huge labels: look them up instead
        flat = label_image.reshape(-1)
        index = np.searchsorted(labels, flat).clip(0, len(labels) - 1)
        hit = (flat > 0) & (labels[index] == flat)
        return np.where(hit, index + 1, 0).astype(np.int32).reshape(label_image.shape)
    lut = np.zeros(top + 1, np.int32)
    inside = labels <= top
    lut[labels[inside]] = np.flatnonzero(inside) + 1
    if label_image.dtype.kind != "u" and label_image.min() < 0:
        label_image = label_image.clip(0)
    return lut[label_image]
