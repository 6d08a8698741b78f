"""The one pattern of names that become paths: plates, wells, fields, experiments, models.

A plate is stored as ``segment/<plate>.h5``, a model under ``models/<model>/``, a task's status
as ``_status/<stage>/<task>.json``; so every such name is one plain file name:

- 1 to 128 characters: letters, digits, ``_``, ``.`` and ``-``;
- starting with a letter or a digit (no hidden ``.x``, no option-like ``-x``);
- no ``..`` anywhere (no parent folder, however it is joined).

That is `NAME_PATTERN`. Names in use fit it: ``P1``, ``Week1_22123`` (BBBC021 plates),
``A01`` (wells), ``A-01-03``, ``A01_s1``, ``A-01-03_p00`` (fields), ``rf``, ``rf.seed0``
(model tasks). Names are checked where they enter: the config (`data.input.plates`, model
names, the experiment name) and the scan of the input folders, which skips a plate folder whose
name does not fit, with a warning naming it.

Examples
--------
>>> check_name("plate", "Week1_22123")
'Week1_22123'
>>> is_valid_name("../P1")
False
"""

from __future__ import annotations

import logging
import re

from cellbench.errors import CellbenchError

log = logging.getLogger(__name__)

NAME_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
NAME_RULE = (
    "1-128 letters, digits, '_', '.' or '-', starting with a letter or digit, with no '..' "
    "(e.g. 'P1', 'Week1_22123', 'A-01-03')"
)
_NAME = re.compile(NAME_PATTERN)
_warned: set[tuple[str, str, tuple[str, ...]]] = set()  # (kind, where, names) already reported


class InvalidName(CellbenchError, ValueError):
    """A name that would become a path does not fit `NAME_PATTERN`.

    A `ValueError` too, so that pydantic validators report it under the config key.
    """


def is_valid_name(value: str) -> bool:
    """Whether `value` fits `NAME_PATTERN` (a plain file name, inside its folder)."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def check_name(kind: str, value: str) -> str:
    """Return `value` if it fits `NAME_PATTERN`.

    Parameters
    ----------
    kind : str
        What the name is (``"plate"``, ``"model"``, ...), for the message.
    value : str
        The name.

    Raises
    ------
    InvalidName
        The message names the value, the kind and the rule.
    """
    if not is_valid_name(value):
        raise InvalidName(
            f"{value!r} is not a valid {kind} name ({kind} names become file names): {NAME_RULE}"
        )
    return value


def cell_ids(plate: str, field: str, labels) -> list[str]:
    """The ids ``<plate>_<field>_<label>`` of a field's cells.

    The one place a cell id is built: it joins a plate's feature table (``Metadata_cell_id``)
    to its crop store (``/cells`` ``cell_id``).

    Parameters
    ----------
    plate, field : str
        Plate and field names.
    labels : iterable of int
        The cells' labels in the field's cell mask, written with at least four digits.

    Examples
    --------
    >>> cell_ids("P1", "A-01-03", [7, 12345])
    ['P1_A-01-03_0007', 'P1_A-01-03_12345']
    """
    return [f"{plate}_{field}_{int(label):04d}" for label in labels]


def keep_valid(kind: str, names: list[str], where: str) -> list[str]:
    """The names that fit `NAME_PATTERN`, in order; the others are reported and left out.

    One warning per listing names every one left out, the place they were found and the rule
    (once per process: planning lists plates many times). A name is never renamed.

    Parameters
    ----------
    kind : str
        ``"plate"``, for the message.
    names : list of str
        Names as found (folder names, a scheme group, a metadata column).
    where : str
        Where they were found, e.g. the folder scanned.
    """
    bad = [name for name in names if not is_valid_name(name)]
    if bad and (kind, where, tuple(bad)) not in _warned:
        _warned.add((kind, where, tuple(bad)))
        log.warning(
            "%s: skipped %d %s(s) whose name is not a valid %s name (names become file names: "
            "%s; pattern %s): %s",
            where,
            len(bad),
            kind,
            kind,
            NAME_RULE,
            NAME_PATTERN,
            ", ".join(repr(name) for name in bad),
        )
    return [name for name in names if is_valid_name(name)]
