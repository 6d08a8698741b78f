"""What a model reads: labelled cells with their features, crops, or both, in one order.

Feature tables (``features/<plate>.parquet``) and crop stores (``crops/<plate>.h5``) share
the cell ids ``<plate>_<field>_<label>``; a model that reads both (fusion, CP2Image) keeps
the cells found in both. Cells without a class (null, or empty: a well the layout does not
list), or of class ``undefined`` (ground truth that no rule decided), are left out: they are
never trained on nor scored; the unlabelled ones are counted (`ModelData.unlabelled_dropped`).
Infinite feature values (a division by zero) become NaN here, so every model imputes them
like an undefined feature.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from cellbench.crops.dataset import CropDataset
from cellbench.crops.store import read_cells
from cellbench.errors import InputMissing
from cellbench.features.measure import METADATA_PREFIX, metadata_column
from cellbench.features.select import select_columns
from cellbench.ground_truth import UNDEFINED

log = logging.getLogger(__name__)

CELL_ID = metadata_column("cell_id")


@dataclass
class ModelData:
    """The labelled cells a model sees, one row per cell in every attribute.

    Attributes
    ----------
    cells : DataFrame
        ``Metadata_`` columns (cell id, plate, well, ..., the class).
    labels : (N,) ndarray of str
    features : (N, F) float32 ndarray or None
        Handcrafted features (NaN where undefined, infinite values included).
    feature_names : list of str
    crops : (N, C, S, S) float32 ndarray or None
        Crops scaled per plate and channel to [0, 1] (the store's plate statistics).
    unlabelled_dropped : int
        Cells left out because their class is null or empty.
    """

    cells: pd.DataFrame
    labels: np.ndarray
    features: np.ndarray | None = None
    feature_names: list[str] | None = None
    crops: np.ndarray | None = None
    unlabelled_dropped: int = 0


def load_model_data(
    params, label_column: str, feature_tables: list[Path], crop_stores: list[Path]
) -> ModelData:
    """Load what `params` (a model config) reads, for the labelled cells.

    Raises
    ------
    InputMissing
        No feature table or crop store where the model needs one, or no labelled cell.
    """
    label = metadata_column(label_column)
    tables = []
    if params.reads_features:
        if not feature_tables:
            raise InputMissing("no feature table: run the features stage first")
        table = pd.concat([pd.read_parquet(p) for p in feature_tables], ignore_index=True)
        tables.append(table)
    if params.reads_crops:
        if not crop_stores:
            raise InputMissing("no crop store: run the crop stage first")
        tables.append(_crop_cells(crop_stores))
    table = tables[0]
    if len(tables) == 2:  # fusion: the cells that have both
        keep = tables[1][[CELL_ID, "_crop_index"]]
        table = table.merge(keep, on=CELL_ID, how="inner")
    if label not in table.columns:
        raise InputMissing(f"the cells have no {label!r} column (data.label_column)")
    unlabelled = _unlabelled(table[label])
    if unlabelled.any():
        log.warning(
            "%s: %d cell(s) without a %s (e.g. of wells not in the layout) left out",
            params.name,
            int(unlabelled.sum()),
            label_column,
        )
    table = table[~unlabelled & (table[label].astype(str) != UNDEFINED)]
    table = table.reset_index(drop=True)
    if table.empty:
        raise InputMissing(f"no cell with a class in {label!r}")
    metadata = [c for c in table.columns if c.startswith(METADATA_PREFIX)]
    data = ModelData(cells=table[metadata].copy(), labels=table[label].astype(str).to_numpy())
    data.unlabelled_dropped = int(unlabelled.sum())
    if params.reads_features:
        names = select_columns(table.columns, params.feature_groups, params.feature_regions)
        data.feature_names = names
        data.features = _finite_or_nan(table[names].to_numpy(dtype=np.float32))
    if params.reads_crops:
        data.crops = read_crop_rows(
            crop_stores, params.crop_kind, table["_crop_index"].to_numpy(), params.size_px
        )
    log.info(
        "%s: %d labelled cells, %s features, crops %s",
        params.name,
        len(table),
        len(data.feature_names or []),
        None if data.crops is None else data.crops.shape[1:],
    )
    return data


def _unlabelled(labels: pd.Series) -> np.ndarray:
    """Whether each cell has no class: null (feature tables, `read_cells`) or ``""``."""
    return (labels.isna() | (labels.astype(str).str.strip() == "")).to_numpy()


def _finite_or_nan(features: np.ndarray) -> np.ndarray:
    """`features` with ±inf replaced by NaN (in place), so models impute them."""
    infinite = np.isinf(features)
    if infinite.any():
        log.info("%d infinite feature value(s) treated as undefined (NaN)", int(infinite.sum()))
        features[infinite] = np.nan
    return features


def _crop_cells(stores: list[Path]) -> pd.DataFrame:
    """The `/cells` tables of every store as ``Metadata_`` columns, with a running index."""
    frames = []
    for path in stores:
        cells = read_cells(path)
        frames.append(cells.rename(columns={c: metadata_column(c) for c in cells.columns}))
    table = pd.concat(frames, ignore_index=True)
    table["_crop_index"] = np.arange(len(table))
    return table


def read_crop_rows(stores: list[Path], kind: str, rows: np.ndarray, size_px: int) -> np.ndarray:
    """Crops of `kind` at running indices `rows` (stores concatenated), as float32 (N, C, S, S).

    Scaled to [0, 1] by the plate's statistics, so intensity differences between cells of
    a plate survive (a per-crop scaling would erase them).
    """
    dataset = CropDataset(stores, kind, label_column=None, normalise="plate", size_px=size_px)
    loader = DataLoader(torch.utils.data.Subset(dataset, rows.tolist()), batch_size=256)
    return torch.cat([images for images, _, _ in loader]).numpy()
