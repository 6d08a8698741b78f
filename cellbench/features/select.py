"""Pick feature columns of a CellProfiler-named feature table by group, region and channel.

Columns read ``<Region>_<Group>_<Feature>[_<Channel>[_<distance>_<angle>]]`` (see
`cellbench.features.measure`); per-field columns read ``Image_<Group>_<Feature>``, e.g.
``Image_Count_Cells``, and count as region ``Image``. Each column is read with its group's
grammar (`cellbench.features.groups.parse_column`); ``Metadata_`` columns and anything else
that does not follow the scheme are never selected.

Columns of CellProfiler's groups that cellbench does not measure itself (``features.backend:
cellprofiler``: ``Granularity``, ``Correlation``, ``RadialDistribution``, ``Location`` and
AreaShape's Zernike and Feret columns, which the native grammar does not read; with
``features.source: cellprofiler`` also per-image ones such as ``Image_Threshold_*``) are
selected by their group word (the token after the region: ``AreaShape`` takes the Zernike
columns too, ``Granularity`` the granularity spectrum, see `CELLPROFILER_GROUPS`) and region;
``channels`` does not filter them (their channel is not parsed).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from cellbench.config.feature_groups import CELLPROFILER_GROUPS, FEATURE_GROUPS, IMAGE
from cellbench.config.feature_groups import REGIONS as CELL_REGIONS
from cellbench.features.groups import group_named, parse_column

REGIONS: tuple[str, ...] = (*CELL_REGIONS, IMAGE)
_ALIASES = {"shape": "AreaShape"}  # the short name earlier versions took for AreaShape


def _words(names: Iterable[str] | None) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        return [names]
    return list(names)


_CELLPROFILER_WORDS = {name.lower(): name for name in CELLPROFILER_GROUPS}


def _group_words(names: list[str]) -> set[str]:
    """The group words of group names given in any case; ValueError for an unknown one."""
    words, unknown = set(), []
    for name in names:
        module = group_named(_ALIASES.get(name.lower(), name))
        if module is not None:
            words.add(module.GRAMMAR.group)
        elif name.lower() in _CELLPROFILER_WORDS:
            words.add(_CELLPROFILER_WORDS[name.lower()])
        else:
            unknown.append(name)
    if unknown:
        valid = [*FEATURE_GROUPS, *CELLPROFILER_GROUPS]
        raise ValueError(f"unknown feature groups {unknown}; valid: {valid} (in any case)")
    return words


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
        Any of `cellbench.config.feature_groups.FEATURE_GROUPS` (``Count``, ``AreaShape``,
        ``Intensity``, ``Texture``) or of its ``CELLPROFILER_GROUPS`` (``Granularity``,
        ``Correlation``...) in any case, ``shape`` for AreaShape; None: all.
    regions : iterable of str, optional
        Any of ``Nuclei``, ``Cytoplasm``, ``Cells`` and ``Image`` (the per-field count);
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
    >>> cols = ["Metadata_Well", "Nuclei_AreaShape_Area", "Cells_Intensity_MeanIntensity_DNA",
    ...         "Cells_Intensity_MeanIntensity_marker", "Image_Count_Cells"]
    >>> select_columns(cols, groups=["Intensity"], channels=["DNA"])
    ['Cells_Intensity_MeanIntensity_DNA']
    >>> select_columns(cols, regions=["Nuclei"])
    ['Nuclei_AreaShape_Area']
    """
    group_names = _words(groups)
    wanted_groups = None if group_names is None else _group_words(group_names)
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
            group = column.split("_", 2)[1] if column.count("_") >= 2 else None
            wanted = wanted_groups is None or group in wanted_groups
            if wanted and _cellprofiler_region(column, wanted_regions):
                selected.append(column)
            continue
        if wanted_groups is not None and parsed.group not in wanted_groups:
            continue
        if wanted_regions is not None and parsed.compartment not in wanted_regions:
            continue
        channel = parsed.channel
        if wanted_channels is not None and channel is not None and channel not in wanted_channels:
            continue
        selected.append(column)
    return selected


def _cellprofiler_region(column: str, wanted_regions: list[str] | None) -> bool:
    """Whether a column outside the native grammar is one of CellProfiler's wanted regions.

    It must read ``<Region>_<Group>_...`` with a region (``Image`` too: CellProfiler's
    per-image measurements, ``features.source: cellprofiler``) among `wanted_regions`
    (None: all) and a capitalised group word.
    """
    parts = column.split("_", 2)
    if len(parts) < 3 or parts[0] not in REGIONS or not parts[1][:1].isupper():
        return False
    return wanted_regions is None or parts[0] in wanted_regions


def pick_columns(
    columns: Iterable[str], names: Iterable[str], key: str = "feature_columns"
) -> list[str]:
    """Exactly the feature columns `names`, in their order (the perturbation study's three).

    Parameters
    ----------
    columns : iterable of str
        The table's columns.
    names : iterable of str
        Column names, exact (case counts).
    key : str
        The config key the names come from, for the error.

    Raises
    ------
    ValueError
        A name is not a column (the message names it and lists close matches), or a name is
        a ``Metadata_`` column or given twice.

    Examples
    --------
    >>> pick_columns(["Metadata_Well", "Image_Count_Cells", "Cells_AreaShape_Area"],
    ...              ["Cells_AreaShape_Area", "Image_Count_Cells"])
    ['Cells_AreaShape_Area', 'Image_Count_Cells']
    """
    available = list(columns)
    wanted = list(names)
    repeated = sorted({n for n in wanted if wanted.count(n) > 1})
    if repeated:
        raise ValueError(f"{key}: {repeated} given more than once")
    present = set(available)
    for name in wanted:
        if name.startswith("Metadata_"):
            raise ValueError(f"{key}: {name!r} is a Metadata_ column, not a feature")
        if name not in present:
            close = difflib.get_close_matches(name, available, n=5, cutoff=0.6)
            hint = f"; close matches: {close}" if close else "; no column is close"
            raise ValueError(f"{key}: no feature column {name!r} in the feature table{hint}")
    return wanted
