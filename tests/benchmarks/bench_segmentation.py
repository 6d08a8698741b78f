"""Segmentation on real ground truth (DSB 2018 nuclei) and the classical backend's speed.

    python tests/benchmarks/bench_segmentation.py [--epochs 30] [--steps 40] [--workdir DIR]

1. Splits $CELLBENCH_DATA/dsb2018 by image (seeded): 20 images to train, 10 to test (links).
2. Scores the classical method on the 10 test images and on all 30.
3. Trains StarDist from scratch on the 20 (`cellbench train-segmenter`, CPU) and scores it on
   the 10 test images, with the thresholds it optimised on its validation images.
4. Times the classical backend in seconds per megapixel on the synthetic plate's fields, and
   counts how often a 20-field plate loads its models (must be once).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cellbench.config import SegmentationConfig, config_from_dict, default_data_root  # noqa: E402
from cellbench.data.plates import open_plate, read_field  # noqa: E402
from cellbench.segment import Segmenter  # noqa: E402

CELLBENCH = [sys.executable, "-m", "cellbench.cli"]


def split_dsb(root: Path, out: Path, n_test: int = 10, seed: int = 0) -> dict[str, Path]:
    """Train and test folders of links to the DSB images and masks, split by image."""
    names = sorted(p.name for p in (root / "images").glob("*.tif"))
    order = np.random.default_rng(seed).permutation(len(names))
    test = {names[i] for i in order[:n_test]}
    folders = {}
    for part in ("train", "test"):
        for kind in ("images", "masks"):
            folder = out / part / kind
            folder.mkdir(parents=True, exist_ok=True)
            for name in names:
                if (name in test) == (part == "test"):
                    (folder / name).symlink_to(root / kind / name)
            folders[f"{part}_{kind}"] = folder
    return folders


def score(images: Path, masks: Path, method: str, out: Path, model: Path | None = None) -> str:
    command = [
        *CELLBENCH,
        "evaluate-segmentation",
        "--images",
        str(images),
        "--masks",
        str(masks),
        "--method",
        method,
        "--json",
        str(out),
    ]
    if model:
        command += ["--model", str(model)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def classical_speed(workdir: Path) -> tuple[float, int]:
    """Seconds per megapixel of the classical backend, and model loads for a 20-field plate."""
    config = config_from_dict(
        {
            "name": "speed",
            "results_root": str(workdir / "speed"),
            "data": {
                "input": {
                    "rows": "AB",
                    "columns": [1, 2, 3, 4, 5],
                    "sites": 2,
                    "field_shape_px": [512, 512],
                    "cells_per_field": 100,
                }
            },
            "models": [{"name": "rf", "type": "random_forest"}],
        }
    )
    plate = open_plate(config, "P1")
    images = [read_field(plate, f, config.data.channels) for f in plate.fields]
    loads = 0
    original = Segmenter.__init__

    def counting(self, params):
        nonlocal loads
        loads += 1
        original(self, params)

    Segmenter.__init__ = counting
    from cellbench.segment.plate import segment_plate

    segment_plate(plate, config.data.channels, config.segmentation, workdir / "speed.h5")
    Segmenter.__init__ = original
    segmenter = Segmenter(SegmentationConfig())
    started = time.perf_counter()
    segmenter.segment_fields(images, config.data.channels)
    seconds = time.perf_counter() - started
    megapixels = sum(image.shape[1] * image.shape[2] for image in images) / 1e6
    return seconds / megapixels, loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=40, help="StarDist steps per epoch")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cellbench-bench-segment"))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    dsb = default_data_root() / "dsb2018"
    folders = split_dsb(dsb, args.workdir / "split")

    print(
        "classical, all 30 images:",
        score(dsb / "images", dsb / "masks", "classical", args.workdir / "classical_all.json"),
    )
    print(
        "classical, 10 test images:",
        score(
            folders["test_images"],
            folders["test_masks"],
            "classical",
            args.workdir / "classical_test.json",
        ),
    )
    started = time.perf_counter()
    model = args.workdir / "stardist-dsb"
    subprocess.run(
        [
            *CELLBENCH,
            "train-segmenter",
            "--backend",
            "stardist",
            "--images",
            str(folders["train_images"]),
            "--masks",
            str(folders["train_masks"]),
            "--out",
            str(model),
            "--epochs",
            str(args.epochs),
            "--steps-per-epoch",
            str(args.steps),
            "--patch-px",
            "128",
        ],
        check=True,
        capture_output=True,
    )
    print(
        f"StarDist trained from scratch on 20 images in {time.perf_counter() - started:.0f} s "
        f"({args.epochs} epochs x {args.steps} steps, CPU)"
    )
    print(
        "StarDist, 10 test images:",
        score(
            folders["test_images"],
            folders["test_masks"],
            "stardist",
            args.workdir / "stardist_test.json",
            model,
        ),
    )
    per_megapixel, loads = classical_speed(args.workdir)
    print(f"classical backend: {per_megapixel:.2f} s per megapixel (3 channels, 512 x 512 fields)")
    print(f"model loads for a 20-field plate: {loads}")


if __name__ == "__main__":
    main()
