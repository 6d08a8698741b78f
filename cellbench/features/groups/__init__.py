"""Handcrafted feature groups behind one interface: one module per group, the same names in each.

The groups are `cellbench.config.feature_groups.FEATURE_GROUPS` (``Count``, ``AreaShape``,
``Intensity``, ``Texture``), each a module here named after it in lower case that exports:

- ``GRAMMAR``: its `ColumnGrammar` (the group word, the compartments it measures, whether a
  column names a channel and which parameters follow);
- ``FEATURES``: its feature names, in column order;
- ``measure(compartment, features)``: ``{column: (N,) values}`` of one `Compartment` under the
  `FeaturesConfig` (empty when the settings leave the group out, e.g. ``texture: null``).

`measure_field` measures every compartment with every group of `GROUPS` that measures it, in
this order; `parse_column` reads any feature column with its group's grammar.

Examples
--------
>>> GROUPS["Texture"].GRAMMAR.parse("Cells_Texture_ASM_DNA_1_00").channel
'DNA'
>>> group_named("areashape").GRAMMAR.group
'AreaShape'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from cellbench.config.feature_groups import FEATURE_GROUPS
from cellbench.features.columns import Column


def _load(name: str) -> ModuleType:
    module = importlib.import_module(f"{__name__}.{name.lower()}")
    if module.GRAMMAR.group != name:
        raise ImportError(
            f"{module.__name__} declares group {module.GRAMMAR.group!r}, not {name!r}"
        )
    return module


GROUPS: dict[str, ModuleType] = {name: _load(name) for name in FEATURE_GROUPS}
_BY_WORD = {name.lower(): module for name, module in GROUPS.items()}


def group_named(name: str) -> ModuleType | None:
    """The module of a group by its name in any case (``texture``); None for no group."""
    return _BY_WORD.get(name.lower())


def parse_column(column: str) -> Column | None:
    """The parts of a feature column, read with its group's grammar; None for other columns.

    Examples
    --------
    >>> parse_column("Nuclei_Texture_Contrast_DNA_1_00")
    Column(compartment='Nuclei', group='Texture', feature='Contrast', channel='DNA', \
parameters=('1', '00'))
    >>> parse_column("Image_Count_Cells").group
    'Count'
    >>> parse_column("Metadata_Well") is None
    True
    """
    parts = column.split("_", 2)
    module = GROUPS.get(parts[1]) if len(parts) == 3 else None
    return None if module is None else module.GRAMMAR.parse(column)
