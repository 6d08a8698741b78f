"""Two experiments side by side: accuracy per model and input, and the difference B - A.

Each results root holds ``report/accuracy.csv`` (written by the aggregate stage, see
`cellbench.report.tables.summarise_accuracy`). The tables are joined on model and input; a
model run in only one experiment keeps its row with blanks for the other.

    cellbench report compare results/demo results/demo-cellpose --out compare.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from cellbench.errors import CellbenchError, InputMissing
from cellbench.io.atomic import write_text
from cellbench.paths import ResultsPaths
from cellbench.report.tables import to_markdown

KEYS = ["model", "input"]
VALUES = ["n_seeds", "accuracy_mean", "accuracy_pm3se"]


def read_accuracy(results_root: Path) -> pd.DataFrame:
    """The accuracy table of one results root, checked for the columns the comparison uses."""
    path = ResultsPaths(Path(results_root)).report_file("accuracy.csv")
    if not path.is_file():
        raise InputMissing(
            f"{path} does not exist: run the aggregate stage of that experiment first "
            f"(cellbench run --stage aggregate --task report --config ...)"
        )
    frame = pd.read_csv(path)
    missing = [c for c in KEYS + VALUES if c not in frame.columns]
    if missing:
        raise CellbenchError(f"{path} lacks column(s) {missing}; found {list(frame.columns)}")
    return frame[KEYS + VALUES]


def compare_accuracy(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Outer join of two accuracy tables on model and input.

    Returns
    -------
    DataFrame
        Columns model, input, then n_seeds, accuracy_mean, accuracy_pm3se suffixed ``_a`` and
        ``_b``, and ``difference`` = accuracy_mean_b - accuracy_mean_a (NaN when one is absent).
    """
    joined = a.merge(b, on=KEYS, how="outer", suffixes=("_a", "_b"), sort=True)
    joined["difference"] = joined["accuracy_mean_b"] - joined["accuracy_mean_a"]
    return joined


def comparison_markdown(table: pd.DataFrame, root_a: Path, root_b: Path) -> str:
    """The comparison as Markdown, naming the two experiments."""
    header = (
        "# Accuracy on held-out cells: A vs B\n\n"
        f"- A: `{root_a}`\n- B: `{root_b}`\n"
        "- difference = B - A (mean accuracy); pm3se = ± 3 standard errors over seeds\n\n"
    )
    shown = table.copy()
    for column in ("n_seeds_a", "n_seeds_b"):  # floats after the outer join; show as counts
        shown[column] = shown[column].map(lambda n: "" if pd.isna(n) else str(int(n)))
    return header + to_markdown(shown)


def compare_command(argv: list[str] | None = None) -> int:
    """``cellbench report compare RESULTS_A RESULTS_B``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="cellbench report compare",
        description="Put the accuracy tables of two experiments (results roots) side by side.",
    )
    parser.add_argument("results_a", metavar="RESULTS_A", help="results root of experiment A")
    parser.add_argument("results_b", metavar="RESULTS_B", help="results root of experiment B")
    parser.add_argument("--out", help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
    try:
        table = compare_accuracy(read_accuracy(args.results_a), read_accuracy(args.results_b))
    except CellbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = comparison_markdown(table, Path(args.results_a), Path(args.results_b))
    print(text, end="")
    if args.out:
        write_text(args.out, text)
        print(f"wrote {args.out}")
    return 0
