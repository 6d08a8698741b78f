"""Handcrafted per-cell features: every feature group of every region, a whole field at once.

Columns follow CellProfiler's words, as pycytominer users read them:
``<Region>_<Group>_<Feature>[_<Channel>]``, e.g. ``Nuclei_Intensity_MeanIntensity_DNA``,
``Cells_AreaShape_Solidity`` or ``Nuclei_Texture_Contrast_DNA_1_00`` (texture adds the distance
in px and the angle in degrees, two digits). Regions are CellProfiler's objects: Nuclei (the
nucleus label image), Cytoplasm (cell minus nucleus) and Cells; a nucleus carries its cell's
label. Per field, ``Image_Count_Cells`` holds the number of cells of the field on every row;
identifiers are ``Metadata_*`` columns. pycytominer's `infer_cp_features` with its defaults
finds every region column (and ``Image_*`` with ``image_features=True``).

The groups are modules of `cellbench.features.groups`, each declaring its column grammar and
measuring one compartment under the `FeaturesConfig`. Definitions (values are not rounded; a
region with no pixels, such as the cytoplasm of a cell that is all nucleus, gives NaN for every
feature of that region):

- Intensity, per region and channel, over the region's pixels: MeanIntensity, StdIntensity
  (population standard deviation, ``ddof=0``), MinIntensity, MaxIntensity, MedianIntensity,
  LowerQuartileIntensity and UpperQuartileIntensity (``np.percentile`` with its default
  'linear' method at 50, 25 and 75) and IntegratedIntensity (the sum).
- AreaShape, per region, as scikit-image's ``regionprops`` defines them (see `SHAPE_FEATURES`
  for the property behind each name), computed for all objects at once (`cellbench.features.shape`).
- Texture (when ``features.texture`` is set): grey-level co-occurrence properties, see
  `cellbench.features.texture` for the exact definition.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cellbench.config.feature_groups import IMAGE, REGIONS
from cellbench.features.compartment import Compartment, labels_of, region_labels
from cellbench.features.groups import GROUPS, count
from cellbench.features.intensity import INTENSITY_FEATURES
from cellbench.features.shape import SHAPE_FEATURES
from cellbench.features.texture import PROPERTIES

if TYPE_CHECKING:
    from cellbench.config import FeaturesConfig

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
]

TEXTURE_FEATURES: tuple[str, ...] = PROPERTIES
COUNT_COLUMN = count.COLUMN
METADATA_PREFIX = "Metadata_"


def metadata_column(name: str) -> str:
    """Feature-table column of a metadata variable, in CamelCase.

    Examples
    --------
    >>> metadata_column("cell_id")
    'Metadata_CellId'
    """
    return METADATA_PREFIX + "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def measure_field(
    image: np.ndarray,
    cells: np.ndarray,
    nuclei: np.ndarray,
    channel_names: list[str],
    features: FeaturesConfig,
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
    features : FeaturesConfig
        The regions to measure and the texture settings (``texture=None``: no texture columns).

    Returns
    -------
    DataFrame
        One row per cell label (column ``label``, ascending), ``Image_Count_Cells``, then per
        region (in `REGIONS` order) its AreaShape, Intensity and Texture columns.

    Raises
    ------
    ValueError
        The image does not have one plane per channel name, or the label images differ in shape.

    Examples
    --------
    >>> table = measure_field(image, cells, nuclei, ["DNA"], config.features)  # doctest: +SKIP
    """
    image, cells, nuclei = _checked(image, cells, nuclei, channel_names)
    labels = labels_of(cells)
    columns: dict[str, np.ndarray] = {"label": labels}
    for compartment in _compartments(image, cells, nuclei, labels, channel_names, features):
        for group in GROUPS.values():
            if compartment.name in group.GRAMMAR.compartments:
                columns.update(group.measure(compartment, features))
    return pd.DataFrame(columns)


def _checked(
    image: np.ndarray, cells: np.ndarray, nuclei: np.ndarray, channel_names: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The field as arrays, once its image holds one plane per channel of the labels' shape."""
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
    return image, cells, nuclei


def _compartments(
    image: np.ndarray,
    cells: np.ndarray,
    nuclei: np.ndarray,
    labels: np.ndarray,
    channel_names: list[str],
    features: FeaturesConfig,
) -> Iterator[Compartment]:
    """The field (``Image``), then the configured regions in `REGIONS` order."""
    planes = image.reshape(image.shape[0], -1)
    yield Compartment(IMAGE, cells, labels, planes, channel_names)
    for region, label_image in region_labels(cells, nuclei).items():
        if region in features.regions:
            yield Compartment(region, label_image, labels, planes, channel_names)
