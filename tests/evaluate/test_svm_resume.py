"""The pairwise-SVM results CSV, scored pair by pair and resumed after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellbench.errors import CellbenchError
from cellbench.evaluate.pairwise import pairwise_svm_accuracy
from cellbench.evaluate.pairwise_resume import resume_pairwise_csv

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {"folds": 3, "seed": 7, "max_per_class": 12}


def cells(seed: int = 0):
    """5 classes of 15 cells in 4 features, class k shifted by k/2; backgrounds of 2 classes."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([f"class{k}" for k in range(5)], 15)
    codes = np.repeat(np.arange(5), 15)
    features = rng.normal(size=(75, 4)) + 0.5 * codes[:, None]
    backgrounds = np.tile(["class0", "class1", "class2"], 25)
    return features, labels, backgrounds


def run(path: Path, backgrounds=None, **options) -> dict:
    features, labels, donor = cells()
    chosen = donor if backgrounds else None
    return resume_pairwise_csv(features, labels, chosen, path, **(SETTINGS | options))


@pytest.mark.parametrize("backgrounds", [False, True])
def test_resumed_run_is_byte_identical_to_an_uninterrupted_one(tmp_path, backgrounds):
    whole = tmp_path / "whole.csv"
    assert run(whole, backgrounds)["complete"]
    resumed = tmp_path / "resumed.csv"
    first = run(resumed, backgrounds, max_pairs=4)
    assert first["scored"] == 4 and not first["complete"]
    assert len(pd.read_csv(resumed)) == 4
    second = run(resumed, backgrounds, max_pairs=3)
    assert second["done_before"] == 4 and second["scored"] == 3
    last = run(resumed, backgrounds)
    assert last["done_before"] == 7 and last["complete"]
    assert resumed.read_bytes() == whole.read_bytes()


def test_rows_equal_pairwise_svm_accuracy(tmp_path):
    path = tmp_path / "results_diff.csv"
    run(path, backgrounds=True)
    features, labels, donor = cells()
    expected = pairwise_svm_accuracy(features, labels, donor, **SETTINGS, n_jobs=1)
    got = pd.read_csv(path)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_pairs_in_the_csv_are_skipped_not_recomputed(tmp_path):
    path = tmp_path / "r.csv"
    run(path)
    table = pd.read_csv(path)
    table.loc[0, "Accuracy"] = 0.123  # a value the SVM would not give
    table.to_csv(path, index=False)
    result = run(path)
    assert result["scored"] == 0 and result["done_before"] == len(table)
    assert pd.read_csv(path).loc[0, "Accuracy"] == 0.123


def test_a_last_line_cut_short_by_a_kill_is_redone(tmp_path):
    whole, cut = tmp_path / "whole.csv", tmp_path / "cut.csv"
    run(whole)
    run(cut, max_pairs=3)
    with open(cut, "a") as handle:
        handle.write("class1,class2,0.8")  # killed in the middle of a row
    assert run(cut)["done_before"] == 3
    assert cut.read_bytes() == whole.read_bytes()


def test_a_csv_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("Location1,Location2,Accuracy,StdDev\n")
    with pytest.raises(CellbenchError, match="r.csv: columns"):
        run(path, backgrounds=True)


def test_a_csv_made_with_other_settings_is_refused_naming_them(tmp_path):
    path = tmp_path / "r.csv"
    run(path, max_pairs=2)
    before = path.read_bytes()
    with pytest.raises(CellbenchError, match=r"other settings \(seed: 7 there, 8 now; see r.sett"):
        run(path, seed=8)
    features, labels, _ = cells()
    with pytest.raises(CellbenchError, match=r"inputs_sha256"):  # other cells, same settings
        resume_pairwise_csv(features + 1, labels, None, path, **SETTINGS)
    assert path.read_bytes() == before  # nothing appended
    assert run(path)["done_before"] == 2  # its own settings resume it


def test_a_csv_without_its_settings_file_resumes_with_a_warning(tmp_path, caplog):
    whole, path = tmp_path / "whole.csv", tmp_path / "r.csv"
    run(whole)
    run(path, max_pairs=2)
    (tmp_path / "r.settings.json").unlink()  # as the study's own script leaves it
    with caplog.at_level("WARNING"):
        assert run(path)["done_before"] == 2
    assert "settings cannot be checked" in caplog.text
    assert path.read_bytes() == whole.read_bytes()
    assert (tmp_path / "r.settings.json").exists()  # kept from now on


def test_a_killed_process_resumes_to_the_same_csv(tmp_path):
    whole = tmp_path / "whole.csv"
    run(whole)
    killed = tmp_path / "killed.csv"
    # A real SIGKILL in the middle of a run: the process kills itself when the 4th pair starts.
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.evaluate import test_svm_resume as t
        import cellbench.evaluate.pairwise_resume as module
        calls = []
        score = module._score
        def dying(*args):
            calls.append(1)
            if len(calls) == 4:
                os.kill(os.getpid(), signal.SIGKILL)
            return score(*args)
        module._score = dying
        t.run(__import__("pathlib").Path({str(killed)!r}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL
    assert len(pd.read_csv(killed)) == 3  # three pairs made it to disk
    assert run(killed)["done_before"] == 3
    assert killed.read_bytes() == whole.read_bytes()
    assert os.path.getsize(killed) > 0


def feature_table(path: Path) -> Path:
    features, labels, donor = cells()
    table = pd.DataFrame(features, columns=[f"Cells_F_{i}" for i in range(4)])
    table.insert(0, "Metadata_CellId", [f"c{i}" for i in range(len(labels))])
    table["label"], table["donor"] = labels, donor
    table.to_csv(path, index=False)
    return path


def cli(table: Path, results: Path, *extra: str) -> int:
    from cellbench.cli import main

    options = ["--folds", "3", "--seed", "7", "--max-per-class", "12"]
    return main(
        ["report", "background-swap", "--results", str(results), "--out", str(results / "out")]
        + ["--svm-from", str(table), "--experiment", "diff", "--background-column", "donor"]
        + options
        + list(extra)
    )


def test_cli_svm_from_a_feature_table_resumes_and_writes_table1(tmp_path, capsys):
    table = feature_table(tmp_path / "features.csv")
    assert cli(table, tmp_path / "whole") == 0
    whole = tmp_path / "whole" / "features" / "results_diff.csv"
    assert (tmp_path / "whole" / "out" / "table1.csv").exists()

    resumed = tmp_path / "resumed"
    assert cli(table, resumed, "--max-pairs", "5") == 0
    csv_path = resumed / "features" / "results_diff.csv"
    assert len(pd.read_csv(csv_path)) == 5
    assert not (resumed / "out" / "table1.csv").exists()  # Table 1 waits for every pair
    assert "5 scored of 30 (incomplete)" in capsys.readouterr().out
    assert cli(table, resumed) == 0
    assert "5 pair(s) found, 25 scored of 30" in capsys.readouterr().out
    assert csv_path.read_bytes() == whole.read_bytes()
    assert (resumed / "out" / "table1.csv").read_bytes() == (
        tmp_path / "whole" / "out" / "table1.csv"
    ).read_bytes()


def test_cli_svm_from_names_a_missing_column(tmp_path, capsys):
    table = feature_table(tmp_path / "features.csv")
    assert cli(table, tmp_path / "r", "--label-column", "nope") == 2
    assert "no column 'nope' (--label-column)" in capsys.readouterr().err


def crop_store(path: Path) -> Path:
    """A store of 3 classes x 10 cells with kinds bg_original (base) and bg_masked (mask)."""
    from cellbench.crops.extract import crop_spec
    from cellbench.crops.store import write_crop_store

    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(3), 10)
    cells = pd.DataFrame(
        {
            "cell_id": [f"P1_{i}" for i in range(30)],
            "plate": "P1",
            "well": "A01",
            "field": "f0",
            "label": np.array(["a", "b", "c"])[codes],
        }
    )
    images = (rng.integers(0, 100, (30, 1, 16, 16)) + 60 * codes[:, None, None, None]).astype(
        np.uint16
    )
    masks = np.ones((30, 16, 16), np.uint8)
    kinds = {"bg_original": (images, masks), "bg_masked": (images // 2, masks)}
    write_crop_store(
        path,
        plate="P1",
        channel_names=["DNA"],
        specs=[crop_spec(kind, 16) for kind in kinds],
        batches=[(cells, kinds)],
        config_hash="x",
    )
    return path


def test_cli_svm_from_a_crop_store_scores_each_experiment_and_resumes(tmp_path, capsys):
    from cellbench.cli import main

    store = crop_store(tmp_path / "P1.h5")

    def command(results: Path, *extra: str) -> int:
        out = ["--out", str(results / "out"), "--folds", "3", "--svm-from", str(store)]
        return main(["report", "background-swap", "--results", str(results), *out, *extra])

    assert command(tmp_path / "whole") == 0
    for experiment in ("base", "mask"):
        table = pd.read_csv(tmp_path / "whole" / "crops" / f"results_{experiment}.csv")
        assert table[["Location1", "Location2"]].values.tolist() == [
            ["a", "b"],
            ["a", "c"],
            ["b", "c"],
        ]
    assert command(tmp_path / "resumed", "--max-pairs", "2") == 0
    assert "(incomplete)" in capsys.readouterr().out
    assert command(tmp_path / "resumed") == 0
    for experiment in ("base", "mask"):
        name = f"crops/results_{experiment}.csv"
        assert (tmp_path / "resumed" / name).read_bytes() == (
            tmp_path / "whole" / name
        ).read_bytes()
    assert (tmp_path / "resumed" / "out" / "table1.csv").exists()


def test_the_aggregate_study_and_the_resumable_run_agree_on_a_store(tmp_path):
    from cellbench.evaluate.background_study import background_study, experiment_inputs

    store = crop_store(tmp_path / "P1.h5")
    written = background_study([store], "label", tmp_path / "study", folds=3)
    assert sorted(written) == ["base", "mask"]
    for experiment, x, labels, backgrounds in experiment_inputs([store], "label"):
        path = tmp_path / f"resumed_{experiment}.csv"
        resume_pairwise_csv(x, labels, backgrounds, path, folds=3, max_per_class=1000)
        pd.testing.assert_frame_equal(pd.read_csv(path), pd.read_csv(written[experiment]))
