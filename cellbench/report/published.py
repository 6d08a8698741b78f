"""Published numbers beside this experiment's own: the first table of a study's report.

A study config lists what its paper or repository reports (``report.published``: model,
metric, value or [low, high], source, note); `published_table` sets each beside the mean and
± 3 SE over seeds of the same metric of the same model here, read from its metrics.json
records. A number the results lack (a model that did not run, a metric it does not give) stays
empty rather than being dropped, so the table always shows what was to be compared.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

PUBLISHED_COLUMNS = [
    "model",
    "metric",
    "ours_mean",
    "ours_pm3se",
    "n_seeds",
    "published",
    "within_published",
    "source",
    "note",
]


def published_table(published: list, records: list[dict]) -> pd.DataFrame:
    """One row per published number: ours (mean, ± 3 SE over seeds), theirs, and the source.

    Parameters
    ----------
    published : list of cellbench.config.analyses.PublishedResult
    records : list of dict
        metrics.json of every (model, seed) that was evaluated.

    Returns
    -------
    DataFrame
        `PUBLISHED_COLUMNS`. ``published`` is the value, or "low–high" for a range;
        ``within_published`` says whether our mean lies in the published range (for a single
        value: within ± 3 SE of it; empty with one seed or no result).
    """
    rows = []
    for entry in published:
        values = np.array(
            [
                float(r[entry.metric])
                for r in records
                if r.get("model") == entry.model and _is_number(r.get(entry.metric))
            ]
        )
        n = len(values)
        mean = float(values.mean()) if n else math.nan
        pm3se = 3 * float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
        rows.append(
            {
                "model": entry.model,
                "metric": entry.metric,
                "ours_mean": mean,
                "ours_pm3se": pm3se,
                "n_seeds": n,
                "published": _published_text(entry.value),
                "within_published": _within(mean, pm3se, entry.value),
                "source": entry.source,
                "note": entry.note,
            }
        )
    return pd.DataFrame(rows, columns=PUBLISHED_COLUMNS)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _published_text(value: float | tuple[float, float]) -> str:
    if isinstance(value, tuple | list):
        return f"{value[0]:.4g}–{value[1]:.4g}"
    return f"{value:.4g}"


def _within(mean: float, pm3se: float, value: float | tuple[float, float]) -> str:
    """Whether our mean agrees with the published value: "yes", "no", or "" if it cannot tell."""
    if math.isnan(mean):
        return ""
    if isinstance(value, tuple | list):
        low, high = min(value), max(value)
        if math.isnan(pm3se):
            return "yes" if low <= mean <= high else "no"
        return "yes" if mean + pm3se >= low and mean - pm3se <= high else "no"
    if math.isnan(pm3se):
        return ""
    return "yes" if abs(mean - value) <= pm3se else "no"
