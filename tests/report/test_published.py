"""The published-vs-ours table: our mean and ± 3 SE over seeds beside each published number."""

import math

import pytest

from cellbench.config import config_from_dict
from cellbench.config.analyses import PublishedResult
from cellbench.errors import ConfigError
from cellbench.report.published import published_table
from tests.helpers import experiment_dict


def _records():
    return [
        {"model": "lr", "seed": 0, "accuracy": 0.15, "map": 0.10},
        {"model": "lr", "seed": 1, "accuracy": 0.17, "map": float("nan")},
        {"model": "lr", "seed": 2, "accuracy": 0.16},
        {"model": "cnn", "seed": 0, "accuracy": 0.30},
    ]


def test_our_mean_and_3se_over_seeds_sit_beside_the_published_range():
    published = [
        PublishedResult(model="lr", metric="accuracy", value=(0.1518, 0.1707), source="S4 c1")
    ]
    row = published_table(published, _records()).iloc[0]
    values = [0.15, 0.17, 0.16]
    mean = sum(values) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    assert row["ours_mean"] == pytest.approx(mean)
    assert row["ours_pm3se"] == pytest.approx(3 * sd / math.sqrt(3))
    assert row["n_seeds"] == 3
    assert row["published"] == "0.1518–0.1707"
    assert row["within_published"] == "yes"
    assert row["source"] == "S4 c1"


def test_a_value_outside_the_range_or_missing_is_said_so():
    published = [
        PublishedResult(model="cnn", metric="accuracy", value=(0.19, 0.21), source="S4 c2"),
        PublishedResult(model="cnn", metric="accuracy", value=0.2056, source="S4 c2"),
        PublishedResult(model="lr", metric="map", value=0.1058, source="S4"),  # one finite seed
        PublishedResult(model="lr", metric="nsc", value=0.5, source="nowhere"),
    ]
    table = published_table(published, _records())
    assert list(table["within_published"]) == ["no", "", "", ""]
    assert table["ours_mean"].iloc[2] == pytest.approx(0.10)  # the NaN seed is not averaged
    assert table["n_seeds"].iloc[2] == 1
    assert math.isnan(table["ours_mean"].iloc[3])
    assert table["n_seeds"].iloc[3] == 0


def test_a_single_value_within_3se_is_within(tmp_path):
    published = [PublishedResult(model="lr", metric="accuracy", value=0.16, source="x")]
    assert published_table(published, _records())["within_published"].iloc[0] == "yes"
    published = [PublishedResult(model="lr", metric="accuracy", value=0.5, source="x")]
    assert published_table(published, _records())["within_published"].iloc[0] == "no"


def test_a_published_number_must_name_a_model_of_the_experiment(tmp_path):
    raw = experiment_dict(tmp_path)
    raw["report"] = {
        "published": [{"model": "nope", "metric": "accuracy", "value": 0.2, "source": "x"}]
    }
    with pytest.raises(ConfigError, match="report.published.0.model: no model named 'nope'"):
        config_from_dict(raw)
