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


def fold_notes(config) -> list[str]:
    """A line per model split by ``split.folds``: its seeds are folds, its ± 3 SE over folds.

    The folds share most of their training cells, so their spread understates the spread of
    independent samples; and cells of one well fall on both sides (leakage).
    """
    notes = []
    for model in config.models:
        split = model.split or config.split
        if split.folds is not None:
            notes.append(
                f"{model.name}: seeds are folds of a stratified {split.folds}-fold "
                f"cross-validation over cells (split.folds, fold_seed {split.fold_seed}); its "
                "SD and ± 3 SE are over folds, which share training cells, and cells of one "
                "well fall on both sides (leakage)."
            )
    return notes


def summarise_metrics(records: list[dict], metrics: list[str]) -> pd.DataFrame:
    """Mean, SD and ± 3 SE across seeds of the given metrics, per model and input.

    Records without any of `metrics` are left out; a metric a record lacks is NaN.
    """
    frame = pd.DataFrame([r for r in records if any(m in r for m in metrics)])
    if frame.empty:
        return pd.DataFrame()
    rows = []
    for (model, input_name), group in frame.groupby(["model", "input"], sort=True):
        row = {"model": model, "input": input_name, "n_seeds": len(group)}
        for metric in metrics:
            column = group[metric] if metric in group else pd.Series(dtype=float)
            values = pd.to_numeric(column, errors="coerce").dropna().to_numpy(float)
            n = len(values)
            sd = float(values.std(ddof=1)) if n > 1 else math.nan
            row[f"{metric}_mean"] = float(values.mean()) if n else math.nan
            row[f"{metric}_sd"] = sd
            row[f"{metric}_pm3se"] = 3 * sd / math.sqrt(n) if n > 1 else math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    unmeasured = [m for m in metrics if table[f"{m}_mean"].isna().all()]  # e.g. NSC, no compounds
    return table.drop(columns=[f"{m}_{s}" for m in unmeasured for s in ("mean", "sd", "pm3se")])


def per_class_accuracy(records: list[dict]) -> pd.DataFrame:
    """Accuracy per class (recall on test cells), mean over seeds: one row per model."""
    rows = {}
    for record in records:
        for name, value in (record.get("per_class_accuracy") or {}).items():
            rows.setdefault((record["model"], record["input"]), {}).setdefault(name, []).append(
                np.nan if value is None else value
            )
    table = []
    for (model, input_name), by_class in sorted(rows.items()):
        means = {name: _mean_or_nan(values) for name, values in sorted(by_class.items())}
        table.append({"model": model, "input": input_name, **means})
    return pd.DataFrame(table)


CLASS_REPORT_COLUMNS = (
    "precision", "recall", "specificity", "f1", "support", "roc_auc", "average_precision",
)  # fmt: skip


def classification_report(records: list[dict]) -> pd.DataFrame:
    """Each class's precision, recall (TPR), specificity (TNR), F1, support and AUCs per model.

    Means over seeds of `cellbench.evaluate.metrics.per_class_report` (and the one-vs-rest
    ROC AUC and average precision of models with probabilities); one row per model and class.
    """
    rows = []
    frame = pd.DataFrame(
        [
            {"model": r["model"], "input": r["input"], "class": name, **values}
            for r in records
            for name, values in (r.get("per_class") or {}).items()
        ]
    )
    if frame.empty:
        return frame
    for (model, input_name, name), group in frame.groupby(["model", "input", "class"], sort=True):
        row = {"model": model, "input": input_name, "class": name, "n_seeds": len(group)}
        for column in CLASS_REPORT_COLUMNS:  # AUCs only where a model gives probabilities
            values = group[column] if column in group else pd.Series(dtype=float)
            defined = pd.to_numeric(values, errors="coerce").dropna().to_list()
            row[column] = _mean_or_nan(defined) if defined else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_or_nan(values: list[float]) -> float:
    """Mean of the defined values (a class absent from a seed's test cells is NaN)."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def to_latex(frame: pd.DataFrame, caption: str, float_format: str = "{:.3f}") -> str:
    """A LaTeX tabular of `frame` inside a table environment (booktabs rules)."""

    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return "--" if math.isnan(value) else float_format.format(value)
        text = str(value)
        for char in "\\&%$#_{}":
            text = text.replace(char, "\\" + char)
        return text

    columns = [cell(c) for c in frame.columns]
    lines = [
        "\\begin{table}[ht]",
        "\\centering",
        f"\\begin{{tabular}}{{{'l' * 2}{'r' * (len(columns) - 2)}}}",
        "\\toprule",
        " & ".join(columns) + " \\\\",
        "\\midrule",
        *(" & ".join(cell(v) for v in row) + " \\\\" for row in frame.itertuples(index=False)),
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{cell(caption)}}}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


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
