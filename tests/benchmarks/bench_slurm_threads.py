"""The demo's training tasks under the local executor and under SLURM: threads follow the CPUs.

    bash slurm/start.sh   # as root: the single-node test SLURM
    flock /tmp/cellbench-bench.lock python tests/benchmarks/bench_slurm_threads.py \
        [--config configs/demo.yaml] [--cluster configs/clusters/test-slurm.yaml] \
        [--workdir DIR] [--keep]

Runs the whole demo twice from nothing, each in a results root of its own under `--workdir`
(default: a new temporary folder, removed at the end unless ``--keep``; never the repository):
``jobs/submit.py --stage all --executor local``, then ``--executor slurm --wait`` with the
cluster profile (``execution.cluster`` of the experiment, which is how submit.py picks it).
Prints

- the wall time of each submit command (goal under SLURM: under 6 min on the 2-core machine);
- per stage, the number of tasks, the sum of their own seconds and the span from the first
  task's start to the last one's end (``started`` and ``seconds`` of ``_status/<stage>/``),
  which says where the wall time goes (task work, or waiting between tasks and stages);
- per training model type, the mean seconds of its tasks (the task's own run, not its
  queueing) under each executor and their ratio (goal: at most 1.2). A ratio near 1 says that
  a SLURM task gets the same work done on its ``--cpus-per-task`` as a local worker on its
  share: with ``cpus: 1`` and ``array_parallelism: 2`` both run two 1-thread tasks at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cellbench.runners import parse_model_task  # noqa: E402
from cellbench.stages import STAGES  # noqa: E402

RATIO_GOAL = 1.2  # SLURM / local seconds of the training tasks, at most
DEMO_GOAL_S = 360.0  # wall seconds of the whole demo under the test SLURM, under


def write_variant(config: Path, root: Path, cluster: Path | None) -> Path:
    """A copy of the experiment writing under `root`, with `cluster` as its SLURM profile."""
    raw = yaml.safe_load(config.read_text())
    raw["results_root"] = str(root)
    if cluster is not None:
        raw.setdefault("execution", {})["cluster"] = str(cluster.resolve())
    path = root.parent / f"{root.name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run_demo(config: Path, executor: str, timeout_s: float) -> float:
    """Wall seconds of ``submit.py --stage all`` with `executor`; exits on its failure."""
    command = [sys.executable, str(REPO / "jobs" / "submit.py"), "--config", str(config)]
    command += ["--stage", "all", "--executor", executor]
    if executor == "slurm":
        command += ["--wait", "--wait-timeout", str(timeout_s)]
    print("$", " ".join(command), flush=True)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    # Other users' work on the machine slows either run: the load says how much there was.
    print(
        f"  {seconds:.0f} s; 1-min load average {load:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        sys.exit(f"{executor} demo failed (exit {done.returncode})")
    return seconds


def train_seconds(root: Path, model_types: dict[str, str]) -> dict[str, list[float]]:
    """Seconds of every done training task, by model type."""
    by_type: dict[str, list[float]] = defaultdict(list)
    for path in sorted((root / "_status" / "train").glob("*.json")):
        status = json.loads(path.read_text())
        if status.get("state") != "done":
            continue
        model, _ = parse_model_task(status["task"])
        by_type[model_types[model]].append(float(status["seconds"]))
    return by_type


def threads_used(root: Path) -> set[tuple]:
    """The distinct (cpus, torch threads) the training tasks recorded."""
    seen = set()
    for path in (root / "_status" / "train").glob("*.json"):
        threads = json.loads(path.read_text()).get("threads") or {}
        seen.add((threads.get("cpus"), threads.get("torch")))
    return seen


def stage_times(root: Path) -> dict[str, tuple[int, float, float]]:
    """Per stage: (tasks done, sum of their seconds, span from first start to last end in s)."""
    times = {}
    for stage in STAGES:
        ends = []
        for path in (root / "_status" / stage).glob("*.json"):
            status = json.loads(path.read_text())
            if status.get("state") == "done":
                ends.append((float(status["started"]), float(status["seconds"])))
        if ends:
            span = max(a + b for a, b in ends) - min(a for a, _ in ends)
            times[stage] = (len(ends), sum(b for _, b in ends), span)
    return times


def print_stages(name: str, root: Path, wall_s: float) -> None:
    """The per-stage table of one run, and what of its wall time no stage's span covers."""
    times = stage_times(root)
    print(f"\n{name}: demo wall time {wall_s:.0f} s")
    print("| stage | tasks | sum of task s | span s |")
    print("|---|---|---|---|")
    for stage, (count, total, span) in times.items():
        print(f"| {stage} | {count} | {total:.0f} | {span:.0f} |")
    spans = sum(span for _, _, span in times.values())
    print(f"| (outside any stage's span: start-up, queueing) | | | {wall_s - spans:.0f} |")
    used = sorted(threads_used(root), key=str)
    print(f"(cpus, torch threads) of its training tasks: {used}")


def print_table(local: dict[str, list[float]], slurm: dict[str, list[float]]) -> None:
    """Mean seconds per model type, local and SLURM, and the ratio."""
    print("| model type | tasks | local mean s | SLURM mean s | SLURM / local |")
    print("|---|---|---|---|---|")
    for kind in sorted(local):
        a = sum(local[kind]) / len(local[kind])
        b = sum(slurm.get(kind, [0])) / max(1, len(slurm.get(kind, [])))
        print(f"| {kind} | {len(local[kind])} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
    a = sum(map(sum, local.values()))
    b = sum(map(sum, slurm.values()))
    print(
        f"| all training | {sum(map(len, local.values()))} | {a:.0f} (sum) | {b:.0f} (sum) "
        f"| {b / a:.2f} |"
    )
    print(f"goal: SLURM / local at most {RATIO_GOAL}: {'met' if b / a <= RATIO_GOAL else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "demo.yaml")
    parser.add_argument(
        "--cluster", type=Path, default=REPO / "configs" / "clusters" / "test-slurm.yaml"
    )
    parser.add_argument("--workdir", type=Path, help="default: a new temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the results roots")
    parser.add_argument("--timeout", type=float, default=1800, help="SLURM --wait-timeout (s)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cellbench-bench-slurm-"))
    if workdir.resolve().is_relative_to(REPO):
        sys.exit(f"--workdir {workdir} is inside the repository; give a temporary folder")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    try:
        measure(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def measure(args: argparse.Namespace, workdir: Path) -> None:
    """Run the demo locally, then under SLURM, in `workdir`; print every table."""
    raw = yaml.safe_load(args.config.read_text())
    model_types = {model["name"]: model["type"] for model in raw["models"]}
    roots = {"local": workdir / "local", "slurm": workdir / "slurm"}
    walls = {
        "local": run_demo(write_variant(args.config, roots["local"], None), "local", args.timeout),
        "slurm": run_demo(
            write_variant(args.config, roots["slurm"], args.cluster), "slurm", args.timeout
        ),
    }
    for name, seconds in walls.items():
        print_stages(name, roots[name], seconds)
    goal = "met" if walls["slurm"] < DEMO_GOAL_S else "MISSED"
    print(f"goal: demo under SLURM under {DEMO_GOAL_S:.0f} s: {goal}\n")
    print_table(
        train_seconds(roots["local"], model_types), train_seconds(roots["slurm"], model_types)
    )


if __name__ == "__main__":
    main()
