"""The crop kinds: one declaration per kind, the only list of them.

A crop is a square window around a cell; its kind says which region of the window it keeps
(the rest is zero), what the window is centred on, and its default side. Everything that
names kinds derives from here: the config's valid ``crops.kinds``, the crop specs that
`cellbench.crops.extract` cuts, the kinds of the background experiments and of pre-cut crops.
Pure declarations: the config layer imports this module, and it imports nothing of cellbench.

To add a kind, add one line to `CROP_KINDS` (a new region also needs its bits in
`REGION_BITS`).

Regions, by the bits of the store's masks (``/<kind>/masks``, one uint8 per pixel):

- ``cell``: bit 1 (`MASK_CELL`, this cell)
- ``nucleus``: bit 2 (`MASK_NUCLEUS`, its nucleus)
- ``cytoplasm``: bit 1 without bit 2 (the cell minus its nucleus)
- ``none``: the whole window, unmasked

Bit 4 (`MASK_OTHER_CELL`) marks any other cell in the window; no region uses it.

Examples
--------
>>> CROP_KINDS["nuclear"].region, CROP_KINDS["nuclear"].size_px
('nucleus', 60)
>>> background_kinds(["masked"])
['bg_original', 'bg_masked']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Region = Literal["cell", "nucleus", "cytoplasm", "none"]
Centre = Literal["cell", "nucleus"]

MASK_CELL = 1  # this cell
MASK_NUCLEUS = 2  # its nucleus
MASK_OTHER_CELL = 4  # any other cell in the window (to find background pixels)

# A pixel is in a region when its mask has every bit of the first value and none of the second.
REGION_BITS: dict[str, tuple[int, int]] = {
    "cell": (MASK_CELL, 0),
    "nucleus": (MASK_NUCLEUS, 0),
    "cytoplasm": (MASK_CELL, MASK_NUCLEUS),
}


@dataclass(frozen=True)
class CropKindInfo:
    """What one crop kind keeps, where it is centred, and its default side.

    Parameters
    ----------
    region : {"cell", "nucleus", "cytoplasm", "none"}
        The pixels kept by default; ``none``: unmasked.
    centred_on : {"cell", "nucleus"}
        Whose rounded centroid the window is centred on.
    size_px : int or None
        Default side of the window; None where the side comes from elsewhere (the
        background experiments' ``size_px``, the pre-cut files).
    switchable : bool
        Whether the config's ``masked`` may switch masking: off keeps the whole window, on
        keeps `masked_region`.
    """

    region: Region
    centred_on: Centre
    size_px: int | None
    switchable: bool

    @property
    def masked(self) -> bool:
        """Whether the kind is masked by default."""
        return self.region != "none"

    @property
    def masked_region(self) -> str:
        """The region kept when masked: the kind's own, or, for an unmasked kind, its centre."""
        return self.region if self.masked else self.centred_on


# The kinds of ``crops.kinds``; defaults of the nucleocentric workflow (192 px whole cells,
# 60 px nuclear crops).
CROP_KINDS: dict[str, CropKindInfo] = {
    "whole_cell": CropKindInfo("cell", "cell", 192, switchable=True),
    "nuclear": CropKindInfo("nucleus", "nucleus", 60, switchable=True),
    "nucleocentric": CropKindInfo("none", "nucleus", 60, switchable=True),
    "cytoplasm": CropKindInfo("cytoplasm", "cell", 192, switchable=False),
}

# The background-confound experiments (``crops.background``): unmasked cell-centred windows,
# ``bg_original`` unchanged and one ``bg_<experiment>`` per experiment.
BACKGROUND = CropKindInfo("none", "cell", None, switchable=False)
BACKGROUND_ORIGINAL = "original"

# Crops that arrived cut (``data.input.source: crops``): kept whole, centred by their maker.
PRECUT = "precut"
PRECUT_INFO = CropKindInfo("none", "cell", None, switchable=False)


def background_kind(experiment: str) -> str:
    """The store kind of a background experiment, e.g. ``masked`` -> ``bg_masked``."""
    return f"bg_{experiment}"


def background_kinds(experiments: Iterable[str]) -> list[str]:
    """The store kinds of the background experiments: ``bg_original``, then one each."""
    return [background_kind(e) for e in (BACKGROUND_ORIGINAL, *experiments)]


def kind_info(kind: str) -> CropKindInfo:
    """The declaration of any store kind: of `CROP_KINDS`, a background experiment or pre-cut.

    Raises
    ------
    ValueError
        For an unknown kind, naming the valid ones.
    """
    if kind in CROP_KINDS:
        return CROP_KINDS[kind]
    if kind == PRECUT:
        return PRECUT_INFO
    if kind.startswith(background_kind("")):
        return BACKGROUND
    raise ValueError(
        f"unknown crop kind {kind!r}; valid kinds: {list(CROP_KINDS)}, {PRECUT!r}, or "
        f"{background_kind('<experiment>')!r}"
    )
