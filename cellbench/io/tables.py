"""Join metadata tables onto per-cell or per-image rows, with keys matched by value."""

from __future__ import annotations

import string
from pathlib import Path

import pandas as pd

from cellbench.errors import CellbenchError


def normalise_key(value: object) -> str:
    """A join key as text, numbers by value: ``"0.3"``, ``"0.300000"`` and 0.3 all give ``0.3``."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return repr(number)


def key_values(frame: pd.DataFrame, key: str) -> pd.Series:
    """The values of `key` in `frame`: a column, or a ``{column}`` template filled per row."""
    parts = list(string.Formatter().parse(key))
    fields = [name for _, name, _, _ in parts if name]
    if not fields:
        if key not in frame.columns:
            raise CellbenchError(f"join key {key!r} is not a column; have {list(frame.columns)}")
        return frame[key].map(normalise_key)
    missing = [name for name in fields if name not in frame.columns]
    if missing:
        raise CellbenchError(f"join key {key!r} uses unknown column(s) {missing}")
    text = pd.Series("", index=frame.index)
    for literal, name, _, _ in parts:
        text = text + literal
        if name:
            text = text + frame[name].astype(str)
    return text.map(normalise_key)


def join_table(
    frame: pd.DataFrame, table_path: Path, keys: dict[str, str], columns: dict[str, str]
) -> tuple[pd.DataFrame, pd.Series]:
    """Left-join the `columns` of a CSV table onto `frame` by `keys`.

    Parameters
    ----------
    frame : DataFrame
        The rows to annotate.
    table_path : Path
        A CSV file.
    keys : dict
        Our column or ``{template}`` -> the table's column.
    columns : dict
        The table's column -> its name in the result.

    Returns
    -------
    joined : DataFrame
        `frame` with the new columns (NaN where no row matched).
    matched : Series of bool
        Whether each row found its table row.

    Raises
    ------
    CellbenchError
        A column is missing from the table, or a key matches several table rows.
    """
    table = pd.read_csv(table_path, dtype=str)
    needed = [*keys.values(), *columns]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise CellbenchError(f"{table_path}: no column(s) {missing}; it has {list(table.columns)}")
    left = pd.DataFrame({f"_key{i}": key_values(frame, k) for i, k in enumerate(keys)})
    right = pd.DataFrame(
        {f"_key{i}": table[c].map(normalise_key) for i, c in enumerate(keys.values())}
    )
    right[list(columns.values())] = table[list(columns)].to_numpy()
    key_columns = list(left.columns)
    duplicated = right.duplicated(key_columns, keep=False)
    if duplicated.any():
        examples = right.loc[duplicated, key_columns].head(3).to_dict("records")
        raise CellbenchError(f"{table_path}: several rows share the join key, e.g. {examples}")
    merged = left.merge(right, on=key_columns, how="left", indicator=True)
    joined = frame.copy()
    for name in columns.values():
        joined[name] = merged[name].to_numpy()
    return joined, pd.Series((merged["_merge"] == "both").to_numpy(), index=frame.index)
