"""Tiny segmentation models trained from scratch once per session (no downloads here)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from cellbench.data.synthetic import write_plate


@pytest.fixture(scope="session")
def annotated(tmp_path_factory):
    """Folders of synthetic DNA images and their true nucleus masks (paired by name)."""
    root = tmp_path_factory.mktemp("annotated")
    plate = write_plate(
        root / "plate",
        rows="A",
        columns=(1, 2, 3),
        sites=2,
        field_shape=(96, 96),
        cells_per_field=6,
        seed=5,
    )
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for field in sorted((plate / "fields").glob("*.tif")):
        tifffile.imwrite(root / "images" / field.name, tifffile.imread(field)[0])
        nuclei = tifffile.imread(plate / "truth" / f"{field.stem}_nuclei.tif")
        tifffile.imwrite(root / "masks" / field.name, nuclei.astype(np.uint16))
    return root


@pytest.fixture(scope="session")
def stardist_model(annotated, tmp_path_factory):
    from cellbench.segment.training import train_segmenter

    out = tmp_path_factory.mktemp("weights") / "stardist-tiny"
    return train_segmenter(
        "stardist",
        images=annotated / "images",
        masks=annotated / "masks",
        out=out,
        epochs=1,
        steps_per_epoch=2,
        patch_px=32,
    )


@pytest.fixture(scope="session")
def cellpose_model(annotated, tmp_path_factory):
    from cellbench.segment.training import train_segmenter

    out = tmp_path_factory.mktemp("weights") / "cellpose-tiny"
    return train_segmenter(
        "cellpose",
        images=annotated / "images",
        masks=annotated / "masks",
        out=out,
        epochs=1,
        patch_px=48,
    )
