"""Accuracy against one model setting over several models (`report.sweeps`).

The nucleocentric study sweeps the random forest's trees (10 to 150 at depth 10); any
numeric setting of models that differ only in it can be swept the same way.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from cellbench.report.figures import save_figure  # noqa: E402

SWEEP_COLUMNS = ["model", "value", "n_seeds", "accuracy_mean", "accuracy_pm3se"]


def sweep_table(sweep, config, accuracy: pd.DataFrame | None) -> pd.DataFrame:
    """The sweep's models with their setting and accuracy (mean, ± 3 SE over seeds).

    Parameters
    ----------
    sweep : ParameterSweep
    config : Config
        Gives each model's value of ``sweep.parameter``.
    accuracy : DataFrame or None
        The report's accuracy table (``model``, ``n_seeds``, ``accuracy_mean``,
        ``accuracy_pm3se``); models without a row (not evaluated yet) are left out.

    Returns
    -------
    DataFrame
        `SWEEP_COLUMNS`, sorted by value; empty when no model of the sweep has a row.
    """
    if accuracy is None or accuracy.empty:
        return pd.DataFrame(columns=SWEEP_COLUMNS)
    rows = accuracy[accuracy["model"].isin(sweep.models)].copy()
    rows["value"] = [getattr(config.model(m), sweep.parameter) for m in rows["model"]]
    return rows[SWEEP_COLUMNS].sort_values(["value", "model"]).reset_index(drop=True)


def sweep_figure(table: pd.DataFrame, parameter: str, title: str):
    """Accuracy (± 3 SE) against the setting, one point per model."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(
        table["value"],
        table["accuracy_mean"],
        yerr=table["accuracy_pm3se"].fillna(0),
        marker="o",
        capsize=3,
    )
    ax.set_xlabel(parameter)
    ax.set_ylabel("accuracy (mean over seeds, ± 3 SE)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def sweep_report(config, accuracy: pd.DataFrame | None, paths):
    """Each sweep's table (``{"sweep <name>": table}``) and PNG figure paths."""
    tables, figures = {}, []
    for sweep in config.report.sweeps:
        table = sweep_table(sweep, config, accuracy)
        if table.empty:
            continue
        tables[f"sweep {sweep.name}"] = table
        figure = sweep_figure(
            table, sweep.parameter, f"{sweep.name}: accuracy by {sweep.parameter}"
        )
        figures.append(save_figure(figure, paths.report_figure(f"sweep_{sweep.name}"))[0])
    return tables, figures
