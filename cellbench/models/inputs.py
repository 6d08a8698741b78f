"""What a model reads: labelled cells with their features, crops, or both, in one order.

Feature tables (``features/<plate>.parquet``) and crop stores (``crops/<plate>.h5``) share
the cell ids ``<plate>_<field>_<label>``; a model that reads both (fusion, CP2Image) keeps
the cells found in both. Cells without a class (null, or empty: a well the layout does not
list), or of class ``undefined`` (ground truth that no rule decided), are left out: they are
never trained on nor scored; the unlabelled ones are counted (`ModelData.unlabelled_dropped`).
Infinite feature values (a division by zero) become NaN here, so every model imputes them
like an undefined feature. Crops are not read here: `ModelData.crops` names them
(`cellbench.models.crop_rows.CropRows`), and each model reads them a batch at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cellbench.config import SplitConfig
from cellbench.crops.store import read_cells
from cellbench.errors import ConfigError, InputMissing
from cellbench.features.measure import METADATA_PREFIX, metadata_column
from cellbench.features.select import pick_columns, select_columns
from cellbench.ground_truth import UNDEFINED
from cellbench.splits import coculture_labels

if TYPE_CHECKING:  # imported where crops are read: a model on features never loads torch
    from cellbench.models.crop_rows import CropRows

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
    crops : CropRows or None
        (N, C, S, S) float32 crops scaled per plate and channel to [0, 1] (the store's plate
        statistics), unread: ``crops.dataset()`` streams them, ``crops[mask]`` selects cells.
        An (N, C, S, S) array given here is wrapped in a `CropRows`.
    unlabelled_dropped : int
        Cells left out because their class is null or empty.
    undefined_dropped : int
        Cells left out because their class is ``undefined`` (no marker rule decided); with the
        co-culture split, these are the co-culture cells the markers leave undefined.
    """

    cells: pd.DataFrame
    labels: np.ndarray
    features: np.ndarray | None = None
    feature_names: list[str] | None = None
    crops: CropRows | None = None
    unlabelled_dropped: int = 0
    undefined_dropped: int = 0

    def __post_init__(self) -> None:
        if self.crops is not None:
            from cellbench.models.crop_rows import as_crop_rows

            self.crops = as_crop_rows(self.crops)


def load_model_data(
    params,
    label_column: str,
    feature_tables: list[Path],
    crop_stores: list[Path],
    *,
    split: SplitConfig | None = None,
) -> ModelData:
    """Load what `params` (a model config) reads, for the labelled cells.

    With the co-culture split (``split.by: coculture``), the class of a co-culture cell is
    its marker ground truth (``split.test_label_column``), that of any other cell its
    `label_column` (`cellbench.splits.coculture_labels`).

    Raises
    ------
    InputMissing
        No feature table or crop store where the model needs one, or no labelled cell.
    ConfigError
        The co-culture split names a column the cells do not have.
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
    classes = table[label]  # the layout's culture column stays as it is
    if split is not None and split.by == "coculture":
        classes = _coculture_labels(table, label, split)
    table = table.assign(_class=classes)
    unlabelled = _unlabelled(table["_class"])
    if unlabelled.any():
        log.warning(
            "%s: %d cell(s) without a %s (e.g. of wells not in the layout) left out",
            params.name,
            int(unlabelled.sum()),
            label_column,
        )
    undefined = table["_class"].astype(str).to_numpy() == UNDEFINED
    if undefined.any():
        n_undefined = int(undefined.sum())
        log.info("%s: %d cell(s) of class %s left out", params.name, n_undefined, UNDEFINED)
    table = table[~unlabelled & ~undefined]
    table = table.reset_index(drop=True)
    if table.empty:
        raise InputMissing(f"no cell with a class in {label!r}")
    metadata = [c for c in table.columns if c.startswith(METADATA_PREFIX)]
    data = ModelData(cells=table[metadata].copy(), labels=table["_class"].astype(str).to_numpy())
    data.unlabelled_dropped = int(unlabelled.sum())
    data.undefined_dropped = int(undefined.sum())
    if params.reads_features:
        names = _feature_names(params, table.columns)
        data.feature_names = names
        data.features = _finite_or_nan(table[names].to_numpy(dtype=np.float32))
    if params.reads_crops:
        from cellbench.models.crop_rows import CropRows

        data.crops = CropRows.from_stores(
            crop_stores,
            params.crop_kind,
            params.size_px,
            table["_crop_index"].to_numpy(),
            normalise=getattr(params, "normalise", "plate"),
        )
    log.info(
        "%s: %d labelled cells, %s features, crops %s",
        params.name,
        len(table),
        len(data.feature_names or []),
        None if data.crops is None else data.crops.shape[1:],  # known without reading
    )
    return data


def _coculture_labels(table: pd.DataFrame, label: str, split: SplitConfig) -> pd.Series:
    """`table`'s classes under the co-culture split (markers in co-culture wells)."""
    columns = {"culture_column": split.culture_column, "test_label_column": split.test_label_column}
    for key, name in columns.items():
        if metadata_column(name) not in table.columns:
            raise ConfigError(
                f"split.{key}: the cells have no {metadata_column(name)!r} column for "
                f"{name!r}; {key} must name a layout column (culture_column) or the "
                "ground_truth.column (test_label_column) of this experiment"
            )
    return coculture_labels(
        table[label],
        table[metadata_column(split.culture_column)],
        table[metadata_column(split.test_label_column)],
        split.coculture_value,
    )


def _feature_names(params, columns) -> list[str]:
    """The model's feature columns: exactly `feature_columns`, else by group and region."""
    exact = getattr(params, "feature_columns", None)
    if exact is not None:
        try:
            return pick_columns(columns, exact, key=f"models.{params.name}.feature_columns")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return select_columns(columns, params.feature_groups, params.feature_regions)


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
