"""The `cellbench` command: run one task, or make a synthetic plate.

    cellbench run --stage crop --task P1 --config configs/demo.yaml
    cellbench synthetic --out /tmp/plate --plate P1 --seed 0

`cellbench run` is what a container or a cluster job calls for one task. Exit status: 0 done or
skipped, 1 failed, 2 bad config or arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cellbench.errors import CellbenchError, ConfigError


def _run(args: argparse.Namespace) -> int:
    from cellbench.config import load_config
    from cellbench.stages import run_task

    config = load_config(args.config)
    result = run_task(config, args.stage, args.task, force=args.force)
    line = f"{result.stage}/{result.task}: {result.state} ({result.seconds:.1f} s)"
    print(f"{line} {result.message}".rstrip())
    return 0 if result.ok else 1


def _synthetic(args: argparse.Namespace) -> int:
    from cellbench.data.synthetic import write_plate

    out = write_plate(
        Path(args.out),
        plate=args.plate,
        rows=args.rows,
        columns=tuple(range(1, args.columns + 1)),
        sites=args.sites,
        field_shape=(args.size, args.size),
        seed=args.seed,
    )
    print(f"wrote synthetic plate {args.plate!r} to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `cellbench` and its subcommands."""
    parser = argparse.ArgumentParser(prog="cellbench", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run one task of one stage")
    run.add_argument("--config", required=True, help="experiment YAML")
    run.add_argument(
        "--stage", required=True, help="segment, crop, features, train, evaluate or aggregate"
    )
    run.add_argument("--task", required=True, help="a plate, <model>.seed<k>, or 'report'")
    run.add_argument("--force", action="store_true", help="redo the task even if it is done")
    run.set_defaults(handler=_run)

    synthetic = commands.add_parser("synthetic", help="write a synthetic plate with known cells")
    synthetic.add_argument("--out", required=True, help="folder to write the plate into")
    synthetic.add_argument("--plate", default="P1")
    synthetic.add_argument("--rows", default="AB", help="row letters, e.g. AB")
    synthetic.add_argument("--columns", type=int, default=6, help="number of columns")
    synthetic.add_argument("--sites", type=int, default=3, help="fields per well")
    synthetic.add_argument("--size", type=int, default=256, help="field side in pixels")
    synthetic.add_argument("--seed", type=int, default=0)
    synthetic.set_defaults(handler=_synthetic)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cellbench` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except CellbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
