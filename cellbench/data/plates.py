"""Plates of fields, whatever their source: a folder on disk or the synthetic generator.

A plate folder holds ``fields/X-YY-ZZ.tif`` (one (C, Y, X) TIFF per field) and ``layout.csv``
(well -> condition and other metadata). The synthetic source writes exactly that layout under
the results tree on first use, so every stage reads real files either way.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.config import Config, CropsSource, FieldsSource, SyntheticSource
from cellbench.errors import CellbenchError, InputMissing
from cellbench.io.atomic import temporary_path
from cellbench.io.layout import read_layout_csv
from cellbench.io.naming import FieldName, parse_many_xyyzz
from cellbench.io.tiff import read_multichannel_tiff, select_channels
from cellbench.paths import ResultsPaths

FIELD_SUFFIX = ".tif"


@dataclass(frozen=True)
class Plate:
    """One plate: its folder, its fields (sorted) and its layout indexed by well."""

    name: str
    folder: Path
    fields: list[FieldName]
    layout: pd.DataFrame

    def field_path(self, field: FieldName) -> Path:
        """Path of a field's TIFF."""
        return self.folder / "fields" / f"{field.xyyzz}{FIELD_SUFFIX}"

    def well_metadata(self, well: str) -> dict[str, str]:
        """Layout values of a well (empty when the layout does not list it)."""
        if well not in self.layout.index:
            return {}
        return self.layout.loc[well].to_dict()


def list_plates(config: Config) -> list[str]:
    """Names of the experiment's plates, without reading any image."""
    source = config.data.input
    if isinstance(source, SyntheticSource):
        return source.plate_names
    if isinstance(source, CropsSource):
        from cellbench.data.precut import list_precut_plates

        return list_precut_plates(source)
    if source.plates is not None:
        return list(source.plates)
    return sorted(p.name for p in source.root.iterdir() if (p / "fields").is_dir())


def has_fields(config: Config) -> bool:
    """Whether the source gives whole fields (to segment and measure), not pre-cut crops."""
    return not isinstance(config.data.input, CropsSource)


def plate_folder(config: Config, plate: str) -> Path:
    """Folder of a plate (for a synthetic source, where it is or will be generated)."""
    source = config.data.input
    if isinstance(source, FieldsSource):
        return source.root / plate
    return ResultsPaths(config.results_root).input_plate(plate)


def open_plate(config: Config, plate: str) -> Plate:
    """Open a plate, generating it first when the source is synthetic and it is not there yet.

    Raises
    ------
    InputMissing
        The plate folder or its fields are absent.
    CellbenchError
        A field name does not follow the X-YY-ZZ scheme (all bad names listed).
    """
    source = config.data.input
    folder = plate_folder(config, plate)
    if isinstance(source, SyntheticSource):
        ensure_synthetic_plate(source, plate, folder)
    field_dir = folder / "fields"
    if not field_dir.is_dir():
        raise InputMissing(f"{field_dir}: plate {plate!r} has no fields folder")
    stems = sorted(
        p.name[: -len(FIELD_SUFFIX)]
        for p in os.scandir(field_dir)
        if p.name.endswith(FIELD_SUFFIX) and not p.name.startswith(".")
    )
    if not stems:
        raise InputMissing(f"{field_dir}: no {FIELD_SUFFIX} fields")
    fields = sorted(parse_many_xyyzz(stems))
    layout = read_layout_csv(folder / "layout.csv")
    return Plate(name=plate, folder=folder, fields=fields, layout=layout)


def read_field(plate: Plate, field: FieldName, channels: list[str]) -> np.ndarray:
    """Read the named channels of one field, in that order.

    Returns
    -------
    (C, Y, X) ndarray
        Raw intensities in the file's dtype (uint16 for microscopy).
    """
    path = plate.field_path(field)
    image, names = read_multichannel_tiff(path)
    if names is None:
        raise CellbenchError(
            f"{path}: the file does not name its channels; cannot select {channels} by name"
        )
    return select_channels(image, names, channels, path)


def ensure_synthetic_plate(source: SyntheticSource, plate: str, folder: Path) -> None:
    """Generate a synthetic plate into `folder` unless it is already complete.

    The plate is written into a temporary folder and renamed into place, so a half-written
    plate is never mistaken for a finished one.
    """
    if (folder / "plate.json").exists():
        return
    from cellbench.data.synthetic import write_plate

    tmp = temporary_path(folder)
    try:
        write_plate(
            tmp,
            plate=plate,
            rows=source.rows,
            columns=source.columns,
            sites=source.sites,
            field_shape=source.field_shape_px,
            cells_per_field=source.cells_per_field,
            conditions=source.conditions,
            seed=source.seed,
        )
        if folder.exists():  # an incomplete plate from a killed run
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
