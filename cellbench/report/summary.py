"""The answer at the top of the report: which model and input win each metric, and by how much.

For each metric of the accuracy and representation tables (mean over seeds with ± 3 SE), the
best row is compared with the runner-up: "ahead of" when their ± 3 SE intervals do not
overlap, "within 3 SE of" when they do; without an SE on both (one seed, or a metric the
table gives without one) the summary says so instead of judging. A bar chart shows accuracy
per model and input with its ± 3 SE error bars and the majority-class rate as a line.

Examples
--------
>>> lines = answer_lines({"accuracy": accuracy_table})  # doctest: +SKIP
>>> accuracy_chart(accuracy_table, report_dir / "summary_accuracy")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.report.figures import plt, save_figure

# (table, metric, label in the summary, larger is better)
METRICS = (
    ("accuracy", "accuracy", "accuracy on held-out cells", True),
    ("accuracy", "balanced_accuracy", "balanced accuracy", True),
    ("representations", "map", "mAP (same class retrieved)", True),
    ("representations", "nsc", "NSC (not-same-compound 1-NN)", True),
    ("representations", "silhouette", "silhouette", True),
    ("generation", "reconstruction_mse", "reconstruction MSE", False),
)


@dataclass(frozen=True)
class Answer:
    """The winner of one metric and how it compares with the runner-up."""

    metric: str
    best: str  # "model (input)"
    mean: float
    pm3se: float  # NaN with one seed
    runner_up: str | None
    runner_up_mean: float
    clearly_ahead: bool  # ± 3 SE intervals apart
    comparable: bool = True  # both have a ± 3 SE (several seeds)

    def sentence(self) -> str:
        """One line of plain text, e.g. ``accuracy: mlp (features) 0.844 ± 0.038, ...``."""
        spread = f" ± {self.pm3se:.3f}" if math.isfinite(self.pm3se) else ""
        text = f"{self.metric}: {self.best} {self.mean:.3f}{spread}"
        if self.runner_up is None:
            return text + " (the only one)"
        gap = self.mean - self.runner_up_mean
        other = f"{self.runner_up} ({self.runner_up_mean:.3f}, {gap:+.3f})"
        if not self.comparable:
            return f"{text}; next {other}; no ± 3 SE to tell them apart"
        verdict = "ahead of" if self.clearly_ahead else "within 3 SE of"
        return f"{text}, {verdict} {other}"


def _interval(row: pd.Series, metric: str) -> tuple[float, float]:
    mean = float(row[f"{metric}_mean"])
    spread = row.get(f"{metric}_pm3se", math.nan)
    spread = float(spread) if spread is not None and pd.notna(spread) else math.nan
    return mean, spread


def _name(row: pd.Series) -> str:
    """``model (input)``, or the model alone in a table without inputs."""
    given = row.get("input")
    return f"{row['model']} ({given})" if given is not None and pd.notna(given) else row["model"]


def answer_lines(tables: Mapping[str, pd.DataFrame]) -> list[Answer]:
    """The best model and input of every metric that the tables hold, with its runner-up."""
    answers = []
    for table_name, metric, label, larger_better in METRICS:
        table = tables.get(table_name)
        column = f"{metric}_mean"
        if table is None or column not in table or table[column].notna().sum() == 0:
            continue
        ranked = table[table[column].notna()].sort_values(column, ascending=not larger_better)
        best = ranked.iloc[0]
        mean, spread = _interval(best, metric)
        if len(ranked) == 1:
            answers.append(Answer(label, _name(best), mean, spread, None, math.nan, False))
            continue
        second = ranked.iloc[1]
        other, other_spread = _interval(second, metric)
        comparable = math.isfinite(spread) and math.isfinite(other_spread)
        if larger_better:
            apart = comparable and mean - spread > other + other_spread
        else:
            apart = comparable and mean + spread < other - other_spread
        answers.append(
            Answer(label, _name(best), mean, spread, _name(second), other, apart, comparable)
        )
    return answers


def accuracy_chart(accuracy: pd.DataFrame, stem: Path) -> list[Path]:
    """Bars of accuracy per model and input (± 3 SE), best on top; majority rate as a line.

    Parameters
    ----------
    accuracy : DataFrame
        The report's accuracy table: ``model``, ``input``, ``accuracy_mean``,
        ``accuracy_pm3se`` and, when known, ``majority_rate_mean``.
    stem : Path
        Output path without suffix; PNG and PDF are written.
    """
    ranked = accuracy.sort_values("accuracy_mean").reset_index(drop=True)
    errors = ranked.get("accuracy_pm3se", pd.Series(np.nan, index=ranked.index))
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(ranked) + 1.5))
    positions = np.arange(len(ranked))
    ax.barh(
        positions,
        ranked["accuracy_mean"],
        xerr=errors.fillna(0).to_numpy(),
        color="#4c72b0",
        ecolor="#222",
        capsize=3,
    )
    ax.set_yticks(positions, [_name(row) for _, row in ranked.iterrows()])
    if "majority_rate_mean" in ranked and ranked["majority_rate_mean"].notna().any():
        rate = float(ranked["majority_rate_mean"].max())
        ax.axvline(rate, color="#c44e52", linestyle="--", label=f"majority class {rate:.3f}")
        ax.legend(loc="lower right")
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy on held-out cells (mean over seeds, ± 3 SE)")
    fig.tight_layout()
    return save_figure(fig, stem)


def summary_html(
    answers: list[Answer], chart: Path | None, majority: float | None, notes: Sequence[str] = ()
) -> str:
    """The summary block of the page: one line per metric, the chart, the baseline, notes.

    `notes` are lines about the input (what ``data.exclude`` left out), one paragraph each.
    """
    items = "".join(f"<li>{html.escape(answer.sentence())}</li>" for answer in answers)
    body = f"<ul>{items}</ul>" if items else "<p>No model finished: nothing to compare.</p>"
    if majority is not None and math.isfinite(majority):
        body += f"<p>Majority-class rate (always the most common class): {majority:.3f}.</p>"
    if chart is not None:
        src = html.escape(chart.name)
        body += (
            f'<figure><a href="{src}"><img class="chart" src="{src}" '
            f'alt="accuracy per model and input"></a></figure>'
        )
    body += "".join(f'<p class="input-note">{html.escape(note)}</p>' for note in notes)
    return f'<section id="summary"><h2>Summary</h2>{body}</section>'
