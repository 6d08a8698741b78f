"""The crops section: which crop kinds (and variants) are cut into each plate's crop store.

The kinds themselves (region kept, centre, default side) are declared in
`cellbench.config.crop_kinds`; this section chooses among them, sizes and masks them, and
sets the background-confound experiments.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from cellbench.config.base import StrictModel, name_type
from cellbench.config.crop_kinds import CROP_KINDS, PRECUT, background_kind

CropKindName = Literal[tuple(CROP_KINDS)]  # the registry's kinds (cellbench.config.crop_kinds)
CropName = name_type("crop kind")  # a store's name of its crops: a registry kind or the user's


class CropKind(StrictModel):
    """One kind of single-cell crop; unset values take the kind's defaults.

    The entry's name under ``crops.kinds`` names the crops in the store and in models'
    ``crop_kind``; `kind` says how they are cut. Unset, the name must be a registry kind
    (``whole_cell: {masked: false}``); set, one store holds several variants of one kind
    (``whole_cell_unmasked: {kind: whole_cell, masked: false}`` beside ``whole_cell``).
    """

    kind: CropKindName | None = Field(
        None, description="the registry kind cut (region, centre); null: the entry's name"
    )
    size_px: int | None = Field(None, ge=4, description="side of the square crop")
    masked: bool | None = Field(
        None,
        description="zero the pixels outside the kind's region (cell, nucleus or cytoplasm); "
        "only for kinds whose masking can be switched",
    )

    def cut_kind(self, name: str) -> str:
        """The registry kind these crops are cut as: `kind`, or the entry's `name`."""
        return self.kind or name


BackgroundKindName = Literal["masked", "swap_same", "swap_diff", "cell_free"]


class PairwiseStudy(StrictModel):
    """The background study's protocol on the experiment kinds (in the aggregate stage).

    Crops are flattened at `size_px`, standardised and reduced to `components` PCA
    components; every pair of classes gets a `folds`-fold cross-validated linear-SVM accuracy.
    """

    size_px: int = Field(16, ge=4)
    components: int = Field(50, ge=1)
    folds: int = Field(5, ge=2)
    max_per_class: int | None = Field(1000, ge=1, description="cells per class, at most")


class BackgroundConfig(StrictModel):
    """Background-confound experiments: the cell kept, its surroundings changed.

    Each listed experiment becomes a store kind ``bg_<experiment>`` cut from unmasked windows
    centred on the cell, beside ``bg_original`` (the unchanged windows): ``masked`` zeroes
    everything outside the cell; ``swap_same`` / ``swap_diff`` paste the cell onto the window of
    another cell of the same / another class whose own cell was removed; ``cell_free`` pastes
    it onto a window of a field that holds no cell. The donor is recorded in ``/cells``.
    """

    experiments: list[BackgroundKindName] = Field(min_length=1)
    size_px: int = Field(64, ge=8, description="side of the windows")
    seed: int = 0
    windows_per_field: int = Field(4, ge=1, description="cell-free windows kept per field")
    study: PairwiseStudy | None = Field(
        default_factory=lambda: PairwiseStudy(),
        description="the aggregate stage's pairwise-SVM study of the kinds; null: none",
    )


class CropsConfig(StrictModel):
    """Which crops to cut into the per-plate HDF5 crop store."""

    kinds: dict[CropName, CropKind] = Field(
        default_factory=lambda: {"whole_cell": CropKind()},
        min_length=1,
        description="crops cut into the store, by name (a registry kind, or any name with `kind:`)",
    )
    border: Literal["pad", "shift", "drop"] = Field(
        "pad",
        description="windows past the field edge: pad with zeros (the cell stays centred), "
        "shift the window inside the field, or drop the cell",
    )
    background: BackgroundConfig | None = None
    compression: Literal["blosc-lz4", "blosc2-lz4", "lzf", "gzip", "none"] = Field(
        "blosc-lz4", description="codec of the crop store (see tests/benchmarks)"
    )

    @field_validator("kinds")
    @classmethod
    def _check_kinds(cls, kinds: dict[str, CropKind]) -> dict[str, CropKind]:
        for name, entry in kinds.items():
            _check_crop_name(name)
            kind = entry.cut_kind(name)
            if kind not in CROP_KINDS:
                raise ValueError(
                    f"{name}: not a crop kind ({list(CROP_KINDS)}); name one with "
                    f"`{name}: {{kind: <kind>, ...}}`"
                )
            info = CROP_KINDS[kind]
            if entry.masked is not None and entry.masked != info.masked and not info.switchable:
                switchable = [k for k, i in CROP_KINDS.items() if i.switchable]
                raise ValueError(
                    f"{name}.masked: {kind} crops are always "
                    f"{'masked' if info.masked else 'unmasked'} (got {entry.masked}); remove "
                    f"`masked`, or use a kind whose masking can be switched: {switchable}"
                )
        return kinds


def _check_crop_name(name: str) -> None:
    """Refuse store names that other crops or tables take (``cells``, ``precut``, ``bg_*``)."""
    if name in ("cells", PRECUT) or name.startswith(background_kind("")):
        raise ValueError(
            f"{name}: this name is taken (the store's /cells table, pre-cut crops, or the "
            "background experiments' bg_* kinds); choose another"
        )
