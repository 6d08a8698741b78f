"""Ground truth from marker channels: each cell's class from rules on its marker intensities.

As in the nucleocentric workflow, markers (e.g. EdU and BrdU from a second staining round, or
phospho-histone H3 for mitosis) are measured in each cell's nucleus, quality filters drop
doubtful nuclei, and rules such as ``"EdU_mean > 600 and BrdU_mean < 300"`` name the class. A
cell matching no rule or several, or failing a filter, is ``undefined`` and left out of
training. Instead of rules, Otsu's threshold on one marker's per-cell mean splits two classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from skimage.filters import threshold_otsu

from cellbench.config import GroundTruthConfig
from cellbench.config.rules import evaluate_rule, parse_rule

UNDEFINED = "undefined"


@dataclass(frozen=True)
class MarkerSetup:
    """What a stage needs to classify cells: the settings, the marker channels, the DNA channel."""

    settings: GroundTruthConfig
    markers: list[str]
    dna_channel: str

    def classify(self, image: np.ndarray, channels: list[str], cells, nuclei) -> pd.DataFrame:
        """`classify_field` of a (C, Y, X) image holding `channels` then the markers.

        With ``settings.align_channel`` the markers come from a second staining round: they
        are first registered onto the stains (`align_markers`).
        """
        names = [*channels, *self.markers]
        qc = None
        if self.settings.align_channel is not None:
            image, qc = align_markers(
                image, names, self.markers, self.dna_channel, cells, self.settings
            )
        table = classify_field(
            image,
            [*channels, *self.markers],
            self.markers,
            self.dna_channel,
            cells,
            nuclei,
            self.settings,
        )
        if qc is not None:
            lost = ~table["label"].map(qc.set_index("label")["keep"]).fillna(False).astype(bool)
            table.loc[lost, self.settings.column] = UNDEFINED
            table["aligned_signal_ratio"] = table["label"].map(qc.set_index("label")["area_ratio"])
        return table


def align_markers(
    image: np.ndarray,
    channel_names: list[str],
    markers: list[str],
    dna_channel: str,
    cells: np.ndarray,
    settings: GroundTruthConfig,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Register the marker round onto the stain round; flag cells that cannot be measured.

    The shift comes from phase correlation between the stains' DNA channel and the marker
    round's ``settings.align_channel`` (`cellbench.align.estimate_shift`); every marker is
    shifted by it. A cell that leaves the area both rounds cover, or whose aligned marker-round
    foreground covers less than ``settings.min_signal_ratio`` of its stain-round foreground,
    gets ``keep = False`` (it becomes ``undefined``).

    Returns
    -------
    image : (C, Y, X) ndarray
        `image` with the marker planes replaced by their aligned versions.
    qc : DataFrame
        `cellbench.align.qc_cells` per cell: label, inside_common, area_ratio, keep.
    """
    from cellbench import align

    dna = image[channel_names.index(dna_channel)]
    marker_index = [channel_names.index(m) for m in markers]
    reference = image[channel_names.index(settings.align_channel)]
    alignment = align.estimate_shift(dna, reference)
    aligned = image.copy()
    aligned[marker_index] = align.apply_shift(image[marker_index], alignment)
    qc = align.qc_cells(
        cells,
        align.foreground(aligned[channel_names.index(settings.align_channel)]),
        align.foreground(dna),
        align.common_mask(alignment, cells.shape),
        min_area_ratio=settings.min_signal_ratio,
    )
    return aligned, qc


def marker_table(
    markers: np.ndarray,
    marker_names: list[str],
    dna: np.ndarray,
    cells: np.ndarray,
    nuclei: np.ndarray,
    region: str = "Nuclei",
) -> pd.DataFrame:
    """Per cell: ``<marker>_mean``, ``_median``, ``_max``, ``nucleus_area`` and ``dna_mean``.

    Parameters
    ----------
    markers : (M, Y, X) ndarray
        The marker channels (aligned to the segmentation).
    marker_names : list of str
    dna : (Y, X) ndarray
        The DNA channel, for the quality filters.
    cells, nuclei : (Y, X) ndarray of int
        Label images; a nucleus carries its cell's label.
    region : {"Nuclei", "Cells"}
        Where the markers are measured.

    Returns
    -------
    DataFrame
        One row per cell label (column ``label``); NaN for a cell without a nucleus.
    """
    labels = np.unique(cells[cells > 0])
    where = nuclei if region == "Nuclei" else cells
    size = int(cells.max()) + 1
    flat = where.ravel()
    area = np.bincount(flat, minlength=size).astype(float)
    nucleus_area = np.bincount(nuclei.ravel(), minlength=size).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = {
            "label": labels,
            "nucleus_area": nucleus_area[labels],
            "dna_mean": _mean(dna, nuclei, size)[labels],
        }
        for name, channel in zip(marker_names, markers, strict=True):
            table[f"{name}_mean"] = (
                np.bincount(flat, channel.ravel().astype(float), minlength=size) / area
            )[labels]
            table[f"{name}_median"], table[f"{name}_max"] = _median_max(channel, where, labels)
    return pd.DataFrame(table)


def assign_classes(table: pd.DataFrame, settings: GroundTruthConfig) -> pd.Series:
    """The class of every row of a `marker_table` (``undefined`` where none applies)."""
    passes = (table["nucleus_area"] >= settings.min_nucleus_area_px) & (
        table["dna_mean"] >= settings.min_dna_mean
    )
    classes = pd.Series(UNDEFINED, index=table.index, dtype=object)
    if settings.auto is not None:
        values = table[f"{settings.auto.marker}_mean"]
        usable = passes & values.notna()
        if usable.sum() < 2 or values[usable].nunique() < 2:
            return classes
        threshold = threshold_otsu(values[usable].to_numpy())
        low, high = settings.auto.classes
        classes[usable] = np.where(values[usable] > threshold, high, low)
        return classes
    matches = pd.DataFrame(
        {name: _evaluate(table, rule, name) for name, rule in settings.rules.items()}
    )
    single = (matches.sum(axis=1) == 1) & passes
    classes[single] = matches[single].idxmax(axis=1)
    return classes


def _evaluate(table: pd.DataFrame, rule: str, name: str) -> pd.Series:
    """A rule's truth per row; a NaN value never matches.

    The rule is checked and interpreted by `cellbench.config.rules`, never run as code; a bad
    rule raises its `RuleError` (a `CellbenchError`) naming ``ground_truth.rules.<name>``.
    """
    columns = [c for c in table.columns if c != "label"]
    parsed = parse_rule(rule, columns, key=f"ground_truth.rules.{name}")
    return pd.Series(evaluate_rule(parsed, table), index=table.index)


def _mean(channel: np.ndarray, labels: np.ndarray, size: int) -> np.ndarray:
    counts = np.bincount(labels.ravel(), minlength=size).astype(float)
    sums = np.bincount(labels.ravel(), channel.ravel().astype(float), minlength=size)
    return sums / counts


def _median_max(channel: np.ndarray, where: np.ndarray, labels: np.ndarray):
    """Median and maximum of `channel` over each label's pixels (NaN for an empty label)."""
    mask = where > 0
    values, owners = channel[mask].astype(float), where[mask]
    order = np.lexsort((values, owners))
    values, owners = values[order], owners[order]
    starts = np.searchsorted(owners, labels, side="left")
    ends = np.searchsorted(owners, labels, side="right")
    counts = ends - starts
    median = np.full(len(labels), np.nan)
    maximum = np.full(len(labels), np.nan)
    present = counts > 0
    low = starts[present] + (counts[present] - 1) // 2
    high = starts[present] + counts[present] // 2
    median[present] = (values[low] + values[high]) / 2
    maximum[present] = values[ends[present] - 1]
    return median, maximum


def classify_field(
    image: np.ndarray,
    channel_names: list[str],
    markers: list[str],
    dna_channel: str,
    cells: np.ndarray,
    nuclei: np.ndarray,
    settings: GroundTruthConfig,
) -> pd.DataFrame:
    """Marker measurements and the class of every cell of one field.

    `image` holds the stains and the markers, named by `channel_names`.
    """
    marker_stack = image[[channel_names.index(m) for m in markers]]
    dna = image[channel_names.index(dna_channel)]
    table = marker_table(marker_stack, markers, dna, cells, nuclei, settings.region)
    table[settings.column] = assign_classes(table, settings).to_numpy()
    return table
