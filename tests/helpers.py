"""Shared builders for tests: small seeded experiments on the synthetic plate."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from cellbench.config import Config, config_from_dict

REPO = Path(__file__).resolve().parents[1]

SMALL_EXPERIMENT: dict[str, Any] = {
    "name": "small",
    "data": {
        "input": {
            "source": "synthetic",
            "plates": 1,
            "rows": "AB",
            "columns": [1, 2, 3, 4, 5, 6],
            "sites": 2,
            "field_shape_px": [192, 192],
            "cells_per_field": 20,
            "seed": 3,
        },
    },
    "crops": {"kinds": {"whole_cell": {"size_px": 48}}},
    "models": [{"name": "rf", "type": "random_forest", "n_estimators": 100}],
    "seeds": [0],
    "execution": {"local_workers": 2},
}


def experiment_dict(results_root: Path, **overrides: Any) -> dict[str, Any]:
    """A small experiment as a dict, with top-level keys replaced by `overrides`."""
    raw = copy.deepcopy(SMALL_EXPERIMENT)
    raw["results_root"] = str(results_root)
    raw.update(overrides)
    return raw


def small_config(results_root: Path, **overrides: Any) -> Config:
    """A validated small experiment writing under `results_root`."""
    return config_from_dict(experiment_dict(results_root, **overrides))


def write_config(path: Path, raw: dict[str, Any]) -> Path:
    """Write a config dict as YAML and return its path."""
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def assert_pycytominer_sees_every_feature(table) -> None:
    """pycytominer's defaults find every region column; ``Image_*`` with image_features.

    Every column of a cellbench feature table is a ``Metadata_*`` identifier, a per-image
    ``Image_*`` value or a feature of one of CellProfiler's objects (Cells, Nuclei, Cytoplasm).
    """
    from pycytominer.cyto_utils import infer_cp_features

    columns = list(table.columns)
    metadata = [c for c in columns if c.startswith("Metadata_")]
    image = [c for c in columns if c.startswith("Image_")]
    regions = [c for c in columns if c not in metadata and c not in image]
    assert regions and all(c.split("_")[0] in ("Cells", "Nuclei", "Cytoplasm") for c in regions)
    assert infer_cp_features(table) == regions
    assert infer_cp_features(table, image_features=True) == [
        c for c in columns if c in regions or c in image
    ]
    assert infer_cp_features(table, metadata=True) == metadata


def segmented_examplehuman_field(workdir: Path):
    """The real ExampleHuman field, segmented with its config under `workdir`.

    Returns
    -------
    (image, cells, nuclei, channels)
        (C, Y, X) raw intensities of ``data.channels``, the two label images, channel names.
    """
    from cellbench.config import load_config
    from cellbench.data.plates import open_plate, read_field
    from cellbench.execution.run import execute
    from cellbench.paths import ResultsPaths
    from cellbench.segment.store import read_labels

    raw = yaml.safe_load((REPO / "configs" / "examplehuman.yaml").read_text())
    raw["results_root"] = str(workdir / "examplehuman")
    path = workdir / "examplehuman.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    execute(config, "segment", "local", echo=lambda line: None)
    plate = open_plate(config, "ExampleHuman")
    first = plate.fields[0]
    channels = list(config.data.channels)
    cells, nuclei = read_labels(
        ResultsPaths(config.results_root).label_store(plate.name), first.name
    )
    return read_field(plate, first, channels), cells, nuclei, channels
