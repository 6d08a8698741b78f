"""Plates of fields, whatever their source: microscope files on disk or the synthetic generator.

A plate is a list of fields, each made of one multi-channel file (TIFF or one position of an
ND2) or of one single-channel file per channel, found by one directory scan and named by a
scheme (`cellbench.io.naming`), plus a layout (well -> condition and other metadata). The
synthetic source writes X-YY-ZZ TIFFs and a layout under the results tree on first use, then
reads them like any folder.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cellbench.config import Config, CropsSource, FieldsSource, SyntheticSource
from cellbench.data.exclude import (
    exclusion_entries,
    split_crops,
    split_fields,
    summary,
    warn_unmatched,
)
from cellbench.data.fields import (
    Field,
    check_field_names,
    group_fields,
    has_images,
    image_folder,
    parse_images,
    plate_folder,
    where_plates_are,
)
from cellbench.errors import CellbenchError, NothingToDo
from cellbench.io.atomic import temporary_path
from cellbench.names import keep_valid
from cellbench.paths import ResultsPaths

LAYOUT_NAMES = ("layout.csv", "layout.xlsx")


@dataclass(frozen=True)
class Plate:
    """One plate: its folder, its fields (sorted by name) and its layout indexed by well."""

    name: str
    folder: Path
    fields: list[Field]
    layout: pd.DataFrame
    source: FieldsSource = field(repr=False)
    layout_report: dict = field(default_factory=dict)
    excluded: dict = field(default_factory=dict)  # left out by data.exclude (`exclude.summary`)

    def field_path(self, item: Field) -> Path:
        """The (first) file of a field."""
        return item.files[0]

    def well_metadata(self, well: str) -> dict[str, str]:
        """Layout values of a well (empty when the layout does not list it)."""
        if well not in self.layout.index:
            return {}
        return {k: v for k, v in self.layout.loc[well].to_dict().items() if pd.notna(v)}


def has_fields(config: Config) -> bool:
    """Whether the source gives whole fields (to segment and measure), not pre-cut crops."""
    return not isinstance(config.data.input, CropsSource)


def fields_source(config: Config) -> FieldsSource:
    """The folder source of the config; for a synthetic plate, the folder it is written to."""
    source = config.data.input
    if isinstance(source, FieldsSource):
        return source
    root = ResultsPaths(config.results_root).input_plate("x").parent
    return FieldsSource.model_construct(
        source="fields",
        root=root,
        plate_from="folder",
        plates=source.plate_names,
        scheme="xyyzz",
        suffixes=[".tif"],
        channel_map={},
        layout=None,
        z="max",
        t=0,
    )


def list_plates(config: Config) -> list[str]:
    """Names of the experiment's plates, from the config or one scan of the folder.

    A plate found on disk whose name is not a valid plate name (`cellbench.names`) is left
    out, with a warning naming it.

    Raises
    ------
    NothingToDo
        The input holds no plate; the message names the folder and the naming scheme.
    """
    source = config.data.input
    if isinstance(source, SyntheticSource):
        return source.plate_names
    if isinstance(source, CropsSource):
        from cellbench.data.precut import list_precut_plates

        return list_precut_plates(source)
    if source.plates is not None:
        return list(source.plates)
    if source.plate_from == "root":
        found = [source.root.name] if has_images(source, source.root) else []
    elif source.plate_from == "folder":
        found = [
            entry.name
            for entry in os.scandir(source.root)
            if entry.is_dir()
            and not entry.name.startswith(".")
            and has_images(source, Path(entry.path))
        ]
    else:
        found = [entry["plate"] for entry in parse_images(source, source.root)]
    found = sorted(set(found))
    plates = keep_valid("plate", found, str(source.root))
    if not plates:
        skipped = f" ({len(found)} skipped: not valid plate names)" if found else ""
        raise NothingToDo(f"no plate found in {source.root}{skipped}: {where_plates_are(source)}")
    return plates


def open_plate(config: Config, plate: str) -> Plate:
    """Open a plate (generating it first when the source is synthetic), less `data.exclude`.

    The fields that ``data.exclude`` names are left out here, so that every stage sees the
    same fields; how many is in ``Plate.excluded`` (empty when nothing is excluded).

    Raises
    ------
    NothingToDo
        The plate's folder does not exist, holds no image of the plate, or every field of it
        is excluded by ``data.exclude``.
    CellbenchError
        File names that do not follow the scheme (all listed), fields whose name is not a valid
        field name (`cellbench.names`; their files listed), or a bad layout.
    """
    source = config.data.input
    if isinstance(source, SyntheticSource):
        ensure_synthetic_plate(source, plate, ResultsPaths(config.results_root).input_plate(plate))
    folder_source, folder, fields = _scan_fields(config, plate)
    excluded: dict = {}
    entries = exclusion_entries(config.data.exclude)
    if entries:
        fields, left_out, matched = split_fields(plate, fields, entries)
        excluded = summary([f.name for f in left_out], [f.well for f in left_out])
        if isinstance(source, SyntheticSource):  # every synthetic plate has the same names
            mine = [e for e in entries if e.plate in (None, plate)]
            warn_unmatched(mine, matched, f"in plate {plate} (nor in any synthetic plate)")
        if not fields:
            raise NothingToDo(
                f"plate {plate!r}: data.exclude leaves out all {len(left_out)} field(s) of the "
                f"plate ({folder}); nothing to segment"
            )
    layout, report = _layout(folder_source, folder, {f.well for f in fields if f.well})
    return Plate(plate, folder, fields, layout, folder_source, report, excluded)


def _scan_fields(config: Config, plate: str) -> tuple[FieldsSource, Path, list[Field]]:
    """The folder source, the plate's folder and every field found in it (one scan)."""
    folder_source = fields_source(config)
    folder = plate_folder(folder_source, plate)
    images = image_folder(folder)
    if not images.is_dir():
        raise NothingToDo(
            f"plate {plate!r}: folder {folder} does not exist: {where_plates_are(folder_source)}"
        )
    entries = parse_images(folder_source, images)
    if folder_source.plate_from == "scheme":
        entries = [e for e in entries if e["plate"] == plate]
    if not entries:
        raise NothingToDo(
            f"plate {plate!r}: no image of the plate in {images}: {where_plates_are(folder_source)}"
        )
    return folder_source, folder, check_field_names(plate, group_fields(entries))


def check_exclusions(config: Config) -> list[str]:
    """The names of ``data.exclude`` that match nothing in any plate, warned about once.

    One scan of every plate (no image is read); synthetic plates not yet written and plates
    that cannot be opened are not looked at. Called when tasks are planned.
    """
    entries = exclusion_entries(config.data.exclude)
    if not entries:
        return []
    source = config.data.input
    matched: set[str] = set()
    if isinstance(source, CropsSource):
        from cellbench.data.precut import index_crops

        matched = split_crops(index_crops(source), entries)[1]
        return warn_unmatched(entries, matched, f"in the crops of {source.root}")
    for plate in list_plates(config):
        try:
            matched |= split_fields(plate, _scan_fields(config, plate)[2], entries)[2]
        except (NothingToDo, CellbenchError, OSError):
            if isinstance(source, SyntheticSource):
                return []  # a plate not written yet: its names are unknown
    return warn_unmatched(entries, matched, "in any plate")


def read_field(
    plate: Plate,
    item: Field,
    channels: list[str],
    nonfinite: Literal["fail", "zero"] = "fail",
    zeroed: dict[str, int] | None = None,
) -> np.ndarray:
    """Read the named channels of one field, in that order.

    Parameters
    ----------
    plate : Plate
    item : Field
        One of ``plate.fields``.
    channels : list of str
        Config channel names, in the order wanted.
    nonfinite : {"fail", "zero"}
        What to do with NaN or infinite pixels (float images only), the setting
        ``data.nonfinite``: ``fail`` refuses the field, ``zero`` sets them to 0. No such pixel
        ever leaves this function: one would become 65535 in the crop store, an infinite
        feature, or NaN plate statistics.
    zeroed : dict, optional
        With ``nonfinite="zero"``, receives the number of pixels set to 0 under the field's
        name (only when there were some), for the task's status.

    Returns
    -------
    (C, Y, X) ndarray
        Raw intensities in the file's dtype, every pixel finite.

    Raises
    ------
    CellbenchError
        A file cannot be read, a channel is not found, or (``nonfinite="fail"``) pixels are
        NaN or infinite; the message names the file (and the count of such pixels).
    """
    image, files = _read_channels(plate, item, channels)
    count = _replace_nonfinite(image, files, nonfinite)
    if count and zeroed is not None:
        zeroed[item.name] = count
    return image


def _read_channels(plate: Plate, item: Field, channels: list[str]) -> tuple[np.ndarray, list]:
    """The (C, Y, X) channels of a field and the file each channel comes from."""
    from cellbench.io.tiff import map_channels, read_channel_files, read_tiff

    source = plate.source
    if item.channels:  # one file per channel
        paths = []
        for name in channels:
            token = str(source.channel_map.get(name, name))
            if token not in item.channels:
                raise CellbenchError(
                    f"field {item.name} of plate {plate.name}: no file for channel {name!r} "
                    f"(token {token!r}); it has {list(item.channels)} ({item.files[0].parent})"
                )
            paths.append(item.files[item.channels.index(token)])
        return read_channel_files(paths, channels, z=source.z, t=source.t).image, paths
    path = item.files[0]
    if path.suffix.lower() == ".nd2":
        from cellbench.io.nd2 import read_nd2

        image = read_nd2(path, z=source.z, t=source.t)[item.position or 0]
    else:
        image = read_tiff(path, z=source.z, t=source.t)
    return map_channels(image, channels, source.channel_map or None), [path] * len(channels)


def _replace_nonfinite(image: np.ndarray, files: list, policy: str) -> int:
    """Refuse (``fail``) or set to 0 in place (``zero``) the NaN and infinite pixels.

    Returns the number of pixels set to 0. Integer images have none and cost nothing.
    """
    if image.dtype.kind != "f":
        return 0
    bad = ~np.isfinite(image)
    per_channel = bad.sum(axis=(1, 2))
    count = int(per_channel.sum())
    if count == 0:
        return 0
    if policy == "fail":
        named = sorted({str(files[c]) for c in np.flatnonzero(per_channel)})
        raise CellbenchError(
            f"{', '.join(named)}: {count} pixel(s) are NaN or infinite; fix the file, or set "
            "data.nonfinite: zero to set them to 0"
        )
    image[bad] = 0
    return count


def ensure_synthetic_plate(source: SyntheticSource, plate: str, folder: Path) -> None:
    """Generate a synthetic plate into `folder` unless it is already complete.

    The plate is written into a temporary folder and renamed into place, so a half-written
    plate is never mistaken for a finished one.
    """
    if (folder / "plate.json").exists():
        return
    from cellbench.data.coculture import write_coculture_plate
    from cellbench.data.synthetic import write_plate

    tmp = temporary_path(folder)
    common = {"plate": plate, "rows": source.rows, "columns": source.columns}
    common |= {"sites": source.sites, "field_shape": source.field_shape_px}
    common |= {"cells_per_field": source.cells_per_field, "seed": source.seed}
    try:
        if source.design == "coculture":
            write_coculture_plate(tmp, **common)
        else:
            write_plate(tmp, conditions=source.conditions, **common)
        if folder.exists():  # an incomplete plate from a killed run
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# --- finding fields ----------------------------------------------------------------------------
def _layout(source: FieldsSource, folder: Path, wells: set[str]) -> tuple[pd.DataFrame, dict]:
    """The plate's layout (empty without one) and how it compares with the imaged wells."""
    from cellbench.io.layout import check_layout, read_layout

    path = source.layout
    if path is None:
        path = next((folder / n for n in LAYOUT_NAMES if (folder / n).exists()), None)
    if path is None:
        return pd.DataFrame(index=pd.Index([], name="well")), {}
    layout = read_layout(path)
    return layout, check_layout(layout, wells, str(path)) if wells else {}
