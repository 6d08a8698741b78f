"""Texture: GLCM properties per region, channel, distance and angle (``features.texture``).

See `cellbench.features.texture` for the definition; ``texture: null`` leaves the group out.
Columns end in the distance in px and the angle in degrees, two digits at least:
``Nuclei_Texture_Contrast_DNA_1_00``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cellbench.features.columns import ColumnGrammar
from cellbench.features.texture import PROPERTIES, angle_token, glcm_texture_at

if TYPE_CHECKING:
    from cellbench.config import FeaturesConfig
    from cellbench.features.compartment import Compartment

GRAMMAR = ColumnGrammar("Texture", channel=True, parameters=("distance_px", "angle_deg"))
FEATURES: tuple[str, ...] = PROPERTIES


def column(region: str, feature: str, channel: str, distance_px: int, angle_deg: float) -> str:
    """Column name of one texture feature, e.g. ``Nuclei_Texture_Contrast_DNA_1_00``."""
    return GRAMMAR.column(region, feature, channel, (str(distance_px), angle_token(angle_deg)))


def measure(compartment: Compartment, features: FeaturesConfig) -> dict[str, np.ndarray]:
    """``<Region>_Texture_<Feature>_<Channel>_<distance>_<angle>`` of every object.

    Grey levels are scaled by each object's maximum, shared with the Intensity group.
    """
    texture = features.texture
    if texture is None:
        return {}
    found = glcm_texture_at(
        compartment.compact,
        compartment.pixels,
        compartment.values,
        distances=texture.distances_px,
        angles_deg=texture.angles_deg,
        levels=texture.levels,
        maxima=np.stack([stats["MaxIntensity"] for stats in compartment.intensity_stats]),
        n_objects=compartment.n,
    )
    columns = {}
    for c, channel in enumerate(compartment.channels):
        for name in FEATURES:
            for distance in texture.distances_px:
                for angle in texture.angles_deg:
                    key = column(compartment.name, name, channel, distance, angle)
                    columns[key] = found[(name, c, distance, angle)]
    return columns
