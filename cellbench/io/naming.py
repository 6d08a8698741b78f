"""File-name schemes of microscopy fields.

`X-YY-ZZ` is the scheme of the nucleocentric workflow: row letter, two-digit column and
two-digit position (site) of a field, e.g. ``B-03-12``.
"""

from __future__ import annotations

import re

from cellbench.errors import CellbenchError

# BBBC021 single-cell crops: {DAPI image stem}_{cell}, the stem holding an optional
# {week}_{date}_ prefix, the well and the site, e.g.
# B02_s1_w1B1A7ADEA-8896-4C7D-8C63-663265374B72_180 or Week10_200907_B11_s2_w15C6481AB-..._11
BBBC021_CROP = (
    r"^(?P<image>(?:.+_)?(?P<well>[A-P]\d{2})_(?P<site>s\d+)_w\d[0-9A-Fa-f-]+)_(?P<cell>\d+)$"
)
SCHEMES = {"bbbc021": BBBC021_CROP}

# Whole-field image names. `X-YY-ZZ`: row letter A-P, column 01-24, site 01 or more.
XYYZZ_FIELD = r"^(?P<row>[A-Pa-p])-(?P<column>0[1-9]|1\d|2[0-4])-(?P<site>(?!00)\d{2})$"
# Opera/Phenix (Harmony export): r{row:02}c{column:02}f{field:02}[p{plane:02}][-ch{channel}]...,
# e.g. r03c04f01p01-ch2sk1fk1fl1 (row 3 = C). The plane is matched but not kept.
PHENIX_FIELD = (
    r"^r(?P<row>\d{2})c(?P<column>\d{2})f(?P<site>\d{2,3})(?:p\d{2,3})?"
    r"(?:-ch(?P<channel>\d+))?.*$"
)
# BBBC021 field images: [{week}_{plate}_]{well}_s{site}_w{channel}{GUID}, e.g.
# B02_s1_w1B1A7ADEA-8896-4C7D-8C63-663265374B72 or Week1_22123_B02_s1_w1B1A7ADEA-...
BBBC021_IMAGE = (
    r"^(?:.+_)?(?P<well>[A-Pa-p]\d{1,2})_s(?P<site>\d+)_w(?P<channel>\d+)"
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
SCHEMES.update({"xyyzz": XYYZZ_FIELD, "phenix": PHENIX_FIELD, "bbbc021_image": BBBC021_IMAGE})

PLATE_ROWS = "ABCDEFGHIJKLMNOP"
PLATE_COLUMNS = 24
_WELL = re.compile(r"^\s*(?P<row>[A-Za-z])0*(?P<column>\d{1,2})\s*$")


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


def _row_letter(row: str) -> str | None:
    """A-P from a row letter or a 1-based row number (``"03"`` -> ``"C"``); None if neither."""
    row = row.strip()
    if len(row) == 1 and row.upper() in PLATE_ROWS:
        return row.upper()
    if row.isdigit() and 1 <= int(row) <= len(PLATE_ROWS):
        return PLATE_ROWS[int(row) - 1]
    return None


def well_name(groups: dict) -> str:
    """The ``A01``-style well name from the named groups of a parsed file name.

    Parameters
    ----------
    groups : dict
        Either a ``well`` group (``"B2"``, ``"B02"``, ``"b02"``) or ``row`` and ``column``
        groups, the row a letter A-P or a 1-based number (``"03"`` -> ``C``), the column
        1-24 (96- and 384-well plates).

    Returns
    -------
    str
        Row letter and two-digit column, e.g. ``"B02"``.

    Raises
    ------
    CellbenchError
        Neither form is present, or the row or column is outside A-P / 1-24.

    Examples
    --------
    >>> well_name({"well": "B2"})
    'B02'
    >>> well_name({"row": "03", "column": "04"})
    'C04'
    """
    well = groups.get("well")
    if well is not None:
        match = _WELL.match(str(well))
        if match and match["row"].upper() in PLATE_ROWS:
            column = int(match["column"])
            if 1 <= column <= PLATE_COLUMNS:
                return f"{match['row'].upper()}{column:02d}"
        raise CellbenchError(
            f"well {well!r} is not a well name (row letter A-P, column 1-24, e.g. 'B02')"
        )
    row, column = groups.get("row"), groups.get("column")
    if row is None or column is None:
        raise CellbenchError(
            f"cannot tell the well from {groups}: the name scheme needs a 'well' group or "
            "'row' and 'column' groups"
        )
    letter = _row_letter(str(row))
    if letter is None:
        raise CellbenchError(f"row {row!r} is not a plate row (A-P or 1-16)")
    column_text = str(column).strip()
    if not column_text.isdigit() or not 1 <= int(column_text) <= PLATE_COLUMNS:
        raise CellbenchError(f"column {column!r} is not a plate column (1-24)")
    return f"{letter}{int(column_text):02d}"


def parse_names(names: list[str], scheme: str) -> list[dict[str, str]]:
    """Parse names (without suffix) with a scheme, refusing them all if any does not match.

    Parameters
    ----------
    names : list of str
    scheme : str
        A key of `SCHEMES` or a regular expression with named groups.

    Returns
    -------
    list of dict
        The named groups of each name, with ``name`` added, in the order of `names`.

    Raises
    ------
    CellbenchError
        One error listing every name that does not match (the first 50, then a count),
        with the scheme and its pattern; or the scheme is not a valid regex.
    """
    parsed, bad = parse_with_scheme(names, scheme)
    if bad:
        pattern = SCHEMES.get(scheme, scheme)
        described = f"pattern {pattern}"
        if scheme in SCHEMES:
            described = f"scheme {scheme!r} ({described})"
        shown = "\n  ".join(bad[:50])
        more = f"\n  ... and {len(bad) - 50} more" if len(bad) > 50 else ""
        raise CellbenchError(
            f"{len(bad)} of {len(names)} name(s) do not match {described}:\n  {shown}{more}"
        )
    return parsed
