"""StarDist and Cellpose through their real code paths, with tiny models trained here.

The models are trained for seconds, so the tests check shapes, dtypes and label validity,
not accuracy.
"""

import numpy as np
import pytest

from cellbench.config import SegmentationConfig
from cellbench.errors import CellbenchError
from cellbench.segment import Segmenter, backend
from tests.helpers import small_config

CHANNELS = ["DNA", "tubulin", "actin"]


def field(seed=0, shape=(96, 96)):
    """One synthetic (3, Y, X) field."""
    import tempfile
    from pathlib import Path

    import tifffile

    from cellbench.data.synthetic import write_plate

    with tempfile.TemporaryDirectory() as folder:
        write_plate(
            Path(folder),
            rows="A",
            columns=(1,),
            sites=1,
            field_shape=shape,
            cells_per_field=6,
            conditions=["control"],
            seed=seed,
        )
        return tifffile.imread(Path(folder) / "fields" / "A-01-01.tif")[:3]


def assert_valid_labels(cells, nuclei, shape):
    assert cells.shape == nuclei.shape == shape
    assert cells.dtype == np.int32 and nuclei.dtype == np.int32
    labels = np.unique(cells[cells > 0])
    np.testing.assert_array_equal(labels, np.arange(1, len(labels) + 1))  # renumbered 1..N
    inside = nuclei > 0
    assert np.all(cells[inside] == nuclei[inside])  # a nucleus lies in its own cell


def test_stardist_nuclei_with_a_model_folder(stardist_model):
    params = SegmentationConfig.model_validate(
        {
            "nuclei": {"method": "stardist", "model": str(stardist_model), "prob_thresh": 0.05},
            "cells": {"method": "classical"},
        }
    )
    segmenter = Segmenter(params)
    results = segmenter.segment_fields([field(1), field(2)], CHANNELS)
    assert len(results) == 2
    for cells, nuclei in results:
        assert_valid_labels(cells, nuclei, (96, 96))


def test_cellpose_cells_with_trained_weights(cellpose_model):
    params = SegmentationConfig.model_validate(
        {
            "cells": {
                "method": "cellpose",
                "model": str(cellpose_model),
                "diameter_px": 30,
                "cellprob_threshold": -6.0,
            }
        }
    )
    cells, nuclei = Segmenter(params).segment_fields([field(3)], CHANNELS)[0]
    assert_valid_labels(cells, nuclei, (96, 96))


def test_cellpose_gets_cytoplasm_then_nucleus_explicitly(monkeypatch, cellpose_model):
    seen = {}
    model = backend("cellpose").load_model(
        SegmentationConfig.model_validate(
            {"cells": {"method": "cellpose", "model": str(cellpose_model)}}
        ).cells
    )

    def spy(images, **options):
        seen.update(options, images=images)
        return [np.zeros(images[0].shape[1:], np.int32)], None, None

    monkeypatch.setattr(model, "eval", spy)
    cyto, dna = np.full((8, 8), 0.25, np.float32), np.full((8, 8), 0.75, np.float32)
    params = SegmentationConfig.model_validate({"cells": {"method": "cellpose"}}).cells
    backend("cellpose").find_cells(model, [cyto], [dna], [np.zeros((8, 8), np.int32)], params)
    assert seen["channels"] == [1, 2] and seen["channel_axis"] == 0
    stack = seen["images"][0]
    assert stack.shape == (2, 8, 8) and stack[0, 0, 0] == 0.25 and stack[1, 0, 0] == 0.75


def test_nuclei_only_make_cells_of_their_own():
    params = SegmentationConfig.model_validate({"cells": {"method": "none"}})
    cells, nuclei = Segmenter(params).segment_fields([field(4)], CHANNELS)[0]
    assert cells.max() > 0
    np.testing.assert_array_equal(cells, nuclei)


def test_models_load_once_per_plate(monkeypatch, tmp_path):
    from cellbench.data.plates import open_plate
    from cellbench.segment import classical
    from cellbench.segment.plate import BATCH_FIELDS, segment_plate

    config = small_config(tmp_path)
    plate = open_plate(config, "P1")
    assert len(plate.fields) > BATCH_FIELDS  # several batches
    calls = []
    original = classical.load_model
    monkeypatch.setattr(classical, "load_model", lambda p: calls.append(p) or original(p))
    segment_plate(plate, CHANNELS, config.segmentation, tmp_path / "labels.h5")
    assert len(calls) == 2  # one nuclei model, one cells model, for all the fields


def test_failed_download_names_the_model_and_the_way_out(monkeypatch):
    import stardist.models

    def offline(name):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(stardist.models.StarDist2D, "from_pretrained", staticmethod(offline))
    params = SegmentationConfig.model_validate({"nuclei": {"method": "stardist"}}).nuclei
    with pytest.raises(CellbenchError) as info:
        backend("stardist").load_model(params)
    message = str(info.value)
    assert "'2D_versatile_fluo'" in message and "train-segmenter" in message

    import cellpose.models

    def no_download(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(cellpose.models, "CellposeModel", no_download)
    params = SegmentationConfig.model_validate({"cells": {"method": "cellpose"}}).cells
    with pytest.raises(CellbenchError, match="'cyto3'.*train-segmenter"):
        backend("cellpose").load_model(params)


@pytest.mark.parametrize("method", ["stardist", "cellpose"])
def test_missing_weights_path_is_an_error_not_a_silent_default(method, tmp_path):
    where = "nuclei" if method == "stardist" else "cells"
    params = SegmentationConfig.model_validate(
        {where: {"method": method, "model": str(tmp_path / "no-such-model")}}
    )
    with pytest.raises(CellbenchError, match="no-such-model"):
        Segmenter(params)


@pytest.mark.parametrize(
    "image",
    [
        np.full((3, 64, 64), 700, np.uint16),  # constant
        np.zeros((3, 64, 64), np.uint16),  # nothing
        np.where(np.eye(64, dtype=bool), np.nan, 1.0)[None].repeat(3, 0).astype(np.float32),
    ],
    ids=["constant", "empty", "float-with-nan"],
)
def test_degenerate_fields_give_empty_results(image):
    cells, nuclei = Segmenter(SegmentationConfig()).segment_fields([image], CHANNELS)[0]
    assert cells.shape == (64, 64) and cells.max() == 0 and nuclei.max() == 0


def test_segment_stage_runs_with_stardist_nuclei_and_cellpose_cells(
    tmp_path, stardist_model, cellpose_model
):
    from cellbench.tasks import run_task

    config = small_config(
        tmp_path,
        segmentation={
            "nuclei": {"method": "stardist", "model": str(stardist_model), "prob_thresh": 0.05},
            "cells": {
                "method": "cellpose",
                "model": str(cellpose_model),
                "diameter_px": 30,
                "cellprob_threshold": -6.0,
            },
        },
    )
    config.data.input.columns = [1, 2, 3]
    config.data.input.rows = "A"
    config.data.input.sites = 1
    config.data.input.field_shape_px = (96, 96)
    result = run_task(config, "segment", "P1")
    assert result.state == "done", result.message
    assert result.details["fields"] == 3
    import h5py

    from cellbench.paths import ResultsPaths
    from cellbench.segment.store import read_labels

    store = ResultsPaths(config.results_root).label_store("P1")
    with h5py.File(store, "r") as labels:
        assert labels.attrs["method"] == "stardist+cellpose"
        assert sorted(labels) == ["A-01-01", "A-02-01", "A-03-01"]
    for name in ["A-01-01", "A-02-01", "A-03-01"]:
        assert_valid_labels(*read_labels(store, name), (96, 96))


def test_every_backend_declares_its_batch_size():
    from cellbench.segment import _BACKENDS, backend

    for method in _BACKENDS:
        size = backend(method).BATCH_FIELDS
        assert isinstance(size, int) and size >= 1, method


def test_classical_plate_is_segmented_one_field_at_a_time(monkeypatch, tmp_path):
    """Memory of a task holds one field's images, however many fields the plate has."""
    from cellbench.data.plates import open_plate
    from cellbench.segment.plate import segment_plate

    config = small_config(tmp_path)
    plate = open_plate(config, "P1")
    batches = []
    original = Segmenter.segment_fields

    def counting(self, images, channels):
        batches.append(len(images))
        return original(self, images, channels)

    monkeypatch.setattr(Segmenter, "segment_fields", counting)
    details = segment_plate(plate, CHANNELS, config.segmentation, tmp_path / "labels.h5")
    assert Segmenter(config.segmentation).batch_fields == 1
    assert batches == [1] * len(plate.fields) and details["fields"] == len(plate.fields)
