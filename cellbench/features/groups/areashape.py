"""AreaShape: 13 shape features per region, as scikit-image's ``regionprops`` defines them.

See `cellbench.features.shape` (``SHAPE_FEATURES`` names the property behind each feature).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cellbench.features.columns import ColumnGrammar
from cellbench.features.shape import SHAPE_FEATURES, shape_features

if TYPE_CHECKING:
    import numpy as np

    from cellbench.config import FeaturesConfig
    from cellbench.features.compartment import Compartment

GRAMMAR = ColumnGrammar("AreaShape")
FEATURES: tuple[str, ...] = tuple(SHAPE_FEATURES.values())


def measure(compartment: Compartment, features: FeaturesConfig) -> dict[str, np.ndarray]:
    """``<Region>_AreaShape_<Feature>`` of every object; NaN for an empty one."""
    found = shape_features(compartment.compact, compartment.n, compartment.counts)
    return {GRAMMAR.column(compartment.name, name): found[name] for name in FEATURES}
