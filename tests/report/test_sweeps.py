"""`report.sweeps`: accuracy against a model setting over several models."""

import pandas as pd
import pytest

from cellbench.config import config_from_dict
from cellbench.errors import ConfigError
from cellbench.paths import ResultsPaths
from cellbench.report.sweeps import SWEEP_COLUMNS, sweep_report, sweep_table
from tests.helpers import experiment_dict


def forests(tmp_path, trees=(50, 10, 30), sweep_models=None, parameter="n_estimators"):
    raw = experiment_dict(tmp_path / "results")
    raw["models"] = [
        {"name": f"rf{t}", "type": "random_forest", "n_estimators": t} for t in trees
    ] + [{"name": "svm", "type": "svm"}]
    models = sweep_models or [f"rf{t}" for t in trees]
    raw["report"] = {"sweeps": [{"name": "trees", "parameter": parameter, "models": models}]}
    return config_from_dict(raw)


def test_the_table_follows_the_setting_and_skips_models_not_evaluated(tmp_path):
    config = forests(tmp_path)
    accuracy = pd.DataFrame(
        {
            "model": ["rf50", "rf10", "svm"],  # rf30 not evaluated yet
            "input": "features",
            "n_seeds": 3,
            "accuracy_mean": [0.8, 0.6, 0.7],
            "accuracy_pm3se": [0.03, 0.05, 0.04],
        }
    )
    table = sweep_table(config.report.sweeps[0], config, accuracy)
    assert list(table.columns) == SWEEP_COLUMNS
    assert list(table["model"]) == ["rf10", "rf50"] and list(table["value"]) == [10, 50]
    assert list(table["accuracy_mean"]) == [0.6, 0.8]
    tables, figures = sweep_report(config, accuracy, ResultsPaths(config.results_root))
    assert list(tables) == ["sweep trees"] and tables["sweep trees"].equals(table)
    assert [f.name for f in figures] == ["sweep_trees.png"] and figures[0].stat().st_size > 0
    assert sweep_report(config, None, ResultsPaths(config.results_root)) == ({}, [])


def test_a_sweep_names_models_with_a_number_under_its_parameter(tmp_path):
    with pytest.raises(ConfigError, match="report.sweeps.0.models.1: no model named 'nope'"):
        forests(tmp_path, sweep_models=["rf10", "nope"])
    with pytest.raises(ConfigError, match="model 'svm' has no number under 'n_estimators'"):
        forests(tmp_path, sweep_models=["rf10", "svm"])
    with pytest.raises(ConfigError, match="no number under 'bootstrap'"):
        forests(tmp_path, parameter="bootstrap")
    with pytest.raises(ConfigError, match="report.sweeps.0.models"):
        forests(tmp_path, sweep_models=["rf10"])  # one model is no sweep
