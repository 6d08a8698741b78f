"""Finding a plate's fields on disk: one directory scan, names parsed by the scheme.

A field is one multi-channel file (TIFF or one position of an ND2) or one single-channel file
per channel; `cellbench.data.plates` opens plates from what this module finds.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from cellbench.config import FieldsSource
from cellbench.errors import CellbenchError
from cellbench.names import NAME_RULE, is_valid_name


@dataclass(frozen=True, order=True)
class Field:
    """One field of view: its name in the stores, well, site, and the files that hold it."""

    name: str  # unique in the plate, e.g. "A-01-01"
    well: str  # "A01", or "" when the names carry no well
    site: str  # "01"
    files: tuple[Path, ...]  # one multi-channel file, or one file per channel
    channels: tuple[str, ...] = ()  # the channel token of each file, when one per channel
    position: int | None = None  # the position in a multi-position ND2 file


def plate_folder(source: FieldsSource, plate: str) -> Path:
    """The folder of a plate: ``root/<plate>``, or the root itself."""
    return source.root / plate if source.plate_from == "folder" else source.root


def image_folder(folder: Path) -> Path:
    """Where a plate folder's images are: its ``fields/`` sub-folder when it has one."""
    return folder / "fields" if (folder / "fields").is_dir() else folder


def _images(source: FieldsSource, folder: Path) -> list[str]:
    """Image file names in a plate folder (one scan)."""
    folder = image_folder(folder)
    suffixes = tuple(s.lower() for s in source.suffixes)
    return sorted(entry.name for entry in os.scandir(folder) if _is_image(entry, suffixes))


def has_images(source: FieldsSource, folder: Path) -> bool:
    """Whether a plate folder holds an image file (the scan stops at the first)."""
    suffixes = tuple(s.lower() for s in source.suffixes)
    with os.scandir(image_folder(folder)) as entries:
        return any(_is_image(entry, suffixes) for entry in entries)


def _is_image(entry: os.DirEntry, suffixes: tuple[str, ...]) -> bool:
    name = entry.name
    return name.lower().endswith(suffixes) and not name.startswith(".") and entry.is_file()


def where_plates_are(source: FieldsSource) -> str:
    """Where the source looks for plates and images, for messages about none found."""
    where = {
        "folder": "plates are the sub-folders of the root holding images (in <plate>/ or "
        "<plate>/fields/)",
        "root": "the root is one plate, its images in it or in fields/",
        "scheme": "plates are the scheme's 'plate' group in the names of the root's images",
    }[source.plate_from]
    return (
        f"{where}, named by scheme {source.scheme!r} (suffixes {', '.join(source.suffixes)}); "
        f"see data.input.plate_from"
    )


def check_field_names(plate: str, fields: list[Field]) -> list[Field]:
    """`fields`, if every name is a valid field name; else one error listing their files."""
    bad = [f"{item.files[0]} -> {item.name!r}" for item in fields if not is_valid_name(item.name)]
    if bad:
        shown = "\n  ".join(bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise CellbenchError(
            f"plate {plate!r}: {len(bad)} field(s) whose name (from the file name, by the scheme's "
            f"well and site) is not a valid field name ({NAME_RULE}); rename the files or fix "
            f"the scheme:\n  {shown}{more}"
        )
    return fields


def parse_images(source: FieldsSource, folder: Path) -> list[dict]:
    """Parse every image name of a folder with the scheme (all bad names in one error)."""
    from cellbench.io.naming import parse_names, well_name

    names = _images(source, folder)
    stems = [os.path.splitext(name)[0] for name in names]
    parsed = parse_names(stems, source.scheme)
    entries = []
    for name, groups in zip(names, parsed, strict=True):
        has_well = "well" in groups or ("row" in groups and "column" in groups)
        entries.append(
            {
                "path": folder / name,
                "plate": groups.get("plate") or folder.name,
                "well": well_name(groups) if has_well else "",
                "site": groups.get("site") or "1",
                "channel": groups.get("channel"),
            }
        )
    return entries


def group_fields(entries: list[dict]) -> list[Field]:
    """Group per-channel files into fields; expand multi-position ND2 files."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for entry in entries:
        groups[(entry["well"], entry["site"])].append(entry)
    fields = []
    for (well, site), members in groups.items():
        name = field_name(well, site)
        if members[0]["channel"] is not None:
            members = sorted(members, key=lambda e: e["channel"])
            tokens = [e["channel"] for e in members]
            if len(set(tokens)) != len(tokens):
                raise CellbenchError(
                    f"field {name}: several files for one channel: "
                    f"{[str(e['path']) for e in members]}"
                )
            fields.append(Field(name, well, site, tuple(e["path"] for e in members), tuple(tokens)))
        elif len(members) > 1:
            raise CellbenchError(
                f"field {name}: several files {[str(e['path']) for e in members]} "
                "and no channel group in the scheme to tell them apart"
            )
        elif members[0]["path"].suffix.lower() == ".nd2":
            fields += _nd2_positions(name, well, site, members[0]["path"])
        else:
            fields.append(Field(name, well, site, (members[0]["path"],)))
    return sorted(fields)


def _nd2_positions(name: str, well: str, site: str, path: Path) -> list[Field]:
    import nd2

    try:
        with nd2.ND2File(path) as handle:
            positions = handle.sizes.get("P", 1)
    except Exception as exc:  # corrupt files raise many exception types
        raise CellbenchError(f"{path}: cannot read ND2: {type(exc).__name__}: {exc}") from exc
    if positions == 1:
        return [Field(name, well, site, (path,), position=0)]
    return [Field(f"{name}_p{p:02d}", well, site, (path,), position=p) for p in range(positions)]


def field_name(well: str, site: str) -> str:
    """``A-01-03`` for a well and a numeric site; otherwise the parts joined by ``_``."""
    match = re.fullmatch(r"([A-P])(\d{2})", well)
    digits = re.sub(r"\D", "", site)
    if match and digits:
        return f"{match[1]}-{match[2]}-{int(digits):02d}"
    return "_".join(part for part in (well, site) if part)
