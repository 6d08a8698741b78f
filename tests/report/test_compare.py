"""`cellbench report compare`: two accuracy tables side by side."""

from __future__ import annotations

import pandas as pd
import pytest

from cellbench.cli import main
from cellbench.report.compare import compare_accuracy, compare_command, read_accuracy


def write_accuracy(root, rows):
    (root / "report").mkdir(parents=True)
    frame = pd.DataFrame(
        rows,
        columns=["model", "input", "n_seeds", "accuracy_mean", "accuracy_sd", "accuracy_pm3se"],
    )
    frame.to_csv(root / "report" / "accuracy.csv", index=False)


@pytest.fixture
def two_roots(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_accuracy(a, [["rf", "features", 3, 0.80, 0.01, 0.02], ["cnn", "crops", 3, 0.7, 0.1, 0.2]])
    write_accuracy(b, [["rf", "features", 3, 0.85, 0.01, 0.03], ["mlp", "features", 2, 0.6, 0, 0]])
    return a, b


def test_join_on_model_and_input_with_difference(two_roots):
    table = compare_accuracy(read_accuracy(two_roots[0]), read_accuracy(two_roots[1]))
    rf = table.set_index("model").loc["rf"]
    assert rf["accuracy_mean_a"] == 0.80 and rf["accuracy_mean_b"] == 0.85
    assert rf["difference"] == pytest.approx(0.05)
    assert set(table["model"]) == {"rf", "cnn", "mlp"}
    assert table.set_index("model")["difference"].isna().sum() == 2


def test_cli_prints_and_writes_markdown(two_roots, tmp_path, capsys):
    out = tmp_path / "compare.md"
    status = main(["report", "compare", str(two_roots[0]), str(two_roots[1]), "--out", str(out)])
    assert status == 0
    text = out.read_text()
    assert "| model | input |" in text and "difference" in text
    assert f"A: `{two_roots[0]}`" in text
    assert "| rf | features | 3 | 0.800 | 0.020 | 3 | 0.850 | 0.030 | 0.050 |" in text
    assert "0.050" in capsys.readouterr().out


def test_missing_accuracy_file_is_named(two_roots, tmp_path, capsys):
    status = compare_command([str(two_roots[0]), str(tmp_path / "none")])
    assert status == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "none" / "report" / "accuracy.csv") in err
    assert "aggregate" in err
