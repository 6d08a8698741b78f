"""Per-well profiles as a representation of the report: features selected, then NSC and mAP.

The profiles stage writes each plate's normalised per-well profiles; here they are joined,
pycytominer's feature selection runs over all plates at once, the selected table is written
to ``report/profiles_selected.parquet``, and the wells are scored like any representation:
mAP of each well retrieving the wells of its class (copairs' definition) and, where wells
carry compound, concentration and mechanism, NSC (treatment medians, DMSO left out).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cellbench.data.plates import list_plates
from cellbench.features.measure import metadata_column
from cellbench.features.profiles import (
    feature_columns,
    normalize_profiles,
    select_profile_features,
)
from cellbench.io.atomic import atomic_path
from cellbench.models.classical import MedianImputer
from cellbench.paths import ResultsPaths

log = logging.getLogger(__name__)

REPRESENTATION = "per-well profiles"


def profile_representation(config, paths: ResultsPaths) -> dict | None:
    """The representation record of the per-well profiles; None without profiles.

    Returns
    -------
    dict or None
        ``model`` (``per-well profiles``), ``input`` (the normalisation), ``seed``, ``wells``,
        ``features`` (after selection) and the metrics of `representation_metrics`.
    """
    from cellbench.evaluate.run import representation_metrics

    if config.profiles is None:
        return None
    tables = [paths.profile_table(p) for p in list_plates(config)]
    tables = [t for t in tables if t.exists()]
    if not tables:
        return None
    profiles = pd.concat([pd.read_parquet(t) for t in tables], ignore_index=True)
    if config.profiles.normalize_per == "experiment":
        profiles = normalize_profiles(profiles, config.profiles, "the experiment's profiles")
    selected = select_profile_features(profiles, config.profiles)
    with atomic_path(paths.report_file("profiles_selected.parquet")) as tmp:
        selected.to_parquet(tmp, index=False)
    features = feature_columns(selected)
    label = metadata_column(config.data.label_column) if config.data.label_column else None
    if not features or label not in selected.columns:
        log.warning("report: per-well profiles without features or %s: not scored", label)
        return None
    # a feature missing in a well: the wells' median (0 for a feature missing everywhere)
    imputer = MedianImputer(strategy="median", keep_empty_features=True)
    values = imputer.fit_transform(selected[features].to_numpy(np.float64))
    # a control well normalised against itself alone is all zeros: no direction to compare
    labelled = selected[label].notna().to_numpy() & (np.abs(values).sum(axis=1) > 0)
    if (~labelled).any():
        log.warning("report: %d well(s) unlabelled or all zero, not scored", (~labelled).sum())
    metrics = representation_metrics(
        selected[labelled].reset_index(drop=True),
        values[labelled],
        selected.loc[labelled, label].astype(str).to_numpy(),
        config.seeds[0],
    )
    return {
        "model": REPRESENTATION,
        "input": config.profiles.normalize,
        "seed": config.seeds[0],
        "wells": int(labelled.sum()),
        "features": len(features),
        **metrics,
    }
