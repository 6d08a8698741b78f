"""The data section of the experiment schema: where the fields come from.

A source is synthetic plates, microscope fields on disk or pre-cut crops; `DataConfig` adds the
channels, the label column and what to do with non-finite pixels.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, Tag, field_validator

from cellbench.config.base import StrictModel, _tag, name_type

DATA_ENV_VAR = "CELLBENCH_DATA"
PlateName = name_type("plate")


def default_data_root() -> Path:
    """Return the folder of shared real data: `$CELLBENCH_DATA`, else `../shared/data`."""
    if os.environ.get(DATA_ENV_VAR):
        return Path(os.environ[DATA_ENV_VAR])
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


class SyntheticSource(StrictModel):
    """A synthetic plate made from a seed (`cellbench.data.synthetic`): known cells and classes."""

    source: Literal["synthetic"] = "synthetic"
    plates: int = Field(2, ge=1, description="number of plates, named P1, P2, ...")
    rows: str = Field("AB", pattern=r"^[A-P]+$", description="row letters of each plate")
    columns: list[Annotated[int, Field(ge=1, le=24)]] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5, 6], min_length=1
    )
    sites: int = Field(3, ge=1, le=99, description="fields per well")
    field_shape_px: tuple[int, int] = (256, 256)
    cells_per_field: int = Field(25, ge=1)
    conditions: list[str] = Field(
        default_factory=lambda: ["control", "enlarged_nuclei", "textured"], min_length=2
    )
    seed: int = 0
    design: Literal["conditions", "coculture"] = Field(
        "conditions",
        description="conditions: one cell type, wells cycling through `conditions`, a 'marker' "
        "channel; coculture: astrocyte-like and neuron-like cells, wells cycling through "
        "culture astro / neuron / coculture (layout column 'culture', `conditions` not read), "
        "channels DNA, tubulin, actin, EdU, BrdU (cellbench.data.coculture)",
    )

    @property
    def plate_names(self) -> list[str]:
        """Names of the plates, `P1` ... `Pn`."""
        return [f"P{i + 1}" for i in range(self.plates)]


class FieldsSource(StrictModel):
    """Microscope fields on disk (TIFF or ND2), named by a scheme, with a plate layout.

    A field is one multi-channel file, one file per channel, or one position of an ND2.
    Plates are the subfolders of `root` (``plate_from: folder``; images in ``<plate>/fields/``
    or ``<plate>/``, layout ``<plate>/layout.csv`` or ``.xlsx``), the scheme's ``plate`` group
    (``plate_from: scheme``), or `root` itself (``plate_from: root``).
    """

    source: Literal["fields"] = "fields"
    root: Path = Field(description="the folder of plates (or of one plate's images)")
    plate_from: Literal["folder", "scheme", "root"] = "folder"
    plates: list[PlateName] | None = Field(
        None, description="plates to use; default: all found (see cellbench.names)"
    )
    scheme: str = Field(
        "xyyzz",
        description="file-name scheme: xyyzz, phenix, bbbc021_image or a regex with named "
        "groups (well or row + column, site, channel when one file holds one channel, plate)",
    )
    suffixes: list[str] = Field(
        default_factory=lambda: [".tif", ".tiff", ".nd2"], description="image file endings"
    )
    channel_map: dict[str, str | int] = Field(
        default_factory=dict,
        description="config channel -> the file's channel name, the scheme's channel token "
        "(one file per channel) or an index; unmapped names are looked up as they are",
    )
    layout: Path | None = Field(
        None, description="one layout (CSV or Excel) for every plate; default: each plate's own"
    )
    z: Literal["max"] | int = Field("max", description="Z stacks: max projection or a plane")
    t: int = Field(0, ge=0, description="time point of time series")

    @field_validator("root")
    @classmethod
    def _root_exists(cls, root: Path) -> Path:
        if not root.is_dir():
            raise ValueError(f"input folder {str(root)!r} does not exist")
        return root


class TableJoin(StrictModel):
    """Join a metadata table onto the crops: match keys, copy columns.

    Examples
    --------
    BBBC021: the image table by file name, then the mechanism of action by treatment::

        - table: ${CELLBENCH_DATA}/bbbc021/metadata/BBBC021_v1_image.csv
          keys: {"{image}.tif": Image_FileName_DAPI}
          columns: {Image_Metadata_Plate_DAPI: plate, Image_Metadata_Compound: compound,
                    Image_Metadata_Concentration: concentration}
        - table: ${CELLBENCH_DATA}/bbbc021/metadata/BBBC021_v1_moa.csv
          keys: {compound: compound, concentration: concentration}
          columns: {moa: moa}
    """

    table: Path = Field(description="a CSV file")
    keys: dict[str, str] = Field(
        min_length=1,
        description="our column (or a {template} of our columns) -> the table's column; "
        "numbers match by value (0.3 == 0.300000)",
    )
    columns: dict[str, str] = Field(min_length=1, description="the table's column -> our name")

    @field_validator("table")
    @classmethod
    def _table_exists(cls, table: Path) -> Path:
        if not table.is_file():
            raise ValueError(f"metadata table {str(table)!r} does not exist")
        return table


class CropsSource(StrictModel):
    """A folder of single-cell crops that arrived cut (.npy or .tif), one file per cell."""

    source: Literal["crops"] = "crops"
    root: Path = Field(description="folder of crop files")
    suffix: Literal[".npy", ".tif", ".tiff"] = ".npy"
    scheme: str = Field(
        "bbbc021",
        description="'bbbc021' ({image}_{cell}, the image stem holding well and site) or a "
        "regex with named groups (well, site, cell, optionally plate and others)",
    )
    axes: Literal["YXC", "CYX", "YX"] = Field("YXC", description="axis order in the files")
    joins: list[TableJoin] = Field(default_factory=list)
    allow_unmatched: bool = Field(
        False, description="drop crops whose name or metadata does not match, instead of failing"
    )

    @field_validator("root")
    @classmethod
    def _root_exists(cls, root: Path) -> Path:
        if not root.is_dir():
            raise ValueError(f"input folder {str(root)!r} does not exist")
        return root


DataSource = Annotated[
    Annotated[SyntheticSource, Tag("synthetic")]
    | Annotated[FieldsSource, Tag("fields")]
    | Annotated[CropsSource, Tag("crops")],
    _tag("source", default="synthetic"),
]


ExcludedName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class ExcludeConfig(StrictModel):
    """Images, fields or wells left out of every stage, by name (`cellbench.data.exclude`).

    A name may start with a plate and a slash (``P1/A-01-02``) to leave it out of that plate
    only. Names that match nothing are a warning, not an error.

    Examples
    --------
    ::

        exclude:
          wells: [B03, P1/C07]
          fields: [A-01-02]
          images: [B02_s1_w1B1A7ADEA-8896-4C7D-8C63-663265374B72.tif]
          file: noisy_images.txt     # one name a line (any of the three kinds), or CSV 'name'
    """

    wells: list[ExcludedName] = Field(default_factory=list, description="wells, e.g. B03")
    fields: list[ExcludedName] = Field(
        default_factory=list, description="fields as cellbench names them, e.g. A-01-02"
    )
    images: list[ExcludedName] = Field(
        default_factory=list,
        description="image file names (or stems); for pre-cut crops, crop file names or the "
        "image the crops come from",
    )
    file: Path | None = Field(
        None,
        description="a text file of names, one a line ('#' starts a comment), or a CSV with a "
        "column 'name' (and optionally 'plate'); a name there is a well, field or image",
    )

    @field_validator("file")
    @classmethod
    def _file_readable(cls, file: Path | None) -> Path | None:
        if file is not None:
            exclude_file_names(file)
        return file

    @property
    def is_empty(self) -> bool:
        """Whether nothing is excluded."""
        return not (self.wells or self.fields or self.images or self.file)


def exclude_file_names(path: Path) -> list[str]:
    """The names listed in an exclusion file, in order, each optionally ``plate/name``.

    A ``.csv`` file has a column ``name`` (and optionally ``plate``); any other file has one
    name a line, blank lines and ``#`` comments skipped.

    Raises
    ------
    ValueError
        The file does not exist, cannot be read, or is a CSV without a ``name`` column.
    """
    if not path.is_file():
        raise ValueError(f"exclusion list {str(path)!r} does not exist")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"exclusion list {str(path)!r} cannot be read: {exc}") from exc
    if path.suffix.lower() != ".csv":
        lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
        return [line for line in lines if line]
    rows = list(csv.DictReader(text.splitlines()))
    columns = {c.strip(): c for c in (rows[0].keys() if rows else [])}
    if rows and "name" not in columns:
        raise ValueError(
            f"exclusion list {str(path)!r}: a CSV needs a column 'name' (has {list(columns)})"
        )
    names = []
    for row in rows:
        name = (row[columns["name"]] or "").strip()
        plate = (row[columns["plate"]] or "").strip() if "plate" in columns else ""
        if name:
            names.append(f"{plate}/{name}" if plate else name)
    return names


class DataConfig(StrictModel):
    """Where the fields come from and which channels they hold."""

    input: DataSource = Field(default_factory=SyntheticSource)
    channels: list[str] = Field(
        default_factory=lambda: ["DNA", "tubulin", "actin"],
        min_length=1,
        description="stain channels fed to segmentation, crops, features and models, by name",
    )
    marker_channels: list[str] = Field(
        default_factory=lambda: ["marker"],
        description="ground-truth marker channels: measured for labels, never fed to models",
    )
    label_column: str = Field("condition", description="the per-cell class that models predict")
    nonfinite: Literal["fail", "zero"] = Field(
        "fail",
        description="pixels that are NaN or infinite: fail the field (naming its file and the "
        "count), or set them to 0 and count them in the task's status",
    )
    exclude: ExcludeConfig = Field(
        default_factory=ExcludeConfig,
        description="images, fields or wells left out of every stage (by name or a file)",
    )
