"""The background-confound study on the pipeline's own crops: pairwise SVMs per experiment.

For every experiment kind of the crop stores (``bg_original`` = base, ``bg_masked`` = mask,
``bg_swap_same`` = same, ``bg_swap_diff`` = diff, ``bg_cell_free`` = batch) the crops are
flattened (resized to ``size_px``), standardised and reduced by PCA (unsupervised, on all
crops of the experiment), and the study's protocol is run on them
(`cellbench.evaluate.pairwise.pairwise_svm_accuracy`): for every pair of classes, the
cross-validated accuracy of a linear SVM telling them apart. For the swap experiments
(diff, batch) the rows are split by the class of the background's donor, as the published
tables are. The CSVs have the published format, so `cellbench.report.background_swap`
builds Table 1 and Figure 2 from them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from cellbench.config.crop_kinds import BACKGROUND_ORIGINAL, background_kind
from cellbench.crops.store import read_cells, read_crops
from cellbench.evaluate.pairwise import pairwise_svm_accuracy, write_pairwise_csv
from cellbench.models.crop_pixels import flatten_crops

log = logging.getLogger(__name__)

# The published name of each experiment -> its store kind.
EXPERIMENT_KINDS = {
    name: background_kind(experiment)
    for name, experiment in {
        "base": BACKGROUND_ORIGINAL,
        "mask": "masked",
        "same": "swap_same",
        "diff": "swap_diff",
        "batch": "cell_free",
    }.items()
}
DONOR_COLUMNS = {"diff": "donor_swap_diff", "batch": "donor_cell_free"}


def crop_representation(crops: np.ndarray, size_px: int, components: int, seed: int) -> np.ndarray:
    """(N, C, S, S) crops -> (N, K) standardised PCA components of the flattened crops."""
    flat = StandardScaler().fit_transform(flatten_crops(crops.astype(np.float32), size_px))
    k = max(1, min(components, flat.shape[0] - 1, flat.shape[1]))
    return PCA(k, random_state=seed).fit_transform(flat)


def donor_classes(cells: pd.DataFrame, column: str, label_column: str) -> np.ndarray:
    """The class of each cell's background donor ('' where it has none).

    A swap donor is a cell (its id); a cell-free donor is a window of a field
    (``<field>@(y,x)``), whose class is the most frequent class of that field's cells.
    """
    donors = cells[column].astype(str)
    by_cell = dict(zip(cells["cell_id"].astype(str), cells[label_column].astype(str), strict=True))
    field_class = (
        cells.groupby(cells["store"].astype(str) + "/" + cells["field"].astype(str))[label_column]
        .agg(lambda values: values.astype(str).value_counts().index[0])
        .to_dict()
        if "field" in cells
        else {}
    )
    fields = cells["store"].astype(str) + "/" + donors.str.split("@").str[0]
    return np.array(
        [
            by_cell.get(donor) or field_class.get(field, "")
            for donor, field in zip(donors, fields, strict=True)
        ],
        dtype=object,
    )


def experiment_inputs(
    stores: list[Path],
    label_column: str,
    *,
    size_px: int = 16,
    components: int = 50,
    seed: int = 0,
) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """Per experiment kind the stores hold: (experiment, features, labels, backgrounds).

    Features are `crop_representation` of the experiment's crops; for the swap experiments
    (diff, batch) only the cells with a donor class are kept, and backgrounds is its class.
    """
    frames = []
    for k, store in enumerate(stores):
        cells = read_cells(store)
        frames.append(cells.assign(store=k))
    cells = pd.concat(frames, ignore_index=True)
    labels = cells[label_column].astype(str).to_numpy()
    for experiment, kind in EXPERIMENT_KINDS.items():
        try:
            crops = np.concatenate([read_crops(store, kind)[0] for store in stores])
        except KeyError:
            continue  # the experiment was not configured
        features = crop_representation(crops, size_px, components, seed)
        keep = np.ones(len(cells), bool)
        backgrounds = None
        if experiment in DONOR_COLUMNS:
            backgrounds = donor_classes(cells, DONOR_COLUMNS[experiment], label_column)
            keep = backgrounds != ""
            backgrounds = backgrounds[keep]
        yield experiment, features[keep], labels[keep], backgrounds


def background_study(
    stores: list[Path],
    label_column: str,
    out_dir: Path,
    *,
    size_px: int = 16,
    components: int = 50,
    folds: int = 5,
    max_per_class: int | None = 1000,
    seed: int = 0,
) -> dict[str, Path]:
    """Write ``results_<experiment>.csv`` for every experiment kind the stores hold.

    Returns
    -------
    dict
        experiment -> CSV written.
    """
    written = {}
    inputs = experiment_inputs(
        stores, label_column, size_px=size_px, components=components, seed=seed
    )
    for experiment, features, labels, backgrounds in inputs:
        table = pairwise_svm_accuracy(
            features, labels, backgrounds, folds=folds, seed=seed, max_per_class=max_per_class
        )
        written[experiment] = write_pairwise_csv(table, out_dir / f"results_{experiment}.csv")
        log.info("background study %s: %d pair rows", experiment, len(table))
    return written
