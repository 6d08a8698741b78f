"""`data.exclude`: wells, fields and images left out by name, wherever plates are opened.

Every stage opens its plate through `cellbench.data.plates.open_plate` (or reads pre-cut crops
through `cellbench.crops.precut`), and both apply the same exclusions, so no task ever reads an
excluded field or crop. A name is matched against one kind (``wells``, ``fields``, ``images``)
or, read from ``file``, against all three; ``P1/name`` matches in plate ``P1`` only.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cellbench.config import ExcludeConfig
from cellbench.config.data import exclude_file_names
from cellbench.data.fields import Field, field_name
from cellbench.errors import CellbenchError
from cellbench.io.naming import well_name

log = logging.getLogger(__name__)

KINDS = ("well", "field", "image")
IMAGE_SUFFIXES = (".tif", ".tiff", ".npy", ".nd2", ".png", ".jpg")
_warned: set[str] = set()  # names already warned about


@dataclass(frozen=True)
class Entry:
    """One excluded name: as written, the plate it is restricted to, and the kinds it matches."""

    text: str  # as written in the config or file, for messages
    plate: str | None
    name: str
    kinds: tuple[str, ...]


def exclusion_entries(exclude: ExcludeConfig) -> list[Entry]:
    """Every name of `data.exclude`, the file's included (matched against every kind)."""
    listed = [
        *((text, ("well",)) for text in exclude.wells),
        *((text, ("field",)) for text in exclude.fields),
        *((text, ("image",)) for text in exclude.images),
        *((text, KINDS) for text in (_file_names(exclude.file) if exclude.file else [])),
    ]
    entries = []
    for text, kinds in listed:
        plate, _, name = text.rpartition("/")
        entries.append(Entry(text, plate or None, name, kinds))
    return entries


def file_names(exclude: ExcludeConfig) -> list[str]:
    """The names of ``data.exclude.file`` (empty without one), for the task hash."""
    return _file_names(exclude.file) if exclude.file else []


def _file_names(path: Path) -> list[str]:
    stat = path.stat()
    return list(_cached_file_names(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _cached_file_names(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    return tuple(exclude_file_names(Path(path)))


def item_keys(well: str, name: str, images: Iterable[str]) -> dict[str, set[str]]:
    """The names one field (or crop) answers to, by kind: its well, field name and images.

    Images answer by file name and by stem, so ``x.tif`` and ``x`` both match ``x.tif``.
    """
    image_keys = set()
    for image in images:
        image_keys |= {image, _stem(image)}
    return {"well": {well} if well else set(), "field": {name}, "image": image_keys}


def matching(entries: list[Entry], plate: str, keys: dict[str, set[str]]) -> list[Entry]:
    """The entries that match an item of `plate` with these `keys` (from `item_keys`)."""
    found = []
    for entry in entries:
        if entry.plate is not None and entry.plate != plate:
            continue
        if any(_candidate(entry.name, kind) & keys[kind] for kind in entry.kinds):
            found.append(entry)
    return found


def _candidate(name: str, kind: str) -> set[str]:
    """The forms of a listed name compared with an item's keys of `kind`."""
    if kind == "well":
        try:
            return {well_name({"well": name})}
        except CellbenchError:  # not a well name: matches no well (and is warned about)
            return {name}
    if kind == "image":
        return {name, _stem(name)}
    return {name}


def _stem(name: str) -> str:
    stem, suffix = os.path.splitext(name)
    return stem if suffix.lower() in IMAGE_SUFFIXES else name


def split_fields(
    plate: str, fields: list[Field], entries: list[Entry]
) -> tuple[list[Field], list[Field], set[str]]:
    """Fields kept, fields excluded, and the texts of the entries that matched one.

    Parameters
    ----------
    plate : str
    fields : list of Field
        Every field of the plate.
    entries : list of Entry
        From `exclusion_entries`.
    """
    kept, excluded, matched = [], [], set()
    for item in fields:
        keys = item_keys(item.well, item.name, (p.name for p in item.files))
        hits = matching(entries, plate, keys)
        (excluded if hits else kept).append(item)
        matched |= {entry.text for entry in hits}
    return kept, excluded, matched


def split_crops(index: pd.DataFrame, entries: list[Entry]) -> tuple[pd.Series, set[str]]:
    """Mark the pre-cut crops of an index (`cellbench.data.precut.index_crops`) to leave out.

    A crop answers to its well, its field (well and site, as cellbench names fields), its
    file name, its stem and the ``image`` it was cut from (with or without ``.tif``).

    Returns
    -------
    excluded : Series of bool
        Aligned with `index`, True for a crop to leave out.
    matched : set of str
        Texts of the entries that matched a crop.
    """
    excluded, matched = [], set()
    for row in index.itertuples(index=False):
        well = str(getattr(row, "well", "") or "")
        site = str(getattr(row, "site", "") or "")
        images = [Path(row.path).name, row.cell_id]
        image = getattr(row, "image", None)
        if image:
            images += [str(image), f"{image}.tif"]
        keys = item_keys(well, field_name(well, site) if well else "", images)
        hits = matching(entries, str(row.plate), keys)
        excluded.append(bool(hits))
        matched |= {entry.text for entry in hits}
    return pd.Series(excluded, index=index.index, dtype=bool), matched


def summary(fields: list[str], wells: Iterable[str], **more: int) -> dict:
    """The ``excluded`` entry of a task's status: how many fields, in which wells."""
    return {"fields": len(set(fields)), "wells": sorted({w for w in wells if w}), **more}


def warn_unmatched(entries: list[Entry], matched: set[str], where: str) -> list[str]:
    """Warn about entries that matched nothing (each once per process); return their texts."""
    unmatched = sorted({entry.text for entry in entries} - matched)
    new = [text for text in unmatched if text not in _warned]
    if new:
        _warned.update(new)
        shown = ", ".join(new[:20]) + (" ..." if len(new) > 20 else "")
        log.warning(
            "data.exclude: %d name(s) match no well, field or image %s: %s", len(new), where, shown
        )
    return unmatched
