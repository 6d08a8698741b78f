"""File-name schemes of microscopy fields.

`X-YY-ZZ` is the scheme of the nucleocentric workflow: row letter, two-digit column and
two-digit position (site) of a field, e.g. ``B-03-12``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cellbench.errors import CellbenchError

_XYYZZ = re.compile(r"^(?P<row>[A-Pa-p])-(?P<column>\d{2})-(?P<site>\d{2})$")
# BBBC021 single-cell crops: {DAPI image stem}_{cell}, the stem holding an optional
# {week}_{date}_ prefix, the well and the site, e.g.
# B02_s1_w1B1A7ADEA-8896-4C7D-8C63-663265374B72_180 or Week10_200907_B11_s2_w15C6481AB-..._11
BBBC021_CROP = (
    r"^(?P<image>(?:.+_)?(?P<well>[A-P]\d{2})_(?P<site>s\d+)_w\d[0-9A-Fa-f-]+)_(?P<cell>\d+)$"
)
SCHEMES = {"bbbc021": BBBC021_CROP}


@dataclass(frozen=True, order=True)
class FieldName:
    """Where a field was imaged: row letter, column and site (all 1-based)."""

    row: str
    column: int
    site: int

    @property
    def well(self) -> str:
        """Well name with a two-digit column, e.g. ``A01``."""
        return f"{self.row}{self.column:02d}"

    @property
    def xyyzz(self) -> str:
        """The field's `X-YY-ZZ` name, e.g. ``A-01-03``."""
        return f"{self.row}-{self.column:02d}-{self.site:02d}"


def parse_xyyzz(name: str) -> FieldName:
    """Parse an `X-YY-ZZ` field name (without its file suffix).

    Parameters
    ----------
    name : str
        For example ``"B-03-12"``; the row letter is A-P, column 01-24, site 01 or more.

    Returns
    -------
    FieldName

    Raises
    ------
    CellbenchError
        If the name does not follow the scheme; the message shows the expected form.

    Examples
    --------
    >>> parse_xyyzz("B-03-12").well
    'B03'
    """
    match = _XYYZZ.match(name)
    if match is None:
        raise CellbenchError(
            f"field name {name!r} does not follow the X-YY-ZZ scheme "
            "(row letter A-P, two-digit column, two-digit site, e.g. 'B-03-12')"
        )
    column, site = int(match["column"]), int(match["site"])
    if not 1 <= column <= 24 or site < 1:
        raise CellbenchError(
            f"field name {name!r}: column must be 01-24 and site 01 or more (X-YY-ZZ scheme)"
        )
    return FieldName(row=match["row"].upper(), column=column, site=site)


def parse_many_xyyzz(names: list[str]) -> list[FieldName]:
    """Parse many names, listing every bad one in a single error."""
    parsed, bad = [], []
    for name in names:
        try:
            parsed.append(parse_xyyzz(name))
        except CellbenchError:
            bad.append(name)
    if bad:
        raise CellbenchError(
            f"{len(bad)} field name(s) do not follow the X-YY-ZZ scheme (e.g. 'B-03-12'): {bad}"
        )
    return parsed


def parse_with_scheme(names: list[str], scheme: str) -> tuple[list[dict[str, str]], list[str]]:
    """Parse names (without suffix) with a named scheme or a regex with named groups.

    Parameters
    ----------
    names : list of str
    scheme : str
        ``"bbbc021"`` or a regular expression with named groups (well, site, cell, ...).

    Returns
    -------
    parsed : list of dict
        The named groups of each name that matched, with ``name`` added.
    bad : list of str
        The names that did not match.
    """
    try:
        pattern = re.compile(SCHEMES.get(scheme, scheme))
    except re.error as exc:
        raise CellbenchError(
            f"name scheme {scheme!r} is not a valid regular expression: {exc}"
        ) from None
    if not pattern.groupindex:
        raise CellbenchError(f"name scheme {scheme!r} has no named groups such as (?P<well>...)")
    parsed, bad = [], []
    for name in names:
        match = pattern.match(name)
        if match:
            parsed.append({"name": name, **match.groupdict()})
        else:
            bad.append(name)
    return parsed, bad
