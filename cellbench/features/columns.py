"""The grammar of feature column names, one for every group.

A column reads ``<Compartment>_<Group>_<Feature>[_<Channel>][_<parameter>...]``: the compartment
(``Nuclei``, ``Cytoplasm``, ``Cells`` or ``Image`` for per-field values), the group word, the
feature (CamelCase, no underscore), the channel for groups measured per channel (a channel name
may hold underscores) and the group's parameters (Texture: distance in px and angle). Each group
declares its `ColumnGrammar`; `cellbench.features.groups.parse_column` reads any column with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cellbench.config.feature_groups import REGIONS


class Column(NamedTuple):
    """The parts of a feature column name."""

    compartment: str
    group: str
    feature: str
    channel: str | None = None
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnGrammar:
    """How the columns of one feature group are named.

    Examples
    --------
    >>> texture = ColumnGrammar("Texture", channel=True, parameters=("distance_px", "angle"))
    >>> texture.column("Nuclei", "Contrast", "DNA", ("1", "00"))
    'Nuclei_Texture_Contrast_DNA_1_00'
    >>> texture.parse("Nuclei_Texture_Contrast_my_DNA_1_00")
    Column(compartment='Nuclei', group='Texture', feature='Contrast', channel='my_DNA', \
parameters=('1', '00'))
    >>> texture.parse("Nuclei_Texture_Contrast_DNA") is None
    True
    """

    group: str
    compartments: tuple[str, ...] = REGIONS
    channel: bool = False  # whether a column names a channel
    parameters: tuple[str, ...] = ()  # what the tokens after the channel mean, in order

    def column(
        self,
        compartment: str,
        feature: str,
        channel: str | None = None,
        parameters: Sequence[str] = (),
    ) -> str:
        """The column name of one feature (`channel` iff the group is per channel)."""
        if (channel is None) == self.channel or len(parameters) != len(self.parameters):
            raise ValueError(
                f"a {self.group} column takes {'a' if self.channel else 'no'} channel and the "
                f"parameters {list(self.parameters)}; got channel {channel!r}, {list(parameters)}"
            )
        parts = [compartment, self.group, feature]
        if channel is not None:
            parts.append(channel)
        return "_".join([*parts, *parameters])

    def parse(self, column: str) -> Column | None:
        """The parts of `column`; None unless it is a column of this group."""
        parts = column.split("_")
        fixed = 3 + len(self.parameters)
        if len(parts) < fixed + self.channel or (not self.channel and len(parts) != fixed):
            return None
        if parts[0] not in self.compartments or parts[1] != self.group:
            return None
        stop = len(parts) - len(self.parameters)
        channel = "_".join(parts[3:stop]) if self.channel else None
        return Column(parts[0], self.group, parts[2], channel, tuple(parts[stop:]))
