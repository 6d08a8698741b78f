"""Figure 2 of the background-confound study, and the names and colours of its models.

Per class, the baseline accuracy against each modified background, one colour per model.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

MODEL_LABELS = {"pifia": "PIFiA", "pci": "Paired Cell Inpainting", "deeploc": "DeepLoc"}
MODEL_COLOURS = {"pifia": "#951403", "pci": "#005b96", "deeploc": "#00A36C"}


def figure2(per_class: pd.DataFrame) -> Figure:
    """Figure 2: per class, baseline accuracy against each modified experiment.

    Left panel: same-localisation (o) and different-localisation (x) swaps; right panel:
    masked background (s) and cell-free swap (^); one colour per model.
    """
    panels = [
        (
            "Same vs different localisation swap",
            [("same", "o", "same"), ("diff", "x", "different")],
        ),
        ("Masked vs cell-free background", [("mask", "s", "masked"), ("batch", "^", "cell-free")]),
    ]
    wide = per_class.pivot_table(
        index=["model", "class"], columns="experiment", values="accuracy", sort=False
    )
    models = list(dict.fromkeys(per_class["model"]))
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    low = min(0.5, float(np.nanmin(wide.to_numpy())) - 0.02)
    for ax, (title, series) in zip(axes, panels, strict=True):
        for k, model in enumerate(models):
            colour = MODEL_COLOURS.get(model, plt.get_cmap("tab10")(k % 10))
            rows = wide.loc[model]
            for experiment, marker, _ in series:
                if "base" not in rows or experiment not in rows:
                    continue
                both = rows[["base", experiment]].dropna()
                style = (
                    {"color": colour}
                    if marker == "x"
                    else {"facecolors": "none", "edgecolors": colour}
                )
                ax.scatter(
                    both["base"], both[experiment], marker=marker, s=70, linewidths=1.5, **style
                )
        ax.plot([low, 1], [low, 1], "k--", alpha=0.6, linewidth=1)
        ax.set(xlim=(low, 1), ylim=(low, 1), aspect="equal", title=title)
        ax.set_xlabel("accuracy, original background")
        ax.set_ylabel("accuracy, modified background")
        ax.grid(True, linestyle="--", alpha=0.4)
        handles = [
            Line2D(
                [],
                [],
                marker=m,
                linestyle="none",
                color="black",
                label=label,
                markerfacecolor="black" if m == "x" else "none",
            )
            for _, m, label in series
        ]
        handles += [
            Line2D(
                [],
                [],
                marker="o",
                linestyle="none",
                label=MODEL_LABELS.get(m, m),
                color=MODEL_COLOURS.get(m, plt.get_cmap("tab10")(k % 10)),
            )
            for k, m in enumerate(models)
        ]
        ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=True)
    fig.tight_layout()
    return fig
