"""Per-group z-scores for the report's figures: the cells of each group standardised alone.

The nucleocentric study z-scores its embeddings per replicate before the UMAP
(``report.embeddings.zscore_by``) and its handcrafted features per well before a clustermap
(``report.feature_clustermap.zscore_by``). Both use the per-well z-score of its random forest,
`cellbench.models.feature_prep.zscore_per_group`: population SD, a column constant within a
group becomes 0, NaN left out of the statistics and kept.

Examples
--------
>>> table = pd.DataFrame({"Metadata_Plate": ["a", "a", "b", "b"], "e": [1.0, 3.0, 5.0, 5.0]})
>>> zscore_within(table, ["e"], ["Metadata_Plate"], key="zscore_by")["e"].tolist()
[-1.0, 1.0, 0.0, 0.0]
>>> titled("rf: UMAP", ["Metadata_Plate", "Metadata_Well"])
'rf: UMAP (z-scored per plate and well)'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.errors import ConfigError
from cellbench.features.measure import METADATA_PREFIX
from cellbench.models.feature_prep import zscore_per_group


def group_keys(table: pd.DataFrame, by: list[str], *, key: str) -> np.ndarray:
    """The group of every row of `table`: its values of the columns `by`, joined by ``/``.

    Parameters
    ----------
    table : DataFrame
    by : list of str
        Column names, e.g. ``["Metadata_Plate", "Metadata_Well"]``.
    key : str
        The config key that named `by`, for the error.

    Returns
    -------
    (N,) ndarray of str

    Raises
    ------
    ConfigError
        A column of `by` is not in `table`; the message names `key` and the columns it has.
    """
    missing = [c for c in by if c not in table.columns]
    if missing:
        present = [c for c in table.columns if c.startswith(METADATA_PREFIX)]
        raise ConfigError(
            f"{key}: no column {missing} in the table; its metadata columns are {present}: "
            f"name some of them"
        )
    keys = table[by[0]].astype(str)
    for column in by[1:]:
        keys = keys + "/" + table[column].astype(str)
    return keys.to_numpy()


def zscore_within(
    table: pd.DataFrame, columns: list[str], by: list[str], *, key: str
) -> pd.DataFrame:
    """A copy of `table` whose `columns` are z-scored within each group of the columns `by`.

    Raises
    ------
    ConfigError
        A column of `by` is not in `table` (`group_keys`).
    """
    groups = group_keys(table, by, key=key)
    z = zscore_per_group(table[columns].to_numpy(), groups)
    scored = pd.DataFrame(z, index=table.index, columns=columns)  # one block: not fragmented
    return pd.concat([table.drop(columns=columns), scored], axis=1)[list(table.columns)]


def zscore_title(by: list[str] | None) -> str:
    """How values were z-scored, for a title: ``"z-scored per plate"``; ``""`` for none."""
    if not by:
        return ""
    return "z-scored per " + " and ".join(c.removeprefix(METADATA_PREFIX).lower() for c in by)


def titled(title: str, by: list[str] | None) -> str:
    """`title`, followed by ``(z-scored per ...)`` when `by` names groups."""
    return f"{title} ({zscore_title(by)})" if by else title
