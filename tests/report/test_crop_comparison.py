"""The nucleocentric study's table: accuracy per crop kind, masking and architecture."""

import pandas as pd

from cellbench.config import config_from_dict
from cellbench.paths import ResultsPaths
from cellbench.report.crop_comparison import (
    CROP_COLUMNS,
    FEATURES,
    crop_comparison_report,
    crop_comparison_table,
)
from tests.helpers import experiment_dict


def experiment(tmp_path, models):
    raw = experiment_dict(tmp_path / "results")
    raw["crops"] = {
        "kinds": {
            "whole_cell": {"size_px": 40},
            "whole_cell_unmasked": {"kind": "whole_cell", "size_px": 40, "masked": False},
            "nucleocentric": {"size_px": 24},
        }
    }
    raw["models"] = models
    raw["report"] = {
        "sweeps": [
            {"name": "trees", "parameter": "n_estimators", "models": ["rf10", "rf30"]},
        ]
    }
    return config_from_dict(raw)


def resnet(name, kind, depth=18):
    return {"name": name, "type": "resnet", "depth": depth, "crop_kind": kind, "epochs": 1}


MODELS = [
    resnet("r18_whole", "whole_cell"),
    resnet("r18_whole_open", "whole_cell_unmasked"),
    resnet("r18_nc", "nucleocentric"),
    resnet("r50_nc", "nucleocentric", depth=50),
    {"name": "rf", "type": "random_forest"},
    {"name": "rf10", "type": "random_forest", "n_estimators": 10},
    {"name": "rf30", "type": "random_forest", "n_estimators": 30},
]


def accuracy_table(models, accuracies):
    return pd.DataFrame(
        {
            "model": models,
            "input": "x",
            "n_seeds": 3,
            "accuracy_mean": accuracies,
            "accuracy_pm3se": [0.03] * len(models),
            "majority_rate_mean": [0.5] * len(models),
        }
    )


def test_each_classifier_is_described_by_what_it_reads(tmp_path):
    config = experiment(tmp_path, MODELS)
    names = [m["name"] for m in MODELS]
    accuracy = accuracy_table(names, [0.9, 0.8, 0.85, 0.86, 0.7, 0.6, 0.65])
    table = crop_comparison_table(config, accuracy)
    assert list(table.columns) == CROP_COLUMNS
    rows = {r["model"]: r for r in table.to_dict("records")}
    assert set(rows) == {"r18_whole", "r18_whole_open", "r18_nc", "r50_nc", "rf"}  # no sweep
    assert (rows["r18_whole"]["crop_kind"], rows["r18_whole"]["masked"]) == ("whole_cell", True)
    assert (rows["r18_whole_open"]["crop_kind"], rows["r18_whole_open"]["masked"]) == (
        "whole_cell",
        False,
    )
    assert rows["r18_nc"]["masked"] is False  # the kind's default: nucleocentric is unmasked
    assert (rows["r50_nc"]["architecture"], rows["r18_nc"]["architecture"]) == (
        "resnet50",
        "resnet18",
    )
    assert rows["rf"]["crop_kind"] == FEATURES and pd.isna(rows["rf"]["masked"])
    assert rows["rf"]["architecture"] == "random_forest"
    assert rows["r18_whole_open"]["accuracy_mean"] == 0.8
    # registry order of kinds, masked before unmasked... features last
    assert list(table["crop_kind"]) == ["whole_cell"] * 2 + ["nucleocentric"] * 2 + [FEATURES]
    assert list(table["model"][:2]) == ["r18_whole_open", "r18_whole"]  # False sorts first
    tables, figures = crop_comparison_report(config, accuracy, ResultsPaths(config.results_root))
    assert list(tables) == ["accuracy by crop"] and tables["accuracy by crop"].equals(table)
    assert [f.name for f in figures] == ["accuracy_by_crop.png"] and figures[0].stat().st_size


def test_no_table_when_every_classifier_reads_the_same_input(tmp_path):
    models = [resnet("a", "whole_cell"), resnet("b", "whole_cell", depth=50)]
    config = experiment(tmp_path, [*models, *MODELS[-2:]])
    accuracy = accuracy_table(["a", "b", "rf10", "rf30"], [0.9, 0.8, 0.7, 0.6])
    assert crop_comparison_table(config, accuracy).empty  # the forests are the sweep's
    paths = ResultsPaths(config.results_root)
    assert crop_comparison_report(config, accuracy, paths) == ({}, [])
    assert crop_comparison_report(config, None, paths) == ({}, [])
