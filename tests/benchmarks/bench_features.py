"""Speed of `measure_field` (whole field at once) against a cell-by-cell scikit-image baseline.

    python tests/benchmarks/bench_features.py [--fields 4] [--cells 130] [--repeats 3]

1. Writes a synthetic plate (`cellbench.data.synthetic.write_plate`, 512 x 512 px fields with
   the 4 channels DNA, tubulin, actin and marker; ``--cells 130`` gives about 95 segmented cells
   per field) and segments it with the classical backend.
2. Measures every field with `measure_field` (3 regions, 4 channels, GLCM texture at distance 1,
   angle 0, 32 levels): best and median of ``--repeats`` passes.
3. Measures the same cells with the baseline: for each cell, crop its bounding box and call
   ``skimage.measure.regionprops`` (shape + intensity; quartiles by ``np.percentile``) and
   ``graycomatrix`` / ``graycoprops`` per region and channel (pixels outside the region get an
   extra grey level that is dropped, so both count the same pairs).
4. Prints cells per second and the speed-up, with and without texture, and the largest
   difference between the two tables (they compute the same definitions).
5. Backends on a real field: segments the ExampleHuman field (`configs/examplehuman.yaml`,
   data under CELLBENCH_DATA; skipped when missing) and prints cells/s of each
   ``features.backend`` on it (3 regions, its 2 channels; cellbench with its default texture,
   cellprofiler with CellProfiler's full set through cp_measure; skipped when cp_measure is
   not installed). ``--backends-only`` runs this part alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage as ndi
from skimage import measure
from skimage.feature import graycomatrix, graycoprops

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cellbench.config import FeaturesConfig, SegmentationConfig, TextureConfig  # noqa: E402
from cellbench.data.synthetic import CHANNELS, write_plate  # noqa: E402
from cellbench.features.measure import (  # noqa: E402
    INTENSITY_FEATURES,
    REGIONS,
    SHAPE_FEATURES,
    measure_field,
)
from cellbench.segment import Segmenter  # noqa: E402
from tests.helpers import segmented_examplehuman_field  # noqa: E402

TEXTURE = TextureConfig(distances_px=[1], angles_deg=[0.0], levels=32)
GLCM_PROPS = {  # our name -> graycoprops' name
    "Contrast": "contrast",
    "Dissimilarity": "dissimilarity",
    "Homogeneity": "homogeneity",
    "Energy": "energy",
    "Correlation": "correlation",
    "ASM": "ASM",
}


def make_fields(workdir: Path, n_fields: int, cells: int) -> list[tuple[np.ndarray, ...]]:
    """Synthetic 512 x 512 fields with 4 channels, segmented: (image, cells, nuclei)."""
    plate = write_plate(
        workdir / "plate",
        rows="A",
        columns=list(range(1, max(n_fields, 3) + 1)),
        sites=1,
        field_shape=(512, 512),
        cells_per_field=cells,
        seed=0,
    )
    images = [tifffile.imread(p) for p in sorted((plate / "fields").glob("*.tif"))][:n_fields]
    labels = Segmenter(SegmentationConfig()).segment_fields(images, list(CHANNELS))
    return [(image, c, n) for image, (c, n) in zip(images, labels, strict=True)]


def baseline_field(
    image: np.ndarray, cells: np.ndarray, nuclei: np.ndarray, texture: TextureConfig | None
) -> pd.DataFrame:
    """Cell by cell: bounding-box crops, regionprops and graycomatrix / graycoprops."""
    channels = list(CHANNELS)
    levels = texture.levels if texture else 0
    planes = np.moveaxis(image, 0, -1)
    cell_boxes, nucleus_boxes = ndi.find_objects(cells), ndi.find_objects(nuclei)
    rows = []
    for label in np.unique(cells[cells > 0]):
        box = cell_boxes[label - 1]
        if label <= len(nucleus_boxes) and nucleus_boxes[label - 1] is not None:
            other = nucleus_boxes[label - 1]
            box = tuple(
                slice(min(a.start, b.start), max(a.stop, b.stop))
                for a, b in zip(box, other, strict=True)
            )
        cell, nucleus = cells[box] == label, nuclei[box] == label
        crop = planes[box]
        row = {"label": label}
        for region, mask in (("Nuclei", nucleus), ("Cytoplasm", cell & ~nucleus), ("Cells", cell)):
            if not mask.any():
                continue
            props = measure.regionprops(mask.astype(np.uint8), intensity_image=crop)[0]
            for prop, name in SHAPE_FEATURES.items():
                row[f"{region}_AreaShape_{name}"] = getattr(props, prop)
            pixels = crop[mask].astype(np.float64)
            quartiles = np.percentile(pixels, [25, 75], axis=0)
            intensity = {  # each property read once: regionprops does not cache them
                "MeanIntensity": props.intensity_mean,
                "StdIntensity": props.intensity_std,
                "MinIntensity": props.intensity_min,
                "MaxIntensity": props.intensity_max,
                "MedianIntensity": props.intensity_median,
                "LowerQuartileIntensity": quartiles[0],
                "UpperQuartileIntensity": quartiles[1],
                "IntegratedIntensity": pixels.sum(axis=0),
            }
            for c, channel in enumerate(channels):
                for name in INTENSITY_FEATURES:
                    row[f"{region}_Intensity_{name}_{channel}"] = intensity[name][c]
                if texture is None:
                    continue
                top = pixels[:, c].max()
                values = crop[..., c].astype(np.float64)
                grey = np.floor(values / top * (levels - 1)) if top > 0 else 0 * values
                grey = np.where(mask, grey, levels).astype(np.uint16)  # outside: dropped level
                matrix = graycomatrix(grey, [1], [0.0], levels=levels + 1, symmetric=True)
                matrix = matrix[:levels, :levels]
                for name, prop in GLCM_PROPS.items():
                    row[f"{region}_Texture_{name}_{channel}_1_00"] = graycoprops(matrix, prop)[0, 0]
        rows.append(row)
    return pd.DataFrame(rows)


def timed(function, fields, repeats: int) -> tuple[float, float, list[pd.DataFrame]]:
    """Best and median seconds of `repeats` passes over all fields, and the last tables."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        tables = [function(*field) for field in fields]
        seconds.append(time.perf_counter() - started)
    return min(seconds), float(np.median(seconds)), tables


def largest_difference(ours: pd.DataFrame, theirs: pd.DataFrame) -> dict[str, float]:
    """Largest relative difference per feature group (NaN-for-constant correlation skipped)."""
    ours, theirs = ours.set_index("label"), theirs.set_index("label").reindex(ours["label"])
    worst = {}
    for column in theirs.columns:
        a, b = ours[column].to_numpy(float), theirs[column].to_numpy(float)
        if "Correlation" in column:  # scikit-image says 1 where a level is constant, we NaN
            b = np.where(np.isnan(a), np.nan, b)
        both = ~(np.isnan(a) | np.isnan(b))
        assert (np.isnan(a) == np.isnan(b)).all(), column
        if column.split("_")[-1] == "Orientation":  # +pi/2 and -pi/2 are the same axis
            a = np.where(np.isclose(np.abs(a), np.pi / 2), np.abs(a), a)
            b = np.where(np.isclose(np.abs(b), np.pi / 2), np.abs(b), b)
        diff = np.abs(a[both] - b[both]) / np.maximum(1.0, np.abs(b[both]))
        group = column.split("_")[1]
        worst[group] = max(worst.get(group, 0.0), float(diff.max(initial=0.0)))
    return worst


def backend_rows(workdir: Path, repeats: int) -> None:
    """Print cells/s of each features backend on the ExampleHuman field (step 5)."""
    from cellbench.config import default_data_root

    if not (default_data_root() / "cellprofiler_examples").is_dir():
        print("no CellProfiler examples under CELLBENCH_DATA: backends not compared")
        return
    image, cells, nuclei, channels = segmented_examplehuman_field(workdir)
    n_cells = len(np.unique(cells[cells > 0]))
    backends = {"cellbench": measure_field}
    try:
        from cellbench.features.cellprofiler import measure_field_cellprofiler, require_cp_measure

        require_cp_measure()
        backends["cellprofiler"] = measure_field_cellprofiler
    except ImportError:
        print("cp_measure not installed: no cellprofiler row")
    print()
    print(
        f"ExampleHuman field, {image.shape[1]} x {image.shape[2]} px, {n_cells} cells, "
        f"{len(channels)} channels {channels}, 3 regions"
    )
    print("| backend | columns | s (best / median) | cells/s |")
    print("|---|---|---|---|")
    for name, measure_backend in backends.items():
        features = FeaturesConfig(regions=list(REGIONS), backend=name)
        times, columns = [], 0
        for _ in range(repeats if name == "cellbench" else 1):
            start = time.perf_counter()
            table = measure_backend(image, cells, nuclei, channels, features)
            times.append(time.perf_counter() - start)
            columns = table.shape[1] - 1  # without label
        best, median = min(times), float(np.median(times))
        print(f"| {name} | {columns} | {best:.3f} / {median:.3f} | {n_cells / best:,.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fields", type=int, default=4)
    parser.add_argument("--cells", type=int, default=130, help="cells drawn per field")
    parser.add_argument("--repeats", type=int, default=3, help="passes of measure_field")
    parser.add_argument("--backends-only", action="store_true", help="only step 5")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cellbench-bench-features"))
    args = parser.parse_args()
    if args.backends_only:
        args.workdir.mkdir(parents=True, exist_ok=True)
        warnings.simplefilter("ignore")
        backend_rows(args.workdir, args.repeats)
        return
    shutil.rmtree(args.workdir, ignore_errors=True)
    fields = make_fields(args.workdir, args.fields, args.cells)
    n_cells = sum(len(np.unique(c[c > 0])) for _, c, _ in fields)
    channels, regions = list(CHANNELS), list(REGIONS)
    print(
        f"{len(fields)} fields of 512 x 512 px, {n_cells} cells "
        f"({n_cells / len(fields):.0f} per field), {len(channels)} channels, 3 regions"
    )

    def ours(texture):
        features = FeaturesConfig(regions=regions, texture=texture)
        return lambda image, c, n: measure_field(image, c, n, channels, features)

    def theirs(texture):
        return lambda image, c, n: baseline_field(image, c, n, texture)

    warnings.simplefilter("ignore")  # graycoprops / regionprops on tiny regions
    ours(TEXTURE)(*fields[0])  # warm up imports and caches
    baseline_field(fields[0][0], fields[0][1] * (fields[0][1] <= 3), fields[0][2], TEXTURE)
    rows = []
    for name, texture in (("with texture", TEXTURE), ("no texture", None)):
        best, median, ours_tables = timed(ours(texture), fields, args.repeats)
        base, _, base_tables = timed(theirs(texture), fields, 1)
        rows.append((name, best, median, base))
        if texture is not None:
            worst: dict[str, float] = {}
            for a, b in zip(ours_tables, base_tables, strict=True):
                for group, value in largest_difference(a, b).items():
                    worst[group] = max(worst.get(group, 0.0), value)
    print()
    print("| features | ours s (best / median) | cells/s | baseline s | cells/s | speed-up |")
    print("|---|---|---|---|---|---|")
    for name, best, median, base in rows:
        print(
            f"| {name} | {best:.3f} / {median:.3f} | {n_cells / best:,.0f} | {base:.2f} | "
            f"{n_cells / base:,.0f} | {base / best:.1f}x (median {base / median:.1f}x) |"
        )
    print()
    print(
        "largest relative difference to the baseline: "
        + ", ".join(f"{group} {value:.1e}" for group, value in sorted(worst.items()))
    )
    backend_rows(args.workdir, args.repeats)


if __name__ == "__main__":
    main()
