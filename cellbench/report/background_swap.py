"""Table 1 and Figure 2 of the background-confound study, from its per-pair SVM results.

Input: a folder per model (``pifia/``, ``pci/``, ...) holding ``results_<experiment>.csv``,
one row per pair of localisation classes (and, for ``batch`` and ``diff``, per background
class) with columns Location1, Location2, [Background,] Accuracy, StdDev. The experiments:

- ``base``: original crops; ``mask``: background set to zero;
- ``same`` / ``diff``: the centre cell pasted onto the background of a cell of the same /
  a different localisation class; ``batch``: pasted onto a cell-free background.

Table 1 gives, per model and experiment, a mean accuracy per localisation class, then the
mean over classes ± 3 SE (SE = sample SD, ddof=1, over classes / sqrt(number of classes)):

- ``base``, ``mask``: mean per Location1. Pairs are listed once, with Location1 before
  Location2, so the last class (vacuole) is never a Location1: 14 classes, as published.
- ``same``: mean per (Location1, Location2), then per class over both columns.
- ``batch``, ``diff``: rows whose Background is Location1 or Location2 are dropped, then each
  unordered pair gets one accuracy, credited to both its classes. ``pairs="first"`` (the
  published protocol) takes the pair's first remaining row in file order, i.e. one background
  picked by file order; ``pairs="mean"`` averages over all its remaining backgrounds, the
  sounder estimate.

Only `LOCALISATION_CLASSES` count. Figure 2 plots, per class, the baseline accuracy against
each modified experiment: same vs diff in one panel, masked vs cell-free in the other.

Examples
--------
>>> results = read_results(Path("background_swap/results"))  # doctest: +SKIP
>>> per_class = per_class_accuracies(results, pairs="first")  # doctest: +SKIP
>>> table1(per_class)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cellbench.errors import CellbenchError, InputMissing
from cellbench.io.atomic import atomic_path, write_text
from cellbench.report.background_figure import MODEL_LABELS, figure2
from cellbench.report.figures import save_figure
from cellbench.report.tables import to_markdown

log = logging.getLogger(__name__)

# The 15 yeast localisation classes of the study (its LOC_KEYS); every class in the published
# CSVs is one of them. Rows naming another class are ignored.
LOCALISATION_CLASSES = (
    "actin",
    "bud neck",
    "cell periphery",
    "cytoplasm",
    "endosome",
    "ER",
    "Golgi",
    "mitochondrion",
    "nucleus",
    "nuclear periphery",
    "nucleolus",
    "spindle pole",
    "peroxisome",
    "vacuolar membrane",
    "vacuole",
)
EXPERIMENTS = {
    "base": "Baseline",
    "mask": "Masked background",
    "batch": "Cell-free different-localisation swap",
    "same": "Same-localisation swap",
    "diff": "Different-localisation swap",
}
SWAP_EXPERIMENTS = ("batch", "diff")
PAIR_PROTOCOLS = {
    "first": "first remaining row of each pair in file order (one background; the published "
    "protocol)",
    "mean": "mean over every remaining background of each pair",
}
_COLUMNS = ["Location1", "Location2", "Accuracy", "StdDev"]


def read_experiment(path: Path, experiment: str) -> pd.DataFrame:
    """Read one results CSV, checking its columns (Background is needed for batch and diff)."""
    frame = pd.read_csv(path)
    needed = _COLUMNS + (["Background"] if experiment in SWAP_EXPERIMENTS else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise CellbenchError(
            f"{path}: missing column(s) {missing}; a results_{experiment}.csv has columns "
            f"{needed}, found {list(frame.columns)}"
        )
    frame["Accuracy"] = pd.to_numeric(frame["Accuracy"], errors="raise")
    return frame


def read_results(results_dir: Path) -> dict[str, dict[str, pd.DataFrame]]:
    """Read every model folder of `results_dir`: model -> experiment -> table.

    The study's models come first in its order (pifia, pci, deeploc), then others by name. A
    model folder is a subfolder holding at least one ``results_<experiment>.csv``; absent
    experiments are left out (and logged).
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise InputMissing(f"--results {str(results_dir)!r} is not a folder")
    results = {}
    known = list(MODEL_LABELS)
    folders = sorted(
        (p for p in results_dir.iterdir() if p.is_dir()),
        key=lambda p: (known.index(p.name) if p.name in known else len(known), p.name),
    )
    for folder in folders:
        files = {e: folder / f"results_{e}.csv" for e in EXPERIMENTS}
        present = {e: read_experiment(p, e) for e, p in files.items() if p.is_file()}
        if present:
            absent = sorted(set(EXPERIMENTS) - set(present))
            if absent:
                log.warning("%s: no results for %s", folder, ", ".join(absent))
            results[folder.name] = present
    if not results:
        raise InputMissing(
            f"no model folder with results_<experiment>.csv under {str(results_dir)!r}; "
            f"expected e.g. {results_dir / 'pifia' / 'results_base.csv'}"
        )
    return results


def class_accuracies(
    frame: pd.DataFrame,
    experiment: str,
    *,
    pairs: str = "first",
    classes: Sequence[str] | None = LOCALISATION_CLASSES,
) -> pd.Series:
    """Mean accuracy per class of one experiment, in the order of `classes`.

    Parameters
    ----------
    frame : DataFrame
        One results CSV (see `read_experiment`).
    experiment : str
        One of `EXPERIMENTS`; picks the rule (see the module's docstring).
    pairs : {"first", "mean"}
        One accuracy per pair for batch and diff: see `PAIR_PROTOCOLS`.
    classes : sequence of str or None
        The classes that count (the study's 15 localisations by default); None: every class
        in the file, sorted (the pipeline's own swap experiments).
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment {experiment!r} is not one of {list(EXPERIMENTS)}")
    if pairs not in PAIR_PROTOCOLS:
        raise ValueError(f"pairs={pairs!r} is not one of {list(PAIR_PROTOCOLS)}")
    if experiment in ("base", "mask"):
        per_class = frame.groupby("Location1")["Accuracy"].mean()
    elif experiment == "same":
        per_pair = frame.groupby(["Location1", "Location2"], as_index=False)["Accuracy"].mean()
        per_class = _credit_both_classes(per_pair)
    else:
        per_class = _credit_both_classes(_one_row_per_pair(frame, pairs))
    order = [c for c in (classes or sorted(per_class.index)) if c in per_class.index]
    return per_class.loc[order].rename("accuracy")


def _one_row_per_pair(frame: pd.DataFrame, pairs: str) -> pd.DataFrame:
    """Swap rows whose background is neither class of the pair, reduced to one per pair."""
    kept = frame[
        (frame["Background"] != frame["Location1"]) & (frame["Background"] != frame["Location2"])
    ]
    key = [tuple(sorted(p)) for p in zip(kept["Location1"], kept["Location2"], strict=True)]
    kept = kept.assign(pair=key)
    if pairs == "first":
        return kept.drop_duplicates("pair", keep="first")
    per_pair = kept.groupby("pair", sort=False)["Accuracy"].mean()
    return pd.DataFrame(
        {
            "Location1": [p[0] for p in per_pair.index],
            "Location2": [p[1] for p in per_pair.index],
            "Accuracy": per_pair.to_numpy(),
        }
    )


def _credit_both_classes(per_pair: pd.DataFrame) -> pd.Series:
    """Mean, per class, of the accuracies of the pairs it belongs to (either column)."""
    long = pd.concat(
        [
            per_pair[["Location1", "Accuracy"]].rename(columns={"Location1": "class"}),
            per_pair[["Location2", "Accuracy"]].rename(columns={"Location2": "class"}),
        ]
    )
    return long.groupby("class")["Accuracy"].mean()


def per_class_accuracies(
    results: dict[str, dict[str, pd.DataFrame]],
    *,
    pairs: str = "first",
    classes: Sequence[str] | None = LOCALISATION_CLASSES,
) -> pd.DataFrame:
    """Long table: model, experiment, class, accuracy (the per-class means of Table 1)."""
    rows = []
    for model, experiments in results.items():
        for experiment in EXPERIMENTS:
            if experiment in experiments:
                accuracies = class_accuracies(
                    experiments[experiment], experiment, pairs=pairs, classes=classes
                )
                rows += [
                    {"model": model, "experiment": experiment, "class": c, "accuracy": a}
                    for c, a in accuracies.items()
                ]
    return pd.DataFrame(rows, columns=["model", "experiment", "class", "accuracy"])


def table1(per_class: pd.DataFrame) -> pd.DataFrame:
    """Mean over classes ± 3 SE per model and experiment, in the order of `per_class`.

    Returns
    -------
    DataFrame
        Columns model, experiment, mean, pm3se, n_classes; pm3se is NaN with one class.
    """
    rows = []
    for (model, experiment), group in per_class.groupby(["model", "experiment"], sort=False):
        values = group["accuracy"].to_numpy(dtype=float)
        n = len(values)
        pm3se = 3 * values.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
        rows.append(
            {
                "model": model,
                "experiment": experiment,
                "mean": float(values.mean()),
                "pm3se": float(pm3se),
                "n_classes": n,
            }
        )
    return pd.DataFrame(rows)


def _wide(table: pd.DataFrame) -> pd.DataFrame:
    """Rows = experiments, columns = models, cells "0.946 ± 0.020"."""
    cells = {}
    for row in table.itertuples(index=False):
        label = MODEL_LABELS.get(row.model, row.model)
        text = f"{row.mean:.3f}" + ("" if math.isnan(row.pm3se) else f" ± {row.pm3se:.3f}")
        cells.setdefault(label, {})[EXPERIMENTS[row.experiment]] = text
    wide = pd.DataFrame(cells).reindex([EXPERIMENTS[e] for e in EXPERIMENTS]).dropna(how="all")
    return wide.fillna("").rename_axis("experiment").reset_index()


def _notes(table: pd.DataFrame, per_class: pd.DataFrame, pairs: str) -> list[str]:
    """The protocol in words, with the classes each experiment lacks."""
    counts = table.groupby("experiment", sort=False)["n_classes"].agg(lambda n: sorted(set(n)))
    notes = [
        f"Pairs (batch, diff): {pairs}, the {PAIR_PROTOCOLS[pairs]}.",
        "Mean accuracy over localisation classes ± 3 standard errors (SD over classes, "
        "ddof=1, / sqrt(number of classes)); base and mask are averaged per Location1.",
        "Classes per experiment: "
        + ", ".join(f"{e} {'/'.join(map(str, n))}" for e, n in counts.items())
        + ".",
    ]
    for experiment, group in per_class.groupby("experiment", sort=False):
        expected = LOCALISATION_CLASSES if per_class.attrs.get("published", True) else ()
        absent = [c for c in expected if c not in set(group["class"])]
        if absent:
            why = "never a Location1" if experiment in ("base", "mask") else "in no pair"
            notes.append(f"{experiment} lacks {', '.join(absent)} ({why}).")
    return notes


def table1_markdown(table: pd.DataFrame, per_class: pd.DataFrame, pairs: str) -> str:
    """Table 1 as Markdown: experiments by models, with the protocol stated."""
    lines = ["# Table 1: localisation accuracy under background changes", ""]
    lines += [f"- {note}" for note in _notes(table, per_class, pairs)] + ["", ""]
    return "\n".join(lines) + to_markdown(_wide(table))


def table1_latex(table: pd.DataFrame, per_class: pd.DataFrame, pairs: str) -> str:
    """Table 1 as a LaTeX ``table`` environment (no package needed)."""
    wide = _wide(table)

    def tex(text: str) -> str:
        for char, escaped in (
            ("\\", r"\textbackslash{}"),
            ("&", r"\&"),
            ("%", r"\%"),
            ("_", r"\_"),
            ("#", r"\#"),
            ("$", r"\$"),
        ):
            text = text.replace(char, escaped)
        return text.replace("±", r"$\pm$")

    header = " & ".join(tex(str(c)) for c in wide.columns) + r" \\"
    body = [" & ".join(tex(str(v)) for v in row) + r" \\" for row in wide.itertuples(index=False)]
    caption = tex(" ".join(_notes(table, per_class, pairs)))
    return "\n".join(
        [
            r"\begin{table}[ht]",
            r"\centering",
            r"\begin{tabular}{l" + "c" * (len(wide.columns) - 1) + "}",
            r"\hline",
            header,
            r"\hline",
            *body,
            r"\hline",
            r"\end{tabular}",
            rf"\caption{{{caption}}}",
            r"\label{tab:background-swap}",
            r"\end{table}",
            "",
        ]
    )


def write_background_swap(
    results_dir: Path,
    out_dir: Path,
    *,
    pairs: str = "first",
    classes: Sequence[str] | None = LOCALISATION_CLASSES,
) -> dict:
    """Read the results, write Table 1 (.csv, .md, .tex), per-class means and Figure 2.

    Returns
    -------
    dict
        ``table`` (Table 1), ``per_class`` (its per-class means) and ``written`` (the paths).
    """
    results = read_results(results_dir)
    per_class = per_class_accuracies(results, pairs=pairs, classes=classes)
    per_class.attrs["published"] = classes is LOCALISATION_CLASSES
    table = table1(per_class)
    out_dir = Path(out_dir)
    written = []
    with atomic_path(out_dir / "table1.csv") as tmp:
        table.assign(pairs=pairs).to_csv(tmp, index=False)
    with atomic_path(out_dir / "table1_per_class.csv") as tmp:
        per_class.assign(pairs=pairs).to_csv(tmp, index=False)
    write_text(out_dir / "table1.md", table1_markdown(table, per_class, pairs))
    write_text(out_dir / "table1.tex", table1_latex(table, per_class, pairs))
    written += [out_dir / n for n in ("table1.csv", "table1_per_class.csv", "table1.md")]
    written.append(out_dir / "table1.tex")
    written += save_figure(figure2(per_class), out_dir / "figure2")
    return {"table": table, "per_class": per_class, "written": written}


def background_swap_command(argv: list[str] | None = None) -> int:
    """``cellbench report background-swap``: Table 1 and Figure 2; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="cellbench report background-swap",
        description="Table 1 and Figure 2 of the background-swap study from per-pair SVM "
        "results (one folder per model of results_<experiment>.csv).",
    )
    parser.add_argument("--results", required=True, help="folder of model folders")
    parser.add_argument("--out", required=True, help="folder to write table1.* and figure2.*")
    parser.add_argument(
        "--pairs",
        choices=list(PAIR_PROTOCOLS),
        default="first",
        help="one accuracy per pair of classes in batch/diff: 'first' = first remaining row "
        "in file order (published protocol, default), 'mean' = mean over backgrounds",
    )
    _add_svm_arguments(parser)
    args = parser.parse_args(argv)
    classes = LOCALISATION_CLASSES
    try:
        if args.svm_from is not None:
            complete, classes = _run_svms(args)
            if not complete:
                return 0  # stopped after --max-pairs: Table 1 waits for every pair
        result = write_background_swap(
            Path(args.results), Path(args.out), pairs=args.pairs, classes=classes
        )
    except CellbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table1_markdown(result["table"], result["per_class"], args.pairs))
    for path in result["written"]:
        print(f"wrote {path}")
    return 0


def _add_svm_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``--svm-from``: score the pairwise SVMs first, resuming."""
    svm = parser.add_argument_group(
        "pairwise SVMs (--svm-from)",
        "score the results CSVs first, into --results/<model>/results_<experiment>.csv; "
        "pairs already there are skipped, each finished pair is appended at once, so a "
        "killed run resumes where it stopped",
    )
    svm.add_argument("--svm-from", help="a crop store (.h5) or a feature table (.parquet/.csv)")
    svm.add_argument("--model", help="results folder name; default crops (.h5) or features")
    svm.add_argument("--label-column", default="label", help="the class column (default label)")
    svm.add_argument(
        "--experiment",
        default="base",
        choices=list(EXPERIMENTS),
        help="a feature table's experiment",
    )
    svm.add_argument("--background-column", help="a feature table's donor class (batch, diff)")
    svm.add_argument("--folds", type=int, default=5)
    svm.add_argument("--seed", type=int, default=0)
    svm.add_argument("--max-per-class", type=int, default=1000, help="cells per class, at most")
    svm.add_argument("--max-pairs", type=int, help="stop after scoring this many new pairs")


def _run_svms(args: argparse.Namespace) -> tuple[bool, Sequence[str] | None]:
    """Score the missing pairs: whether all are done, and the classes Table 1 counts.

    The classes are the study's 15 when the results hold only those, else None (all).
    """
    from cellbench.report.background_svm import svm_from

    logging.getLogger("cellbench.evaluate.pairwise_resume").setLevel(logging.INFO)  # progress
    done = svm_from(
        Path(args.svm_from),
        Path(args.results),
        model=args.model,
        label_column=args.label_column,
        experiment=args.experiment,
        background_column=args.background_column,
        folds=args.folds,
        seed=args.seed,
        max_per_class=args.max_per_class,
        max_pairs=args.max_pairs,
    )
    for summary in done.values():
        print(
            f"{summary['path']}: {summary['done_before']} pair(s) found, {summary['scored']} "
            f"scored of {summary['pairs']}{'' if summary['complete'] else ' (incomplete)'}"
        )
    if not done or not all(s["complete"] for s in done.values()):
        return False, None
    classes = set()
    for summary in done.values():
        frame = pd.read_csv(summary["path"])
        classes |= set(frame["Location1"].astype(str)) | set(frame["Location2"].astype(str))
    return True, LOCALISATION_CLASSES if classes <= set(LOCALISATION_CLASSES) else None
