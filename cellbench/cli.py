"""The `cellbench` command: run one task, make a synthetic plate, score or train segmentation.

    cellbench run --stage crop --task P1 --config configs/demo.yaml
    cellbench synthetic --out /tmp/plate --plate P1 --seed 0
    cellbench evaluate-segmentation --images DIR --masks DIR --method classical --json out.json
    cellbench train-segmenter --backend stardist --images DIR --masks DIR --out DIR --epochs 5
    cellbench rename --scheme phenix --to xyyzz DIR --dry-run
    cellbench report background-swap --results DIR --out DIR [--pairs first|mean]
        [--svm-from CROPS.h5|FEATURES.parquet [--max-pairs K] ...]
    cellbench report compare RESULTS_A RESULTS_B
    cellbench nsc --profiles BBBC021_feature_selected_mad_robustize.csv [--json OUT]
    cellbench features-info results/demo/features/P1.parquet
    cellbench --version

`cellbench run` is what a container or a cluster job calls for one task. Exit status: 0 done or
skipped, 1 failed (or nothing to do), 2 bad config or arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cellbench import __version__
from cellbench.errors import CellbenchError, ConfigError, NothingToDo


def _run(args: argparse.Namespace) -> int:
    from cellbench.config import load_config
    from cellbench.tasks import run_task

    config = load_config(args.config)
    result = run_task(config, args.stage, args.task, force=args.force)
    line = f"{result.stage}/{result.task}: {result.state} ({result.seconds:.1f} s)"
    print(f"{line} {result.message}".rstrip())
    if args.verbose and result.traceback:
        print(result.traceback.rstrip(), file=sys.stderr)
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


def _evaluate_segmentation(args: argparse.Namespace) -> int:
    import json

    from cellbench.io.atomic import write_json
    from cellbench.segment.evaluate import evaluate_folder, format_report
    from cellbench.segment.nuclei_only import nuclei_segmenter

    predict = nuclei_segmenter(
        args.method, model=args.model, min_area_px=args.min_area, pmin=args.pmin, pmax=args.pmax
    )
    result = evaluate_folder(Path(args.images), Path(args.masks), predict)
    result["method"] = {"name": args.method, "model": args.model, "min_area_px": args.min_area}
    print(format_report(result))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    overall = result["overall"]
    print(json.dumps({k: overall[k] for k in ("mean_f1", "mean_ap_50_95", "pooled_f1")}))
    return 0


def _train_segmenter(args: argparse.Namespace) -> int:
    from cellbench.segment.training import train_segmenter

    out = train_segmenter(
        args.backend,
        images=Path(args.images),
        masks=Path(args.masks),
        out=Path(args.out),
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        patch_px=args.patch_px,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        pretrained=args.pretrained,
    )
    print(f"trained {args.backend} weights: {out}")
    return 0


REPORT_COMMANDS = {
    "background-swap": "Table 1 and Figure 2 of the background-swap study from per-pair SVM CSVs",
    "compare": "two experiments' accuracy tables side by side",
}


def _report(args: argparse.Namespace) -> int:
    from cellbench.report.background_swap import background_swap_command
    from cellbench.report.compare import compare_command

    command = {"background-swap": background_swap_command, "compare": compare_command}
    return command[args.report_command](args.report_args)


def _nsc(args: argparse.Namespace) -> int:
    from cellbench.evaluate.nsc import nsc_command

    return nsc_command(args.nsc_args)


def _features_info(args: argparse.Namespace) -> int:
    from cellbench.features.info import describe

    for path in args.tables:
        print(describe(Path(path)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `cellbench` and its subcommands.

    Long on purpose: it only declares each subcommand's arguments, one block per command, so
    that `cellbench <command> --help` and this function read the same.
    """
    parser = argparse.ArgumentParser(prog="cellbench", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"cellbench {__version__}")
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

    evaluate = commands.add_parser(
        "evaluate-segmentation", help="score nuclei segmentation against ground-truth masks"
    )
    evaluate.add_argument("--images", required=True, help="folder of single-channel TIFFs")
    evaluate.add_argument("--masks", required=True, help="folder of label TIFFs, same names")
    evaluate.add_argument("--method", required=True, choices=["classical", "stardist", "cellpose"])
    evaluate.add_argument("--model", help="weights: a StarDist folder or a Cellpose file/name")
    evaluate.add_argument("--min-area", type=int, default=10, help="smallest nucleus, pixels")
    evaluate.add_argument("--pmin", type=float, default=1.0, help="low normalisation percentile")
    evaluate.add_argument("--pmax", type=float, default=99.8, help="high percentile")
    evaluate.add_argument("--json", help="write per-image and overall scores here")
    evaluate.set_defaults(handler=_evaluate_segmentation)

    train = commands.add_parser(
        "train-segmenter", help="train StarDist or Cellpose weights offline from annotated images"
    )
    train.add_argument("--backend", required=True, choices=["stardist", "cellpose"])
    train.add_argument("--images", required=True, help="folder of single-channel TIFFs")
    train.add_argument("--masks", required=True, help="folder of label TIFFs, same names")
    train.add_argument("--out", required=True, help="folder to write the model into")
    train.add_argument("--epochs", type=int, default=50)
    train.add_argument("--steps-per-epoch", type=int, default=50, help="StarDist only")
    train.add_argument("--patch-px", type=int, default=128, help="training patch side")
    train.add_argument("--validation-fraction", type=float, default=0.15)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--pretrained", help="fine-tune these weights instead of starting afresh")
    train.set_defaults(handler=_train_segmenter)

    report = commands.add_parser(
        "report",
        help="report tables and figures: " + ", ".join(REPORT_COMMANDS),
        description="; ".join(f"{k}: {v}" for k, v in REPORT_COMMANDS.items())
        + ". Run `cellbench report <command> --help` for its options.",
    )
    report.add_argument("report_command", choices=list(REPORT_COMMANDS), metavar="COMMAND")
    report.add_argument("report_args", nargs=argparse.REMAINDER, help="the command's arguments")
    report.set_defaults(handler=_report)

    nsc = commands.add_parser(
        "nsc",
        help="not-same-compound nearest-neighbour accuracy of per-well profiles",
        description="Run `cellbench nsc --help` for its options.",
        add_help=False,
    )
    nsc.add_argument("nsc_args", nargs=argparse.REMAINDER, help="--profiles FILE [--json OUT]")
    nsc.set_defaults(handler=_nsc)

    info = commands.add_parser(
        "features-info",
        help="a feature table's compartments, groups, channels and what pycytominer sees",
    )
    info.add_argument("tables", nargs="+", metavar="FILE", help="Parquet or CSV feature tables")
    info.set_defaults(handler=_features_info)

    from cellbench.io.rename import add_rename_command

    add_rename_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cellbench` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["nsc"]:  # its own parser reads every option (argparse's REMAINDER would not)
        from cellbench.evaluate.nsc import nsc_command

        return nsc_command(argv[1:])
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
    except NothingToDo as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except CellbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
