"""Per-well profiles as the Cell Painting field makes them, with pycytominer.

pycytominer's aggregate, normalize and feature_select on the single-cell feature tables.

One plate at a time (the ``profiles`` stage): the cells of each well are aggregated (median by
default), then every feature is normalised against the plate's negative-control wells
(``profiles.control``), which removes plate effects; with ``normalize_per: experiment`` (data
where some plates hold no control well) all plates are normalised at once against every
control well, in the aggregate stage. Feature selection (low variance, highly
correlated, pycytominer's blocklist, too many missing values) runs once over all plates, in
the aggregate stage: selected per plate, each plate would keep other columns.

Examples
--------
>>> wells = well_profiles(cells, profiles_config)  # doctest: +SKIP
>>> selected = select_profile_features(pd.concat(plates), profiles_config)  # doctest: +SKIP
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from cellbench.errors import CellbenchError
from cellbench.io.atomic import atomic_path

if TYPE_CHECKING:
    from cellbench.config import ProfilesConfig

STRATA = ["Metadata_Plate", "Metadata_Well"]
OBJECT_COUNT = "Metadata_ObjectCount"  # cells aggregated into the well's profile
_SAFE_VALUE = re.compile(r"^[\w .+\-]*$")  # a control value that can go into a pandas query


def _pycytominer():
    """pycytominer, imported quietly (1.7 sets a pandas option that pandas 3 deprecates)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pycytominer
    return pycytominer


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The per-object feature columns (``Cells_``, ``Nuclei_``, ``Cytoplasm_``), in order."""
    return [c for c in table.columns if c.startswith(("Cells_", "Nuclei_", "Cytoplasm_"))]


def well_metadata(cells: pd.DataFrame) -> pd.DataFrame:
    """The ``Metadata_*`` columns that hold one value per well, one row per well.

    pycytominer's aggregate keeps only the strata; compound, concentration, mechanism or
    condition are the same for every cell of a well and are carried over from here.
    """
    candidates = [c for c in cells.columns if c.startswith("Metadata_") and c not in STRATA]
    grouped = cells.groupby(STRATA, sort=True, dropna=False)
    constant = [c for c in candidates if (grouped[c].nunique(dropna=False) <= 1).all()]
    return grouped[constant].first().reset_index()


def control_query(config: ProfilesConfig) -> str:
    """The pandas query of the control wells, e.g. ``Metadata_Compound == 'DMSO'``."""
    value = str(config.control.value)
    if not _SAFE_VALUE.match(value):
        raise CellbenchError(
            f"profiles.control.value: {value!r} may hold only letters, digits, space and ._+-"
        )
    return f"{config.control.column} == {value!r}"


def well_profiles(cells: pd.DataFrame, config: ProfilesConfig, source: str = "") -> pd.DataFrame:
    """One profile per well of a plate's cells, normalised to the plate's controls.

    Parameters
    ----------
    cells : DataFrame
        A plate's feature table: ``Metadata_Plate``, ``Metadata_Well``, other metadata and the
        per-object feature columns, one row per cell.
    config : ProfilesConfig
        With ``normalize_per: experiment`` the wells are returned as aggregated, and
        `normalize_profiles` runs later on all plates at once.
    source : str
        Where the cells come from, for errors (a file name).

    Returns
    -------
    DataFrame
        Strata, the per-well metadata, ``Metadata_ObjectCount`` and every feature column;
        one row per well.
    """
    where = f"{source}: " if source else ""
    missing = [c for c in [*STRATA, config.control.column] if c not in cells.columns]
    if missing:
        raise CellbenchError(f"{where}no column(s) {missing} for per-well profiles")
    features = feature_columns(cells)
    if not features:
        raise CellbenchError(f"{where}no Cells_/Nuclei_/Cytoplasm_ feature columns")
    wells = _pycytominer().aggregate(
        cells, strata=STRATA, features=features, operation=config.aggregate
    )
    counts = cells.groupby(STRATA, sort=True).size().rename(OBJECT_COUNT).reset_index()
    wells = well_metadata(cells).merge(counts, on=STRATA).merge(wells, on=STRATA)
    if config.normalize_per == "plate":
        return normalize_profiles(wells, config, source)
    return wells


def normalize_profiles(
    wells: pd.DataFrame, config: ProfilesConfig, source: str = ""
) -> pd.DataFrame:
    """Every feature normalised by ``config.normalize`` against the control wells of `wells`."""
    query = control_query(config)
    n_controls = len(wells.query(query))
    if n_controls < config.min_control_wells:
        where = f"{source}: " if source else ""
        raise CellbenchError(
            f"{where}{n_controls} control well(s) ({query}); normalising needs at least "
            f"{config.min_control_wells} (profiles.min_control_wells; with plates that hold "
            f"no control well, profiles.normalize_per: experiment)"
        )
    metadata = [c for c in wells.columns if c.startswith("Metadata_")]
    return _pycytominer().normalize(
        wells,
        features=feature_columns(wells),
        meta_features=metadata,
        samples=query,
        method=config.normalize,
    )


def select_profile_features(profiles: pd.DataFrame, config: ProfilesConfig) -> pd.DataFrame:
    """The profiles of every plate with the features `config.feature_select` keeps."""
    if not config.feature_select:
        return profiles
    return _pycytominer().feature_select(
        profiles, features=feature_columns(profiles), operation=list(config.feature_select)
    )


def write_well_profiles(cells_path: Path, out: Path, config: ProfilesConfig) -> dict:
    """A plate's per-well profiles from its feature table, written atomically as Parquet."""
    cells = pd.read_parquet(cells_path)
    wells = well_profiles(cells, config, source=str(cells_path))
    with atomic_path(out) as tmp:
        wells.to_parquet(tmp, index=False)
    controls = len(wells.query(control_query(config)))
    return {"wells": len(wells), "control_wells": controls, "cells": int(len(cells))}
