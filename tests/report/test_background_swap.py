"""Table 1 and Figure 2 of the background-swap study, checked against hand computation.

The expected values are computed here straight from the published CSVs with the csv module,
independently of `cellbench.report.background_swap`, and compared with the notebook's printed
Table 1 as well.
"""

from __future__ import annotations

import csv
import math
import os
import statistics
from pathlib import Path

import pandas as pd
import pytest

from cellbench.cli import main
from cellbench.errors import CellbenchError
from cellbench.report.background_swap import (
    LOCALISATION_CLASSES,
    background_swap_command,
    class_accuracies,
    per_class_accuracies,
    read_experiment,
    read_results,
    table1,
)

DATA = Path(
    os.environ.get("CELLBENCH_DATA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)
RESULTS = DATA / "background_swap" / "results"
needs_data = pytest.mark.skipif(
    not RESULTS.is_dir(), reason=f"background-swap results not found at {RESULTS}"
)

# Table 1 as printed by the study's analyze_swap.ipynb (mean, ± 3 SE), published protocol.
PUBLISHED = {
    "pifia": {
        "base": (0.946, 0.020),
        "mask": (0.883, 0.023),
        "batch": (0.902, 0.017),
        "same": (0.939, 0.013),
        "diff": (0.843, 0.022),
    },
    "pci": {
        "base": (0.916, 0.025),
        "mask": (0.869, 0.029),
        "batch": (0.876, 0.019),
        "same": (0.930, 0.016),
        "diff": (0.772, 0.026),
    },
    "deeploc": {
        "base": (0.713, 0.029),
        "mask": (0.677, 0.029),
        "batch": (0.689, 0.023),
        "same": (0.746, 0.030),
        "diff": (0.612, 0.025),
    },
}


def rows(model: str, experiment: str) -> list[dict]:
    with open(RESULTS / model / f"results_{experiment}.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def mean_pm3se(per_class: dict[str, float]) -> tuple[float, float]:
    values = list(per_class.values())
    return statistics.mean(values), 3 * statistics.stdev(values) / math.sqrt(len(values))


def by_location1(records: list[dict]) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for r in records:
        groups.setdefault(r["Location1"], []).append(float(r["Accuracy"]))
    return {k: statistics.mean(v) for k, v in groups.items()}


def credit_pairs(pairs: dict[tuple[str, str], float]) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for (a, b), accuracy in pairs.items():
        groups.setdefault(a, []).append(accuracy)
        groups.setdefault(b, []).append(accuracy)
    return {k: statistics.mean(v) for k, v in groups.items()}


def same_by_hand(records: list[dict]) -> dict[str, float]:
    pairs: dict[tuple[str, str], list[float]] = {}
    for r in records:
        pairs.setdefault((r["Location1"], r["Location2"]), []).append(float(r["Accuracy"]))
    return credit_pairs({k: statistics.mean(v) for k, v in pairs.items()})


def swap_by_hand(records: list[dict], protocol: str) -> dict[str, float]:
    pairs: dict[frozenset, list[float]] = {}
    for r in records:
        if r["Background"] in (r["Location1"], r["Location2"]):
            continue
        pairs.setdefault(frozenset((r["Location1"], r["Location2"])), []).append(
            float(r["Accuracy"])
        )
    chosen = {
        tuple(sorted(k)): (v[0] if protocol == "first" else statistics.mean(v))
        for k, v in pairs.items()
    }
    return credit_pairs(chosen)


@needs_data
def test_there_are_exactly_the_15_classes_in_the_published_csvs():
    names = {r[c] for r in rows("pifia", "diff") for c in ("Location1", "Location2", "Background")}
    assert names == set(LOCALISATION_CLASSES)
    assert len(LOCALISATION_CLASSES) == 15


@needs_data
@pytest.mark.parametrize(
    ("model", "experiment"), [("pifia", "base"), ("deeploc", "mask"), ("pci", "base")]
)
def test_base_and_mask_match_hand_computation(model, experiment):
    expected = by_location1(rows(model, experiment))
    got = class_accuracies(
        read_experiment(RESULTS / model / f"results_{experiment}.csv", experiment), experiment
    )
    assert set(got.index) == set(expected) and "vacuole" not in got.index
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-12)


@needs_data
@pytest.mark.parametrize("model", ["pifia", "pci", "deeploc"])
def test_same_matches_hand_computation(model):
    expected = same_by_hand(rows(model, "same"))
    frame = read_experiment(RESULTS / model / "results_same.csv", "same")
    got = class_accuracies(frame, "same")
    assert len(got) == 15
    assert got.to_dict() == pytest.approx(expected, abs=1e-12)


@needs_data
@pytest.mark.parametrize("protocol", ["first", "mean"])
@pytest.mark.parametrize(("model", "experiment"), [("pifia", "diff"), ("pci", "batch")])
def test_swaps_match_hand_computation_for_both_pair_protocols(model, experiment, protocol):
    expected = swap_by_hand(rows(model, experiment), protocol)
    frame = read_experiment(RESULTS / model / f"results_{experiment}.csv", experiment)
    got = class_accuracies(frame, experiment, pairs=protocol)
    assert len(got) == 15
    assert got.to_dict() == pytest.approx(expected, abs=1e-12)


@needs_data
def test_first_row_of_a_pair_is_the_first_with_another_background():
    # In file order, actin/bud neck first has backgrounds actin and bud neck (dropped), so the
    # published protocol uses the third row, the cell periphery background.
    records = [
        r
        for r in rows("pifia", "diff")
        if (r["Location1"], r["Location2"]) == ("actin", "bud neck")
    ]
    assert [r["Background"] for r in records[:3]] == ["actin", "bud neck", "cell periphery"]
    frame = read_experiment(RESULTS / "pifia" / "results_diff.csv", "diff")
    only_pair = frame[(frame.Location1 == "actin") & (frame.Location2 == "bud neck")]
    got = class_accuracies(only_pair, "diff", pairs="first")
    assert got["actin"] == pytest.approx(float(records[2]["Accuracy"]))
    got_mean = class_accuracies(only_pair, "diff", pairs="mean")
    kept = [float(r["Accuracy"]) for r in records if r["Background"] not in ("actin", "bud neck")]
    assert len(kept) == 13
    assert got_mean["bud neck"] == pytest.approx(statistics.mean(kept))


@needs_data
@pytest.mark.parametrize("protocol", ["first", "mean"])
def test_table1_mean_and_pm3se_match_hand_computation(protocol):
    table = table1(per_class_accuracies(read_results(RESULTS), pairs=protocol))
    got = {(r.model, r.experiment): (r.mean, r.pm3se) for r in table.itertuples()}
    hand = {
        ("pifia", "base"): mean_pm3se(by_location1(rows("pifia", "base"))),
        ("deeploc", "mask"): mean_pm3se(by_location1(rows("deeploc", "mask"))),
        ("pci", "same"): mean_pm3se(same_by_hand(rows("pci", "same"))),
        ("pifia", "diff"): mean_pm3se(swap_by_hand(rows("pifia", "diff"), protocol)),
        ("deeploc", "batch"): mean_pm3se(swap_by_hand(rows("deeploc", "batch"), protocol)),
    }
    for key, (mean, pm3se) in hand.items():
        assert got[key] == pytest.approx((mean, pm3se), abs=1e-12), key


@needs_data
def test_published_protocol_reproduces_the_printed_table1():
    table = table1(per_class_accuracies(read_results(RESULTS), pairs="first"))
    assert len(table) == 15
    for row in table.itertuples():
        mean, pm3se = PUBLISHED[row.model][row.experiment]
        assert round(row.mean, 3) == pytest.approx(mean), (row.model, row.experiment)
        assert round(row.pm3se, 3) == pytest.approx(pm3se), (row.model, row.experiment)


@needs_data
def test_cli_writes_table1_and_figure2_for_the_three_models(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", "background-swap", "--results", str(RESULTS), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Pairs (batch, diff): first" in printed
    table = pd.read_csv(out / "table1.csv")
    assert list(table.columns[:4]) == ["model", "experiment", "mean", "pm3se"]
    assert set(table["model"]) == {"pifia", "pci", "deeploc"}
    assert set(table["experiment"]) == {"base", "mask", "batch", "same", "diff"}
    assert (table["pairs"] == "first").all()
    markdown = (out / "table1.md").read_text()
    assert "PIFiA" in markdown and "0.946 ± 0.020" in markdown and "published protocol" in markdown
    latex = (out / "table1.tex").read_text()
    assert r"\begin{tabular}" in latex and r"0.843 $\pm$ 0.022" in latex
    for name in ("figure2.png", "figure2.pdf"):
        assert (out / name).stat().st_size > 10_000
    assert (out / "figure2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "figure2.pdf").read_bytes()[:5] == b"%PDF-"


@needs_data
def test_pairs_mean_changes_only_the_swap_experiments(tmp_path):
    assert (
        background_swap_command(["--results", str(RESULTS), "--out", str(tmp_path / "first")]) == 0
    )
    assert (
        background_swap_command(
            ["--results", str(RESULTS), "--out", str(tmp_path / "mean"), "--pairs", "mean"]
        )
        == 0
    )
    first = pd.read_csv(tmp_path / "first" / "table1.csv").set_index(["model", "experiment"])
    mean = pd.read_csv(tmp_path / "mean" / "table1.csv").set_index(["model", "experiment"])
    assert (mean["pairs"] == "mean").all()
    assert "mean over every remaining background" in (tmp_path / "mean" / "table1.md").read_text()
    swaps = first.index.get_level_values("experiment").isin(["batch", "diff"])
    assert (first.loc[~swaps, "mean"] == mean.loc[~swaps, "mean"]).all()
    assert (first.loc[swaps, "mean"] != mean.loc[swaps, "mean"]).all()
    hand = mean_pm3se(swap_by_hand(rows("pci", "diff"), "mean"))[0]
    assert mean.loc[("pci", "diff"), "mean"] == pytest.approx(hand, abs=1e-12)


def test_pairs_listed_in_both_orders_are_one_pair(tmp_path):
    model = tmp_path / "toy"
    model.mkdir()
    (model / "results_diff.csv").write_text(
        "Location1,Location2,Background,Accuracy,StdDev\n"
        "actin,ER,actin,0.10,0\n"  # dropped: background is a class of the pair
        "actin,ER,Golgi,0.60,0\n"  # first remaining row of {actin, ER}
        "ER,actin,nucleus,0.80,0\n"  # same unordered pair, later in file order
        "actin,Golgi,ER,0.90,0\n"
        "actin,unknown,ER,0.20,0\n"  # 'unknown' is not one of the 15 classes
    )
    frame = read_results(tmp_path)["toy"]["diff"]
    first = class_accuracies(frame, "diff", pairs="first")
    assert first.to_dict() == pytest.approx(
        {"actin": (0.6 + 0.9 + 0.2) / 3, "ER": 0.6, "Golgi": 0.9}
    )
    mean = class_accuracies(frame, "diff", pairs="mean")
    assert mean["ER"] == pytest.approx(0.7)
    assert "unknown" not in mean.index


def test_missing_background_column_is_named(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "results_batch.csv").write_text(
        "Location1,Location2,Accuracy,StdDev\nactin,ER,0.5,0\n"
    )
    with pytest.raises(CellbenchError, match=r"missing column\(s\) \['Background'\]"):
        read_results(tmp_path)


def test_cli_reports_a_missing_results_folder(tmp_path, capsys):
    status = background_swap_command(
        ["--results", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]
    )
    assert status == 2
    assert "is not a folder" in capsys.readouterr().err
