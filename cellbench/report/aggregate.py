"""Assemble the report: accuracy table, confusion matrices and the list of missing tasks."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.io.atomic import atomic_path, write_text
from cellbench.report.figures import plot_confusion
from cellbench.report.tables import summarise_accuracy, to_markdown

log = logging.getLogger(__name__)


def build_report(
    metrics_files: dict[tuple[str, int], Path],
    missing_tasks: list[str],
    report_dir: Path,
    title: str,
) -> dict:
    """Write ``accuracy.csv``, ``accuracy.md``, ``confusion_<model>.png`` and ``index.html``.

    Parameters
    ----------
    metrics_files : dict
        (model, seed) -> metrics.json; absent files count as missing.
    missing_tasks : list of str
        Upstream tasks that did not finish, named ``stage/task``, to list in the report.
    report_dir : Path
    title : str
        The experiment's name.

    Returns
    -------
    dict
        Paths written and the missing tasks, for the task's status.
    """
    records = []
    for (model, seed), path in sorted(metrics_files.items()):
        if path.exists():
            records.append(json.loads(path.read_text()))
        else:
            missing_tasks = [*missing_tasks, f"evaluate/{model}.seed{seed}"]
    missing_tasks = sorted(set(missing_tasks))
    written = []
    table = summarise_accuracy(records) if records else pd.DataFrame()
    if not table.empty:
        with atomic_path(report_dir / "accuracy.csv") as tmp:
            table.to_csv(tmp, index=False)
        written.append(report_dir / "accuracy.csv")
    markdown = _summary_markdown(title, table, missing_tasks)
    write_text(report_dir / "accuracy.md", markdown)
    written.append(report_dir / "accuracy.md")
    figures = []
    for model in sorted({r["model"] for r in records}):
        runs = [r for r in records if r["model"] == model]
        confusion = np.sum([r["confusion"] for r in runs], axis=0)
        path = report_dir / f"confusion_{model}.png"
        plot_confusion(
            confusion, runs[0]["classes"], f"{model} ({len(runs)} seed(s), test cells)", path
        )
        figures.append(path)
    written += figures
    write_text(report_dir / "index.html", _index_html(title, table, figures, missing_tasks))
    written.append(report_dir / "index.html")
    log.info("report: %d model run(s), %d missing task(s)", len(records), len(missing_tasks))
    return {"written": [str(p) for p in written], "missing_tasks": missing_tasks}


def _summary_markdown(title: str, table: pd.DataFrame, missing: list[str]) -> str:
    """The report as Markdown: accuracy table and missing tasks."""
    lines = [f"# {title}: accuracy on held-out cells\n"]
    if table.empty:
        lines.append("No model finished.\n")
    else:
        columns = [
            "model",
            "input",
            "n_seeds",
            "accuracy_mean",
            "accuracy_sd",
            "accuracy_pm3se",
            "balanced_accuracy_mean",
            "macro_f1_mean",
            "majority_rate_mean",
        ]
        lines.append(to_markdown(table[columns]))
    lines.append("\n## Missing tasks\n")
    lines.append(
        "\n".join(f"- {t}" for t in missing) + "\n" if missing else "None: every task finished.\n"
    )
    return "\n".join(lines)


def _index_html(title: str, table: pd.DataFrame, figures: list[Path], missing: list[str]) -> str:
    """A single self-contained page linking the figures relatively."""
    table_html = (
        table.to_html(index=False, float_format="{:.3f}".format)
        if not table.empty
        else "<p>No model finished.</p>"
    )
    images = "\n".join(
        f'<figure><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}"></figure>'
        for p in figures
    )
    missing_html = "".join(f"<li>{html.escape(t)}</li>" for t in missing) or "<li>none</li>"
    name = html.escape(title)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{name}</title></head><body>"
        f"<h1>{name}</h1><h2>Accuracy on held-out cells</h2>{table_html}"
        f"<h2>Confusion matrices</h2>{images}"
        f"<h2>Missing tasks</h2><ul>{missing_html}</ul></body></html>\n"
    )
