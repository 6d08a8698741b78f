"""Seconds per field and peak memory of the segment, crop and features stages against plate size.

    python tests/benchmarks/bench_scaling.py [--fields 1 4 16 | --quick] [--workdir DIR]
        [--size-px 2160] [--cells 1500] [--node-cores 64] [--node-mem-gb 256]

1. Writes one synthetic plate of full-size fields (`cellbench.data.synthetic.write_plate`:
   ``--size-px`` square, the 4 synthetic channels plus an extra ``mito`` stain, so 5 uint16
   channels like a Phenix field, 47 MB a field at 2160 px), then plates ``F<n>`` of its first
   n fields (links), one per size of ``--fields``.
2. Runs each stage (segment; crop with every crop kind and all background experiments;
   features) on each plate as ``cellbench run --stage S --task F<n> --force`` in a fresh child
   process, one per (stage, size), so peaks do not mix; the child's peak resident memory is
   its own ``VmHWM`` (/proc/self/status), read as it ends. Each timed child runs under ``flock`` on
   ``/tmp/cellbench-bench.lock`` (taken per run, released between runs).
3. Prints per stage and size the task's seconds (from its status file: the stage's work, no
   interpreter start), the child's wall seconds, seconds per field and peak RSS, with the
   ratios largest size vs smallest and vs the second largest. Time per field must stay within
   20 % and peak memory must not grow by more than 20 %: a failing ratio is flagged ``FAIL``.
4. Projects, from the per-field rates of the largest plate, a screen of 100 plates of 384
   wells x 9 sites (3,456 fields a plate), one array task per plate: task time per plate and
   wall time of the 100-task array on 10 and 100 nodes of ``--node-cores`` cores. A linear
   projection from this machine: time linear in fields at the rate measured here with the
   CPUs the child had, tasks per node limited by cores and by memory.

Data and results go under ``--workdir`` (default /tmp/h5-scaling); the input is kept between
runs when its parameters are unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cellbench.allocation import task_cpus  # noqa: E402
from cellbench.data.synthetic import CHANNELS, write_plate  # noqa: E402

LOCK = Path("/tmp/cellbench-bench.lock")
STAGES = ("segment", "crop", "features")
EXTRA_CHANNEL = "mito"
TOLERANCE = 0.20  # per-field time and peak memory may move by this fraction
SCREEN = {"plates": 100, "wells": 384, "sites": 9}
FIELDS_PER_PLATE = SCREEN["wells"] * SCREEN["sites"]  # 3,456


@dataclass(frozen=True)
class Measurement:
    """One (stage, plate size) run: task and wall seconds, peak RSS of the child in MiB."""

    stage: str
    fields: int
    task_s: float
    wall_s: float
    peak_mib: float

    @property
    def s_per_field(self) -> float:
        return self.task_s / self.fields


@contextlib.contextmanager
def bench_lock() -> Iterator[None]:
    """Hold the machine's benchmark lock (shared with every timed run of the project)."""
    with open(LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_source(workdir: Path, n_fields: int, size_px: int, cells: int) -> Path:
    """The synthetic plate of `n_fields` one-site wells (rows A, B), reused when unchanged."""
    source = workdir / "source"
    columns = list(range(1, math.ceil(n_fields / 2) + 1)) if n_fields > 1 else [1]
    wanted = {"columns": columns, "field_shape": [size_px, size_px], "cells_per_field": cells}
    done = source / "plate.json"
    if done.exists():
        params = json.loads(done.read_text())
        if all(params.get(k) == v for k, v in wanted.items()):
            return source
    shutil.rmtree(source, ignore_errors=True)
    rows = "AB" if n_fields > 1 else "A"
    write_plate(
        source,
        plate="S",
        rows=rows,
        columns=columns,
        sites=1,
        field_shape=(size_px, size_px),
        cells_per_field=cells,
        conditions=("control", "enlarged_nuclei") if n_fields > 1 else ("control",),
        extra_channels=[EXTRA_CHANNEL],
    )
    return source


def link_plates(workdir: Path, source: Path, sizes: list[int]) -> Path:
    """Plates ``F<n>`` holding links to the first n fields of `source` (column-major order).

    Column-major (A-01, B-01, A-02, ...) so that even a 2-field plate has two conditions.
    """
    names = sorted(
        (p.name for p in (source / "fields").glob("*.tif")), key=lambda n: (n[2:4], n[0])
    )
    root = workdir / "input"
    shutil.rmtree(root, ignore_errors=True)
    for n in sizes:
        fields = root / f"F{n}" / "fields"
        fields.mkdir(parents=True)
        for name in names[:n]:
            (fields / name).symlink_to(source / "fields" / name)
    return root


def write_config(workdir: Path, input_root: Path, source: Path, sizes: list[int]) -> Path:
    """The experiment: the demo's segmentation, crop kinds, background experiments, features."""
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    config = {
        "name": "scaling",
        "results_root": str(workdir / "results"),
        "data": {
            "input": {
                "source": "fields",
                "root": str(input_root),
                "plate_from": "folder",
                "plates": [f"F{n}" for n in sizes],
                "scheme": "xyyzz",
                "suffixes": [".tif"],
                "layout": str(source / "layout.csv"),
            },
            "channels": [*CHANNELS[:3], EXTRA_CHANNEL],
            "marker_channels": [CHANNELS[3]],
            "label_column": "condition",
        },
        "segmentation": demo["segmentation"],
        "crops": demo["crops"],
        "features": demo["features"],
        "models": [{"name": "rf", "type": "random_forest"}],
    }
    path = workdir / "scaling.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# The child runs the CLI in-process, then prints its own peak RSS (VmHWM of /proc/self/status,
# kB). Not ru_maxrss from wait4: Linux carries the forking parent's high-water mark across exec.
CHILD = """
import sys
from cellbench.cli import main
try:
    code = main(sys.argv[1:])
finally:
    peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print("PEAK_KB", peak.split()[1], flush=True)
sys.exit(code)
"""


def run_stage(config: Path, results: Path, stage: str, n_fields: int) -> Measurement:
    """Run one stage on plate ``F<n>`` in a fresh child, under the lock; measure it."""
    command = [sys.executable, "-c", CHILD, "run", "--config", str(config)]
    command += ["--stage", stage, "--task", f"F{n_fields}", "--force"]
    with bench_lock():
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - started
    record = _task_status(results, stage, n_fields)
    peaks = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("PEAK_KB")]
    if done.returncode != 0 or record.get("state") != "done" or not peaks:
        raise SystemExit(
            f"{stage} F{n_fields} failed (rc {done.returncode}):\n"
            f"{(done.stdout + done.stderr)[-3000:]}"
        )
    return Measurement(stage, n_fields, record["seconds"], wall, int(peaks[-1]) / 1024)


def _task_status(results: Path, stage: str, n_fields: int) -> dict:
    """The status file the task wrote (see `cellbench.paths.ResultsPaths.status_file`)."""
    from cellbench.paths import ResultsPaths

    path = ResultsPaths(results).status_file(stage, f"F{n_fields}")
    return json.loads(path.read_text()) if path.exists() else {}


def ratio_cell(value: float, base: float) -> tuple[str, bool]:
    """``1.05`` and whether it is within the tolerance (growth only for memory and time)."""
    ratio = value / base
    return f"{ratio:.2f}", ratio <= 1 + TOLERANCE and ratio >= 1 - TOLERANCE


def print_table(results: list[Measurement], sizes: list[int]) -> list[str]:
    """Print the per-stage table and the ratios; return the failures."""
    failures = []
    largest, smallest = sizes[-1], sizes[0]
    second = sizes[-2] if len(sizes) > 2 else smallest
    print(f"\n{'stage':9} {'fields':>6} {'task s':>8} {'wall s':>8} {'s/field':>8} {'peak MiB':>9}")
    for m in results:
        print(
            f"{m.stage:9} {m.fields:6d} {m.task_s:8.1f} {m.wall_s:8.1f} "
            f"{m.s_per_field:8.2f} {m.peak_mib:9.0f}"
        )
    print(f"\nratios, {largest} fields vs {smallest} and vs {second} (limit +-{TOLERANCE:.0%}):")
    by = {(m.stage, m.fields): m for m in results}
    for stage in dict.fromkeys(m.stage for m in results):
        cells = []
        for base in dict.fromkeys([smallest, second]):
            top, low = by[(stage, largest)], by[(stage, base)]
            t, t_ok = ratio_cell(top.s_per_field, low.s_per_field)
            mem, mem_ok = ratio_cell(top.peak_mib, low.peak_mib)
            mem_ok = top.peak_mib <= (1 + TOLERANCE) * low.peak_mib  # shrinking memory is fine
            cells.append(f"vs {base}: s/field x{t}{'' if t_ok else ' FAIL'}, ")
            cells[-1] += f"peak x{mem}{'' if mem_ok else ' FAIL'}"
            failures += [f"{stage} time per field {largest} vs {base}: x{t}"] * (not t_ok)
            failures += [f"{stage} peak memory {largest} vs {base}: x{mem}"] * (not mem_ok)
        print(f"  {stage:9} " + "; ".join(cells))
    return failures


def tasks_per_node(cores: int, mem_gb: float, cpus: int, peak_mib: float) -> int:
    """Tasks of `cpus` CPUs and `peak_mib` peak memory that fit on one node."""
    return max(1, min(cores // cpus, int(mem_gb * 1024 // peak_mib)))


def print_projection(results: list[Measurement], args: argparse.Namespace, cpus: int) -> None:
    """Print the screen projection from the rates of the largest plate."""
    largest = max(m.fields for m in results)
    n_plates = SCREEN["plates"]
    print(
        f"\nprojection: {n_plates} plates x {SCREEN['wells']} wells x {SCREEN['sites']} sites = "
        f"{FIELDS_PER_PLATE} fields a plate, one array task per plate (array size {n_plates}); "
        f"linear in fields at the rates of the {largest}-field run on this machine, each task "
        f"with {cpus} CPU(s) as here; nodes of {args.node_cores} cores, {args.node_mem_gb:g} GB"
    )
    header = f"{'stage':9} {'s/field':>8} {'task h/plate':>12} {'peak GiB':>8} {'tasks/node':>10}"
    print(header + "".join(f" {f'wall h, {n} nodes':>17}" for n in (10, 100)))
    for m in (m for m in results if m.fields == largest):
        per_node = tasks_per_node(args.node_cores, args.node_mem_gb, cpus, m.peak_mib)
        task_h = FIELDS_PER_PLATE * m.s_per_field / 3600
        line = f"{m.stage:9} {m.s_per_field:8.2f} {task_h:12.1f} {m.peak_mib / 1024:8.2f} "
        line += f"{per_node:10d}"
        for nodes in (10, 100):
            waves = math.ceil(n_plates / (nodes * per_node))
            line += f" {waves * task_h:17.1f}"
        print(line)
    print(
        "wall = ceil(100 tasks / (nodes x tasks per node)) x task time: once every plate has a "
        "slot, more nodes do not help; only more CPUs per task (or more tasks per plate) would."
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fields", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--quick", action="store_true", help="fields 1 2 4")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/h5-scaling"))
    parser.add_argument("--size-px", type=int, default=2160, help="field side in px")
    parser.add_argument("--cells", type=int, default=1500, help="mean cells drawn per field")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--node-cores", type=int, default=64)
    parser.add_argument("--node-mem-gb", type=float, default=256.0)
    args = parser.parse_args()
    args.fields = sorted(set([1, 2, 4] if args.quick else args.fields))
    if len(args.fields) < 2:
        parser.error("--fields needs at least two sizes to compare")
    return args


def main() -> None:
    args = parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with bench_lock():  # writing the fields is heavy: keep it off others' measurements
        source = write_source(args.workdir, max(args.fields), args.size_px, args.cells)
    print(
        f"input: {max(args.fields)} fields of {args.size_px} px, 5 channels, in "
        f"{time.perf_counter() - started:.0f} s ({source})"
    )
    input_root = link_plates(args.workdir, source, args.fields)
    config = write_config(args.workdir, input_root, source, args.fields)
    results = []
    for n in args.fields:
        for stage in STAGES:
            if stage not in args.stages and stage != "segment":
                continue
            measured = run_stage(config, args.workdir / "results", stage, n)
            print(f"{stage} F{n}: {measured.task_s:.1f} s, {measured.peak_mib:.0f} MiB", flush=True)
            if stage in args.stages:
                results.append(measured)
    failures = print_table(results, args.fields)
    print_projection(results, args, task_cpus())
    print("\nFAIL:\n  " + "\n  ".join(failures) if failures else "\nall within limits")


if __name__ == "__main__":
    main()
