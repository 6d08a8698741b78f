"""Join a CellProfiler export to a plate's fields and segmented cells (``features.source``).

An image set of the export is a field of the plate when one of its ``FileName_*`` values is
the name of one of the field's files (and, for a multi-position ND2, its ``Series_*`` value is
the field's position); an export without file names (a CytoTable Parquet file keeps only
``Image_Metadata_Well`` and the like) joins by ``Metadata_Well`` and ``Metadata_Site``.

A CellProfiler cell is a segmented cell when their centroids lie within
``features.tables.tolerance_px`` of each other (``match: centroid``: pairs are taken nearest
first, each cell and each object at most once), or when its object number is the cell's label
(``match: label``, for an export that measured cellbench's own masks). Each matched cell gets
the object's features and its image set's ``Image_*`` features; a segmented cell without a
match, and an object without a cell, are left out and counted (`ImportCounts`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from cellbench.config import CellProfilerTables
from cellbench.data.fields import Field
from cellbench.errors import CellbenchError
from cellbench.features.cp_tables import CellProfilerExport, read_export
from cellbench.features.measure import metadata_column

log = logging.getLogger(__name__)

OBJECT_COLUMN = metadata_column("CellProfiler_ObjectNumber")
IMAGE_COLUMN = metadata_column("CellProfiler_ImageNumber")
DISTANCE_COLUMN = metadata_column("CellProfiler_distance_px")


@dataclass
class ImportCounts:
    """What joined and what did not, over a plate (the features task's status records it)."""

    image_sets: int = 0  # image sets of the plate's fields
    fields_without_image_set: int = 0
    objects: int = 0  # CellProfiler cells in those image sets
    matched: int = 0
    objects_without_cell: int = 0
    cells_without_object: int = 0
    distances_px: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        """The counts, with the median and largest centroid distance of the matches (px)."""
        out = {k: v for k, v in asdict(self).items() if k != "distances_px"}
        if self.distances_px:
            out["median_distance_px"] = round(float(np.median(self.distances_px)), 3)
            out["max_distance_px"] = round(float(np.max(self.distances_px)), 3)
        return out


class PlateExport:
    """One plate's image sets of a CellProfiler export, joined to segmented cells per field.

    Parameters
    ----------
    settings : CellProfilerTables
        ``features.tables``.
    plate : str
        The plate's name (for ``{plate}`` in the path, and in messages).
    fields : list of Field
        The plate's fields.
    regions : list of str
        ``features.regions``: the regions whose features are kept.

    Raises
    ------
    CellbenchError
        No image set of the export is a field of the plate (the message shows file names of
        both, so a wrong path or naming is seen at once).
    """

    def __init__(
        self,
        settings: CellProfilerTables,
        plate: str,
        fields: list[Field],
        regions: list[str],
    ) -> None:
        self.settings = settings
        self.export = read_export(settings.path_for(plate), dict(settings.objects))
        self.counts = ImportCounts()
        self._columns = _kept_columns(self.export, regions, settings.image_features)
        self._image_of = _image_sets_of_fields(self.export, fields, plate)
        self.counts.image_sets = len(set(self._image_of.values()))
        self.counts.fields_without_image_set = len(fields) - len(self._image_of)
        by_image = self.export.cells.groupby("ImageNumber", sort=False).indices
        none = np.zeros(0, np.intp)
        self._rows = {image: by_image.get(image, none) for image in self._image_of.values()}
        self.counts.objects = int(sum(len(rows) for rows in self._rows.values()))

    def field_rows(self, item: Field, cells: np.ndarray, nuclei: np.ndarray) -> pd.DataFrame:
        """The matched cells of one field: ``label``, the CellProfiler ids, then the features.

        Parameters
        ----------
        item : Field
            The field.
        cells, nuclei : (Y, X) ndarray of int
            Its label images (a nucleus carries its cell's label).

        Returns
        -------
        DataFrame
            One row per matched cell, by ascending label.
        """
        labels, centres = _centroids(cells if self.export.anchor == "Cells" else nuclei)
        image = self._image_of.get(item.name)
        rows = self._rows.get(image, np.zeros(0, np.intp)) if image is not None else []
        objects = self.export.cells.iloc[rows]
        if self.settings.match == "label":
            ours, theirs, distances = _match_labels(labels, objects["ObjectNumber"].to_numpy())
        else:
            theirs_xy = objects[["Center_X", "Center_Y"]].to_numpy(np.float64)
            tolerance = self.settings.tolerance_px
            ours, theirs, distances = match_centroids(centres, theirs_xy, tolerance)
        self._count(len(labels), len(objects), distances)
        order = np.argsort(labels[ours], kind="stable")
        ours, theirs, distances = ours[order], theirs[order], distances[order]
        matched = objects.iloc[theirs]
        table = pd.DataFrame(
            {
                "label": labels[ours],
                IMAGE_COLUMN: matched["ImageNumber"].to_numpy(),
                OBJECT_COLUMN: matched["ObjectNumber"].to_numpy(),
                DISTANCE_COLUMN: distances,
            }
        )
        cell_columns, image_columns = self._columns
        features = matched[cell_columns].reset_index(drop=True)
        parts = [table, features]
        if image_columns:
            values = self.export.images.loc[[image] * len(table), image_columns]
            parts.append(values.reset_index(drop=True))
        return pd.concat(parts, axis=1)

    def _count(self, n_cells: int, n_objects: int, distances: np.ndarray) -> None:
        self.counts.matched += len(distances)
        self.counts.objects_without_cell += n_objects - len(distances)
        self.counts.cells_without_object += n_cells - len(distances)
        self.counts.distances_px.extend(distances.tolist())

    def check_matched(self, plate: str) -> dict:
        """The counts; CellbenchError when the plate's objects joined no cell at all."""
        counts = self.counts.summary()
        if self.counts.objects and not self.counts.matched:
            how = (
                "object numbers equal to no cell label"
                if self.settings.match == "label"
                else f"no centroid within tolerance_px {self.settings.tolerance_px} of a cell"
            )
            raise CellbenchError(
                f"features.tables: the {self.counts.objects} CellProfiler cells of plate "
                f"{plate} ({self.export.path}) joined no segmented cell: {how}"
            )
        share = self.counts.matched / max(self.counts.objects, 1)
        if share < 0.5 and self.counts.objects:
            log.warning("plate %s: only %.0f%% of CellProfiler's cells joined", plate, 100 * share)
        log.info("plate %s: CellProfiler import %s", plate, counts)
        return counts


def match_centroids(
    ours: np.ndarray, theirs: np.ndarray, tolerance_px: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair two sets of centroids one to one, nearest pairs first, within a tolerance.

    Parameters
    ----------
    ours, theirs : (N, 2) and (M, 2) ndarray
        Centroids (x, y) in px.
    tolerance_px : float
        The largest distance of a pair.

    Returns
    -------
    (our_index, their_index, distance_px)
        Three arrays of the pairs' length, by ascending `our_index`.

    Examples
    --------
    >>> match_centroids(np.array([[0.0, 0], [10, 0]]), np.array([[9.0, 0], [1, 0], [50, 0]]), 2)
    (array([0, 1]), array([1, 0]), array([1., 1.]))
    """
    empty = np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
    if len(ours) == 0 or len(theirs) == 0:
        return empty
    k = min(4, len(ours))
    distances, neighbours = cKDTree(ours).query(theirs, k=k, distance_upper_bound=tolerance_px)
    distances, neighbours = distances.reshape(len(theirs), k), neighbours.reshape(len(theirs), k)
    their_index = np.repeat(np.arange(len(theirs)), k)
    close = np.isfinite(distances.ravel())
    pairs = np.column_stack([neighbours.ravel()[close], their_index[close]])
    pair_distances = distances.ravel()[close]
    taken_ours, taken_theirs, kept = set(), set(), []
    for i in np.argsort(pair_distances, kind="stable"):
        mine, other = int(pairs[i, 0]), int(pairs[i, 1])
        if mine not in taken_ours and other not in taken_theirs:
            taken_ours.add(mine)
            taken_theirs.add(other)
            kept.append(i)
    if not kept:
        return empty
    kept = np.asarray(kept)
    kept = kept[np.argsort(pairs[kept, 0], kind="stable")]
    return pairs[kept, 0], pairs[kept, 1], pair_distances[kept]


def _match_labels(labels: np.ndarray, numbers: np.ndarray):
    """Objects whose number is a cell label (distance 0)."""
    position = {int(label): i for i, label in enumerate(labels)}
    pairs = [(position[int(n)], j) for j, n in enumerate(numbers) if int(n) in position]
    ours = np.array([p[0] for p in pairs], np.intp)
    theirs = np.array([p[1] for p in pairs], np.intp)
    return ours, theirs, np.zeros(len(pairs))


def _centroids(label_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The labels of a label image and their centroids (x, y) in px, as CellProfiler's."""
    ys, xs = np.nonzero(label_image)
    values = label_image[ys, xs].astype(np.intp)
    labels = np.unique(values)
    if len(labels) == 0:
        return labels.astype(np.int64), np.zeros((0, 2))
    index = np.searchsorted(labels, values)
    counts = np.bincount(index, minlength=len(labels))
    x = np.bincount(index, weights=xs, minlength=len(labels)) / counts
    y = np.bincount(index, weights=ys, minlength=len(labels)) / counts
    return labels.astype(np.int64), np.column_stack([x, y])


def _kept_columns(
    export: CellProfilerExport, regions: list[str], image_features: bool
) -> tuple[list[str], list[str]]:
    """The cell feature columns of `regions`, and the ``Image_*`` columns when wanted."""
    cell_columns = [c for c in export.feature_columns if c.split("_", 1)[0] in regions]
    image_columns = [c for c in export.images.columns if c.startswith("Image_")]
    return cell_columns, image_columns if image_features else []


def _image_sets_of_fields(export: CellProfilerExport, fields: list[Field], plate: str) -> dict:
    """Field name -> ImageNumber of its image set; CellbenchError when no field has one."""
    images = export.images
    names = [c for c in images.columns if c.startswith("FileName_")]
    if names:
        found = _by_file_names(images, names, fields)
    elif {"Metadata_Well", "Metadata_Site"} <= set(images.columns):
        found = _by_well_and_site(images, fields)
    else:
        raise CellbenchError(
            f"features.tables: {export.path} names no image file (FileName_*) and no "
            "Metadata_Well and Metadata_Site: the image sets cannot be joined to fields"
        )
    if not found:
        theirs = images[names[0]].head(3).tolist() if names else images.index[:3].tolist()
        ours = [f.files[0].name for f in fields[:3]]
        raise CellbenchError(
            f"features.tables: none of the {len(images)} image sets of {export.path} is a "
            f"field of plate {plate} (CellProfiler's files, e.g. {theirs}; the plate's, e.g. "
            f"{ours})"
        )
    return found


def _by_file_names(images: pd.DataFrame, names: list[str], fields: list[Field]) -> dict:
    """Join on any file of a field, and on its position in a multi-position file."""
    field_of: dict[tuple[str, int | None], str] = {}
    for item in fields:
        for path in item.files:
            field_of[(Path(path).name, item.position)] = item.name
    found: dict[str, int] = {}
    for image, row in images.iterrows():
        for name in names:
            series = row.get(f"Series_{name[len('FileName_') :]}")
            position = None if series is None or pd.isna(series) else int(series)
            item = field_of.get((str(row[name]), position))
            if item is None and position == 0:  # a single-image file has series 0
                item = field_of.get((str(row[name]), None))
            if item is not None:
                if item in found and found[item] != image:
                    log.warning("field %s is image sets %s and %s", item, found[item], image)
                found.setdefault(item, image)
                break
    return found


def _by_well_and_site(images: pd.DataFrame, fields: list[Field]) -> dict:
    """Join on ``Metadata_Well`` and ``Metadata_Site`` (sites compared as integers)."""
    field_of = {(f.well.upper(), _site(f.site)): f.name for f in fields}
    found: dict[str, int] = {}
    for image, row in images.iterrows():
        item = field_of.get((str(row["Metadata_Well"]).upper(), _site(row["Metadata_Site"])))
        if item is not None:
            found.setdefault(item, image)
    return found


def _site(value) -> int | str:
    text = str(value).strip().lstrip("sS")
    return int(text) if text.isdigit() else text
