#!/usr/bin/env python
"""Submit stages of a cellbench experiment: plan them, then run them locally or on SLURM.

    python jobs/submit.py --config configs/demo.yaml --stage all
    python jobs/submit.py --config configs/demo.yaml --stage crop --dry-run
    python jobs/submit.py --config C --status
    python jobs/submit.py --config C --retry-failed --mem-factor 2

Exit status: 0 when every task ended well (or was submitted), 1 when a task failed, the input
holds nothing to do, or a file could not be written; 2 for a bad config or option, or when
another submit holds the results root; 3 when --wait ran out of time.
"""

from __future__ import annotations

import argparse
import logging
import sys

from cellbench import __version__
from cellbench.errors import CellbenchError, ConfigError, NothingToDo
from cellbench.execution.plan import ALL
from cellbench.execution.run import EXECUTORS, execute
from cellbench.stages import STAGES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of submit.py."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"cellbench {__version__}")
    parser.add_argument("--config", required=True, help="experiment YAML")
    parser.add_argument("--stage", choices=[*STAGES, ALL], help="stage to run, or all")
    parser.add_argument(
        "--executor",
        default="auto",
        choices=EXECUTORS,
        help="auto: slurm when sbatch is on PATH, else local",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan (and sbatch parameters), run nothing"
    )
    parser.add_argument("--force", action="store_true", help="redo tasks that are done")
    parser.add_argument(
        "--status",
        action="store_true",
        help="print done / failed / running / pending per stage and exit",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="resubmit only failed tasks (and what depends on them)",
    )
    parser.add_argument(
        "--mem-factor",
        type=float,
        default=1.0,
        help="multiply each job's memory (with --retry-failed)",
    )
    parser.add_argument(
        "--time-factor",
        type=float,
        default=1.0,
        help="multiply each job's time limit (with --retry-failed)",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="after submitting to SLURM, wait for the jobs and print the status",
    )
    parser.add_argument(
        "--wait-timeout",
        type=float,
        default=3600,
        help="seconds --wait waits at most (default 3600)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    args = parser.parse_args(argv)
    if not (args.status or args.retry_failed or args.stage):
        parser.error("give --stage, --status or --retry-failed")
    if min(args.mem_factor, args.time_factor) <= 0:
        parser.error("--mem-factor and --time-factor must be positive")
    return args


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
        if args.status:
            return _print_status(config)
        if args.dry_run:
            outcome = _execute(config, args)
        else:
            from cellbench.execution.lock import submit_lock

            with submit_lock(config):
                outcome = _execute(config, args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except NothingToDo as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except CellbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the log folder of a SLURM array cannot be written
        from cellbench.tasks import describe_failure

        message, trace = describe_failure(exc)
        print(f"error: {message}", file=sys.stderr)
        if args.verbose:
            print(trace, file=sys.stderr)
        return 1
    if outcome is None:
        return 0
    if outcome.submitted and args.wait and not args.dry_run:
        return _wait(config, args, outcome)
    return 1 if outcome.failed else 0


def _execute(config, args: argparse.Namespace):
    """Plan and run (or submit) what the arguments ask; None when there is nothing to retry."""
    only = None
    if args.retry_failed:
        from cellbench.execution.progress import collect, failed_tasks

        only = failed_tasks(collect(config)[0])
        if not only:
            print("no failed task to retry")
            return None
    factors = None
    if args.mem_factor != 1 or args.time_factor != 1:
        from cellbench.execution.base import Factors

        factors = Factors(mem=args.mem_factor, time=args.time_factor)
    return execute(
        config,
        args.stage or ALL,
        args.executor,
        force=args.force,
        dry_run=args.dry_run,
        only=only,
        factors=factors,
        verbose=args.verbose,
    )


def _print_status(config) -> int:
    from cellbench.execution.progress import collect, format_status

    views, source = collect(config)
    print(format_status(views, source))
    return 1 if any(v.state == "failed" for v in views) else 0


def _wait(config, args: argparse.Namespace, outcome) -> int:
    """Wait for the submitted jobs, then print the status."""
    from cellbench.execution import executor
    from cellbench.execution.run import resolve_executor

    try:
        executor(resolve_executor(args.executor, config)).wait(config, outcome, args.wait_timeout)
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return _print_status(config)


if __name__ == "__main__":
    sys.exit(main())
