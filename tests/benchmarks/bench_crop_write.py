"""Crop extraction + store write against one TIFF per crop, and the codecs of the store.

    python tests/benchmarks/bench_crop_write.py [--workdir /tmp/cellbench-bench-write]

On a synthetic plate (2 rows x 6 columns x 3 sites, 256 px fields, segmented once), with every
field, its labels and its cell centroids already in memory (both writers need them), in this
process:
- baseline: what the nucleocentric scripts do, per cell: cut its window from the field, mask
  it, and write one TIFF per crop (tifffile, uncompressed);
- cellbench: `crop_cells` for all cells of a field at once, written by `write_crop_store` into
  one HDF5 store per plate (a chunk per crop), with each codec.
Both cut the same kinds (whole-cell 64 px masked, nuclear 32 px masked, nucleocentric 32 px).
Reports cells/s, the ratio to the baseline, the store size against the raw bytes of its crops,
and single-crop random reads per second from each store.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import tifffile

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cellbench.config import config_from_dict  # noqa: E402
from cellbench.crops.extract import crop_cells, crop_spec, measure_cells  # noqa: E402
from cellbench.crops.store import write_crop_store  # noqa: E402
from cellbench.data.plates import open_plate, read_field  # noqa: E402
from cellbench.paths import ResultsPaths  # noqa: E402
from cellbench.segment.store import read_labels  # noqa: E402
from cellbench.tasks import run_task  # noqa: E402

CHANNELS = ["DNA", "tubulin", "actin"]
SPECS = [crop_spec("whole_cell", 64), crop_spec("nuclear", 32), crop_spec("nucleocentric", 32)]
CODECS = ["none", "lzf", "gzip", "blosc-lz4", "blosc2-lz4"]


def load_fields(plate, label_store: Path) -> list[tuple]:
    """Every field in memory: (name, image, cells, nuclei, table of cells)."""
    fields = []
    for field in plate.fields:
        image = read_field(plate, field, CHANNELS)
        cells, nuclei = read_labels(label_store, field.name)
        fields.append((field, image, cells, nuclei, measure_cells(cells, nuclei)))
    return fields


def baseline_tiffs(fields: list[tuple], out: Path) -> int:
    """One TIFF per crop and kind, cell by cell, as the nucleocentric crop script does."""
    count = 0
    for field, image, cells, nuclei, table in fields:
        for row in table.itertuples():
            for spec in SPECS:
                cy, cx = (
                    (row.centroid_y, row.centroid_x)
                    if spec.centred_on == "cell"
                    else (row.nucleus_y, row.nucleus_x)
                )
                half = spec.size_px // 2
                y0, x0 = max(round(cy) - half, 0), max(round(cx) - half, 0)
                crop = image[:, y0 : y0 + spec.size_px, x0 : x0 + spec.size_px].copy()
                if spec.masked:
                    labels = cells if spec.centred_on == "cell" else nuclei
                    crop *= labels[y0 : y0 + spec.size_px, x0 : x0 + spec.size_px] == row.label
                path = out / spec.kind / f"{field.name}_{row.label:04d}.tif"
                path.parent.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(path, crop)
            count += 1
    return count


def cellbench_store(fields: list[tuple], path: Path, codec: str) -> int:
    """All cells of each field at once, into one store."""

    def batches():
        for field, image, cells, nuclei, table in fields:
            crops = {spec.kind: crop_cells(image, cells, nuclei, table, spec) for spec in SPECS}
            yield table.assign(cell_id=[f"{field.name}_{v}" for v in table["label"]]), crops

    table = write_crop_store(
        path,
        plate="P1",
        channel_names=CHANNELS,
        specs=SPECS,
        batches=batches(),
        config_hash="bench",
        compression=codec,
    )
    return len(table)


def random_reads(path: Path, n: int = 500) -> float:
    """Single whole-cell crops read in random order, per second."""
    with h5py.File(path, "r") as store:
        images = store["whole_cell"]["images"]
        order = np.random.default_rng(0).integers(0, images.shape[0], n)
        started = time.perf_counter()
        for i in order:
            images[int(i)]
        return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cellbench-bench-write"))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    config = config_from_dict(
        {
            "name": "bench",
            "results_root": str(args.workdir / "results"),
            "models": [{"name": "rf", "type": "random_forest"}],
        }
    )
    assert run_task(config, "segment", "P1").state == "done"
    plate = open_plate(config, "P1")
    labels = ResultsPaths(config.results_root).label_store("P1")

    fields = load_fields(plate, labels)
    tiff_dir = args.workdir / "tiffs"
    started = time.perf_counter()
    n_cells = baseline_tiffs(fields, tiff_dir)
    baseline = n_cells / (time.perf_counter() - started)
    tiff_bytes = sum(p.stat().st_size for p in tiff_dir.rglob("*.tif"))
    raw = n_cells * sum(len(CHANNELS) * s.size_px**2 * 2 for s in SPECS)

    print(f"{n_cells} cells, 3 kinds; raw crop bytes {raw / 1e6:.1f} MB; warm page cache\n")
    print("| writer | cells/s | vs baseline | size on disk | size / raw | random reads/s |")
    print("|---|---|---|---|---|---|")
    print(
        f"| one TIFF per crop (baseline) | {baseline:,.0f} | 1.0x | {tiff_bytes / 1e6:.1f} MB "
        f"| {tiff_bytes / raw:.2f} | |"
    )
    for codec in CODECS:
        path = args.workdir / f"store-{codec}.h5"
        started = time.perf_counter()
        assert cellbench_store(fields, path, codec) == n_cells
        rate = n_cells / (time.perf_counter() - started)
        size = path.stat().st_size
        print(
            f"| store, {codec} | {rate:,.0f} | {rate / baseline:.1f}x | {size / 1e6:.1f} MB "
            f"| {size / raw:.2f} | {random_reads(path):,.0f} |"
        )


if __name__ == "__main__":
    main()
