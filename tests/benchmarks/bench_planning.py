"""How long planning takes on a large screen: 100 plates x 384 wells x 9 sites.

    python tests/benchmarks/bench_planning.py [--plates 100] [--workdir /tmp/cellbench-bench]

Builds a `fields` source of empty files (345,600 fields), then times `--dry-run` of every stage
as a user runs it (a new Python process), and the plan alone in this process, with no task
done and with every plate task done. The baseline, in the same process, is what planning would
cost if it listed every field and stat'ed it one by one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cellbench.config import load_config  # noqa: E402
from cellbench.execution.plan import plan  # noqa: E402
from cellbench.paths import ResultsPaths  # noqa: E402
from cellbench.stages import list_tasks, task_hash, task_inputs, task_outputs  # noqa: E402
from cellbench.status import DONE, fingerprint, write_status  # noqa: E402

ROWS = "ABCDEFGHIJKLMNOP"


def build_screen(root: Path, plates: int) -> None:
    """Empty field files named X-YY-ZZ for plates x 384 wells x 9 sites (skipped if present)."""
    for p in range(1, plates + 1):
        fields = root / f"plate{p:03d}" / "fields"
        if fields.is_dir() and len(os.listdir(fields)) == 384 * 9:
            continue
        fields.mkdir(parents=True, exist_ok=True)
        (fields.parent / "layout.csv").write_text("well,condition\n")
        for row in ROWS:
            for column in range(1, 25):
                for site in range(1, 10):
                    (fields / f"{row}-{column:02d}-{site:02d}.tif").touch()


def mark_plate_tasks_done(config) -> None:
    """Write done statuses (and outputs) for every plate task, as after a finished run."""
    paths = ResultsPaths(config.results_root)
    for stage in ("segment", "crop", "features"):
        for task in list_tasks(config, stage):
            outputs = task_outputs(config, stage, task)
            for output in outputs:
                output.parent.mkdir(parents=True, exist_ok=True)
                output.touch()
            write_status(
                paths.status_file(stage, task),
                stage=stage,
                task=task,
                state=DONE,
                config_hash=task_hash(config, stage, task),
                inputs=fingerprint(task_inputs(config, stage, task), paths.root),
                outputs=fingerprint(outputs, paths.root),
            )


def stat_every_field(root: Path) -> int:
    """The baseline: list each plate's fields and stat every file."""
    count = 0
    for plate in sorted(root.iterdir()):
        for path in (plate / "fields").iterdir():
            path.stat()
            count += 1
    return count


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plates", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cellbench-bench"))
    args = parser.parse_args()
    screen = args.workdir / "screen"
    print(f"building {args.plates} plates x 384 wells x 9 sites under {screen} ...", flush=True)
    build_screen(screen, args.plates)
    config_path = args.workdir / "screen.yaml"
    results = args.workdir / "results"
    config_path.write_text(
        yaml.safe_dump(
            {
                "name": "screen",
                "results_root": str(results),
                "data": {"input": {"source": "fields", "root": str(screen)}},
                "models": [{"name": "rf", "type": "random_forest"}],
                "seeds": [0, 1, 2],
            }
        )
    )
    config = load_config(config_path)

    def dry_run() -> None:
        subprocess.run(
            [
                sys.executable,
                str(REPO / "jobs" / "submit.py"),
                "--config",
                str(config_path),
                "--stage",
                "all",
                "--dry-run",
                "--executor",
                "local",
            ],
            check=True,
            capture_output=True,
        )

    baseline = timed(stat_every_field, screen)
    fresh_plan = timed(plan, config, "all")
    fresh_cli = timed(dry_run)
    mark_plate_tasks_done(config)
    done_plan = timed(plan, config, "all")
    done_cli = timed(dry_run)
    n_fields = args.plates * 384 * 9
    print(f"fields: {n_fields:,}; plate tasks per stage: {args.plates}")
    print(f"baseline, list and stat every field: {baseline:6.2f} s")
    print(
        f"plan, nothing done:                  {fresh_plan:6.2f} s  "
        f"({baseline / fresh_plan:,.0f}x faster than the baseline)"
    )
    print(f"plan, plate stages done:             {done_plan:6.2f} s")
    print(
        f"submit.py --dry-run, nothing done:   {fresh_cli:6.2f} s (new process, imports included)"
    )
    print(f"submit.py --dry-run, plates done:    {done_cli:6.2f} s")


if __name__ == "__main__":
    main()
