"""Crops that arrive already cut: one file per cell, named by a scheme, joined to metadata.

BBBC021's single-cell crops are named ``{well}_{site}_{DAPI file stem}_{cell}.npy``; the image
table gives each one its plate, compound and concentration, the MoA table its mechanism of
action. The index of every crop (file, parsed name, joined metadata) is built from one
directory scan and cached per process.
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import pandas as pd
import tifffile

from cellbench.config import CropsSource, ExcludeConfig
from cellbench.data.exclude import exclusion_entries, split_crops, summary
from cellbench.data.fields import field_name
from cellbench.errors import CellbenchError, NothingToDo
from cellbench.io.naming import parse_with_scheme
from cellbench.io.tables import join_table
from cellbench.names import keep_valid

DEFAULT_PLATE = "all"  # plate of crops whose name and metadata give none


def index_crops(source: CropsSource) -> pd.DataFrame:
    """One row per crop file: ``path``, ``cell_id``, the named groups, the joined columns.

    Raises
    ------
    CellbenchError
        Names that do not follow the scheme, or crops that no metadata row matches, listed by
        name, unless ``allow_unmatched`` is set (then they are left out).
    """
    return _cached_index(source.model_dump_json()).copy()


def plate_crops(source: CropsSource, exclude: ExcludeConfig, plate: str) -> pd.DataFrame:
    """The index rows of one plate's crops, less those ``data.exclude`` names.

    ``attrs["excluded"]`` holds the exclusion summary for the task's status (``crops``,
    ``fields`` and ``wells`` left out), empty when nothing is excluded.

    Raises
    ------
    NothingToDo
        Every crop of the plate is excluded.
    """
    index = index_crops(source)
    rows = index[index["plate"] == plate].reset_index(drop=True)
    entries = exclusion_entries(exclude)
    if not entries:
        rows.attrs["excluded"] = {}
        return rows
    drop = split_crops(rows, entries)[0]
    left_out = rows[drop]
    wells = left_out["well"].astype(str).tolist() if "well" in left_out else []
    sites = left_out["site"].astype(str).tolist() if "site" in left_out else [""] * len(wells)
    fields = [field_name(well, site) for well, site in zip(wells, sites, strict=True)]
    kept = rows[~drop].reset_index(drop=True)
    kept.attrs["excluded"] = summary(fields, wells, crops=int(drop.sum()))
    if kept.empty and not rows.empty:
        raise NothingToDo(
            f"plate {plate!r}: data.exclude leaves out all {len(rows)} crop(s) of the plate"
        )
    return kept


def list_precut_plates(source: CropsSource) -> list[str]:
    """The plates of a pre-cut source (one crop store each).

    A plate whose name is not a valid plate name (`cellbench.names`) is left out, with a
    warning naming it.

    Raises
    ------
    NothingToDo
        No crop file, or no plate with a valid name; the message names the folder.
    """
    found = sorted(index_crops(source)["plate"].unique())
    plates = keep_valid("plate", found, f"{source.root} (pre-cut crops)")
    if not plates:
        raise NothingToDo(
            f"no plate found in {source.root}: {len(found)} plate name(s) of the crops, none "
            "of them a valid plate name (see the warning)"
        )
    return plates


@functools.lru_cache(maxsize=4)
def _cached_index(source_json: str) -> pd.DataFrame:
    source = CropsSource.model_validate(json.loads(source_json))
    names = sorted(
        entry.name[: -len(source.suffix)]
        for entry in os.scandir(source.root)
        if entry.name.endswith(source.suffix) and not entry.name.startswith(".")
    )
    if not names:
        raise NothingToDo(
            f"no plate found in {source.root}: no crop file ({source.suffix}) in it; pre-cut "
            f"crops are one file per cell named by scheme {source.scheme!r}, the plate from "
            "the scheme's 'plate' group or a joined table; see data.input.suffix and scheme"
        )
    parsed, bad_names = parse_with_scheme(names, source.scheme)
    frame = pd.DataFrame(parsed)
    suffix = source.suffix
    unmatched = [f"{name}{suffix} (name does not follow {source.scheme!r})" for name in bad_names]
    for join in source.joins:
        frame, matched = join_table(frame, join.table, join.keys, join.columns)
        lost = frame.loc[~matched, "name"]
        unmatched += [f"{name}{suffix} (no row in {join.table.name})" for name in lost]
        frame = frame[matched.to_numpy()].reset_index(drop=True)
    if unmatched and not source.allow_unmatched:
        shown = "\n  ".join(unmatched[:20])
        more = f"\n  ... and {len(unmatched) - 20} more" if len(unmatched) > 20 else ""
        raise CellbenchError(
            f"{source.root}: {len(unmatched)} crop(s) do not match (set allow_unmatched: true "
            f"to leave them out):\n  {shown}{more}"
        )
    if frame.empty:
        raise NothingToDo(
            f"no plate found in {source.root}: none of its {len(names)} crop(s) matched scheme "
            f"{source.scheme!r} and the metadata (all left out by allow_unmatched)"
        )
    frame["path"] = [str(source.root / f"{name}{source.suffix}") for name in frame["name"]]
    frame["cell_id"] = frame.pop("name")
    if "plate" not in frame.columns:
        frame["plate"] = DEFAULT_PLATE
    frame.attrs["unmatched"] = unmatched
    return frame


def read_precut(paths: list[str], axes: str) -> np.ndarray:
    """Read crop files into one (N, C, S, S) uint16 array.

    Raises
    ------
    CellbenchError
        Unreadable files, or crops whose shape or dtype differs from the first, named.
    """
    crops, unreadable = [], []
    for path in paths:
        try:
            if path.endswith(".npy"):
                array = np.load(path, allow_pickle=False)
            else:
                array = tifffile.imread(path)
            crops.append(_to_cyx(array, axes))
        except (OSError, ValueError, tifffile.TiffFileError) as exc:
            unreadable.append(f"{path}: {exc}")
    if unreadable:
        raise CellbenchError("unreadable crop file(s):\n  " + "\n  ".join(unreadable[:20]))
    first = crops[0]
    odd = [
        path
        for path, crop in zip(paths, crops, strict=True)
        if crop.shape != first.shape or crop.dtype != first.dtype
    ]
    if odd:
        raise CellbenchError(
            f"crops differ in shape or dtype from {paths[0]} ({first.shape}, {first.dtype}): "
            f"{odd[:20]}"
        )
    if first.dtype not in (np.uint8, np.uint16):
        raise CellbenchError(f"{paths[0]}: crops must be uint8 or uint16 images, got {first.dtype}")
    return np.stack(crops).astype(np.uint16)


def _to_cyx(array: np.ndarray, axes: str) -> np.ndarray:
    """Reorder a crop's axes to (C, Y, X)."""
    if array.ndim != len(axes):
        raise ValueError(f"expected axes {axes}, got shape {array.shape}")
    if axes == "YX":
        return array[np.newaxis]
    if axes == "YXC":
        return np.moveaxis(array, -1, 0)
    return array
