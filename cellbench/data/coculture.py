"""Deterministic synthetic co-culture plate: two cell types, alone and mixed, with markers.

The nucleocentric study grows astrocytes and SH-SY5Y neuroblastoma cells apart (mono-culture
wells, whose type the layout gives) and together (co-culture wells, whose cells' types only a
second staining round tells: EdU was given to one type before mixing, BrdU to the other). This
plate imitates it: every well's ``culture`` in ``layout.csv`` is ``astro``, ``neuron`` or
``coculture`` (cycled over wells in row-major order), every field has the stains DNA, tubulin
and actin plus the nuclear markers ``EdU`` and ``BrdU``, and ``truth/cells.csv`` holds every
cell's true ``cell_type``.

The two types differ as the study's do, with overlapping distributions: astrocytes are large,
flat cells with large, dim, round nuclei and much tubulin; the neuronal cells are small, with
small, bright, elongated nuclei and much actin. Astrocytes carry EdU, neuronal cells BrdU; a
share of cells (`UNLABELLED_FRACTION`) took up neither marker, so marker rules leave them
undefined, as in the study. The study's rules (``EdU_mean > 600 and BrdU_mean < 300`` for an
astrocyte, the reverse for a neuronal cell) recover the types of the labelled cells.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.data import synthetic as syn

CULTURES: tuple[str, ...] = ("astro", "neuron", "coculture")
CELL_TYPES: tuple[str, ...] = ("astro", "neuron")
MARKERS: tuple[str, ...] = ("EdU", "BrdU")
CHANNELS: tuple[str, ...] = ("DNA", "tubulin", "actin", *MARKERS)
UNLABELLED_FRACTION = 0.1  # cells that took up neither marker
# per type: nucleus radius (px), minor/major ratio, DNA per px factor, cell radius (px),
# tubulin and actin levels (photons), the marker it carries (index into MARKERS)
_TYPES = {
    "astro": {"nucleus": 9.5, "ratio": 0.85, "dna": 1.0, "cell": 30.0, "tub": 1900.0,
              "act": 800.0, "marker": 0},
    "neuron": {"nucleus": 8.0, "ratio": 0.72, "dna": 0.8, "cell": 18.0, "tub": 1200.0,
               "act": 1500.0, "marker": 1},
}  # fmt: skip
_MARKER_LEVEL, _MARKER_SD = 1500.0, 0.35  # photons per nuclear px of a labelled cell
_MARKER_TRACE = 15.0  # photons per nuclear px of a marker the cell did not take up
_BACKGROUND = np.array([80.0, 120.0, 100.0, 60.0, 60.0])


def _per_type(types: np.ndarray, key: str) -> np.ndarray:
    """The value of one `_TYPES` entry for each cell of `types`."""
    return np.array([_TYPES[t][key] for t in types], dtype=float)


def _draw_typed_cells(rng: np.random.Generator, types: np.ndarray) -> dict[str, np.ndarray]:
    """Per-cell generating parameters (photons, px, rad) of cells of the given types."""
    n = len(types)
    radius = _per_type(types, "nucleus") * rng.lognormal(0, 0.13, n)
    ratio = np.clip(rng.normal(_per_type(types, "ratio"), 0.08, n), 0.45, 0.98)
    dna_content = 2400.0 * np.pi * syn._NUCLEUS_RADIUS_PX**2 * rng.lognormal(0, 0.18, n)
    labelled = rng.random(n) >= UNLABELLED_FRACTION
    carried = _per_type(types, "marker").astype(int)
    levels = _MARKER_LEVEL * rng.lognormal(0, _MARKER_SD, (len(MARKERS), n))
    trace = _MARKER_TRACE * rng.lognormal(0, 0.3, (len(MARKERS), n))
    takes = (np.arange(len(MARKERS))[:, None] == carried[None]) & labelled[None]
    markers = np.where(takes, levels, trace)
    return {
        "nucleus_radius_px": radius,
        "nucleus_major_px": radius / np.sqrt(ratio),
        "nucleus_minor_px": radius * np.sqrt(ratio),
        "eccentricity": np.sqrt(1 - ratio**2),
        "nucleus_angle_rad": rng.uniform(0, np.pi, n),
        "cell_radius_px": _per_type(types, "cell") * rng.lognormal(0, 0.15, n),
        "dna_per_px": _per_type(types, "dna") * dna_content / (np.pi * radius**2),
        "tubulin_level": _per_type(types, "tub") * rng.lognormal(0, 0.25, n),
        "tubulin_nuclear_fraction": np.clip(rng.normal(0.25, 0.1, n), 0.02, 1),
        "tubulin_puncta": np.clip(rng.normal(0.15, 0.15, n), 0.0, 0.95),
        "actin_level": _per_type(types, "act") * rng.lognormal(0, 0.25, n),
        "actin_fibre_angle_rad": rng.uniform(0, np.pi, n),
        "marker_level": np.zeros(n),  # the plain plate's marker; this plate has two
        **{f"{name}_level": markers[k] for k, name in enumerate(MARKERS)},
        "labelled": labelled,
        "cell_type": types.astype(object),
    }


def _cell_types(rng: np.random.Generator, culture: str, n: int) -> np.ndarray:
    """The types of `n` cells of a well of `culture` (a co-culture mixes them half and half)."""
    if culture == "coculture":
        return np.asarray(CELL_TYPES, dtype=object)[rng.integers(0, len(CELL_TYPES), n)]
    return np.full(n, culture, dtype=object)


def _make_field(
    rng: np.random.Generator, shape: tuple[int, int], n_mean: int, culture: str, optics: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """One field's image (5, Y, X), cell labels, nucleus labels and per-cell table."""
    cells = _draw_typed_cells(rng, _cell_types(rng, culture, rng.poisson(n_mean)))
    centres = syn._place_nuclei(rng, cells["nucleus_major_px"], shape)
    placed = ~np.isnan(centres[:, 0])
    cells = {"centre_y_px": centres[placed, 0], "centre_x_px": centres[placed, 1]} | {
        key: value[placed] for key, value in cells.items()
    }
    cell_lab, nuc_lab, rel = syn._rasterise(cells, shape, rng)
    syn._drop_fragments(cell_lab, nuc_lab)
    kept = syn._keep_visible(cell_lab, nuc_lab, int(placed.sum()))
    cells = {key: value[kept] for key, value in cells.items()}
    stains = syn._expected_photons(cells, cell_lab, nuc_lab, rel, rng)[:3]
    in_nucleus = np.where(nuc_lab > 0, 1.0, 0.03)
    markers = [
        np.concatenate([[0.0], cells[f"{name}_level"]])[cell_lab] * in_nucleus for name in MARKERS
    ]
    photons = np.concatenate([stains, np.stack(markers)])
    image = syn._acquire(photons, *optics, rng, _BACKGROUND)
    table = pd.DataFrame({"label": np.arange(1, len(kept) + 1)} | cells)
    border = np.concatenate([cell_lab[[0, -1]].ravel(), cell_lab[:, [0, -1]].ravel()])
    table["cut_by_border"] = np.isin(table["label"], border)
    return image, cell_lab, nuc_lab, table


def _optics(seed: int, plate: str, shape: tuple[int, int], row: str, col: int) -> tuple:
    """(illumination (5, Y, X), gain (5,)) of a well: the plate's flat-field, the well's stain."""
    illumination = syn._illumination(syn._rng(seed, plate, 1), shape)
    illumination = np.concatenate([illumination, illumination[-1:]])  # both markers alike
    gain = syn._rng(seed, plate, 2, ord(row), col).lognormal(0, 0.05, len(CHANNELS))
    return illumination, gain


def write_coculture_plate(
    out_dir: Path,
    *,
    plate: str = "P1",
    rows: str = "AB",
    columns: Sequence[int] = (1, 2, 3, 4, 5, 6),
    sites: int = 3,
    field_shape: tuple[int, int] = (256, 256),
    cells_per_field: int = 25,
    seed: int = 0,
) -> Path:
    """Write one synthetic co-culture plate into `out_dir` (created if missing).

    Parameters
    ----------
    out_dir : Path
        Gets what `cellbench.data.synthetic.write_plate` writes, with fields of the five
        `CHANNELS`, a ``layout.csv`` of ``well, culture`` and a ``truth/cells.csv`` with each
        cell's ``cell_type``, ``EdU_level``, ``BrdU_level`` and ``labelled`` (took up its
        marker); ``plate.json`` last.
    plate, rows, columns, sites, field_shape, cells_per_field, seed
        As for `cellbench.data.synthetic.write_plate`; wells cycle through `CULTURES`.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ValueError
        On invalid arguments, or fewer than three wells.

    Examples
    --------
    >>> write_coculture_plate(tmp / "plate", rows="A", columns=(1, 2, 3))  # doctest: +SKIP
    """
    columns, shape = [operator.index(c) for c in columns], tuple(map(operator.index, field_shape))
    sites, cells_per_field, seed = map(operator.index, (sites, cells_per_field, seed))
    syn._check_args(rows, columns, sites, shape, cells_per_field, seed, list(CULTURES))
    wells = [(row, col) for row in rows for col in columns]
    layout = syn._assign_conditions(len(wells), CULTURES)
    out_dir = Path(out_dir)
    (out_dir / "plate.json").unlink(missing_ok=True)  # incomplete until rewritten
    for sub in ("fields", "truth"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    tables = []
    for (row, col), culture in zip(wells, layout, strict=True):
        optics = _optics(seed, plate, shape, row, col)
        for site in range(1, sites + 1):
            name = f"{row}-{col:02d}-{site:02d}"
            field_rng = syn._rng(seed, plate, 5, ord(row), col, site)
            image, cells, nuclei, table = _make_field(
                field_rng, shape, cells_per_field, culture, optics
            )
            syn._write_field(out_dir, name, image, cells, nuclei, list(CHANNELS))
            ids = {"field": name, "well": f"{row}{col:02d}", "site": site, "culture": culture}
            tables.append(pd.concat([pd.DataFrame(ids, index=table.index), table], axis=1))
    _write_tables(out_dir, tables, [f"{row}{col:02d}" for row, col in wells], layout)
    params = {"plate": plate, "design": "coculture", "rows": rows, "columns": columns}
    params |= {"sites": sites, "field_shape": list(shape), "cells_per_field": cells_per_field}
    params |= {"cultures": list(CULTURES), "seed": seed, "channel_names": list(CHANNELS)}
    (out_dir / "plate.json").write_text(json.dumps(params, indent=2) + "\n")
    return out_dir


def _write_tables(
    out_dir: Path, tables: list[pd.DataFrame], wells: list[str], layout: list[str]
) -> None:
    """Write ``truth/cells.csv`` (identifiers first) and ``layout.csv`` (well, culture)."""
    cells = pd.concat(tables, ignore_index=True).drop(columns="marker_level")
    first = ["field", "well", "site", "label", "culture", "cell_type"]
    cells = cells[first + [c for c in cells.columns if c not in first]]
    cells.to_csv(out_dir / "truth" / "cells.csv", index=False, float_format="%.6g")
    pd.DataFrame({"well": wells, "culture": layout}).to_csv(out_dir / "layout.csv", index=False)
