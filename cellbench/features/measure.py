"""Handcrafted per-cell features: intensity per region and channel, and shape per region.

Columns follow CellProfiler's words, as pycytominer users read them:
``<Region>_<Group>_<Feature>[_<Channel>]``, e.g. ``Nucleus_Intensity_MeanIntensity_DNA`` or
``Cell_AreaShape_Solidity``. Regions are Nucleus, Cytoplasm (cell minus nucleus) and Cell.
A region with no pixels (the cytoplasm of a cell that is all nucleus) gives NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage import measure

# scikit-image property -> CellProfiler feature name
SHAPE_FEATURES = {
    "area": "Area",
    "area_convex": "ConvexArea",
    "perimeter": "Perimeter",
    "eccentricity": "Eccentricity",
    "solidity": "Solidity",
    "extent": "Extent",
    "axis_major_length": "MajorAxisLength",
    "axis_minor_length": "MinorAxisLength",
    "equivalent_diameter_area": "EquivalentDiameter",
    "orientation": "Orientation",
}
INTENSITY_FEATURES = {
    "intensity_mean": "MeanIntensity",
    "intensity_std": "StdIntensity",
    "intensity_min": "MinIntensity",
    "intensity_max": "MaxIntensity",
    "intensity_median": "MedianIntensity",
}
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


def measure_field(
    image: np.ndarray,
    cells: np.ndarray,
    nuclei: np.ndarray,
    channel_names: list[str],
    regions: list[str],
    texture=None,
) -> pd.DataFrame:
    """Measure every cell of one field.

    Parameters
    ----------
    image : (C, Y, X) ndarray
        Raw intensities.
    cells, nuclei : (Y, X) ndarray of int
        Label images; a nucleus carries its cell's label.
    channel_names : list of str
        Names of the C channels, used in column names.
    regions : list of {"Nucleus", "Cytoplasm", "Cell"}

    Returns
    -------
    DataFrame
        One row per cell label (column ``label``), one column per feature.
    """
    labels = np.unique(cells[cells > 0])
    table = pd.DataFrame({"label": labels})
    intensity = np.moveaxis(image, 0, -1).astype(np.float32)  # (Y, X, C)
    for region, label_image in region_labels(cells, nuclei).items():
        if region not in regions:
            continue
        measured = _measure_region(label_image, intensity, region, channel_names)
        table = table.merge(measured, on="label", how="left")
    return table


def _measure_region(
    label_image: np.ndarray, intensity: np.ndarray, region: str, channel_names: list[str]
) -> pd.DataFrame:
    """Shape and intensity of every object of one region image, CellProfiler-named."""
    properties = ["label", *SHAPE_FEATURES, *INTENSITY_FEATURES]
    raw = pd.DataFrame(
        measure.regionprops_table(label_image, intensity_image=intensity, properties=properties)
    )
    columns = {"label": raw["label"]}
    for prop, name in SHAPE_FEATURES.items():
        columns[f"{region}_AreaShape_{name}"] = raw[prop]
    for c, channel in enumerate(channel_names):
        for prop, name in INTENSITY_FEATURES.items():
            columns[f"{region}_Intensity_{name}_{channel}"] = raw[f"{prop}-{c}"]
        columns[f"{region}_Intensity_IntegratedIntensity_{channel}"] = (
            raw[f"intensity_mean-{c}"] * raw["area"]
        )
    return pd.DataFrame(columns)
