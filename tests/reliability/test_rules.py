"""Ground-truth rules are checked at config load and interpreted, never run as code."""

import os

import numpy as np
import pandas as pd
import pytest

from cellbench.config import GroundTruthConfig
from cellbench.config.rules import RuleError, evaluate_rule, parse_rule, rule_columns
from cellbench.errors import CellbenchError, ConfigError
from cellbench.ground_truth import UNDEFINED, assign_classes, marker_table
from tests.helpers import small_config

INJECTION = (
    "marker_mean.__class__.__init__.__globals__['sys'].modules['os'].system('id > pwned.txt') == 0"
)
COLUMNS = rule_columns(["EdU", "BrdU"])


def rules_config(tmp_path, rules: dict[str, str]):
    return small_config(
        tmp_path / "results",
        data={"input": {"source": "synthetic", "plates": 1}, "marker_channels": ["marker"]},
        ground_truth={"rules": rules},
    )


def test_injection_rule_is_a_config_error_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        rules_config(tmp_path, {"astro": INJECTION})
    message = str(caught.value)
    assert "ground_truth.rules.astro" in message
    assert "'marker_mean.__class__' is not allowed (attribute access)" in message
    assert not (tmp_path / "pwned.txt").exists()
    assert not os.path.exists("pwned.txt")


def test_injection_rule_is_refused_at_evaluation_too(tmp_path, monkeypatch):
    """A config built without load-time checks still never runs the rule."""
    monkeypatch.chdir(tmp_path)
    table = pd.DataFrame({"label": [1], "marker_mean": [1.0], "nucleus_area": [5.0]})
    table["dna_mean"] = 1.0
    settings = GroundTruthConfig(rules={"astro": INJECTION})
    with pytest.raises(CellbenchError, match="ground_truth.rules.astro"):
        assign_classes(table, settings)
    assert not (tmp_path / "pwned.txt").exists()


def test_valid_rules_load(tmp_path):
    config = rules_config(tmp_path, {"hi": "marker_mean > 3", "lo": "not marker_mean > 3"})
    assert set(config.ground_truth.rules) == {"hi", "lo"}


@pytest.mark.parametrize(
    ("rule", "part", "kind"),
    [
        ("EdU_mean.real > 1", "EdU_mean.real", "attribute access"),
        ("abs(EdU_mean) > 1", "abs(EdU_mean)", "function call"),
        ("EdU_mean[0] > 1", "EdU_mean[0]", "subscript"),
        ("EdU_mean == 'x'", "'x'", "string"),
        ("EdU_mean ** 2 > 1", "EdU_mean ** 2", "operator **"),
        ("(EdU_mean > 1) & (BrdU_mean > 1)", "(EdU_mean > 1) & (BrdU_mean > 1)", "operator &"),
        ("(lambda: 1)() > 0", "lambda: 1", "lambda"),
        ("EdU_mean > True", "True", "True"),
    ],
)
def test_forbidden_parts_are_named(rule, part, kind):
    with pytest.raises(RuleError) as caught:
        parse_rule(rule, COLUMNS, key="ground_truth.rules.astro")
    message = str(caught.value)
    assert message.startswith(f"ground_truth.rules.astro: {part!r} is not allowed ({kind})")
    assert "a rule may use the columns" in message


@pytest.mark.parametrize(
    ("rule", "part", "problem"),
    [
        ("Edu_mean > 1", "Edu_mean", "is not a known column"),
        ("EdU_mean", "EdU_mean", "is a number, not a condition"),
        ("not EdU_mean", "EdU_mean", "is a number where a condition is needed"),
        ("EdU_mean > (1 < 2)", "1 < 2", "is a condition where a number is needed"),
        ("EdU_mean >", "EdU_mean >", "is not a valid expression"),
    ],
)
def test_other_errors_name_the_rule_and_the_part(rule, part, problem):
    with pytest.raises(RuleError, match="EdU_mean") as caught:
        parse_rule(rule, COLUMNS, key="ground_truth.rules.astro")
    assert str(caught.value).startswith(f"ground_truth.rules.astro: {part!r} {problem}")


def test_unknown_column_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"ground_truth.rules.b: 'EdU_mean' is not a known"):
        rules_config(tmp_path, {"a": "marker_mean > 1", "b": "EdU_mean > 1"})


def numpy_reference(x, y):
    """The expected matches of `RULES`, written out with numpy (NaN never matches)."""
    known_x, known_y = ~np.isnan(x), ~np.isnan(y)
    with np.errstate(all="ignore"):
        ratio = x / y
    return {
        "chain": (100 < x) & (x <= 600) & known_x,
        "not_or": (~(x > 300) & known_x) | ((y >= 50) & known_y),
        "arith": (2 * x - y / 4 > -(x + 10)) & known_x & known_y,
        "ratio": (ratio > 2) & ~np.isnan(ratio),
        "ne": (x != 500) & known_x,
        "chain3": (0 <= y) & (y < x) & (x < 800) & known_x & known_y,
    }


RULES = {
    "chain": "100 < EdU_mean <= 600",
    "not_or": "not EdU_mean > 300 or BrdU_mean >= 50",
    "arith": "2 * EdU_mean - BrdU_mean / 4 > -(EdU_mean + 10)",
    "ratio": "EdU_mean / BrdU_mean > 2",
    "ne": "EdU_mean != 500",
    "chain3": "0 <= BrdU_mean < EdU_mean < 800",
}


def test_evaluation_matches_numpy_with_nan_never_matching():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1000, 200)
    y = rng.uniform(0, 100, 200)
    x[::7], y[::11], y[::13] = np.nan, np.nan, 0.0  # NaN rows, and 0 divisors (inf)
    x[5] = 500.0
    table = pd.DataFrame({"EdU_mean": x, "BrdU_mean": y})
    expected = numpy_reference(x, y)
    for name, rule in RULES.items():
        got = evaluate_rule(parse_rule(rule, COLUMNS), table)
        assert got.dtype == bool
        np.testing.assert_array_equal(got, expected[name], err_msg=name)
    nan_rows = np.isnan(x)
    for rule in ("EdU_mean != 500", "not EdU_mean > 300", "not (EdU_mean < 1 and EdU_mean > 2)"):
        assert not evaluate_rule(parse_rule(rule, COLUMNS), table)[nan_rows].any(), rule


def test_false_and_unknown_is_false_true_or_unknown_is_true():
    table = {"EdU_mean": np.array([np.nan, np.nan]), "BrdU_mean": np.array([1.0, 9.0])}
    either = parse_rule("EdU_mean > 1 or BrdU_mean > 5", COLUMNS)
    assert evaluate_rule(either, table).tolist() == [False, True]
    neither = parse_rule("not (EdU_mean > 1 and BrdU_mean > 5)", COLUMNS)
    assert evaluate_rule(neither, table).tolist() == [True, False]


def test_assign_classes_with_rules_over_marker_table():
    cells = np.zeros((10, 30), np.int32)
    cells[2:8, 1:9], cells[2:8, 11:19], cells[2:8, 21:29] = 1, 2, 3
    nuclei = cells.copy()
    edu = np.select([cells == 1, cells == 2], [900, 100], 400).astype(np.uint16)
    brdu = np.select([cells == 1, cells == 2], [100, 700], 400).astype(np.uint16)
    dna = np.full(cells.shape, 800, np.uint16)
    table = marker_table(np.stack([edu, brdu]), ["EdU", "BrdU"], dna, cells, nuclei)
    assert sorted(set(table.columns) - {"label"}) == sorted(COLUMNS)  # one list of names
    settings = GroundTruthConfig(
        rules={
            "astro": "EdU_mean > 600 and BrdU_mean < 300",
            "SHSY5Y": "EdU_mean < 200 and not BrdU_mean <= 300",
            "mid": "300 < EdU_mean < 500 and 300 < BrdU_max < 500",
        }
    )
    assert assign_classes(table, settings).tolist() == ["astro", "SHSY5Y", "mid"]
    table.loc[2, "BrdU_max"] = np.nan
    assert assign_classes(table, settings).tolist() == ["astro", "SHSY5Y", UNDEFINED]
