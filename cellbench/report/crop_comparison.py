"""Accuracy per crop kind, masking and architecture: the nucleocentric study's table.

The study asks which region of a cell a classifier should see: the whole cell, the nucleus,
or a window around the nucleus, masked to its region or not. Each classifier of the
experiment is one row, described by what it reads (the crop kind it is cut as, masked or not,
or handcrafted features) and its architecture (``resnet18``, ``resnet50``, ``random_forest``).
The table is written when the classifiers read at least two different inputs; the models of
``report.sweeps`` are left out (their sweep tables show them).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cellbench.config.crop_kinds import CROP_KINDS  # noqa: E402
from cellbench.report.figures import save_figure  # noqa: E402

FEATURES = "handcrafted features"  # the crop-kind column of models that read features
CROP_COLUMNS = [
    "crop_kind",
    "masked",
    "architecture",
    "model",
    "n_seeds",
    "accuracy_mean",
    "accuracy_pm3se",
]


def model_input(model, config) -> tuple[str, bool | None]:
    """The registry crop kind a model reads and whether it is masked; features: (FEATURES, None).

    A crop variant (``crops.kinds.<name>.kind``) counts as the kind it is cut as; masking is
    the variant's ``masked``, or the kind's default.
    """
    name = getattr(model, "crop_kind", None)
    if not getattr(model, "reads_crops", False) or name is None:
        return FEATURES, None
    entry = config.crops.kinds.get(name)
    if entry is None:  # precut or a background kind: no masking switch to report
        return name, None
    kind = entry.cut_kind(name)
    return kind, CROP_KINDS[kind].masked if entry.masked is None else entry.masked


def architecture(model) -> str:
    """The model's type, with the ResNet's depth (``resnet18``) where it has one."""
    depth = getattr(model, "depth", None)
    return f"{model.type}{depth}" if model.type == "resnet" and depth else model.type


def crop_comparison_table(config, accuracy: pd.DataFrame | None) -> pd.DataFrame:
    """One row per classifier: its input (crop kind, masked), architecture and accuracy.

    Parameters
    ----------
    config : Config
    accuracy : DataFrame or None
        The report's accuracy table (``model``, ``n_seeds``, ``accuracy_mean``,
        ``accuracy_pm3se``: ± 3 SE over seeds).

    Returns
    -------
    DataFrame
        `CROP_COLUMNS`, sorted by crop kind, masking and architecture; empty when the
        classifiers read fewer than two different inputs.
    """
    if accuracy is None or accuracy.empty:
        return pd.DataFrame(columns=CROP_COLUMNS)
    swept = {name for sweep in config.report.sweeps for name in sweep.models}
    rows = []
    for record in accuracy.to_dict("records"):
        if record["model"] in swept:
            continue
        model = config.model(record["model"])
        kind, masked = model_input(model, config)
        rows.append(
            {"crop_kind": kind, "masked": masked, "architecture": architecture(model), **record}
        )
    table = pd.DataFrame(rows, columns=[*CROP_COLUMNS, "input"])[CROP_COLUMNS]
    if len(table.drop_duplicates(["crop_kind", "masked"])) < 2:
        return pd.DataFrame(columns=CROP_COLUMNS)
    order = {kind: i for i, kind in enumerate([*CROP_KINDS, FEATURES])}
    table["_order"] = table["crop_kind"].map(order).fillna(len(order))
    table = table.sort_values(["_order", "crop_kind", "masked", "architecture", "model"])
    return table.drop(columns="_order").reset_index(drop=True)


def _input_label(kind: str, masked: bool | None) -> str:
    if masked is None or pd.isna(masked):
        return kind
    return f"{kind}\n{'masked' if masked else 'unmasked'}"


def crop_comparison_figure(table: pd.DataFrame, title: str, majority_rate: float | None = None):
    """Grouped bars: accuracy (± 3 SE) per input (crop kind and masking), a bar per architecture.

    Parameters
    ----------
    table : DataFrame
        `crop_comparison_table`'s rows.
    majority_rate : float, optional
        Drawn as a dashed line: the accuracy of always answering the most common class.
    """
    labels = [_input_label(k, m) for k, m in zip(table["crop_kind"], table["masked"], strict=True)]
    table = table.assign(_input=labels)
    inputs = list(dict.fromkeys(labels))
    architectures = list(dict.fromkeys(table["architecture"]))
    width = 0.8 / len(architectures)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(inputs) + 1.5), 3.8))
    for j, arch in enumerate(architectures):
        rows = table[table["architecture"] == arch]
        labelled = False
        for i, name in enumerate(inputs):
            match = rows[rows["_input"] == name]
            if match.empty:
                continue
            row = match.iloc[0]
            error = 0.0 if pd.isna(row["accuracy_pm3se"]) else row["accuracy_pm3se"]
            x = i - 0.4 + width * (j + 0.5)
            label = None if labelled else arch
            ax.bar(
                x, row["accuracy_mean"], width, yerr=error, capsize=3, color=f"C{j}", label=label
            )
            labelled = True
    if majority_rate is not None and np.isfinite(majority_rate):
        ax.axhline(majority_rate, color="grey", linestyle="--", linewidth=1, label="majority")
    ax.set_xticks(range(len(inputs)), inputs, fontsize=8)
    ax.set_ylabel("test accuracy (mean over seeds, ± 3 SE)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def crop_comparison_report(config, accuracy: pd.DataFrame | None, paths):
    """The table (``{"accuracy by crop": table}``, or nothing) and its PNG figure paths."""
    table = crop_comparison_table(config, accuracy)
    if table.empty:
        return {}, []
    majority = None
    if accuracy is not None and "majority_rate_mean" in accuracy:
        majority = float(accuracy["majority_rate_mean"].median())
    figure = crop_comparison_figure(
        table, f"{config.name}: accuracy by crop kind and masking", majority
    )
    written = save_figure(figure, paths.report_figure("accuracy_by_crop"))
    return {"accuracy by crop": table}, [p for p in written if p.suffix == ".png"]
