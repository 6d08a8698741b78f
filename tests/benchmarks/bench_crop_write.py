"""Crop extraction + store write against one TIFF per crop, and the codecs of the store.

    python tests/benchmarks/bench_crop_write.py [--workdir DIR] [--field-px 1024]
        [--cells-per-field 400] [--repeats 3]

On a synthetic plate (1 row x 3 columns x 2 sites; by default 1024 px fields of about 400
cells, the cell density of the demo's 256 px fields of 25 and closer to a microscope field
than those), segmented once, with every field, its labels and its cell centroids already in
memory (both writers need them), in this process:
- baseline: what the nucleocentric scripts do, per cell: cut its window from the field, mask
  it, and write one TIFF per crop (tifffile, uncompressed);
- cellbench: `crop_kinds` for all cells of a field at once (kinds sharing a window cut it
  once), written by `write_crop_store` into one HDF5 store per plate (a chunk per crop),
  with each codec;
- limit: the same crops gathered out of the fields with one vectorised gather per field and
  kind, and compressed with the store's codec (Blosc LZ4, byte shuffle, clevel 5): no masks,
  no HDF5, no statistics; with one thread, and with as many as the store (`task_cpus`).
All cut the same kinds (whole-cell 64 px masked, nuclear 32 px masked, nucleocentric 32 px).
Each row is the best (shortest) of `--repeats` runs: the machine is shared. Reports cells/s,
the ratio to the baseline, the store size against the raw bytes of its crops, and
single-crop random reads per second from each store. A second table times each step of the
default store path alone on the same fields.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import tifffile

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cellbench.allocation import task_cpus  # noqa: E402
from cellbench.config import config_from_dict  # noqa: E402
from cellbench.crops.extract import (  # noqa: E402
    _cut_windows,
    _gather_windows,
    crop_kinds,
    crop_spec,
    measure_cells,
    region_pixels,
    window_corners,
)
from cellbench.crops.store import (  # noqa: E402
    _blosc_threads,
    _compress_rows,
    _create_kind,
    _PixelSample,
    _write_chunks,
    _write_table,
    write_crop_store,
)
from cellbench.data.plates import open_plate, read_field  # noqa: E402
from cellbench.paths import ResultsPaths  # noqa: E402
from cellbench.segment.store import read_labels  # noqa: E402
from cellbench.tasks import run_task  # noqa: E402

CHANNELS = ["DNA", "tubulin", "actin"]
SPECS = [crop_spec("whole_cell", 64), crop_spec("nuclear", 32), crop_spec("nucleocentric", 32)]
CODECS = ["none", "lzf", "gzip", "blosc-lz4", "blosc2-lz4"]
BLOCK = 32  # rows per compression task, as the store


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
    shutil.rmtree(out, ignore_errors=True)
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
            crops = crop_kinds(image, cells, nuclei, table, SPECS)
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


def _window_corners(cuts: list[tuple]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Per (spec, image, cells, nuclei, table): (image, top, left, size), ahead of timing."""
    out = []
    for spec, image, cells, _, table in cuts:
        top, left = window_corners(table, spec, cells.shape)
        out.append((image, top, left, spec.size_px))
    return out


def limit_gather_compress(parts: list[tuple], threads: int) -> int:
    """The limit: one gather per field and kind, each crop one Blosc chunk, no HDF5."""
    count = 0
    with _blosc_threads(threads) as pool_map:
        for image, top, left, size in parts:
            crops = _gather_windows(image, top, left, size)
            sum(len(b) for b in pool_map(_compress_rows, _blocks(crops)))
            count += len(top)
    return count // len(SPECS)


def best_seconds(step: Callable[[], object], repeats: int) -> float:
    """The shortest of `repeats` timed runs of `step` (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def breakdown(fields: list[tuple], workdir: Path, repeats: int) -> list[tuple[str, float]]:
    """Best seconds of each step of the default store path, each run alone on the same fields."""
    windows = [  # what `crop_kinds` cuts: nucleocentric shares the nuclear window
        (spec, image, cells, nuclei, table)
        for _, image, cells, nuclei, table in fields
        for spec in SPECS
        if spec.kind != "nucleocentric"
    ]
    gathers = _window_corners(windows)
    made = [
        (spec, crops_by_kind[spec.kind])
        for _, image, cells, nuclei, table in fields
        for crops_by_kind in [crop_kinds(image, cells, nuclei, table, SPECS)]
        for spec in SPECS
    ]
    arrays = [values for _, pair in made for values in pair]

    def cut_and_masks():
        for spec, image, cells, nuclei, table in windows:
            _cut_windows(image, cells, nuclei, table, spec)

    def zero():
        for spec, (crops, masks) in made:
            if spec.masked:
                crops.copy()[:] *= region_pixels(masks, spec.region)[:, np.newaxis]

    def compress():
        with _blosc_threads(task_cpus()) as pool_map:
            for values in arrays:
                list(pool_map(_compress_rows, _blocks(values)))

    def compress_and_write():
        with h5py.File(workdir / "chunks.h5", "w") as store:
            datasets = {s.kind: _create_kind(store, s, len(CHANNELS), "blosc-lz4") for s in SPECS}
            start = dict.fromkeys(datasets, 0)
            for spec, (crops, masks) in made:
                images_ds, masks_ds = datasets[spec.kind]
                images_ds.resize(start[spec.kind] + len(crops), axis=0)
                masks_ds.resize(start[spec.kind] + len(crops), axis=0)
                _write_chunks([(images_ds, crops), (masks_ds, masks)], start[spec.kind])
                start[spec.kind] += len(crops)

    def statistics():
        samples = {spec.kind: _PixelSample(len(CHANNELS)) for spec in SPECS}
        for spec, (crops, masks) in made:
            samples[spec.kind].add(crops, masks)
        for sample in samples.values():
            sample.statistics()

    tables = [t.assign(cell_id=[f"{f.name}_{v}" for v in t["label"]]) for f, *_, t in fields]

    def cells_table():
        with h5py.File(workdir / "table.h5", "w") as store:
            _write_table(store.create_group("cells"), pd.concat(tables, ignore_index=True))

    steps = [
        ("cut windows and build masks (`_cut_windows`)", cut_and_masks),
        ("  of which the image gather alone", lambda: [_gather_windows(*part) for part in gathers]),
        ("zero outside the kept region (masked kinds)", zero),
        ("compress images and masks (thread pool)", compress),
        ("compress + write chunks (`_write_chunks`, HDF5)", compress_and_write),
        ("plate statistics sample", statistics),
        ("cells table (concat, /cells write)", cells_table),
    ]
    return [(name, best_seconds(step, repeats)) for name, step in steps]


def _blocks(values: np.ndarray) -> list[np.ndarray]:
    """`values` (N, ...) in blocks of `BLOCK` rows, as the store hands them to its threads."""
    return [values[i : i + BLOCK] for i in range(0, len(values), BLOCK)]


def random_reads(path: Path, n: int = 500) -> float:
    """Single whole-cell crops read in random order, per second."""
    with h5py.File(path, "r") as store:
        images = store["whole_cell"]["images"]
        order = np.random.default_rng(0).integers(0, images.shape[0], n)
        started = time.perf_counter()
        for i in order:
            images[int(i)]
        return n / (time.perf_counter() - started)


def segmented_fields(args: argparse.Namespace) -> list[tuple]:
    """Make and segment the synthetic plate; return its fields in memory (`load_fields`)."""
    shutil.rmtree(args.workdir, ignore_errors=True)
    source = {
        "source": "synthetic",
        "plates": 1,
        "rows": "A",
        "columns": [1, 2, 3],
        "sites": 2,
        "field_shape_px": [args.field_px, args.field_px],
        "cells_per_field": args.cells_per_field,
    }
    config = config_from_dict(
        {
            "name": "bench",
            "results_root": str(args.workdir / "results"),
            "data": {"input": source},
            "models": [{"name": "rf", "type": "random_forest"}],
        }
    )
    assert run_task(config, "segment", "P1").state == "done"
    plate = open_plate(config, "P1")
    return load_fields(plate, ResultsPaths(config.results_root).label_store("P1"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cellbench-bench-write"))
    parser.add_argument("--field-px", type=int, default=1024, help="side of each field, px")
    parser.add_argument("--cells-per-field", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the best counts")
    args = parser.parse_args()
    fields = segmented_fields(args)
    n_cells = sum(len(f[4]) for f in fields)
    tiff_dir = args.workdir / "tiffs"
    baseline = n_cells / best_seconds(lambda: baseline_tiffs(fields, tiff_dir), args.repeats)
    tiff_bytes = sum(p.stat().st_size for p in tiff_dir.rglob("*.tif"))
    raw = n_cells * sum(len(CHANNELS) * s.size_px**2 * 2 for s in SPECS)

    print(
        f"{n_cells} cells in {len(fields)} fields of {args.field_px} px, 3 kinds; raw crop "
        f"bytes {raw / 1e6:.1f} MB; warm page cache; {task_cpus()} threads; best of "
        f"{args.repeats}\n"
    )
    print("| writer | cells/s | vs baseline | size on disk | size / raw | random reads/s |")
    print("|---|---|---|---|---|---|")
    print(
        f"| one TIFF per crop (baseline) | {baseline:,.0f} | 1.0x | {tiff_bytes / 1e6:.1f} MB "
        f"| {tiff_bytes / raw:.2f} | |"
    )
    for codec in CODECS:
        path = args.workdir / f"store-{codec}.h5"
        seconds = best_seconds(lambda p=path, c=codec: cellbench_store(fields, p, c), args.repeats)
        rate = n_cells / seconds
        size = path.stat().st_size
        print(
            f"| store, {codec} | {rate:,.0f} | {rate / baseline:.1f}x | {size / 1e6:.1f} MB "
            f"| {size / raw:.2f} | {random_reads(path):,.0f} |"
        )
    parts = _window_corners([(spec, *field[1:]) for field in fields for spec in SPECS])
    for threads in sorted({1, task_cpus()}):
        assert limit_gather_compress(parts, threads) == n_cells
        seconds = best_seconds(lambda t=threads: limit_gather_compress(parts, t), args.repeats)
        limit = n_cells / seconds
        print(
            f"| limit: gather + Blosc LZ4, no HDF5, {threads} thread(s) | {limit:,.0f} "
            f"| {limit / baseline:.1f}x | | | |"
        )

    steps = breakdown(fields, args.workdir, args.repeats)
    total = sum(seconds for name, seconds in steps if not name.startswith(" "))
    print("\n| step of the blosc-lz4 store path (each alone, best of the runs) | ms | share |")
    print("|---|---|---|")
    for name, seconds in steps:
        print(f"| {name} | {seconds * 1e3:.1f} | {seconds / total:.0%} |")


if __name__ == "__main__":
    main()
