"""Peak memory of training a ResNet on N and 4N crops: the old in-memory array vs streaming.

    flock /tmp/cellbench-bench.lock .venv/bin/python tests/benchmarks/bench_training_memory.py \
        [--cells 2000] [--size 96] [--workers 0] [--workdir /tmp/cellbench-bench-memory]

Writes two crop stores of synthetic 3-channel cells (`write_crop_store`, blosc-lz4): N and 4N
crops of side ``--size``. For each store and each path it trains a ResNet-18 of width 4 for
one epoch (batch 64, no validation) in a child process of its own, and prints the child's
peak resident memory (``VmHWM`` of /proc/self/status) and that of its loader workers
(``RUSAGE_CHILDREN``, the largest one):

- ``old``: every crop read into one float32 array first (`CropRows.to_array`, as
  ``read_crop_rows`` did before streaming), then trained from a `TensorDataset`;
- ``streaming``: the `CropRows` themselves: the training loop reads a batch at a time.

The old path grows with the cells (N * C * S * S * 4 bytes); the streaming one must stay flat
(within 20 % from N to 4N). Each child is a fresh interpreter, so the figures do not share
allocations.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cellbench.crops.extract import crop_spec  # noqa: E402
from cellbench.crops.store import write_crop_store  # noqa: E402

CHANNELS = ["dna", "actin", "marker"]
BATCH = 64


def synthetic_batches(n: int, size: int, seed: int = 0):
    """(cells, {"whole_cell": (crops, masks)}) batches of 500 noisy uint16 discs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size / 2
    for start in range(0, n, 500):
        m = min(500, n - start)
        radius = rng.uniform(0.2, 0.4, (m, 1, 1)) * size
        cell = (yy**2 + xx**2) < radius**2
        levels = rng.uniform(500, 4000, (m, 3, 1, 1))
        crops = (rng.poisson(100, (m, 3, size, size)) + levels * cell[:, None]).astype(np.uint16)
        rows = range(start, start + m)
        table = pd.DataFrame(
            {
                "cell_id": [f"P1_A01_1_{i + 1}" for i in rows],
                "plate": "P1",
                "well": "A01",
                "condition": [("small", "large")[i % 2] for i in rows],
            }
        )
        yield table, {"whole_cell": (crops, cell.astype(np.uint8))}


def write_store(path: Path, n: int, size: int) -> Path:
    """A store of `n` synthetic crops of side `size` (kept when it exists already)."""
    if not path.exists():
        write_crop_store(
            path,
            plate="P1",
            channel_names=CHANNELS,
            specs=[crop_spec("whole_cell", size)],
            batches=synthetic_batches(n, size),
            config_hash="bench",
        )
    return path


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(store: Path, size: int, mode: str, workers: int, workdir: Path) -> None:
    """Train one epoch on every crop of `store` along `mode`; print peak memory as JSON."""
    from cellbench.config import TrainingConfig
    from cellbench.crops.store import read_cells
    from cellbench.models.crop_rows import CropRows
    from cellbench.models.images import train_image_classifier

    n = len(read_cells(store))
    labels = read_cells(store)["condition"].astype(str).to_numpy()
    crops = CropRows.from_stores([store], "whole_cell", size, np.arange(n))
    images = crops.to_array() if mode == "old" else crops
    training = TrainingConfig(
        epochs=1, batch_size=BATCH, patience=None, scheduler="none", loader_workers=workers
    )
    started = time.perf_counter()
    train_image_classifier(
        {"train": images},
        {"train": labels},
        ["large", "small"],
        training=training,
        augment=False,
        seed=0,
        settings_hash="bench",
        model_path=workdir / f"{mode}_{n}.pt",
        checkpoint_path=workdir / f"{mode}_{n}.ckpt",
        width=4,
    )
    workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "mode": mode,
        "cells": n,
        "peak_mb": peak_rss_mb(),
        "worker_peak_mb": workers_mb,
        "seconds": time.perf_counter() - started,
    }
    print(json.dumps(result))


def run_child(store: Path, size: int, mode: str, workers: int, workdir: Path) -> dict:
    """`child` in a fresh interpreter; its JSON line."""
    command = [sys.executable, __file__, "--child", mode, "--store", str(store)]
    command += ["--size", str(size), "--workers", str(workers), "--workdir", str(workdir)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000, help="N; the second store has 4N")
    parser.add_argument("--size", type=int, default=96, help="side of the crops, px")
    parser.add_argument("--workers", type=int, default=0, help="loader workers (streaming)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cellbench-bench-memory"))
    parser.add_argument("--child", choices=["old", "streaming"], help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args.store, args.size, args.child, args.workers, args.workdir)
        return

    stores = {
        n: write_store(args.workdir / f"P1_{n}_{args.size}.h5", n, args.size)
        for n in (args.cells, 4 * args.cells)
    }
    array_mb = {n: n * len(CHANNELS) * args.size**2 * 4 / 2**20 for n in stores}
    print(f"crops of 3 x {args.size} x {args.size}; ResNet-18 width 4, one epoch, batch {BATCH}")
    print(f"{'path':<10} {'cells':>6} {'array MB':>9} {'peak MB':>8} {'workers MB':>10} {'s':>6}")
    peaks: dict[str, list[float]] = {}
    for mode in ("old", "streaming"):
        for n, store in stores.items():
            workers = args.workers if mode == "streaming" else 0
            result = run_child(store, args.size, mode, workers, args.workdir)
            peaks.setdefault(mode, []).append(result["peak_mb"])
            worker_mb = f"{result['worker_peak_mb']:.0f}" if workers else "-"
            print(
                f"{mode:<10} {n:>6} {array_mb[n]:>9.0f} {result['peak_mb']:>8.0f} "
                f"{worker_mb:>10} {result['seconds']:>6.1f}"
            )
    for mode, (small, large) in peaks.items():
        print(f"{mode}: peak at 4N / peak at N = {large / small:.2f}")
    growth = peaks["streaming"][1] / peaks["streaming"][0]
    print("streaming flat within 20 %:", "yes" if growth <= 1.2 else "NO")


if __name__ == "__main__":
    main()
