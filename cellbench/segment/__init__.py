"""Segmentation of cells and nuclei behind one interface.

`Segmenter(params)` loads the backends' models once (per task, i.e. per plate); calling
`segmenter.segment_fields(images, channels)` segments a batch of (C, Y, X) fields. Backends,
one module each with the same function names: `classical` (nuclei and cells), `stardist`
(nuclei), `cellpose` (nuclei and cells). Each exports ``load_model(params)``, and
``find_nuclei(model, images, params)`` and/or ``find_cells(model, signals, nuclei_signals,
nuclei, params)``, and ``BATCH_FIELDS``, the fields it is best given per call (a batch
costs the memory of that many fields: 1 unless the backend batches). Shared steps live here:
percentile normalisation and median filter before, pairing each cell with the nucleus it
overlaps most, area filters and border clearing after.

Examples
--------
>>> segmenter = Segmenter(config.segmentation)  # doctest: +SKIP
>>> channels = ["DNA", "tubulin", "actin"]
>>> [(cells, nuclei)] = segmenter.segment_fields([image], channels)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import logging

import numpy as np

from cellbench.config import SegmentationConfig
from cellbench.errors import CellbenchError
from cellbench.segment.objects import filter_by_area, finish, nuclei_as_cells, pair_nuclei
from cellbench.segment.preprocess import median_filter, normalise

log = logging.getLogger(__name__)

_BACKENDS = {"classical": "classical", "stardist": "stardist", "cellpose": "cellpose"}


def backend(method: str):
    """The module of a segmentation method (imported on first use: heavy libraries)."""
    return importlib.import_module(f"cellbench.segment.{_BACKENDS[method]}")


class Segmenter:
    """Loaded segmentation models and the settings to apply them with."""

    def __init__(self, params: SegmentationConfig) -> None:
        self.params = params
        self.nuclei_backend = backend(params.nuclei.method)
        self.nuclei_model = self.nuclei_backend.load_model(params.nuclei)
        self.cells_backend = None
        self.cells_model = None
        if params.cells.method != "none":
            self.cells_backend = backend(params.cells.method)
            self.cells_model = self.cells_backend.load_model(params.cells)

    @property
    def batch_fields(self) -> int:
        """Fields to pass per `segment_fields` call: the largest batch its backends use."""
        backends = [b for b in (self.nuclei_backend, self.cells_backend) if b is not None]
        return max(b.BATCH_FIELDS for b in backends)

    def segment_fields(
        self, images: list[np.ndarray], channels: list[str]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Segment a batch of (C, Y, X) fields whose channels are named `channels`.

        Returns
        -------
        list of (cells, nuclei)
            (Y, X) int32 label images per field, renumbered 1..N; a nucleus carries its cell's
            label.
        """
        p = self.params
        nucleus_signals = [self._prepare(image, channels, [p.nucleus_channel]) for image in images]
        nuclei = self.nuclei_backend.find_nuclei(self.nuclei_model, nucleus_signals, p.nuclei)
        nuclei = [filter_by_area(n, p.min_nucleus_area_px, p.max_nucleus_area_px) for n in nuclei]
        if self.cells_backend is None:
            pairs = [nuclei_as_cells(n) for n in nuclei]
        else:
            cell_channels = p.cell_channels or [c for c in channels if c != p.nucleus_channel]
            signals = [
                self._prepare(image, channels, cell_channels or [p.nucleus_channel])
                for image in images
            ]
            cells = self.cells_backend.find_cells(
                self.cells_model, signals, nucleus_signals, nuclei, p.cells
            )
            pairs = [pair_nuclei(c, n) for c, n in zip(cells, nuclei, strict=True)]
        return [
            finish(
                c,
                n,
                remove_border_objects=p.remove_border_objects,
                min_cell_area_px=p.min_cell_area_px,
                max_cell_area_px=p.max_cell_area_px,
            )
            for c, n in pairs
        ]

    def _prepare(self, image: np.ndarray, channels: list[str], names: list[str]) -> np.ndarray:
        """The mean of the named channels, each median-filtered and percentile-normalised."""
        missing = [name for name in names if name not in channels]
        if missing:
            raise CellbenchError(f"segmentation channel(s) {missing} not in {channels}")
        p = self.params
        prepared = [
            normalise(
                median_filter(image[channels.index(name)], p.median_filter_px), p.pmin, p.pmax
            )
            for name in names
        ]
        return np.mean(prepared, axis=0).astype(np.float32)


def segment_field(
    image: np.ndarray, channels: list[str], params: SegmentationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Segment one (C, Y, X) field into (cells, nuclei); loads the models for this call only."""
    return Segmenter(params).segment_fields([image], channels)[0]
