"""Tables of results across models and seeds, as CSV and Markdown."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def summarise_accuracy(records: list[dict]) -> pd.DataFrame:
    """Accuracy per model across seeds: mean, SD, ± 3 SE and the majority-class baseline.

    Parameters
    ----------
    records : list of dict
        One per (model, seed): ``model``, ``input``, ``seed`` and the metrics of
        `cellbench.evaluate.metrics.classification_metrics`.

    Returns
    -------
    DataFrame
        One row per model. SE is the sample SD (ddof=1) over seeds divided by sqrt(n seeds);
        with a single seed SD and SE are NaN.
    """
    frame = pd.DataFrame(records)
    rows = []
    for (model, input_name), group in frame.groupby(["model", "input"], sort=True):
        row = {"model": model, "input": input_name, "n_seeds": len(group)}
        for metric in ("accuracy", "balanced_accuracy", "macro_f1", "majority_rate"):
            values = group[metric].to_numpy(dtype=float)
            row[f"{metric}_mean"] = float(values.mean())
            sd = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row[f"{metric}_sd"] = sd
            row[f"{metric}_pm3se"] = (
                3 * sd / math.sqrt(len(values)) if len(values) > 1 else math.nan
            )
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(frame: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    """Render a DataFrame as a GitHub Markdown table (no extra dependency)."""

    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return "" if math.isnan(value) else float_format.format(value)
        return str(value)

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"
