"""The summary that opens the report: the winner of each metric, judged by ± 3 SE."""

import math

import pandas as pd

from cellbench.report.summary import accuracy_chart, answer_lines, summary_html

ACCURACY = pd.DataFrame(
    {
        "model": ["rf", "cnn", "svm"],
        "input": ["features", "crops:whole_cell", "features"],
        "accuracy_mean": [0.91, 0.80, 0.90],
        "accuracy_pm3se": [0.01, 0.02, 0.02],
        "balanced_accuracy_mean": [0.90, 0.79, 0.91],
        "majority_rate_mean": [0.34, 0.34, 0.34],
    }
)


def test_the_best_row_of_each_metric_against_its_runner_up():
    answers = {a.metric: a for a in answer_lines({"accuracy": ACCURACY})}
    accuracy = answers["accuracy on held-out cells"]
    assert (accuracy.best, accuracy.runner_up) == ("rf (features)", "svm (features)")
    assert not accuracy.clearly_ahead  # 0.91 - 0.01 < 0.90 + 0.02
    assert accuracy.sentence() == (
        "accuracy on held-out cells: rf (features) 0.910 ± 0.010, "
        "within 3 SE of svm (features) (0.900, +0.010)"
    )
    balanced = answers["balanced accuracy"]  # no SE in the table: no verdict
    assert balanced.best == "svm (features)" and not balanced.comparable
    assert "no ± 3 SE to tell them apart" in balanced.sentence()


def test_clearly_ahead_when_the_intervals_do_not_overlap_and_smaller_mse_wins():
    apart = ACCURACY.assign(accuracy_mean=[0.95, 0.80, 0.90])
    (accuracy, _) = answer_lines({"accuracy": apart})
    assert accuracy.clearly_ahead and "ahead of svm (features)" in accuracy.sentence()
    generation = pd.DataFrame(
        {
            "model": ["vae", "cp2image"],
            "input": ["crops", "features"],
            "reconstruction_mse_mean": [0.02, 0.05],
            "reconstruction_mse_pm3se": [0.001, 0.002],
        }
    )
    (mse,) = answer_lines({"generation": generation})
    assert mse.best == "vae (crops)" and mse.clearly_ahead


def test_summary_block_names_the_winner_and_shows_the_chart(tmp_path):
    files = accuracy_chart(ACCURACY, tmp_path / "summary_accuracy")
    assert [f.name for f in files] == ["summary_accuracy.png", "summary_accuracy.pdf"]
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    block = summary_html(answer_lines({"accuracy": ACCURACY}), files[0], 0.34)
    assert block.startswith('<section id="summary">')
    assert "rf (features) 0.910 ± 0.010" in block and "Majority-class rate" in block
    assert '<a href="summary_accuracy.png"><img class="chart" src="summary_accuracy.png"' in block
    empty = summary_html([], None, math.nan)
    assert "No model finished" in empty and "Majority" not in empty
