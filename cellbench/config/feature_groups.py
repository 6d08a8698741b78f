"""Names of the handcrafted feature groups and regions: the one vocabulary of config and columns.

Feature columns read ``<Compartment>_<Group>_<Feature>[_<Channel>][_<parameter>...]`` in
CellProfiler's words, e.g. ``Nuclei_Intensity_MeanIntensity_DNA`` or ``Image_Count_Cells``.
Each name of `FEATURE_GROUPS` is a module of `cellbench.features.groups` named after it in lower
case (``Texture`` -> ``cellbench/features/groups/texture.py``), which declares the group's
columns and measures them. This module imports nothing of cellbench, so the config validates
group and region names (a model's ``feature_groups:``, ``features.regions``) without importing
the features package.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator

# in column order: Image_Count_Cells first, then per region its AreaShape, Intensity, Texture
FEATURE_GROUPS: tuple[str, ...] = ("Count", "AreaShape", "Intensity", "Texture")
# CellProfiler's other measurement groups (features.backend or features.source: cellprofiler):
# cellbench does not measure them itself, but a model's feature_groups may name them
CELLPROFILER_GROUPS: tuple[str, ...] = (
    "Granularity", "Correlation", "RadialDistribution", "Location", "Neighbors",
    "ObjectSkeleton", "Threshold", "ImageQuality",
)  # fmt: skip
REGIONS: tuple[str, ...] = ("Nuclei", "Cytoplasm", "Cells")  # a cell's compartments, in order
IMAGE = "Image"  # the compartment of per-field columns, e.g. Image_Count_Cells

# cellbench's names before it used CellProfiler's object names
RENAMED_REGIONS = {"Nucleus": "Nuclei", "Cell": "Cells"}


def _new_region_name(value: object) -> object:
    """Refuse a region's old name with the name to write instead."""
    if isinstance(value, str) and value in RENAMED_REGIONS:
        raise ValueError(
            f"region {value!r} is now {RENAMED_REGIONS[value]!r}, CellProfiler's object name "
            f"(regions: {list(REGIONS)})"
        )
    return value


FeatureGroup = Literal[(*FEATURE_GROUPS, *CELLPROFILER_GROUPS)]  # type: ignore[valid-type]
Region = Annotated[Literal[REGIONS], BeforeValidator(_new_region_name)]  # type: ignore[valid-type]
