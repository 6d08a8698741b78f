"""Plate layouts: which condition (and other metadata) each well holds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cellbench.errors import CellbenchError


def read_layout_csv(path: Path) -> pd.DataFrame:
    """Read a layout CSV with a `well` column (``A01`` style) and one column per variable.

    Returns
    -------
    DataFrame
        Indexed by well, one column per variable (e.g. ``condition``), values as strings.

    Raises
    ------
    CellbenchError
        The file is missing, has no `well` column, or lists a well twice.
    """
    try:
        layout = pd.read_csv(path, dtype=str)
    except FileNotFoundError:
        raise CellbenchError(f"{path}: plate layout not found") from None
    if "well" not in layout.columns:
        raise CellbenchError(f"{path}: layout needs a 'well' column; found {list(layout.columns)}")
    duplicated = sorted(layout.loc[layout["well"].duplicated(), "well"].unique())
    if duplicated:
        raise CellbenchError(f"{path}: wells listed more than once: {duplicated}")
    return layout.set_index("well")
