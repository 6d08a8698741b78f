"""The report's line on what `data.exclude` left out, from the plate tasks' statuses."""

from __future__ import annotations

from collections.abc import Mapping


def exclusion_note(by_plate: Mapping[str, Mapping]) -> str | None:
    """One line, e.g. ``excluded by data.exclude: 5 fields (3 wells) in plates P1, P2``.

    Parameters
    ----------
    by_plate : mapping of str to mapping
        Plate -> the ``excluded`` entry of its segment task's status (its crop task's for
        pre-cut crops): ``fields``, ``wells`` and, for pre-cut crops, ``crops``.

    Returns
    -------
    str or None
        None when no plate had anything excluded.
    """
    hit = {plate: e for plate, e in by_plate.items() if e.get("fields") or e.get("crops")}
    if not hit:
        return None
    fields = sum(int(e.get("fields", 0)) for e in hit.values())
    wells = sum(len(e.get("wells", [])) for e in hit.values())
    crops = sum(int(e.get("crops", 0)) for e in hit.values())
    counted = f"{crops} crops, " if crops else ""
    return (
        f"excluded by data.exclude: {counted}{fields} fields ({wells} wells) in plates "
        f"{', '.join(sorted(hit))}"
    )
