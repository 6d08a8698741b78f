"""How fast training reads crops: the HDF5 crop store against one TIFF file per crop.

    python tests/benchmarks/bench_crop_reads.py [--sizes 64 192] [--crops 3000 1000]
        [--epochs 2] [--loader-crops 1280] [--steps 5] [--workdir /tmp/cellbench-bench-crops]

Writes, per crop size, synthetic 3-channel uint16 cells (masked whole-cell crops: a noisy
ellipse per channel, zero outside the cell) with `write_crop_store` into one store per
compression (blosc-lz4, the default; lzf; blosc2-lz4; none), and the same crops as one
uncompressed TIFF per crop, as the nucleocentric scripts do. It then reads every crop once
per epoch through a DataLoader (batch 64) and reports crops per second:

- baseline: ``tifffile.imread`` of each file in a shuffled order, as a float32 tensor,
  batched by ``default_collate``;
- `CropDataset` with `ChunkShuffleSampler` (and, for blosc-lz4, a shuffled RandomSampler),
  each with 0 and 2 workers, through its batched read (``__getitems__``: one HDF5 call per
  run of neighbouring rows, the batch normalised at once) and `collate_crops` (no stacking
  copy), as the training loaders of `cellbench.models.loaders` read it;
- for blosc-lz4 and the shuffled RandomSampler, the same store read item by item
  (``__getitem__`` and ``default_collate``), the path before batched reads.

The loader row (``--loader-crops``; 0 leaves it out): ResNet-18 (`cellbench.models.resnet`)
on 3 x 128 x 128 crops, batch 64: the median time of a training step (forward, cross-entropy,
backward, Adam step; every core of the machine) against the time per batch of the training
loader (blosc-lz4 store, per-crop percentile normalisation, `ChunkShuffleSampler`, batched
read, `collate_crops`) with 0 and 2 workers, timed on its own.

Both readers return raw float32 ("none") or the per-crop percentile normalisation, the
dataset's default (the baseline then applies the same `normalise_crop`), so each ratio
compares like with like, at the same number of workers.

The OS page cache cannot be cleared here, so every figure is a warm-cache read: each reader
runs a warm-up epoch first, then the best of the timed epochs is kept. Workers persist
across epochs, so their start-up is not counted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
import torch
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cellbench.crops.dataset import ChunkShuffleSampler, CropDataset  # noqa: E402
from cellbench.crops.extract import crop_spec  # noqa: E402
from cellbench.crops.normalise import normalise_crop  # noqa: E402
from cellbench.crops.store import write_crop_store  # noqa: E402
from cellbench.models.loaders import collate_crops  # noqa: E402
from cellbench.models.resnet import build_resnet  # noqa: E402

CHANNELS = ["dapi", "actin", "marker"]
CONDITIONS = ["control", "enlarged_nuclei", "textured"]
BATCH = 64


def synthetic_cells(n: int, size: int, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (crops, masks) batches of masked cells: noisy ellipses, zero outside the cell."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) - size / 2
    for start in range(0, n, 200):
        m = min(200, n - start)
        radius_y = rng.uniform(0.25, 0.45, (m, 1, 1)) * size
        radius_x = rng.uniform(0.25, 0.45, (m, 1, 1)) * size
        angle = rng.uniform(0, np.pi, (m, 1, 1))
        u = xx * np.cos(angle) + yy * np.sin(angle)
        v = -xx * np.sin(angle) + yy * np.cos(angle)
        r2 = (u / radius_x) ** 2 + (v / radius_y) ** 2
        cell = r2 < 1
        nucleus = r2 < 0.3
        crops = np.empty((m, 3, size, size), np.uint16)
        levels = rng.uniform(300, 3000, (m, 3, 1, 1))
        profiles = [nucleus * 3.0 + 0.2, np.exp(-r2) + 0.3 * cell, 1.0 - 0.5 * r2]
        for c, profile in enumerate(profiles):
            expected = 100 + levels[:, c] * np.clip(profile, 0, None)
            noisy = rng.poisson(expected) + rng.normal(0, 5, expected.shape)
            crops[:, c] = np.clip(noisy, 0, 65535).astype(np.uint16) * cell
        masks = (cell * 1 + nucleus * 2).astype(np.uint8)
        yield crops, masks


def cell_batches(n: int, size: int, tiff_folder: Path | None = None) -> Iterator[tuple]:
    """Batches of `write_crop_store` of `n` synthetic cells; also one TIFF per crop if asked."""
    written = 0
    for crops, masks in synthetic_cells(n, size):
        rows = range(written, written + len(crops))
        table = pd.DataFrame(
            {
                "cell_id": [f"P1_cell{i:06d}" for i in rows],
                "plate": "P1",
                "well": [f"A{1 + i // 200:02d}" for i in rows],
                "condition": [CONDITIONS[(i // 200) % 3] for i in rows],
            }
        )
        if tiff_folder is not None:
            for i, crop in zip(rows, crops, strict=True):
                tifffile.imwrite(
                    tiff_folder / f"P1_cell{i:06d}.tif", crop, photometric="minisblack"
                )
        written += len(crops)
        yield table, {"whole_cell": (crops, masks)}


def write_store(path: Path, n: int, size: int, compression: str, tiffs: Path | None = None):
    """Write `n` synthetic crops of side `size` into the store `path` (and TIFFs to `tiffs`)."""
    write_crop_store(
        path,
        plate="P1",
        channel_names=CHANNELS,
        specs=[crop_spec("whole_cell", size)],
        batches=cell_batches(n, size, tiffs),
        config_hash="bench",
        compression=compression,
    )


def write_inputs(root: Path, n: int, size: int) -> tuple[dict[str, Path], Path]:
    """Write `n` crops of side `size` as TIFFs and as stores, by compression."""
    stores = {c: root / f"P1_{size}_{c}.h5" for c in ("blosc-lz4", "lzf", "none", "blosc2-lz4")}
    folder = root / f"tiff_{size}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for compression, path in stores.items():
        write_store(path, n, size, compression, folder if compression == "blosc-lz4" else None)
    return stores, folder


class TiffCrops(Dataset):
    """The baseline: one TIFF per crop, read whole with tifffile, as a float32 tensor."""

    def __init__(self, folder: Path, labels: list[int], normalise: str) -> None:
        self.files = sorted(folder.glob("*.tif"))
        self.labels = labels
        self.normalise = normalise

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        image = normalise_crop(tifffile.imread(self.files[i]), self.normalise)
        return torch.from_numpy(image), self.labels[i], self.files[i].stem


class ItemByItem(Dataset):
    """A `CropDataset` read one item at a time (no ``__getitems__``): the path before."""

    def __init__(self, dataset: CropDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        return self.dataset[i]


def make_loader(dataset: Dataset, sampler, workers: int) -> DataLoader:
    """Batches of `BATCH` in `sampler`'s order; a `CropDataset` collated by `collate_crops`."""
    batched = isinstance(dataset, CropDataset)
    return DataLoader(
        dataset,
        batch_sampler=BatchSampler(sampler, BATCH, drop_last=False),
        num_workers=workers,
        persistent_workers=workers > 0,
        collate_fn=collate_crops if batched else None,
    )


def crops_per_second(dataset, sampler, workers: int, epochs: int) -> float:
    """Best crops/s over `epochs` timed epochs, after one warm-up epoch."""
    loader = make_loader(dataset, sampler, workers)
    best = 0.0
    for epoch in range(epochs + 1):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        start = time.perf_counter()
        n = sum(len(ids) for _, _, ids in loader)
        elapsed = time.perf_counter() - start
        assert n == len(dataset)
        if epoch > 0:
            best = max(best, n / elapsed)
    del loader
    return best


def bench_size(root: Path, n: int, size: int, epochs: int) -> list[dict]:
    """Time every reader on crops of one size."""
    start = time.perf_counter()
    stores, folder = write_inputs(root, n, size)
    print(f"\n{n} crops of 3 x {size} x {size}: written in {time.perf_counter() - start:.1f} s")
    raw = n * len(CHANNELS) * size * size * 2
    sizes = {f"store ({c})": path.stat().st_size for c, path in stores.items()}
    sizes["TIFFs"] = sum(f.stat().st_size for f in folder.iterdir())
    for name, nbytes in sizes.items():
        print(f"  {name}: {nbytes / 1e6:.1f} MB = {nbytes / raw:.2f} x raw ({raw / 1e6:.1f} MB)")
    start = time.perf_counter()
    rows = []
    for normalise in ("none", "percentile"):
        compressions = ["blosc-lz4", "lzf"] + (
            ["blosc2-lz4", "none"] if normalise == "none" else []
        )
        readers = {
            c: CropDataset([stores[c]], "whole_cell", normalise=normalise) for c in compressions
        }
        labels = readers["blosc-lz4"].cells["condition"].astype("category").cat.codes.tolist()
        tiffs = TiffCrops(folder, labels, normalise)
        for workers in (0, 2):
            baseline = crops_per_second(tiffs, RandomSampler(tiffs), workers, epochs)
            rows.append(("TIFF per crop", normalise, "random", workers, baseline, 1.0))
            for compression, dataset in readers.items():
                samplers = [("chunk shuffle 64", ChunkShuffleSampler(dataset, block_size=64))]
                if compression == "blosc-lz4" and normalise == "none":
                    samplers.insert(0, ("random", RandomSampler(dataset)))
                for name, sampler in samplers:
                    rate = crops_per_second(dataset, sampler, workers, epochs)
                    label = f"store, {compression}"
                    rows.append((label, normalise, name, workers, rate, rate / baseline))
                if compression == "blosc-lz4":
                    single = ItemByItem(dataset)
                    rate = crops_per_second(single, RandomSampler(single), workers, epochs)
                    label = f"store, {compression}, item by item"
                    rows.append((label, normalise, "random", workers, rate, rate / baseline))
    print(f"  read in {time.perf_counter() - start:.1f} s")
    keys = ("reader", "normalise", "sampler", "workers", "rate", "ratio")
    return [{"size": size, **dict(zip(keys, row, strict=True))} for row in rows]


def loader_batch_seconds(dataset: CropDataset, workers: int, epochs: int) -> float:
    """Seconds per batch of the training loader (best epoch after a warm-up), on its own."""
    sampler = ChunkShuffleSampler(dataset, block_size=BATCH)
    return BATCH / crops_per_second(dataset, sampler, workers, epochs)


def step_seconds(images: torch.Tensor, labels: torch.Tensor, steps: int) -> float:
    """Median seconds of a ResNet-18 training step on one batch, on every core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    model = build_resnet(18, in_channels=images.shape[1], n_classes=len(CONDITIONS))
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for step in range(steps + 1):  # the first step warms up
        start = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
        if step > 0:
            times.append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    return float(np.median(times))


def bench_loader(root: Path, n: int, steps: int, epochs: int) -> list[dict]:
    """The loader row: ResNet-18 step at 128 px, batch 64, against the loader's batch time."""
    if n <= 0:
        return []
    path = root / "P1_128_loader.h5"
    write_store(path, n, 128, "blosc-lz4")
    dataset = CropDataset([path], "whole_cell", normalise="percentile")
    images, labels, _ = collate_crops(dataset.__getitems__(list(range(BATCH))))
    step = step_seconds(images.clone(), labels, steps)
    print(f"\nResNet-18, 3 x 128 x 128, batch {BATCH}: training step {step * 1e3:,.0f} ms")
    rows = []
    for workers in (0, 2):
        batch = loader_batch_seconds(dataset, workers, epochs)
        rows.append({"workers": workers, "step": step, "batch": batch, "ratio": step / batch})
    return rows


def print_tables(results: list[dict], loader: list[dict]) -> None:
    """The markdown tables of the README."""
    print("\n| size | normalise | reader | sampler | workers | crops/s | vs TIFF |")
    print("|---:|---|---|---|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['size']} | {r['normalise']} | {r['reader']} | {r['sampler']} | {r['workers']} "
            f"| {r['rate']:,.0f} | {r['ratio']:.1f}x |"
        )
    if not loader:
        return
    print("\n| loader workers | ResNet-18 step (ms) | loader batch (ms) | step / batch |")
    print("|---:|---:|---:|---:|")
    for r in loader:
        print(
            f"| {r['workers']} | {r['step'] * 1e3:,.0f} | {r['batch'] * 1e3:,.1f} "
            f"| {r['ratio']:.0f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 192])
    parser.add_argument(
        "--crops", type=int, nargs="+", default=[3000, 1000], help="crops per size, in order"
    )
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per reader")
    parser.add_argument(
        "--loader-crops", type=int, default=1280, help="crops of the loader row; 0: no row"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed ResNet-18 steps")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cellbench-bench-crops"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    print(f"cpus: {os.cpu_count()}, torch {torch.__version__}; warm-cache reads, batch {BATCH}")
    results = []
    if len(args.crops) != len(args.sizes):
        parser.error("give one --crops value per size")
    for size, n in zip(args.sizes, args.crops, strict=True):
        results += bench_size(args.workdir, n, size, args.epochs)
    loader = bench_loader(args.workdir, args.loader_crops, args.steps, args.epochs)
    print_tables(results, loader)


if __name__ == "__main__":
    main()
