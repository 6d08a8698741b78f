"""Names of the handcrafted feature groups and regions: the one vocabulary of config and columns.

Feature columns read ``<Compartment>_<Group>_<Feature>[_<Channel>][_<parameter>...]`` in
CellProfiler's words, e.g. ``Nucleus_Intensity_MeanIntensity_DNA`` or ``Image_Count_Cells``.
Each name of `FEATURE_GROUPS` is a module of `cellbench.features.groups` named after it in lower
case (``Texture`` -> ``cellbench/features/groups/texture.py``), which declares the group's
columns and measures them. This module imports nothing of cellbench, so the config validates
group and region names (a model's ``feature_groups:``, ``features.regions``) without importing
the features package.
"""

from __future__ import annotations

from typing import Literal

# in column order: Image_Count_Cells first, then per region its AreaShape, Intensity, Texture
FEATURE_GROUPS: tuple[str, ...] = ("Count", "AreaShape", "Intensity", "Texture")
REGIONS: tuple[str, ...] = ("Nucleus", "Cytoplasm", "Cell")  # a cell's compartments, in order
IMAGE = "Image"  # the compartment of per-field columns, e.g. Image_Count_Cells

FeatureGroup = Literal[FEATURE_GROUPS]  # type: ignore[valid-type]
Region = Literal[REGIONS]  # type: ignore[valid-type]
