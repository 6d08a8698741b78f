"""What a feature table holds: its compartments, groups, channels and column counts.

`cellbench features-info FILE` prints it for a cellbench feature table (Parquet) or a
CellProfiler/pycytominer table (CSV or Parquet), reading only the column names. The counts
say what pycytominer will see: `infer_cp_features` keeps columns that start with one of its
compartments (by default ``Cells``, ``Nuclei``, ``Cytoplasm``), ``Image_*`` columns only with
``image_features=True`` and ``Metadata_*`` columns only with ``metadata=True``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cellbench.errors import CellbenchError
from cellbench.features.groups import parse_column

PYCYTOMINER_COMPARTMENTS = ("Cells", "Nuclei", "Cytoplasm")  # infer_cp_features' default


@dataclass
class TableColumns:
    """The columns of a feature table, sorted into kinds and counted."""

    metadata: list[str] = field(default_factory=list)
    image: list[str] = field(default_factory=list)
    objects: Counter = field(default_factory=Counter)  # (compartment, group) -> columns
    channels: Counter = field(default_factory=Counter)  # channel -> columns
    other: list[str] = field(default_factory=list)  # neither metadata nor compartment_group_...

    @property
    def pycytominer_features(self) -> int:
        """Columns `infer_cp_features` finds with its defaults."""
        return sum(n for (compartment, _), n in self.objects.items() if _seen(compartment))


def _seen(compartment: str) -> bool:
    return compartment.startswith(PYCYTOMINER_COMPARTMENTS)


def column_names(path: Path) -> list[str]:
    """The column names of a Parquet or CSV table, without reading its rows."""
    path = Path(path)
    if not path.is_file():
        raise CellbenchError(f"{path}: no such file")
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if path.suffix in (".csv", ".gz", ".tsv"):
            import pandas as pd

            separator = "\t" if path.suffix == ".tsv" else ","
            return list(pd.read_csv(path, nrows=0, sep=separator).columns)
    except Exception as exc:  # noqa: BLE001 (any reader error is a bad file to the user)
        raise CellbenchError(f"{path}: cannot read its columns ({exc})") from exc
    raise CellbenchError(f"{path}: not a feature table (.parquet, .csv, .csv.gz or .tsv)")


def sort_columns(columns: list[str]) -> TableColumns:
    """Sort column names into metadata, per-image values and object features.

    A column of cellbench's grammar (`parse_column`) gives its channel too; any other
    ``<Compartment>_<Group>_...`` column (CellProfiler's own, e.g. ``Cells_Granularity_1_DNA``)
    is counted by compartment and group.
    """
    table = TableColumns()
    for column in columns:
        if column.startswith("Metadata_"):
            table.metadata.append(column)
            continue
        parsed = parse_column(column)
        compartment, _, rest = column.partition("_")
        if parsed is None and not rest:
            table.other.append(column)
            continue
        group = parsed.group if parsed else rest.split("_")[0]
        if compartment == "Image":
            table.image.append(column)
        table.objects[(compartment, group)] += 1
        if parsed is not None and parsed.channel is not None:
            table.channels[parsed.channel] += 1
    return table


def describe(path: Path) -> str:
    """A few lines on the table at `path`: counts per compartment and group, per channel."""
    columns = column_names(path)
    table = sort_columns(columns)
    lines = [f"{path}: {len(columns)} columns"]
    lines.append(
        f"  Metadata_*: {len(table.metadata)} ({', '.join(table.metadata[:8])}"
        f"{', ...' if len(table.metadata) > 8 else ''})"
    )
    for compartment in sorted({c for c, _ in table.objects}):
        groups = {g: n for (c, g), n in table.objects.items() if c == compartment}
        listed = ", ".join(f"{g} {n}" for g, n in sorted(groups.items()))
        lines.append(f"  {compartment}: {sum(groups.values())} ({listed})")
    if table.channels:
        listed = ", ".join(f"{c} {n}" for c, n in sorted(table.channels.items()))
        lines.append(f"  per channel: {listed}")
    if table.other:
        lines.append(f"  other: {len(table.other)} ({', '.join(table.other[:8])})")
    lines.append(
        f"pycytominer infer_cp_features: {table.pycytominer_features} columns with its defaults "
        f"(compartments {', '.join(PYCYTOMINER_COMPARTMENTS)}), "
        f"+{len(table.image)} with image_features=True, "
        f"{len(table.metadata)} metadata with metadata=True"
    )
    return "\n".join(lines)
