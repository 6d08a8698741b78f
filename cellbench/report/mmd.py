"""MMD^2 between groups of test cells, per embedding model, averaged over seeds.

The evaluate stage writes ``mmd.csv`` per model and seed
(`cellbench.evaluate.distributions.group_mmd`); the report averages each pair of groups over
the seeds into the table ``mmd_<model>`` and draws it as a heatmap ``mmd_<model>.png``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from cellbench.paths import ResultsPaths
from cellbench.report.figures import mmd_heatmap_figure, save_figure

log = logging.getLogger(__name__)


def mmd_across_seeds(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Each pair of groups' MMD^2 over seeds: mean, SD, and the mean of the 95% intervals.

    Parameters
    ----------
    tables : list of DataFrame
        One `group_mmd` table per seed (``group_a``, ``group_b``, ``mmd2``, ``ci_low``,
        ``ci_high``, ``n_a``, ``n_b``, ``sigma``).

    Returns
    -------
    DataFrame
        One row per pair (within-group rows too): ``group_a``, ``group_b``, ``n_seeds``,
        ``mmd2_mean``, ``mmd2_sd`` (NaN with one seed), ``ci_low_mean``, ``ci_high_mean``,
        ``n_a``, ``n_b`` (mean cells compared), ``sigma_mean``.
    """
    filled = [t for t in tables if len(t)]
    if not filled:
        return pd.DataFrame()
    frame = pd.concat(filled, ignore_index=True).astype({"group_a": str, "group_b": str})
    table = frame.groupby(["group_a", "group_b"], sort=True).agg(
        n_seeds=("mmd2", "size"),
        mmd2_mean=("mmd2", "mean"),
        mmd2_sd=("mmd2", "std"),
        ci_low_mean=("ci_low", "mean"),
        ci_high_mean=("ci_high", "mean"),
        n_a=("n_a", "mean"),
        n_b=("n_b", "mean"),
        sigma_mean=("sigma", "mean"),
    )
    return table.reset_index()


def mmd_report(
    paths: ResultsPaths, models: list, seeds: list[int]
) -> tuple[dict[str, pd.DataFrame], list[Path]]:
    """The MMD table and heatmap of each model whose evaluate tasks wrote ``mmd.csv``.

    Returns
    -------
    dict of str to DataFrame, list of Path
        Tables named ``mmd <model>`` (the report writes them as ``mmd_<model>.csv``) and the
        heatmaps' PNG files; a model without any ``mmd.csv`` (or only empty ones) has neither.
    """
    tables, figures = {}, []
    for model in models:
        read = [
            pd.read_csv(paths.mmd_table(model.name, seed), dtype={"group_a": str, "group_b": str})
            for seed in seeds
            if paths.mmd_table(model.name, seed).exists()
        ]
        table = mmd_across_seeds(read)
        if table.empty:
            continue
        tables[f"mmd {model.name}"] = table
        title = f"{model.name}: MMD$^2$ between groups of test cells ({len(read)} seed(s))"
        try:
            written = save_figure(
                mmd_heatmap_figure(table, title=title), paths.report_figure(f"mmd_{model.name}")
            )
        except OSError:
            raise
        except Exception as exc:  # one figure never fails the report
            log.warning(
                "report: no MMD heatmap of %s (%s: %s)", model.name, type(exc).__name__, exc
            )
            continue
        figures += [p for p in written if p.suffix == ".png"]
    return tables, figures
