"""Rename a microscope's field images to the `X-YY-ZZ` scheme.

Microscopes name their images in their own ways (Opera/Phenix ``r03c04f01p01-ch2sk1fk1fl1``,
BBBC021 ``B02_s1_w1<GUID>``, ...). `plan_renames` parses every file of a folder with a name
scheme (see `cellbench.io.naming.SCHEMES`, or any regex with named groups) and says where each
file goes; `apply_renames` links (the default: the microscope's files stay untouched), copies or
moves them there, refusing to overwrite anything.

    cellbench rename DIR --scheme phenix --channel 1=DAPI --channel 2=GFP --dry-run
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections import Counter
from pathlib import Path

from cellbench.errors import CellbenchError
from cellbench.io.naming import SCHEMES, parse_names, well_name

TARGET_FORMS = ("xyyzz",)
MODES = ("link", "copy", "move")
# Suffixes kept whole, so that ``x.ome.tif`` has the stem ``x``.
_COMPOUND_SUFFIXES = (".ome.tif", ".ome.tiff")


def _split_name(name: str) -> tuple[str, str]:
    """Stem and suffix of a file name, ``.ome.tif(f)`` counting as one suffix."""
    for compound in _COMPOUND_SUFFIXES:
        if name.lower().endswith(compound) and len(name) > len(compound):
            return name[: -len(compound)], name[-len(compound) :]
    path = Path(name)
    return path.stem, path.suffix


def _site(groups: dict, first_site: int) -> int:
    """The 1-based site of a parsed name (``"01"``, ``"s1"`` or ``"f00"`` style)."""
    text = str(groups.get("site") or "").strip().lstrip("sSfF")
    if not text.isdigit():
        raise CellbenchError(
            f"{groups['name']!r}: the name scheme needs a numeric 'site' group, got "
            f"{groups.get('site')!r}"
        )
    site = int(text) - first_site + 1
    if not 1 <= site <= 99:
        raise CellbenchError(
            f"{groups['name']!r}: site {groups['site']!r} gives X-YY-ZZ site {site}, outside "
            f"01-99 (first_site={first_site}; use first_site=0 / --first-site 0 for "
            "microscopes that count sites from 0)"
        )
    return site


def _channel(groups: dict, channel_names: dict[str, str] | None) -> str | None:
    """The channel part of a target name: the channel group, mapped through channel_names."""
    channel = groups.get("channel")
    if channel is None or channel == "":
        return None
    if channel_names is None:
        return channel
    names = {_channel_key(key): name for key, name in channel_names.items()}
    return names.get(_channel_key(channel))


def _channel_key(channel: str) -> str:
    """``"01"`` and ``"1"`` name the same channel."""
    channel = str(channel).strip()
    return str(int(channel)) if channel.isdigit() else channel


def plan_renames(
    folder: Path,
    scheme: str,
    to: str = "xyyzz",
    channel_names: dict[str, str] | None = None,
    out: Path | None = None,
    first_site: int = 1,
    suffixes: list[str] | None = None,
) -> list[tuple[Path, Path]]:
    """Where each field image of a folder goes under the `to` name scheme.

    Parameters
    ----------
    folder : Path
        The microscope's folder; only its own files count (not subfolders, not hidden files).
    scheme : str
        A key of `SCHEMES` (``xyyzz``, ``phenix``, ``bbbc021_image``, ...) or a regex with
        named groups, matched against file stems: ``well`` or ``row`` and ``column``, ``site``
        and optionally ``channel``.
    to : str
        Target form; ``"xyyzz"``: ``X-YY-ZZ`` + ``_<channel>`` when the scheme has a channel
        group + the original suffix, e.g. ``C-04-01_DAPI.tiff``.
    channel_names : dict, optional
        Channel group value -> name in the target (``{"1": "DAPI"}``; ``"01"`` and ``"1"``
        are the same channel). When given, every channel met must be in it.
    out : Path, optional
        Folder for the targets; ``folder / "renamed"`` by default.
    first_site : int
        The number the microscope gives its first site (1, or 0 for e.g. ``f00``); X-YY-ZZ
        sites start at 01.
    suffixes : list of str, optional
        Only files with these suffixes (e.g. ``[".tif"]``, case-insensitive) count; all files
        by default, so that a stray file is reported rather than silently skipped.

    Returns
    -------
    list of (Path, Path)
        (source, target) pairs, sorted by source name.

    Raises
    ------
    CellbenchError
        The folder is missing or holds no files; names do not match the scheme (all listed in
        one error); a name has a bad well, site or channel; channels missing from
        `channel_names`; or two sources map to the same target (both named).
    """
    folder = Path(folder)
    if to not in TARGET_FORMS:
        raise CellbenchError(f"unknown target name form {to!r}; choose from {list(TARGET_FORMS)}")
    out = folder / "renamed" if out is None else Path(out)
    files = _field_files(folder, suffixes)
    stems, file_suffixes = zip(*(_split_name(name) for name in files), strict=True)
    parsed = parse_names(list(stems), scheme)

    plan: list[tuple[Path, Path]] = []
    unmapped: set[str] = set()
    for name, suffix, groups in zip(files, file_suffixes, parsed, strict=True):
        target = _target_name(folder / name, groups, first_site, channel_names, unmapped)
        plan.append((folder / name, out / f"{target}{suffix}"))
    if unmapped:
        raise CellbenchError(
            f"{folder}: channel(s) {sorted(unmapped)} have no name in {channel_names} "
            "(give every channel a name, e.g. --channel 1=DAPI)"
        )
    _check_no_clash(folder, scheme, plan)
    return plan


def _field_files(folder: Path, suffixes: list[str] | None) -> list[str]:
    """The folder's own, visible files with one of `suffixes` (all when None), sorted."""
    if not folder.is_dir():
        raise CellbenchError(f"{folder}: not a folder")
    wanted = None if suffixes is None else {s.lower() for s in suffixes}
    files = sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_file()
        and not entry.name.startswith(".")
        and (wanted is None or _split_name(entry.name)[1].lower() in wanted)
    )
    if not files:
        raise CellbenchError(f"{folder}: no files to rename")
    return files


def _target_name(
    path: Path,
    groups: dict,
    first_site: int,
    channel_names: dict[str, str] | None,
    unmapped: set[str],
) -> str:
    """``X-YY-ZZ[_<channel>]`` of one file; a channel without a name is added to `unmapped`."""
    try:
        well = well_name(groups)
    except CellbenchError as exc:
        raise CellbenchError(f"{path}: {exc}") from None
    target = f"{well[0]}-{well[1:]}-{_site(groups, first_site):02d}"
    channel = _channel(groups, channel_names)
    if channel is None and groups.get("channel"):
        unmapped.add(groups["channel"])
    elif channel is not None:
        if not channel or "/" in channel or os.sep in channel:
            raise CellbenchError(f"channel name {channel!r} cannot be part of a file name")
        target += f"_{channel}"
    return target


def _check_no_clash(folder: Path, scheme: str, plan: list[tuple[Path, Path]]) -> None:
    """Refuse a plan in which several sources share a target (every clash named)."""
    by_target: dict[Path, list[Path]] = {}
    for source, target in plan:
        by_target.setdefault(target, []).append(source)
    clashes = [(t, s) for t, s in by_target.items() if len(s) > 1]
    if not clashes:
        return
    lines = "\n  ".join(
        f"{target.name} <- " + ", ".join(s.name for s in sources)
        for target, sources in clashes[:50]
    )
    more = f"\n  ... and {len(clashes) - 50} more" if len(clashes) > 50 else ""
    raise CellbenchError(
        f"{folder}: {len(clashes)} target name(s) would be shared by several files "
        f"(z-planes, timepoints or channels that scheme {scheme!r} does not tell "
        f"apart?):\n  {lines}{more}"
    )


def apply_renames(
    plan: list[tuple[Path, Path]], mode: str = "link", dry_run: bool = False
) -> list[str]:
    """Link, copy or move each source of a plan to its target.

    Parameters
    ----------
    plan : list of (Path, Path)
        (source, target) pairs, e.g. from `plan_renames`.
    mode : str
        ``"link"`` (symbolic link to the absolute source path; the default, leaving the
        microscope's files untouched), ``"copy"`` or ``"move"``.
    dry_run : bool
        Only return the mapping; create nothing.

    Returns
    -------
    list of str
        One ``"source -> target"`` line per pair.

    Raises
    ------
    CellbenchError
        Unknown mode; a source is missing, a target exists already or two pairs share a
        target (all checked before anything is done); or an operation failed midway (the
        message says how many were done).
    """
    if mode not in MODES:
        raise CellbenchError(f"unknown rename mode {mode!r}; choose from {list(MODES)}")
    plan = [(Path(source), Path(target)) for source, target in plan]
    lines = [f"{source} -> {target}" for source, target in plan]
    missing = [str(source) for source, _ in plan if not source.exists()]
    existing = [str(target) for _, target in plan if os.path.lexists(target)]
    counts = Counter(target for _, target in plan)
    shared = sorted(str(target) for target, count in counts.items() if count > 1)
    for problem, paths in (
        ("source(s) missing", missing),
        ("target(s) exist already (nothing was changed; remove them or choose --out)", existing),
        ("target(s) given more than once", shared),
    ):
        if paths:
            shown = "\n  ".join(paths[:50])
            more = f"\n  ... and {len(paths) - 50} more" if len(paths) > 50 else ""
            raise CellbenchError(f"{len(paths)} {problem}:\n  {shown}{more}")
    if dry_run:
        return lines
    done = 0
    for source, target in plan:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if mode == "link":
                target.symlink_to(source.absolute())
            elif mode == "copy":
                shutil.copy2(source, target)
            else:
                shutil.move(source, target)
        except OSError as exc:
            raise CellbenchError(
                f"{mode} {source} -> {target} failed after {done} of {len(plan)} done: {exc}"
            ) from None
        done += 1
    return lines


def _channel_arguments(values: list[str] | None) -> dict[str, str] | None:
    """``["1=DAPI", "2=GFP"]`` -> ``{"1": "DAPI", "2": "GFP"}``."""
    if not values:
        return None
    names = {}
    for value in values:
        key, sep, name = value.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise CellbenchError(f"--channel {value!r}: expected NAME=NEW, e.g. 1=DAPI")
        names[key.strip()] = name.strip()
    return names


def _rename(args: argparse.Namespace) -> int:
    plan = plan_renames(
        Path(args.dir),
        args.scheme,
        to=args.to,
        channel_names=_channel_arguments(args.channel),
        out=Path(args.out) if args.out else None,
        first_site=args.first_site,
        suffixes=args.suffix,
    )
    lines = apply_renames(plan, mode=args.mode, dry_run=args.dry_run)
    for line in lines:
        print(line)
    verb = {"link": "linked", "copy": "copied", "move": "moved"}[args.mode]
    if args.dry_run:
        print(f"dry run: {len(lines)} file(s) would be {verb}; nothing was created")
    else:
        print(f"{len(lines)} file(s) {verb}")
    return 0


def add_rename_command(subparsers) -> None:
    """Register the ``rename`` subcommand on the `cellbench` subparsers.

    Parameters
    ----------
    subparsers
        What ``ArgumentParser.add_subparsers`` returned; the command's handler is set as
        the ``handler`` default (it prints the mapping and returns 0).
    """
    rename = subparsers.add_parser(
        "rename",
        help="link, copy or move a microscope's images to X-YY-ZZ names",
        description=__doc__.split("\n")[0],
    )
    rename.add_argument("dir", metavar="DIR", help="folder of the microscope's images")
    known = ", ".join(sorted(SCHEMES))
    rename.add_argument(
        "--scheme", required=True, help=f"name scheme ({known}) or a regex with named groups"
    )
    rename.add_argument("--to", default="xyyzz", choices=TARGET_FORMS, help="target names")
    rename.add_argument("--out", help="folder for the renamed files (default DIR/renamed)")
    rename.add_argument("--mode", default="link", choices=MODES, help="default: symlinks")
    rename.add_argument("--dry-run", action="store_true", help="print the mapping only")
    rename.add_argument(
        "--channel",
        action="append",
        metavar="NAME=NEW",
        help="name a channel in the targets, e.g. 1=DAPI (repeat for each channel)",
    )
    rename.add_argument(
        "--first-site", type=int, default=1, help="number of the first site (0 or 1)"
    )
    rename.add_argument(
        "--suffix", action="append", help="only files with this suffix, e.g. .tif (repeatable)"
    )
    rename.set_defaults(handler=_rename)
