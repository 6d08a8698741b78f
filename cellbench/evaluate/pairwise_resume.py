"""The pairwise-SVM protocol run pair by pair into its results CSV, resuming where it stopped.

`resume_pairwise_csv` scores the pairs (and backgrounds) of
`cellbench.evaluate.pairwise.pairwise_svm_accuracy` one at a time and appends each finished
row to the CSV (flushed and fsynced), so a run killed at any point loses at most the pair in
progress. A later run reads the CSV, skips every pair already in it (a last line cut short by
the kill is dropped) and scores the rest. When every pair is done the CSV is rewritten, by a
temporary file and a rename, in the published order (`pairwise_svm_accuracy`'s). Each pair's
draws (its subsample, folds and SVM) depend on ``seed`` and that pair's cells only, never on
which pairs ran before it, so a resumed run's final CSV is byte for byte an uninterrupted
run's. Floats are written as Python's shortest round-trip repr, so rows read back and written
again are unchanged.

The settings that make the rows (folds, seed, C, the per-class limits, the SVM's shuffle and
max_iter, and a SHA-256 of the features, labels and backgrounds) are kept beside the CSV in
``<name>.settings.json``; a run with other settings refuses to append to it, naming what
differs. A CSV without that file (the study's own, or an older cellbench's) is resumed with a
warning that its settings cannot be checked.

Examples
--------
>>> resume_pairwise_csv(x, labels, None, Path("results_base.csv"))  # doctest: +SKIP
{'pairs': 105, 'done_before': 40, 'scored': 65, 'complete': True}
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cellbench.errors import CellbenchError
from cellbench.evaluate.pairwise import (
    BACKGROUND_COLUMNS,
    PAIR_COLUMNS,
    _background_order,
    _check_counts,
    _check_inputs,
    _class_order,
    _cross_validated_accuracy,
    _pick_cells,
)
from cellbench.io.atomic import atomic_path, write_text

log = logging.getLogger(__name__)


def resume_pairwise_csv(
    features: np.ndarray,
    labels: np.ndarray,
    backgrounds: np.ndarray | None,
    path: str | Path,
    *,
    classes: Sequence | None = None,
    folds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    min_per_class: int | None = None,
    max_per_class: int | None = None,
    shuffle: bool = True,
    max_iter: int = 10_000,
    max_pairs: int | None = None,
) -> dict:
    """Score the pairs missing from the results CSV at `path`, appending each as it finishes.

    Parameters are those of `pairwise_svm_accuracy` (labels and backgrounds are compared as
    text, as the CSV holds them), and:

    path : str or Path
        The results CSV; created if absent, else its rows count as done.
    max_pairs : int, optional
        Score at most this many new pairs, then stop (the CSV stays in run order until a run
        finishes every pair); None: all.

    Returns
    -------
    dict
        ``pairs`` (to score in all), ``done_before`` (found in the CSV), ``scored`` (this
        run), ``complete`` (every pair is in the CSV, now in the published order).
    """
    features, labels, backgrounds = _check_inputs(features, labels, backgrounds)
    labels = labels.astype(str)
    backgrounds = None if backgrounds is None else backgrounds.astype(str)
    min_per_class = folds if min_per_class is None else min_per_class
    _check_counts(folds, min_per_class, max_per_class)
    order = _class_order(labels, None if classes is None else [str(c) for c in classes])
    columns = PAIR_COLUMNS if backgrounds is None else BACKGROUND_COLUMNS
    path = Path(path)
    settings = {
        "folds": folds,
        "seed": seed,
        "C": C,
        "min_per_class": min_per_class,
        "max_per_class": max_per_class,
        "shuffle": shuffle,
        "max_iter": max_iter,
        "inputs_sha256": _inputs_digest(features, labels, backgrounds),
    }
    done = read_done_rows(path, columns)
    check_settings(path, settings)
    all_keys = _all_keys(order, backgrounds)
    todo = [k for k in all_keys if k not in done]
    log.info(
        "%s: %d of %d pairs done, %d to score",
        path,
        len(all_keys) - len(todo),
        len(all_keys),
        len(todo),
    )
    scored = 0
    with _appender(path, columns) as write:
        for keys in todo[:max_pairs] if max_pairs is not None else todo:
            row = _score(
                keys,
                features,
                labels,
                backgrounds,
                folds,
                seed,
                C,
                min_per_class,
                max_per_class,
                shuffle,
                max_iter,
            )
            scored += 1
            if row is not None:
                write(row)
                done[keys] = row
            log.info("%s: pair %d of %d: %s", path.name, scored, len(todo), " / ".join(keys))
    complete = scored == len(todo)
    if complete:
        known = set(all_keys)  # rows of other classes stay, after these, in file order
        ordered = [done[k] for k in all_keys if k in done]
        _rewrite_in_order(path, columns, ordered + [r for k, r in done.items() if k not in known])
    return {
        "pairs": len(all_keys),
        "done_before": len(all_keys) - len(todo),
        "scored": scored,
        "complete": complete,
    }


def settings_path(path: Path) -> Path:
    """The settings file kept beside a results CSV: ``results.csv`` -> ``results.settings.json``."""
    return path.with_name(f"{path.stem}.settings.json")


def check_settings(path: Path, settings: dict) -> None:
    """Refuse to resume a CSV made with other settings; record them for a new CSV.

    Raises
    ------
    CellbenchError
        The settings file beside `path` holds other values, naming each that differs.
    """
    kept = settings_path(path)
    if kept.exists():
        before = json.loads(kept.read_text())
        differ = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if differ:
            said = ", ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in differ.items())
            raise CellbenchError(
                f"{path} was made with other settings ({said}; see {kept.name}); resume it "
                "with its settings, or move both files away to start afresh"
            )
        return
    if path.exists() and path.stat().st_size > 0:
        log.warning(
            "%s: no %s beside it, so its settings cannot be checked; resuming it as if they "
            "were these",
            path,
            kept.name,
        )
    kept.parent.mkdir(parents=True, exist_ok=True)
    write_text(kept, json.dumps(settings, indent=2) + "\n")


def _inputs_digest(features: np.ndarray, labels: np.ndarray, backgrounds) -> str:
    """SHA-256 of the features (float64, C order), the labels and the backgrounds as text."""
    digest = hashlib.sha256()
    digest.update(repr(features.shape).encode())
    digest.update(np.ascontiguousarray(features, dtype=np.float64).tobytes())
    for values in (labels, backgrounds):
        text = "" if values is None else "\x1f".join(map(str, values))
        digest.update(b"\x1e" + text.encode())
    return digest.hexdigest()


def _all_keys(order: list[str], backgrounds: np.ndarray | None) -> list[tuple[str, ...]]:
    """Every (Location1, Location2[, Background]) in the published order."""
    keys = []
    for first, second in itertools.combinations(order, 2):
        for background in _background_order(backgrounds, order):
            keys.append((first, second) if background is None else (first, second, background))
    return keys


def _score(
    keys,
    features,
    labels,
    backgrounds,
    folds,
    seed,
    C,
    min_per_class,
    max_per_class,
    shuffle,
    max_iter,
) -> list[str] | None:
    """One CSV row (text) for the pair `keys`, or None when a class has too few cells."""
    in_background = np.ones(len(labels), bool) if backgrounds is None else backgrounds == keys[2]
    picked = _pick_cells(labels, in_background, keys[:2], min_per_class, max_per_class, seed, keys)
    if picked is None:
        return None
    accuracies, unconverged = _cross_validated_accuracy(
        features[picked], labels[picked], folds, seed, C, shuffle, max_iter
    )
    if unconverged:
        log.warning(
            "pair %s: LinearSVC reached max_iter=%d in %d of %d folds; raise max_iter",
            " / ".join(keys),
            max_iter,
            unconverged,
            folds,
        )
    return [*keys, repr(float(np.mean(accuracies))), repr(float(np.std(accuracies)))]


def read_done_rows(path: Path, columns: list[str]) -> dict[tuple[str, ...], list[str]]:
    """The rows already in the CSV at `path`, by their keys; a cut-short last line is removed.

    Raises
    ------
    CellbenchError
        The file's header is not `columns`.
    """
    if not path.exists():
        return {}
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):  # killed while appending: drop the partial row
        keep = data.rfind(b"\n") + 1
        log.warning("%s: dropping an unfinished last line (%d bytes)", path, len(data) - keep)
        with open(path, "r+b") as handle:
            handle.truncate(keep)
            os.fsync(handle.fileno())
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return {}
    if rows[0] != columns:
        raise CellbenchError(
            f"{path}: columns {rows[0]} are not those of this experiment's results, {columns}; "
            "resume only into a results CSV of the same kind, or move it away to start afresh"
        )
    k = len(columns) - 2
    return {tuple(row[:k]): row for row in rows[1:] if len(row) == len(columns)}


class _appender:
    """Context: ``write(row)`` appends one CSV row and fsyncs it (header first if new)."""

    def __init__(self, path: Path, columns: list[str]):
        self.path, self.columns = path, columns

    def __enter__(self):
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a", newline="")
        self.writer = csv.writer(self.handle, lineterminator="\n")
        if new:
            self._write(self.columns)
        return self._write

    def _write(self, row: list[str]) -> None:
        self.writer.writerow(row)
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def __exit__(self, *exc) -> None:
        self.handle.close()


def _rewrite_in_order(path: Path, columns: list[str], rows: list[list[str]]) -> None:
    """The CSV with exactly `rows`, in their order, written by a temporary file and rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)
