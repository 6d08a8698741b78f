"""MMD^2 between groups of test cells, per embedding model, averaged over seeds.

The evaluate stage writes ``mmd.csv`` per model and seed
(`cellbench.evaluate.distributions.group_mmd`); the report averages each pair of groups over
the seeds into the table ``mmd_<model>`` and draws each grouping as a heatmap:
``mmd_<model>.png`` for the first grouping of ``evaluate.mmd.group_by``, ``mmd_<model>_<slug>.png``
for each other (``mmd_vae_moa.png``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from cellbench.evaluate.distributions import mmd_slug
from cellbench.paths import ResultsPaths
from cellbench.report.figures import mmd_heatmap_figure, save_figure

log = logging.getLogger(__name__)


def mmd_across_seeds(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Each pair of groups' MMD^2 over seeds: mean, SD, and the mean of the 95% intervals.

    Parameters
    ----------
    tables : list of DataFrame
        One table per seed as the evaluate stage writes it: ``grouping`` (absent in files
        written before groupings existed: ``label``), then `group_mmd`'s columns
        (``group_a``, ``group_b``, ``mmd2``, ``ci_low``, ``ci_high``, ``n_a``, ``n_b``,
        ``sigma``).

    Returns
    -------
    DataFrame
        One row per grouping and pair (within-group rows too): ``grouping``, ``group_a``,
        ``group_b``, ``n_seeds``,
        ``mmd2_mean``, ``mmd2_sd`` (NaN with one seed), ``ci_low_mean``, ``ci_high_mean``,
        ``n_a``, ``n_b`` (mean cells compared), ``sigma_mean``.
    """
    filled = [t for t in tables if len(t)]
    if not filled:
        return pd.DataFrame()
    frame = pd.concat(
        [t if "grouping" in t else t.assign(grouping="label") for t in filled], ignore_index=True
    ).astype({"grouping": str, "group_a": str, "group_b": str})
    order = {g: k for k, g in enumerate(dict.fromkeys(frame["grouping"]))}  # as configured
    table = frame.groupby(["grouping", "group_a", "group_b"], sort=True).agg(
        n_seeds=("mmd2", "size"),
        mmd2_mean=("mmd2", "mean"),
        mmd2_sd=("mmd2", "std"),
        ci_low_mean=("ci_low", "mean"),
        ci_high_mean=("ci_high", "mean"),
        n_a=("n_a", "mean"),
        n_b=("n_b", "mean"),
        sigma_mean=("sigma", "mean"),
    )
    table = table.reset_index()
    table = table.sort_values("grouping", key=lambda g: g.map(order), kind="stable")
    return table.reset_index(drop=True)


def mmd_report(
    paths: ResultsPaths, models: list, seeds: list[int]
) -> tuple[dict[str, pd.DataFrame], list[Path]]:
    """The MMD table and heatmap of each model whose evaluate tasks wrote ``mmd.csv``.

    Returns
    -------
    dict of str to DataFrame, list of Path
        Tables named ``mmd <model>`` (the report writes them as ``mmd_<model>.csv``), every
        grouping in one, and the heatmaps' PNG files, one per grouping; a model without any
        ``mmd.csv`` (or only empty ones) has neither.
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
        for k, (grouping, pairs) in enumerate(table.groupby("grouping", sort=False)):
            stem = f"mmd_{model.name}" if k == 0 else f"mmd_{model.name}_{mmd_slug(grouping)}"
            by = "" if grouping == "label" else f" by {grouping.replace('Metadata_', '')}"
            title = f"{model.name}: MMD$^2$ between groups of test cells{by} ({len(read)} seed(s))"
            figures += _heatmap(pairs, title, paths.report_figure(stem), model.name)
    return tables, figures


def _heatmap(pairs: pd.DataFrame, title: str, stem: Path, model: str) -> list[Path]:
    """The heatmap's PNG, or nothing (logged) when it cannot be drawn."""
    try:
        written = save_figure(mmd_heatmap_figure(pairs, title=title), stem)
    except OSError:
        raise
    except Exception as exc:  # one figure never fails the report
        log.warning("report: no MMD heatmap of %s (%s: %s)", model, type(exc).__name__, exc)
        return []
    return [p for p in written if p.suffix == ".png"]
