"""``cellbench report background-swap --svm-from CROPS``: the pairwise SVMs, resumable.

CROPS is a crop store (``.h5``: every background experiment it holds, each reduced to PCA
components of its flattened crops, `cellbench.evaluate.background_study.experiment_inputs`)
or a feature table (``.parquet`` / ``.csv``: one experiment, ``--experiment``; the feature
columns are its numeric columns other than ``Metadata_*``, the label and background
columns). Each experiment's pairs are scored into ``<results>/<model>/results_<experiment>.csv``
by `cellbench.evaluate.pairwise_resume.resume_pairwise_csv`: pairs already in the CSV are
skipped, every finished pair is appended and fsynced, so a killed run continues where it
stopped and ends with the CSV an uninterrupted run writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.errors import CellbenchError, InputMissing
from cellbench.report.background_swap import EXPERIMENTS, LOCALISATION_CLASSES, SWAP_EXPERIMENTS

log = logging.getLogger(__name__)
TABLE_SUFFIXES = (".parquet", ".csv")


def table_inputs(
    path: Path, label_column: str, experiment: str, background_column: str | None
) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """The one experiment of a feature table: (experiment, features, labels, backgrounds)."""
    if experiment not in EXPERIMENTS:
        raise CellbenchError(f"--experiment {experiment!r} is not one of {list(EXPERIMENTS)}")
    if (experiment in SWAP_EXPERIMENTS) != (background_column is not None):
        raise CellbenchError(
            f"--experiment {experiment}: --background-column is needed for "
            f"{' and '.join(SWAP_EXPERIMENTS)} and only for them"
        )
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    for name, column in (
        ("--label-column", label_column),
        ("--background-column", background_column),
    ):
        if column is not None and column not in table.columns:
            raise CellbenchError(
                f"{path}: no column {column!r} ({name}); columns: {list(table.columns)[:10]}..."
            )
    others = {label_column, background_column}
    numeric = [
        c
        for c in table.columns
        if c not in others
        and not str(c).startswith("Metadata_")
        and pd.api.types.is_numeric_dtype(table[c])
    ]
    if not numeric:
        raise CellbenchError(f"{path}: no numeric feature column besides Metadata_* ones")
    backgrounds = (
        None if background_column is None else table[background_column].astype(str).to_numpy()
    )
    yield (
        experiment,
        table[numeric].to_numpy(np.float64),
        table[label_column].astype(str).to_numpy(),
        backgrounds,
    )


def svm_from(
    source: Path,
    results_dir: Path,
    *,
    model: str | None = None,
    label_column: str = "label",
    experiment: str = "base",
    background_column: str | None = None,
    folds: int = 5,
    seed: int = 0,
    max_per_class: int | None = 1000,
    max_pairs: int | None = None,
) -> dict[str, dict]:
    """Score (or resume) every experiment of `source` into ``results_dir/<model>/``.

    Returns
    -------
    dict
        experiment -> `resume_pairwise_csv`'s summary, with ``path``.
    """
    from cellbench.evaluate.background_study import experiment_inputs
    from cellbench.evaluate.pairwise_resume import resume_pairwise_csv

    source = Path(source)
    if not source.is_file():
        raise InputMissing(f"--svm-from {str(source)!r} is not a file")
    if source.suffix == ".h5":
        inputs = experiment_inputs([source], label_column, seed=seed)
        model = model or "crops"
    elif source.suffix in TABLE_SUFFIXES:
        inputs = table_inputs(source, label_column, experiment, background_column)
        model = model or "features"
    else:
        raise CellbenchError(
            f"--svm-from {str(source)!r}: a crop store (.h5) or a feature table "
            f"({', '.join(TABLE_SUFFIXES)}) was expected"
        )
    done = {}
    remaining = max_pairs
    for name, features, labels, backgrounds in inputs:
        study_order = set(labels) <= set(LOCALISATION_CLASSES)
        path = results_dir / model / f"results_{name}.csv"
        summary = resume_pairwise_csv(
            features,
            labels,
            backgrounds,
            path,
            classes=[c for c in LOCALISATION_CLASSES if c in set(labels)] if study_order else None,
            folds=folds,
            seed=seed,
            max_per_class=max_per_class,
            max_pairs=remaining,
        )
        done[name] = {**summary, "path": path}
        if remaining is not None:
            remaining -= summary["scored"]
            if remaining <= 0:
                break
    return done
