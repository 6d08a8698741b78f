"""Count: the number of cells of the field, ``Image_Count_Cells``, on every cell's row."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cellbench.config.feature_groups import IMAGE
from cellbench.features.columns import ColumnGrammar

if TYPE_CHECKING:
    from cellbench.config import FeaturesConfig
    from cellbench.features.compartment import Compartment

GRAMMAR = ColumnGrammar("Count", compartments=(IMAGE,))
FEATURES: tuple[str, ...] = ("Cells",)
COLUMN = GRAMMAR.column(IMAGE, "Cells")


def measure(compartment: Compartment, features: FeaturesConfig) -> dict[str, np.ndarray]:
    """``Image_Count_Cells``: the field's number of cells, as int64, one value per cell."""
    return {COLUMN: np.full(compartment.n, compartment.n, dtype=np.int64)}
