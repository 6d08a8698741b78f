"""Not-same-compound (NSC) nearest-neighbour accuracy of mechanism of action (BBBC021).

As in Ljosa et al. 2013 (J Biomol Screen 18:1321): cell or well profiles are averaged per well,
wells are reduced to one profile per treatment (compound at one concentration) by the median,
and each treatment is matched to its most cosine-similar treatment of a *different* compound.
NSC accuracy is the share of treatments whose neighbour has the same mechanism of action (MOA).
DMSO (the control) is left out. Leaving out the other concentrations of the same compound keeps
a model from scoring by recognising the compound instead of the mechanism.

    cellbench nsc --profiles BBBC021_feature_selected_mad_robustize.csv --json nsc.json
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.errors import CellbenchError

METADATA_PREFIX = "Metadata_"
REQUIRED = {
    "compound": "Metadata_Compound",
    "concentration": "Metadata_Concentration",
    "moa": "Metadata_moa",
}
WELL_KEYS = {"plate": "Metadata_Plate", "well": "Metadata_Well"}


@dataclass(frozen=True)
class NSCResult:
    """NSC accuracy with the match of every treatment (`neighbours`, one row per treatment)."""

    accuracy: float
    n_treatments: int
    n_compounds: int
    n_moas: int
    neighbours: pd.DataFrame


def profile_columns(table: pd.DataFrame) -> tuple[dict[str, str], list[str]]:
    """Find the metadata columns (names matched case-insensitively) and the feature columns.

    Returns
    -------
    roles : dict
        ``compound``, ``concentration``, ``moa`` and, when present, ``plate`` and ``well`` ->
        the column holding them.
    features : list of str
        Every column not starting with ``Metadata_``; all must be numeric.
    """
    by_lower = {str(c).lower(): c for c in table.columns}
    wanted = {**REQUIRED, **WELL_KEYS}
    roles = {role: by_lower[n.lower()] for role, n in wanted.items() if n.lower() in by_lower}
    missing = [name for role, name in REQUIRED.items() if role not in roles]
    metadata = [c for c in table.columns if str(c).startswith(METADATA_PREFIX)]
    if missing:
        raise CellbenchError(
            f"profile table lacks column(s) {missing}; its metadata columns are {metadata}"
        )
    blank = [roles[r] for r in REQUIRED if table[roles[r]].isna().any()]
    if blank:
        raise CellbenchError(f"column(s) {blank} have empty values; every row needs them")
    features = [c for c in table.columns if not str(c).startswith(METADATA_PREFIX)]
    if not features:
        raise CellbenchError("profile table has no feature columns (all start with 'Metadata_')")
    text = [c for c in features if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise CellbenchError(
            f"feature column(s) {text[:5]} are not numeric; prefix metadata with 'Metadata_'"
        )
    return roles, features


def read_profiles(path: str | Path) -> pd.DataFrame:
    """Read a CSV profile table and check its columns; errors name the file."""
    path = Path(path)
    try:
        table = pd.read_csv(path)
        profile_columns(table)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CellbenchError(f"cannot read profile table {path}: {exc}") from None
    except CellbenchError as exc:
        raise CellbenchError(f"{path}: {exc}") from None
    return table


def _flat(grouped: pd.DataFrame) -> pd.DataFrame:
    """A grouped result with its index as leading columns, in one block (no fragmentation)."""
    values = pd.DataFrame(grouped.to_numpy(), columns=grouped.columns)
    return pd.concat([grouped.index.to_frame(index=False), values], axis=1)


def treatment_profiles(table: pd.DataFrame, *, control: str = "DMSO") -> pd.DataFrame:
    """One profile per treatment: mean per well, then median over the treatment's wells.

    Parameters
    ----------
    table : DataFrame
        Profiles of cells or wells (see `profile_columns`). Without plate and well columns each
        row is taken as one well.
    control : str
        Compound left out, matched case-insensitively.

    Returns
    -------
    DataFrame
        Columns ``compound``, ``concentration``, ``moa``, ``n_wells`` and the features, one row
        per treatment, sorted by compound and concentration.
    """
    roles, features = profile_columns(table)
    keys = [roles["compound"], roles["concentration"], roles["moa"]]
    treated = table[table[roles["compound"]].astype(str).str.lower() != control.lower()]
    if "plate" in roles and "well" in roles:
        per_well = [roles["plate"], roles["well"], *keys]
        treated = _flat(treated.groupby(per_well, sort=False)[features].mean())
    grouped = treated.groupby(keys[:2], sort=True)
    moas = grouped[roles["moa"]].agg(lambda s: sorted(set(s.astype(str))))
    mixed = moas[moas.map(len) > 1]
    if len(mixed):
        raise CellbenchError(f"treatment(s) with more than one MOA: {mixed.head(3).to_dict()}")
    profiles = _flat(grouped[features].median())
    profiles = profiles.rename(columns={keys[0]: "compound", keys[1]: "concentration"})
    profiles.insert(2, "moa", moas.map(lambda m: m[0]).to_numpy())
    profiles.insert(3, "n_wells", grouped.size().to_numpy())
    empty = profiles[features].columns[profiles[features].isna().any()].tolist()
    if empty:
        raise CellbenchError(f"feature(s) {empty[:5]} are missing for a whole treatment")
    return profiles


def nearest_other_compound(profiles: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The most cosine-similar treatment of another compound, for every treatment.

    Ties go to the first treatment in table order.
    """
    x = profiles[features].to_numpy(dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise CellbenchError("a treatment profile is all zero: cosine similarity is undefined")
    unit = x / norms
    sims = unit @ unit.T
    compounds = profiles["compound"].astype(str).to_numpy()
    sims[compounds[:, None] == compounds[None, :]] = -np.inf
    nearest = sims.argmax(axis=1)
    match = profiles.iloc[nearest].reset_index(drop=True)
    table = profiles[["compound", "concentration", "moa", "n_wells"]].copy()
    table["neighbour_compound"] = match["compound"].to_numpy()
    table["neighbour_concentration"] = match["concentration"].to_numpy()
    table["neighbour_moa"] = match["moa"].to_numpy()
    table["similarity"] = sims[np.arange(len(sims)), nearest]
    table["correct"] = table["moa"] == table["neighbour_moa"]
    return table


def nsc_accuracy(table: pd.DataFrame, *, control: str = "DMSO") -> NSCResult:
    """NSC 1-nearest-neighbour MOA accuracy of a profile table.

    Parameters
    ----------
    table : DataFrame
        Cell or well profiles with ``Metadata_Compound``, ``Metadata_Concentration``,
        ``Metadata_moa`` (optionally ``Metadata_Plate``, ``Metadata_Well``) and numeric
        feature columns.
    control : str
        Compound left out (case-insensitive).

    Returns
    -------
    NSCResult
    """
    _, features = profile_columns(table)
    profiles = treatment_profiles(table, control=control)
    if profiles["compound"].nunique() < 2:
        raise CellbenchError("NSC needs treatments of at least 2 compounds besides the control")
    neighbours = nearest_other_compound(profiles, features)
    return NSCResult(
        accuracy=float(neighbours["correct"].mean()),
        n_treatments=len(neighbours),
        n_compounds=int(neighbours["compound"].nunique()),
        n_moas=int(neighbours["moa"].nunique()),
        neighbours=neighbours,
    )


def _summary(result: NSCResult, profiles: Path) -> dict:
    return {
        "profiles": str(profiles),
        "accuracy": result.accuracy,
        "n_treatments": result.n_treatments,
        "n_compounds": result.n_compounds,
        "n_moas": result.n_moas,
        "neighbours": result.neighbours.to_dict(orient="records"),
    }


def _nsc_of_file(path: Path, *, control: str) -> NSCResult:
    table = read_profiles(path)
    try:
        return nsc_accuracy(table, control=control)
    except CellbenchError as exc:
        raise CellbenchError(f"{path}: {exc}") from None


def build_nsc_parser() -> argparse.ArgumentParser:
    """The parser of ``cellbench nsc``."""
    parser = argparse.ArgumentParser(
        prog="cellbench nsc",
        description="Not-same-compound 1-NN MOA accuracy of a per-well or per-cell profile table.",
    )
    parser.add_argument("--profiles", required=True, type=Path, help="CSV profile table")
    parser.add_argument("--json", type=Path, help="also write the result, with neighbours, here")
    parser.add_argument("--control", default="DMSO", help="compound left out (default DMSO)")
    return parser


def nsc_command(argv: list[str] | None = None) -> int:
    """Run ``cellbench nsc``; exit status 0 on success, 2 on bad input."""
    from cellbench.io.atomic import write_json

    args = build_nsc_parser().parse_args(argv)
    try:
        result = _nsc_of_file(args.profiles, control=args.control)
    except CellbenchError as exc:
        print(f"cellbench nsc: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"NSC accuracy {result.accuracy:.3f} over {result.n_treatments} treatments "
        f"({result.n_compounds} compounds, {result.n_moas} MOAs)"
    )
    if args.json:
        write_json(args.json, _summary(result, args.profiles))
        print(f"wrote {args.json}")
    return 0
