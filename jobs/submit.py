#!/usr/bin/env python
"""Submit stages of a cellbench experiment: plan them, then run them on an executor.

    python jobs/submit.py --config configs/demo.yaml --stage all
    python jobs/submit.py --config configs/demo.yaml --stage crop --dry-run

Exit status: 0 when every task ended well, 1 when a task failed, 2 for a bad config or option.
"""

from __future__ import annotations

import argparse
import logging
import sys

from cellbench.errors import CellbenchError, ConfigError
from cellbench.execution.plan import ALL
from cellbench.execution.run import EXECUTORS, execute
from cellbench.stages import STAGES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of submit.py."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="experiment YAML")
    parser.add_argument("--stage", required=True, choices=[*STAGES, ALL])
    parser.add_argument(
        "--executor",
        default="auto",
        choices=EXECUTORS,
        help="auto: SLURM when sbatch is on PATH, else local",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    parser.add_argument("--force", action="store_true", help="redo tasks that are done")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from cellbench.config import load_config

    try:
        config = load_config(args.config)
        results = execute(config, args.stage, args.executor, force=args.force, dry_run=args.dry_run)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except CellbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if any(r.state == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
