"""Pick feature columns of a CellProfiler-named feature table by group, region and channel.

Columns read ``<Region>_<Group>_<Feature>[_<Channel>[_<distance>_<angle>]]`` (see
`cellbench.features.measure`); per-field columns read ``Image_<Group>_<Feature>``, e.g.
``Image_Count_Cells``, and count as region ``Image``. ``Metadata_`` columns and anything else
that does not follow the scheme are never selected.
"""

from __future__ import annotations

from collections.abc import Iterable

# group name accepted here -> the group word in column names
GROUPS: dict[str, str] = {
    "intensity": "Intensity",
    "shape": "AreaShape",
    "areashape": "AreaShape",
    "texture": "Texture",
    "count": "Count",
}
REGIONS: tuple[str, ...] = ("Nucleus", "Cytoplasm", "Cell", "Image")


def _words(names: Iterable[str] | None) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        return [names]
    return list(names)


def parse_column(column: str) -> tuple[str, str, str | None] | None:
    """(region, group word, channel or None) of a feature column; None for other columns.

    Examples
    --------
    >>> parse_column("Nucleus_Texture_Contrast_DNA_1_00")
    ('Nucleus', 'Texture', 'DNA')
    >>> parse_column("Cell_AreaShape_Area")
    ('Cell', 'AreaShape', None)
    >>> parse_column("Metadata_Well") is None
    True
    """
    parts = column.split("_")
    if len(parts) < 3 or parts[0] not in REGIONS or parts[1] not in GROUPS.values():
        return None
    region, group = parts[0], parts[1]
    if region == "Image":
        return (region, group, None) if group == "Count" else None
    if group == "Intensity" and len(parts) >= 4:
        return region, group, "_".join(parts[3:])
    if group == "Texture" and len(parts) >= 6:
        return region, group, "_".join(parts[3:-2])
    if group == "AreaShape" and len(parts) == 3:
        return region, group, None
    return None


def select_columns(
    columns: Iterable[str],
    groups: Iterable[str] | None = None,
    regions: Iterable[str] | None = None,
    channels: Iterable[str] | None = None,
) -> list[str]:
    """Feature columns of the given groups, regions and channels, in their order.

    Parameters
    ----------
    columns : iterable of str
        Column names, e.g. ``table.columns``.
    groups : iterable of str, optional
        Any of ``intensity``, ``shape`` (also ``areashape``), ``texture`` and ``count``
        (case-insensitive); None: all.
    regions : iterable of str, optional
        Any of ``Nucleus``, ``Cytoplasm``, ``Cell`` and ``Image`` (the per-field count);
        None: all.
    channels : iterable of str, optional
        Keep intensity and texture columns of these channels only; columns without a channel
        (shape, count) are kept, select them away by group. None: all channels.

    Returns
    -------
    list of str
        Never a ``Metadata_`` column, nor ``label`` or any column outside the naming scheme.

    Raises
    ------
    ValueError
        An unknown group or region name (the message lists the valid ones).

    Examples
    --------
    >>> cols = ["Metadata_Well", "Nucleus_AreaShape_Area", "Cell_Intensity_MeanIntensity_DNA",
    ...         "Cell_Intensity_MeanIntensity_marker", "Image_Count_Cells"]
    >>> select_columns(cols, groups=["intensity"], channels=["DNA"])
    ['Cell_Intensity_MeanIntensity_DNA']
    >>> select_columns(cols, regions=["Nucleus"])
    ['Nucleus_AreaShape_Area']
    """
    group_names = _words(groups)
    wanted_groups = None
    if group_names is not None:
        unknown = [g for g in group_names if g.lower() not in GROUPS]
        if unknown:
            raise ValueError(f"unknown feature groups {unknown}; valid: {sorted(GROUPS)}")
        wanted_groups = {GROUPS[g.lower()] for g in group_names}
    wanted_regions = _words(regions)
    if wanted_regions is not None:
        unknown = [r for r in wanted_regions if r not in REGIONS]
        if unknown:
            raise ValueError(f"unknown regions {unknown}; valid: {list(REGIONS)}")
    wanted_channels = _words(channels)
    selected = []
    for column in columns:
        parsed = parse_column(column)
        if parsed is None:
            continue
        region, group, channel = parsed
        if wanted_groups is not None and group not in wanted_groups:
            continue
        if wanted_regions is not None and region not in wanted_regions:
            continue
        if wanted_channels is not None and channel is not None and channel not in wanted_channels:
            continue
        selected.append(column)
    return selected
