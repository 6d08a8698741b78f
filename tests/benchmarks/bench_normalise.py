"""How long per-crop normalisation of one batch takes: 64 crops of 3 x S x S uint16.

    python tests/benchmarks/bench_normalise.py [--size 192] [--batch 64] [--repeats 30]
        [--reference path/to/other/normalise.py] [--real]

Synthetic masked cells like the training crops (zero outside a noisy ellipse, a bright
nucleus, low values elsewhere), or with ``--real`` the first `--batch` real BBBC021 crops
($CELLBENCH_DATA/bbbc021/crops/*.npy, S x S x C uint16, of the first file's shape).
Reports the median ms per batch of `crop_percentiles` and of
`normalise_crops` ("none", "max", "percentile"); with ``--reference``, the same for another
version of the module (e.g. ``git show HEAD:cellbench/crops/normalise.py > /tmp/old.py``),
loaded into the same process, its results checked equal to this one's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cellbench.crops import normalise  # noqa: E402


def masked_cells(n: int, size: int, seed: int = 0) -> np.ndarray:
    """(n, 3, size, size) uint16: noisy ellipses (levels 300..3000, nucleus x3), zero outside."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) - size / 2
    radius = rng.uniform(0.25, 0.45, (2, n, 1, 1)) * size
    angle = rng.uniform(0, np.pi, (n, 1, 1))
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    r2 = (u / radius[0]) ** 2 + (v / radius[1]) ** 2
    cell, nucleus = r2 < 1, r2 < 0.3
    crops = np.empty((n, 3, size, size), np.uint16)
    levels = rng.uniform(300, 3000, (n, 3, 1, 1))
    for c, profile in enumerate([nucleus * 3.0 + 0.2, np.exp(-r2) + 0.3 * cell, 1.0 - 0.5 * r2]):
        expected = 100 + levels[:, c] * np.clip(profile, 0, None)
        noisy = rng.poisson(expected) + rng.normal(0, 5, expected.shape)
        crops[:, c] = np.clip(noisy, 0, 65535).astype(np.uint16) * cell
    return crops


def real_crops(n: int) -> np.ndarray:
    """(n, C, S, S) uint16: the first `n` real crops of the first one's shape (or fewer)."""
    root = Path(os.environ.get("CELLBENCH_DATA", "/work/shared/data")) / "bbbc021" / "crops"
    files = sorted(root.glob("*.npy"))
    if not files:
        raise SystemExit(f"no real crops (*.npy) under {root}: set CELLBENCH_DATA")
    crops = [np.moveaxis(np.load(path), -1, 0) for path in files]
    return np.stack([c for c in crops if c.shape == crops[0].shape][:n])


def median_ms(function, repeats: int) -> float:
    """Median wall time of `function()` in ms, after one untimed call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def timings(module: ModuleType, crops: np.ndarray, repeats: int) -> dict[str, float]:
    """Median ms per batch of each operation of `module` on `crops`."""
    calls = {
        "crop_percentiles": lambda: module.crop_percentiles(crops, (1.0, 99.0)),
        "normalise none": lambda: module.normalise_crops(crops, "none"),
        "normalise max": lambda: module.normalise_crops(crops, "max"),
        "normalise percentile": lambda: module.normalise_crops(crops, "percentile"),
    }
    return {name: median_ms(call, repeats) for name, call in calls.items()}


def load(path: Path) -> ModuleType:
    """The module in file `path`, under a name of its own."""
    spec = importlib.util.spec_from_file_location("normalise_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # numba's cache finds the module's globals by its name
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--real", action="store_true", help="real BBBC021 crops instead")
    parser.add_argument("--reference", type=Path, help="another normalise.py to compare with")
    args = parser.parse_args()
    crops = real_crops(args.batch) if args.real else masked_cells(args.batch, args.size)
    kind = "real" if args.real else "synthetic"
    shape = " x ".join(map(str, crops.shape[1:]))
    print(f"{len(crops)} {kind} crops of {shape} uint16, max {crops.max()}, ", end="")
    print(f"zeros {np.mean(crops == 0):.0%}")
    modules = {"this": normalise}
    if args.reference is not None:
        modules["reference"] = load(args.reference)
        for mode in ("max", "percentile"):
            this, other = (m.normalise_crops(crops, mode) for m in modules.values())
            assert np.array_equal(this.view(np.uint32), other.view(np.uint32)), mode
    results = {name: timings(module, crops, args.repeats) for name, module in modules.items()}
    print("| operation | " + " | ".join(f"{n} (ms)" for n in results) + " |")
    print("|---|" + "---|" * len(results))
    for op in results["this"]:
        cells = [f"{results[n][op]:.2f}" for n in results]
        ratio = (
            f" ({results['reference'][op] / results['this'][op]:.2f}x)" if len(results) > 1 else ""
        )
        print(f"| {op} | " + " | ".join(cells) + f" |{ratio}")


if __name__ == "__main__":
    main()
