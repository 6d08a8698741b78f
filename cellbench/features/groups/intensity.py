"""Intensity: 8 statistics per region and channel (see `cellbench.features.intensity`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cellbench.features.columns import ColumnGrammar
from cellbench.features.intensity import INTENSITY_FEATURES

if TYPE_CHECKING:
    import numpy as np

    from cellbench.config import FeaturesConfig
    from cellbench.features.compartment import Compartment

GRAMMAR = ColumnGrammar("Intensity", channel=True)
FEATURES: tuple[str, ...] = INTENSITY_FEATURES


def measure(compartment: Compartment, features: FeaturesConfig) -> dict[str, np.ndarray]:
    """``<Region>_Intensity_<Feature>_<Channel>`` of every object; NaN for an empty one."""
    columns = {}
    for channel, stats in zip(compartment.channels, compartment.intensity_stats, strict=True):
        for name in FEATURES:
            columns[GRAMMAR.column(compartment.name, name, channel)] = stats[name]
    return columns
