"""Figures of the report, drawn with matplotlib's non-interactive backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cellbench.io.atomic import atomic_path  # noqa: E402


def plot_confusion(confusion: np.ndarray, classes: list[str], title: str, path: Path) -> None:
    """Save a row-normalised confusion matrix (rows = true class) with its counts.

    Parameters
    ----------
    confusion : (K, K) ndarray of int
        Counts, rows = true, columns = predicted.
    classes : list of str
        The K class names.
    title : str
    path : Path
        Output file; its suffix (.png, .pdf) picks the format.
    """
    confusion = np.asarray(confusion)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = confusion / confusion.sum(axis=1, keepdims=True)
    size = 1.2 + 0.9 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(np.nan_to_num(fractions), vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), count in np.ndenumerate(confusion):
        colour = "white" if fractions[i, j] > 0.5 else "black"
        ax.text(j, i, f"{count}", ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
